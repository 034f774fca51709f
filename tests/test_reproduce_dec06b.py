"""Can a registered model be reproduced from what its run and card record?

One small run on a cohort file (n = 1,200, LightGBM capped at 30 rounds) is retrained twice:
by the card's own command in a fresh process (another PYTHONHASHSEED), from the run's logged
config and the file of the logged sha256; and in process from the same rows in another order.
Both must give every arm's effect and interval, every outcome, and the contributions exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_pipeline_train import sketch_plots, sketched_plots, use_home  # noqa: F401 - a fixture

import pipelines.train as train
from pipelines._train_lineage import _git_commit
from recommender import registry
from recommender.paths import config_path

ROOT = Path(__file__).resolve().parents[1]
NAME = "burnout-recommender"

CONFIG = """\
seed: 4
data: {scenario: default, n: 1200, seed: 9, assignment: rct}
learner:
  learner: auto
  n_folds: 3
  params:
    outcome_candidates: [{gbm: {max_rounds: 30, patience: 5}}]
    final_candidates: [{gbm: {max_rounds: 30, patience: 5}}]
evaluation: {alpha: 0.1, n_folds: 3}
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _predictions(model, profiles: pd.DataFrame) -> dict:
    """Every arm's effect and interval for every outcome, and the contributions."""
    p = model.predict(model.encode(profiles))
    out = {"effect": p.effect, "lower": p.lower, "upper": p.upper}
    for outcome in p.secondary:
        out[f"{outcome}.effect"] = p.secondary[outcome]
        out[f"{outcome}.lower"] = p.secondary_lower[outcome]
        out[f"{outcome}.upper"] = p.secondary_upper[outcome]
    for arm in model.treatment_arms:
        out[f"contributions.{arm}"] = model.contributions(profiles, arm).to_numpy(dtype=float)
    return out


