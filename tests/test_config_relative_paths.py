"""A relative path in a config file names a place beside that file, from any working folder.

Found: a program's serve.yaml kept beside its models folder (``models_dir: ../models``) and a
relative SQLite audit URL were read from the working folder, so the same service started from
another folder (a cron job, a systemd unit, another shell) opened a new empty audit store and
salt there: its audit log, its outcomes import and the /audit/export answered from a store the
service never wrote. A train.yaml's catalog, scenario file and serve.yaml beside it were
refused (naming both places) unless it ran from the right folder; a scenario's ``extends``
was already read beside the scenario. Variables (``RECOMMENDER_AUDIT_URL``, ``RECOMMENDER_HOME``,
``MLFLOW_TRACKING_URI``) and command-line paths are the caller's and still win, as given.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.train import load_config
from recommender.paths import config_dir, shipped_config_dir
from recommender.service import AuditLog, load_serve_config, sqlite_file

SALT = "a-salt-of-sixteen-characters-or-more"


def _shipped(name: str) -> str:
    return (shipped_config_dir() / name).read_text(encoding="utf-8")


@pytest.fixture
def program(tmp_path, monkeypatch):
    """A program's folder: ``configs/`` beside ``models/``; the test runs from elsewhere."""
    folder = tmp_path / "program"
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in ("RECOMMENDER_AUDIT_URL", "RECOMMENDER_SERVE_CONFIG", "RECOMMENDER_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home-from-the-variable"))
    return folder


def _serve_yaml(folder: Path, models_dir: str = "null", url: str = "null") -> Path:
    text = _shipped("serve.yaml")
    text = text.replace("models_dir: null", f"models_dir: {models_dir}", 1)
    text = text.replace("  url: null", f"  url: {url}", 1)
    path = folder / "configs" / "serve.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_relative_models_dir_is_the_folder_beside_the_serve_yaml(program):
    config = load_serve_config(_serve_yaml(program, models_dir="../models"))
    assert config.models_dir.resolve() == (program / "models").resolve()
    # The audit store and the salt file are then the program's, not the working folder's.
    assert sqlite_file(config.audit_store).resolve() == (program / "models" / "audit.db").resolve()
    assert config.bentoml_home.resolve() == (program / "models" / "bentoml").resolve()
    assert not any(Path.cwd().iterdir())


def test_a_relative_sqlite_audit_url_is_the_file_beside_the_serve_yaml(program):
    path = _serve_yaml(program, url="sqlite:///../models/audit.db")
    config = load_serve_config(path)
    assert sqlite_file(config.audit_store).resolve() == (program / "models" / "audit.db").resolve()
    # Opened from elsewhere, the store is created there and read back there.
    AuditLog(config.audit_store, salt=SALT).close()
    assert (program / "models" / "audit.db").is_file()
    assert not any(Path.cwd().iterdir())


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/recommender/audit.db",
        "sqlite://",
        "postgresql+psycopg://svc@db/audit",
    ],
)
def test_absolute_and_non_file_audit_urls_are_kept_as_written(program, url):
    assert load_serve_config(_serve_yaml(program, url=url)).audit_url == url


def test_a_sqlite_uri_filename_is_read_beside_the_serve_yaml_too(program):
    path = _serve_yaml(program, url='"sqlite:///file:../models/audit.db?mode=ro&uri=true"')
    config = load_serve_config(path)
    assert sqlite_file(config.audit_store).resolve() == (program / "models" / "audit.db").resolve()
    assert config.audit_store.endswith("?mode=ro&uri=true")


def test_the_environment_still_wins_and_is_read_as_given(program, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", "sqlite:///from-the-variable.db")
    config = load_serve_config(_serve_yaml(program, models_dir="../models", url="sqlite:///x.db"))
    assert config.audit_url == "sqlite:///from-the-variable.db"  # the working folder's


def test_a_null_models_dir_is_still_the_home_the_variable_names(program, tmp_path):
    config = load_serve_config(_serve_yaml(program))
    assert config.models_dir == tmp_path / "home-from-the-variable"


def test_an_absolute_models_dir_is_kept(program, tmp_path):
    config = load_serve_config(_serve_yaml(program, models_dir=str(tmp_path / "abs")))
    assert config.models_dir == tmp_path / "abs"


def test_the_audit_cli_reads_the_store_beside_its_serve_yaml_from_any_folder(
    program, monkeypatch, capsys
):
    from recommender.cli import main

    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    path = _serve_yaml(program, url="sqlite:///../models/audit.db")
    AuditLog(f"sqlite:///{program / 'models' / 'audit.db'}", salt=SALT).close()  # the service's
    out = program / "export.csv"
    assert main(["audit", "export", "--config", str(path), "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    assert out.is_file()


# -- train.yaml --------------------------------------------------------------------------------


def _train_folder(tmp_path, text: str | None = None) -> Path:
    folder = tmp_path / "program-train"
    folder.mkdir()
    (folder / "train.yaml").write_text(text or _shipped("train.yaml"), encoding="utf-8")
    return folder


def test_a_catalog_beside_the_train_yaml_is_the_one_read(tmp_path, monkeypatch):
    from pipelines._train_cohort import training_catalog

    monkeypatch.delenv("RECOMMENDER_CONFIG_DIR", raising=False)
    folder = _train_folder(tmp_path)
    edited = _shipped("interventions.yaml").replace("cost_per_person: 1400", "cost_per_person: 900")
    (folder / "interventions.yaml").write_text(edited, encoding="utf-8")
    config = load_config(folder / "train.yaml")
    assert Path(config["catalog"]) == (folder / "interventions.yaml").absolute()
    assert 900 in {arm.cost_per_person for arm in training_catalog(config).arms}


def test_without_a_catalog_beside_it_the_configs_folders_is_read_as_before(tmp_path):
    folder = _train_folder(tmp_path)
    assert load_config(folder / "train.yaml")["catalog"] == "interventions.yaml"
    # An identical copy beside it is that catalog: the value stays as written, so a config
    # trained before trains alike now.
    (folder / "interventions.yaml").write_bytes((config_dir() / "interventions.yaml").read_bytes())
    assert load_config(folder / "train.yaml")["catalog"] == "interventions.yaml"


def test_a_serve_yaml_and_a_scenario_beside_the_train_yaml_are_the_ones_read(tmp_path, monkeypatch):
    text = _shipped("train.yaml").replace("serve_config: null", "serve_config: serve.yaml")
    text = text.replace("scenario: default ", "scenario: mine.yaml ")
    folder = _train_folder(tmp_path, text)
    (folder / "serve.yaml").write_text(_shipped("serve.yaml"), encoding="utf-8")
    (folder / "mine.yaml").write_text("extends: default\nname: mine\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(folder / "train.yaml")
    assert Path(config["log"]["serve_config"]) == (folder / "serve.yaml").absolute()
    assert Path(config["data"]["scenario"]) == (folder / "mine.yaml").absolute()

    # Nothing beside it: the working folder, as before (a value kept as written).
    (folder / "serve.yaml").rename(elsewhere / "serve.yaml")
    assert load_config(folder / "train.yaml")["log"]["serve_config"] == "serve.yaml"


def test_a_serve_config_given_on_the_command_line_is_the_callers(tmp_path, monkeypatch):
    folder = _train_folder(tmp_path)
    (folder / "serve.yaml").write_text(_shipped("serve.yaml"), encoding="utf-8")
    config = load_config(folder / "train.yaml", overrides={"log": {"serve_config": "serve.yaml"}})
    assert config["log"]["serve_config"] == "serve.yaml"  # the working folder's, as typed
