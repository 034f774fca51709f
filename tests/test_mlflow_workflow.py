"""A data scientist's MLflow workflow: train against a real tracking server, load the champion
with MLflow's own API, and what that API refuses.

The registered pyfunc is an edge of its own (a notebook, `mlflow models serve`): MLflow's schema
checks only types, so the model checks the data contract's values itself, as `recommender
score` does, and a refusal still gives the crisis resources of the rows flagged for them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from heavy2_fixtures import small_config
from service_fixtures import champion_home, serving  # noqa: F401 (fixtures)

from pipelines.score import safety_rules
from pipelines.train import load_config
from recommender.cohort import PROFILE_COLUMNS
from recommender.errors import InputError
from recommender.simulate import load_scenario, simulate_cohort
from recommender.uplift import SEED_LIMIT, UpliftModel

CHAMPION = "models:/burnout-recommender@champion"


def plain_profiles(n: int, seed: int) -> pd.DataFrame:
    """Profile rows in plain types, as a program's export has them."""
    frame = simulate_cohort(load_scenario("default"), n, seed=seed)[list(PROFILE_COLUMNS)]
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype) or column == "person_id":
            frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def champion(champion_home):  # noqa: F811
    """The champion loaded as the README shows: plain MLflow on the project's SQLite store."""
    # set_tracking_uri exports MLFLOW_TRACKING_URI too: restoring the URI alone left the
    # working folder's default store in the environment of every later test of the worker.
    saved, saved_env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(f"sqlite:///{champion_home / 'mlflow.db'}")
    try:
        yield mlflow.pyfunc.load_model(CHAMPION)
    finally:
        mlflow.set_tracking_uri(saved)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


def crisis_resource_names():
    return [resource.name for resource in safety_rules().crisis_resources]


@pytest.mark.parametrize(
    ("column", "value", "accepted"),
    [
        ("ee", 99, "from 0 to 54"),
        ("dp", -3, "from 0 to 30"),
        ("pa", 60, "from 0 to 48"),
        ("age", 5, "from 18 to 90"),
        ("weekly_hours", 500.0, "from"),
    ],
)
def test_plain_mlflow_refuses_a_value_outside_the_contract_naming_it(
    champion, column, value, accepted
):
    rows = plain_profiles(4, seed=3)
    rows.loc[1, column] = value
    with pytest.raises(InputError) as refused:
        champion.predict(rows)
    said = str(refused.value)
    assert f"{column} [range]" in said and "row 1" in said and accepted in said
    assert refused.value.problems[0].column == column


def test_a_refused_table_still_gives_its_flagged_rows_the_crisis_resources(champion):
    rows = plain_profiles(4, seed=4).assign(crisis_risk=[False, False, True, False])
    rows.loc[0, "ee"] = 99
    with pytest.raises(InputError) as refused:
        champion.predict(rows)
    said = str(refused.value)
    assert "rows flagged for crisis risk (rows 2)" in said
    assert any(name in said for name in crisis_resource_names())


def test_a_table_without_person_ids_is_refused_by_row(champion):
    rows = plain_profiles(3, seed=5).drop(columns="person_id")
    rows.loc[2, "age"] = 120
    with pytest.raises(InputError, match=r"age \[range\].*row 2"):
        champion.predict(rows)
    # in range again, the same table is scored, keyed by row
    rows.loc[2, "age"] = 60
    assert champion.predict(rows)["person_id"].tolist() == ["0", "1", "2"]


def test_the_contract_bounds_themselves_are_scored(champion):
    rows = plain_profiles(2, seed=6)
    # years_in_practice at its bounds too, each with an age it fits (practice begins at 16 or later)
    rows.loc[0, ["age", "years_in_practice", "ee", "dp", "pa"]] = [18, 0.0, 54, 30, 0]
    rows.loc[1, ["age", "years_in_practice", "ee", "dp", "pa"]] = [90, 60.0, 0, 0, 48]
    assert champion.predict(rows)["recommended"].notna().all()


# ------------------------------------------------------------------------- the training seed
def test_a_seed_past_what_the_learners_take_is_refused_by_name():
    with pytest.raises(InputError, match=rf"seed = {2**40} .* from 0 to {SEED_LIMIT - 1}"):
        load_config(overrides={"seed": 2**40})
    assert load_config(overrides={"seed": SEED_LIMIT - 1})["seed"] == SEED_LIMIT - 1


