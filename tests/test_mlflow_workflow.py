"""A data scientist's MLflow workflow: train against a real tracking server, load the champion
with MLflow's own API, and what that API refuses.

The registered pyfunc is an edge of its own (a notebook, `mlflow models serve`): MLflow's schema
checks only types, so the model checks the data contract's values itself, as `recommender
score` does, and a refusal still gives the crisis resources of the rows flagged for them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from service_fixtures import champion_home  # noqa: F401 (fixtures)

from pipelines.score import safety_rules
from pipelines.train import load_config
from recommender.cohort import PROFILE_COLUMNS
from recommender.errors import InputError
from recommender.simulate import load_scenario, simulate_cohort
from recommender.uplift import MAX_RANDOM_STATE, UpliftModel

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
    saved = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{champion_home / 'mlflow.db'}")
    try:
        yield mlflow.pyfunc.load_model(CHAMPION)
    finally:
        mlflow.set_tracking_uri(saved)


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
    rows.loc[0, ["age", "ee", "dp", "pa"]] = [18, 54, 30, 0]
    rows.loc[1, ["age", "ee", "dp", "pa"]] = [90, 0, 0, 48]
    assert champion.predict(rows)["recommended"].notna().all()


# ------------------------------------------------------------------------- the training seed
def test_a_seed_past_what_the_learners_take_is_refused_by_name():
    with pytest.raises(InputError, match=rf"seed = {2**40} .* from 0 to {MAX_RANDOM_STATE}"):
        load_config(overrides={"seed": 2**40})
    assert load_config(overrides={"seed": MAX_RANDOM_STATE})["seed"] == MAX_RANDOM_STATE


@pytest.mark.parametrize("seed", [-1, MAX_RANDOM_STATE + 1, True])
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
