"""Where configuration is read and artifacts written: a checkout, a folder of one's own, a wheel.

A wheel's install put nothing of configs/ anywhere (every command stopped with "no such catalog
file .../site-packages/configs/interventions.yaml") and would have written models/ into the
installed package's folder.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from recommender import paths

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working folder with neither configs/ nor models/, and no variable set."""
    monkeypatch.delenv("RECOMMENDER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RECOMMENDER_HOME", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_a_checkout_reads_its_own_configs_and_writes_its_own_models(elsewhere):
    assert paths.config_dir() == ROOT / "configs"
    assert paths.models_dir() == ROOT / "models"


def test_the_working_folder_and_the_variables_come_first(elsewhere, monkeypatch, tmp_path):
    (elsewhere / "configs").mkdir()
    (elsewhere / "configs" / "interventions.yaml").write_text("{}")
    (elsewhere / "models").mkdir()
    assert paths.config_dir() == elsewhere / "configs"
    assert paths.models_dir() == elsewhere / "models"
    monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "h"))
    assert (paths.config_dir(), paths.models_dir()) == (tmp_path / "c", tmp_path / "h")


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_a_config_folder_variable_naming_no_folder_is_said_as_the_variable(
    elsewhere, monkeypatch, kind
):
    # It was said as the first file looked for: "<value>/interventions.yaml: no such catalog
    # file", which sends the reader looking for a catalog rather than at the variable.
    from recommender.catalog import load_catalog
    from recommender.errors import InputError
    from recommender.service import load_serve_config

    if kind == "a file":
        (elsewhere / "confgis").write_text("")
    monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", "confgis")
    assert paths.config_dir() == Path("confgis")  # what it names, unchanged
    said = "does not exist" if kind == "missing" else "is not a folder"
    for read in (load_catalog, load_serve_config):
        with pytest.raises(InputError) as refused:
            read()
        message = str(refused.value)
        assert message.startswith(f"RECOMMENDER_CONFIG_DIR = 'confgis' {said} (in {elsewhere})")
        assert "interventions.yaml" in message and "unset it" in message


def test_a_wheel_reads_the_shipped_configs_and_writes_models_in_the_working_folder(
    elsewhere, monkeypatch, tmp_path
):
    prefix = tmp_path / "venv"
    site = prefix / "lib" / "python3.11" / "site-packages"
    shared = prefix / "share" / "burnout-recommender" / "configs"
    shared.mkdir(parents=True)
    (shared / "interventions.yaml").write_text("{}")
    monkeypatch.setattr(paths, "_CHECKOUT", site)
    monkeypatch.setattr(paths.sysconfig, "get_path", lambda name: str(prefix))
    assert paths.config_dir() == shared
    assert paths.models_dir() == elsewhere / "models"  # never inside site-packages


def test_the_wheel_ships_every_config_file():
    # pyproject's data-files are globs; each file of configs/ must match one of its folder.
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"
    ]
    shipped = {
        (Path(target).relative_to("share/burnout-recommender"), pattern)
        for target, patterns in data_files.items()
        for pattern in patterns
    }
    configs = sorted(p.relative_to(ROOT) for p in (ROOT / "configs").rglob("*") if p.is_file())
    assert configs, "no config files found"
    for config in configs:
        assert any(
            config.parent == folder and fnmatch.fnmatch(str(config), pattern)
            for folder, pattern in shipped
        ), f"{config} is not in pyproject's [tool.setuptools.data-files]"