@pytest.mark.parametrize("seed", [-1, SEED_LIMIT, True])
def test_uplift_model_refuses_a_seed_it_cannot_use(seed):
    model = UpliftModel(random_state=seed)
    with pytest.raises(InputError, match="random_state"):
        model.fit(pd.DataFrame({"age": [40.0] * 4}), ["none", "a"] * 2, [1.0] * 4)


def test_train_with_too_large_a_seed_registers_nothing(tmp_path):
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "recommender", "train", "--seed", str(2**32), "--quiet"],
        env={**os.environ, "RECOMMENDER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "seed" in done.stderr and "Traceback" not in done.stderr
    assert not (home / "mlflow.db").exists()


# ---------------------------------------------------------------- a real MLflow tracking server
@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """`mlflow server` on SQLite with its own artifact store, on a free loopback port."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    mlflow_command = shutil.which("mlflow", path=str(Path(sys.executable).parent))

    def command(port):
        return [
            mlflow_command,
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            *f"--host 127.0.0.1 --port {port} --workers 1".split(),
        ]

    # MLflow 3's server also starts job consumers (huey: five more Python processes importing
    # MLflow) for its GenAI jobs; nothing here runs one, and on a two-core CI machine they
    # slowed the training run against this server.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with serving(command, env=env, log_path=folder / "server.log", ready_path="/health") as (
        url,
        _,
    ):
        yield url


@pytest.fixture(scope="module")
def trained_on_server(tracking_server, tmp_path_factory):
    """One small `recommender train --quiet` against the server: its completed process."""
    home = tmp_path_factory.mktemp("server-home")
    return subprocess.run(
        [sys.executable, "-m", "recommender", "train", "--quiet", *small_config(home)],
        env={**os.environ, "RECOMMENDER_HOME": str(home), "MLFLOW_TRACKING_URI": tracking_server},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_train_quiet_against_a_server_prints_its_one_result_line(trained_on_server):
    assert trained_on_server.returncode == 0, trained_on_server.stderr
    lines = trained_on_server.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("registered burnout-recommender version 1")
    assert "View run" not in trained_on_server.stdout + trained_on_server.stderr


def test_the_servers_version_carries_its_runs_lineage(tracking_server, trained_on_server):
    from mlflow import MlflowClient

    assert trained_on_server.returncode == 0, trained_on_server.stderr
    mlflow_client = MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    version = mlflow_client.get_model_version_by_alias("burnout-recommender", "champion")
    run = mlflow_client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    for key in ("git_commit", "catalog.version", "data.source", "data.sha256"):
        assert version.tags[key] == run.data.tags[key] != ""
    assert "rows to train" in version.description and "Gate passed" in version.description


def test_plain_mlflow_loads_the_servers_champion_and_scores(tracking_server, trained_on_server):
    assert trained_on_server.returncode == 0, trained_on_server.stderr
    script = (
        "import sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({tracking_server!r})\n"
        f"model = mlflow.pyfunc.load_model({CHAMPION!r})\n"
        "rows = pd.read_json(sys.stdin, orient='records', dtype=False)\n"
        "print(model.predict(rows)['recommended'].notna().sum())\n"
    )
    rows = plain_profiles(5, seed=9)
    # a fresh Python without the project's environment variables, as a notebook would be
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECOMMENDER_", "MLFLOW_"))}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=rows.to_json(orient="records"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "5"


# --------------------------------------------------------- a store that stops answering mid-run
def test_a_run_the_store_cannot_end_keeps_its_own_error_and_says_so(tmp_path, monkeypatch, capsys):
    import pipelines.train as train
    from recommender.cli import main

    def store_gone(*args, **kwargs):
        raise ConnectionError("the tracking server stopped answering")

    def end_refused(status="FINISHED"):
        real_end_run(status=status)  # MLflow forgets the run, as it does before the request
        raise ConnectionError("runs/update: connection refused")

    real_end_run = mlflow.end_run
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(train, "log_stage", store_gone)
    monkeypatch.setattr(mlflow, "end_run", end_refused)
    # A smaller cohort than the champion's (800 rows, not 3,000): the run need only reach the
    # store, and everything before it (fit, evaluation, gate, card) scales with the rows.
    small = small_config(tmp_path, data={"n": 800})
    code = main(["train", "--quiet", "--seed", "1", *small])
    said = capsys.readouterr().err
    assert code == 1
    assert "the tracking server stopped answering" in said  # the run's own error, not the end's
    assert "could not be marked FAILED (ConnectionError: runs/update" in said
    assert "still shows it RUNNING; nothing was registered" in said
    assert mlflow.active_run() is None
