"""A models home copied or moved elsewhere reads its own files and writes only inside itself.

MLflow records every artifact location as an absolute path. A copy of a home (a backup restored
to another folder, ``cp -r models /tmp/try-upgrade``) read the original's ``mlartifacts/``, its
new versions were written there, and once the original was gone, its versions were refused as
files that cannot be read; a home renamed likewise, and its training recreated the old folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from pipelines import train
from recommender import registry
from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.errors import InputError, ModelFilesMissing, ModelUnavailable
from recommender.service import AuditLog, RecommendationEngine, load_serve_config
from recommender.simulate import simulate_cohort
from service_fixtures import SALT, profile
from test_pipeline_train import SMALL, reuse_model, sketched_plots, use_home  # noqa: F401
from test_registry_mlflow import register_fake

# Every artifact location MLflow 3 records in its store.
LOCATIONS = (
    "SELECT artifact_location FROM experiments UNION ALL SELECT artifact_uri FROM runs "
    "UNION ALL SELECT artifact_location FROM logged_models "
    "UNION ALL SELECT storage_location FROM model_versions"
)


def files_of(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def recorded_locations(home: Path) -> list[str]:
    with closing(sqlite3.connect(home / "mlflow.db")) as db:
        return [row[0] for row in db.execute(LOCATIONS)]


def local_path(location: str) -> Path:
    return Path(unquote(urlparse(location).path))


def version_files(version: str) -> Path:
    return local_path(
        registry.client().get_model_version_download_uri("burnout-recommender", version)
    )


@contextmanager
def away(folder: Path):
    """``folder`` gone for the block (renamed beside), then put back: the original of a copy
    deleted, as a restore to another machine would find it. The suite runs as root, whom
    ``chmod 000`` would not stop."""
    hidden = folder.with_name(folder.name + ".away")
    folder.rename(hidden)
    try:
        yield
    finally:
        recreated = folder.exists()
        if recreated:
            folder.rename(folder.with_name(folder.name + ".recreated"))
        hidden.rename(folder)
    assert not recreated, f"{folder} was recreated while it was away"


def serve_one(home: Path) -> dict:
    """One recommendation answered in process by the champion of ``home``."""
    model, version = registry.load_champion()
    engine = RecommendationEngine(
        model,
        version,
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT),
    )
    try:
        return engine.recommend([engine.check_row(profile())], caller_role="program")[0]
    finally:
        engine.audit.close()


@pytest.mark.slow
@pytest.mark.parametrize("original", ["in place", "gone"])
@pytest.mark.usefixtures("sketched_plots")  # what is checked is where files go, not pixels
def test_a_copied_home_serves_and_trains_on_its_own_files(
    trained,
    original,
    tmp_path,
    monkeypatch,
    caplog,
    capsys,
):
    result, home_a = trained
    before = files_of(home_a)
    home_b = tmp_path / "copy"
    shutil.copytree(home_a, home_b)
    use_home(monkeypatch, home_b)
    reuse_model(monkeypatch, result.model)
    simulate_cohort("default", 40, seed=2).to_csv(tmp_path / "cohort.csv", index=False)
    with away(home_a) if original == "gone" else nullcontext():
        answer = serve_one(home_b)
        assert answer["model_version"] == "1" and answer["recommended"]
        # The `recommender` command in a process of its own: the champion scores a cohort.
        scored = tmp_path / "scored.csv"
        env = {**os.environ, "RECOMMENDER_HOME": str(home_b)}
        command = [sys.executable, "-m", "recommender", "score", "--model", "champion"]
        command += ["--data", str(tmp_path / "cohort.csv"), "--out", str(scored)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(scored.read_text().splitlines()) == 41
        # The card published with version 1, read from the copy's run artifacts.
        shutil.rmtree(home_b / "cards")
        assert main(["card", "--model", "1", "--out", str(tmp_path / "card")]) == 0
        assert (tmp_path / "card" / "card.json").stat().st_size > 1000

        with caplog.at_level(logging.WARNING, logger="recommender.registry"):
            trained_b = train.run_training(overrides=SMALL, reason="trained in the copy")
        assert trained_b.version == "2"
        said = [r.getMessage() for r in caplog.records if "moved or copied" in r.getMessage()]
        assert len(said) == 1 and str(home_a / "mlartifacts") in said[0]
        assert str(home_b / "mlartifacts") in said[0]
        assert (version_files("2") / "MLmodel").is_file()
        assert version_files("2").is_relative_to(home_b / "mlartifacts")
        # Every location the store records names the copy's own files now.
        for location in recorded_locations(home_b):
            assert local_path(location).is_relative_to(home_b.resolve()), location
    assert files_of(home_a) == before


def test_a_renamed_home_serves_and_trains_without_recreating_its_old_folder(tmp_path, monkeypatch):
    old = tmp_path / "project" / "models"
    use_home(monkeypatch, old)
    register_fake()
    new = tmp_path / "renamed project %41" / "models"  # quoted in a file: URI as %20 and %25
    new.parent.mkdir()
    old.rename(new)
    use_home(monkeypatch, new)

    assert serve_one(new)["model_version"] == "1"
    assert register_fake().version == "2"
    assert version_files("1").is_relative_to(new / "mlartifacts")
    assert version_files("2").is_relative_to(new / "mlartifacts")
    assert (version_files("2") / "MLmodel").is_file()
    assert not old.exists()
    assert registry.load_model("2") is not None


def test_a_store_copied_without_its_files_reads_the_original_and_writes_into_itself(
    tmp_path, monkeypatch
):
    # mlflow.db alone restored elsewhere: its versions' files are where they always were, so
    # they are read there; what the copy trains goes into the copy.
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    use_home(monkeypatch, home_a)
    register_fake()
    before = files_of(home_a)
    home_b.mkdir()
    shutil.copy2(home_a / "mlflow.db", home_b / "mlflow.db")
    use_home(monkeypatch, home_b)

    assert serve_one(home_b)["model_version"] == "1"
    assert register_fake().version == "2"
    assert version_files("1").is_relative_to(home_a / "mlartifacts")
    assert version_files("2").is_relative_to(home_b / "mlartifacts")
    assert files_of(home_a) == before

    # Once the original is gone too, the refusal names both places the files were looked for.
    shutil.rmtree(home_a)
    with pytest.raises(ModelUnavailable) as refused:
        registry.load_model("1")
    said = str(refused.value)
    assert str(home_a / "mlartifacts") in said and str(home_b / "mlartifacts") in said
    assert "moved or copied without them" in said


def test_only_another_homes_artifact_folder_is_rewritten_and_all_of_it_or_nothing(
    tmp_path, monkeypatch
):
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    use_home(monkeypatch, home_a)
    register_fake()
    shutil.copytree(home_a, home_b)
    elsewhere_by_design = {
        "remote": "s3://bucket/mlflow",
        "server": "mlflow-artifacts:/7",
        "shared": "file:///srv/shared/artifacts",
    }
    with closing(sqlite3.connect(home_b / "mlflow.db")) as db, db:
        for name, location in elsewhere_by_design.items():
            db.execute(
                "INSERT INTO experiments (name, artifact_location, lifecycle_stage) "
                "VALUES (?, ?, 'active')",
                (name, location),
            )
        # A rewrite that fails part way (here a trigger refuses the last table's rows).
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON model_versions "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    recorded = recorded_locations(home_b)
    before = files_of(home_a)
    use_home(monkeypatch, home_b)

    with pytest.raises(ModelUnavailable, match="could not be changed to name"):
        register_fake()
    assert recorded_locations(home_b) == recorded  # not one row changed

    with closing(sqlite3.connect(home_b / "mlflow.db")) as db, db:
        db.execute("DROP TRIGGER refuse")
    assert register_fake().version == "2"
    with closing(sqlite3.connect(home_b / "mlflow.db")) as db:
        experiments = dict(db.execute("SELECT name, artifact_location FROM experiments"))
    assert {name: experiments[name] for name in elsewhere_by_design} == elsewhere_by_design
    assert experiments["burnout-recommender"] == (home_b / "mlartifacts").resolve().as_uri()
    for location in recorded_locations(home_b):
        if local_path(location).is_relative_to(home_a):  # left: nothing of it was copied
            inside = local_path(location).relative_to(home_a)
            assert not (home_b / inside).exists(), location
    assert files_of(home_a) == before

    # A SQLite store named by MLFLOW_TRACKING_URI outside RECOMMENDER_HOME keeps its artifacts
    # wherever it says by design: a writer there rewrites nothing.
    home_c = tmp_path / "c"
    shutil.copytree(home_a, home_c)
    recorded = recorded_locations(home_c)
    use_home(monkeypatch, tmp_path / "elsewhere")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home_c / 'mlflow.db'}")
    registry.client()  # a writer's client
    assert recorded_locations(home_c) == recorded


def test_a_run_uri_in_a_copied_home_reads_the_copy_or_says_which_files_are_missing(
    tmp_path, monkeypatch
):
    # Found: `runs:/<run id>/model` in a copy that had not trained since the copy was read from
    # the original's mlartifacts/ (MLflow resolves it by the locations the store records), and
    # once the original was gone it was refused as "no registered model version, run or model
    # folder matches", naming a staging folder.
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    use_home(monkeypatch, home_a)
    run_id = register_fake().run_id
    uri = f"runs:/{run_id}/model"
    shutil.copytree(home_a, home_b)
    use_home(monkeypatch, home_b)
    before = files_of(home_a)

    with away(home_a):
        assert registry.load_model(uri) is not None
    # With the original back, the copy's own files are the ones read: without its pickled
    # model (the original still has it), the copy's model cannot be loaded.
    [mlmodel] = [p for p in (home_b / "mlartifacts").rglob("MLmodel") if run_id in p.read_text()]
    pickled = mlmodel.parent / "python_model.pkl"
    pickled.rename(pickled.with_suffix(".away"))
    with pytest.raises(InputError, match="python_model.pkl"):
        registry.load_model(uri)
    pickled.with_suffix(".away").rename(pickled)
    assert registry.load_model(uri) is not None
    assert files_of(home_a) == before

    # The copy without the run's model, the original there: read there, as a version's files.
    shutil.rmtree(mlmodel.parent)
    assert registry.load_model(uri) is not None
    # And gone too: refused, naming both places.
    with away(home_a), pytest.raises(ModelFilesMissing) as refused:
        registry.load_model(uri)
    said = str(refused.value)
    assert uri in said and str(home_a / "mlartifacts") in said
    assert str(home_b / "mlartifacts") in said and "moved or copied without them" in said
    assert refused.value.missing == str(mlmodel.parent)