def _assert_identical(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    different = [k for k in first if not np.array_equal(first[k], second[k])]
    assert not different, f"not reproduced: {different}"


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A cohort file, a config beside it, and the home of one run of them."""
    folder = tmp_path_factory.mktemp("reproduce")
    home = folder / "home"
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, home)
        sketch_plots(monkeypatch)  # what is reproduced is the model, not the plots' pixels
        from recommender.simulate import load_scenario, simulate_cohort

        cohort = simulate_cohort(load_scenario("default"), 1200, seed=9, assignment="rct")
        data = folder / "cohort.csv"
        cohort.to_csv(data, index=False)
        config = folder / "train.yaml"
        config.write_text(CONFIG)
        result = train.run_training(config, data=data, reason="reproduce test")
        profiles = cohort.head(150)
        predictions = _predictions(registry.load_model(f"models:/{NAME}/1"), profiles)
    return {
        "folder": folder,
        "home": home,
        "data": data,
        "cohort": cohort,
        "result": result,
        "profiles": profiles,
        "predictions": predictions,
    }


def _run_artifact(home: Path, run_id: str, path: str, out: Path) -> Path:
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, home)
        with registry.mlflow_session() as mlflow:
            return Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{path}", dst_path=out))


def test_run_and_version_record_what_made_the_model(original, monkeypatch):
    use_home(monkeypatch, original["home"])
    run_id = original["result"].run_id
    run = registry.client().get_run(run_id)
    tags, params = run.data.tags, run.data.params
    logged = _run_artifact(original["home"], run_id, "config/train.yaml", original["folder"] / "a")
    catalog = config_path("interventions.yaml")
    assert tags["config.sha256"] == _sha256(logged)
    assert tags["catalog.sha256"] == _sha256(catalog)
    assert tags["data.sha256"] == _sha256(original["data"])
    assert tags["reproduce.command"] == "recommender train --config train.yaml --data cohort.csv"
    assert tags["git_commit"] == _git_commit()
    for package in ("burnout-recommender", "lightgbm", "scikit-learn", "numpy", "mlflow"):
        assert tags[f"version.{package}"] not in ("", "not installed")
    assert params["seed.learner"] == "4" and params["config.learner.learner"] == "auto"
    assert set(params) >= {"learner.chosen.ee", "learner.chosen.dp", "learner.chosen.pa"}
    # the registered version carries the digests too (the registry's page of a version)
    version = registry.client().get_model_version(NAME, "1")
    for tag in ("config.sha256", "catalog.sha256", "data.sha256", "reproduce.command"):
        assert version.tags[tag] == tags[tag]

    card = json.loads((original["result"].card_folder / "card.json").read_text())
    again = card["training_data"]["reproduction"]
    assert again["command"] == tags["reproduce.command"]
    assert again["config_sha256"] == tags["config.sha256"]
    assert again["catalog_sha256"] == tags["catalog.sha256"]
    choice = card["model"]["learner_choice"]
    assert "doubly robust" in choice["rule"]
    assert set(choice["outcomes"]) == {"ee", "dp", "pa"}
    model = original["result"].model
    for outcome, arms in choice["outcomes"].items():
        assert list(arms) == list(model.treatment_arms)
        assert all(arms.values()), f"an arm of {outcome} lists no chosen candidate"
    logged_text = logged.read_text()
    assert again["config_yaml"] == logged_text
    text = (original["result"].card_folder / "card.md").read_text()
    assert logged_text in text  # the config itself, in the card's training-data section
    assert "Reproduce with" in text and tags["reproduce.command"] in text
    assert "Chosen for ee" in text


def test_the_cards_command_retrains_the_same_model_in_a_fresh_process(original, tmp_path):
    """The auditor's path: the run's config artifact and the file of its sha256, the card's
    command, another process with another hash seed, another home."""
    run_id = original["result"].run_id
    work = tmp_path / "work"
    work.mkdir()
    config = _run_artifact(original["home"], run_id, "config/train.yaml", tmp_path / "art")
    shutil.copy(config, work / "train.yaml")
    shutil.copy(original["data"], work / "cohort.csv")
    card = json.loads((original["result"].card_folder / "card.json").read_text())
    reproduction = card["training_data"]["reproduction"]
    assert _sha256(work / "train.yaml") == reproduction["config_sha256"]
    assert _sha256(work / "cohort.csv") == card["model"]["data_sha256"]

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(
        RECOMMENDER_HOME=str(home),
        RECOMMENDER_TRAINING_KEY="test-suite-key",
        RECOMMENDER_ACTOR="test-suite",
        PYTHONHASHSEED="12345",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
        BENTOML_DO_NOT_TRACK="True",
    )
    command = reproduction["command"].split()
    assert command[0] == "recommender"
    done = subprocess.run(
        [sys.executable, "-m", "recommender", *command[1:], "--quiet"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, home)
        again = registry.client().get_run(registry.client().get_model_version(NAME, "1").run_id)
        assert again.data.tags["config.sha256"] == reproduction["config_sha256"]
        assert again.data.tags["data.sha256"] == card["model"]["data_sha256"]
        model = registry.load_model(f"models:/{NAME}/1")
        _assert_identical(original["predictions"], _predictions(model, original["profiles"]))


@pytest.mark.usefixtures("sketched_plots")
def test_row_order_of_the_file_does_not_change_the_model(original, tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home")
    shuffled = tmp_path / "shuffled.csv"
    original["cohort"].sample(frac=1.0, random_state=1).to_csv(shuffled, index=False)
    result = train.run_training(
        original["folder"] / "train.yaml", data=shuffled, reason="same rows, another order"
    )
    assert result.data_sha256 != _sha256(original["data"])  # the file's bytes differ
    model = registry.load_model(f"models:/{NAME}/1")
    _assert_identical(original["predictions"], _predictions(model, original["profiles"]))


def test_runs_search_shows_every_runs_metrics_under_the_same_names(original, monkeypatch):
    """Data scientists compare runs with mlflow.search_runs: every metric a run logged is a
    column there, named the same in every run (no learner or date in a name)."""
    use_home(monkeypatch, original["home"])
    run = registry.client().get_run(original["result"].run_id)
    logged = set(run.data.metrics)
    with registry.mlflow_session() as mlflow:
        runs = mlflow.search_runs(experiment_names=[NAME])
    columns = {c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")}
    assert logged <= columns
    arms = original["result"].model.treatment_arms
    for name in ("policy_value.learned", "personalization_gain", *(f"ate.{a}" for a in arms)):
        assert {name, f"{name}.lower", f"{name}.upper"} <= logged
    assert not [k for k in logged if any(w in k for w in ("auto", ".t.", ".x.", ".dr."))]


def test_git_commit_of_an_installed_copy_inside_another_checkout_is_unknown(tmp_path):
    """A package installed in a .venv inside some project's checkout must not record that
    project's commit as its own."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    installed = tmp_path / ".venv" / "site-packages"
    (installed / "pipelines").mkdir(parents=True)
    assert _git_commit(installed) == "unknown"
    assert _git_commit(ROOT) == _git_commit()
    assert _git_commit(tmp_path) not in ("unknown", "")
