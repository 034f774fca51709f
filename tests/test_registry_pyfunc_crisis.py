"""The registered pyfunc model gives a person flagged for crisis risk the crisis resources and
no recommendation, as `recommender score` and the service do: a program scoring through MLflow
(`mlflow.pyfunc.load_model`, `mlflow models serve`) must not be handed an arm for them."""

from __future__ import annotations

import pandas as pd
import pytest
from service_fixtures import champion_home, recommender_home  # noqa: F401 (fixtures)

from pipelines.score import safety_rules
from recommender.cohort import PROFILE_COLUMNS
from recommender.model import JUDGEMENT_COLUMNS
from recommender.policy import SAFETY_COLUMNS
from recommender.simulate import load_scenario, simulate_cohort


@pytest.fixture(scope="module")
def pyfunc(champion_home):  # noqa: F811
    from recommender.registry import load_pyfunc

    with recommender_home(champion_home):
        yield load_pyfunc("models:/burnout-recommender/1")


@pytest.fixture(scope="module")
def profiles():
    frame = simulate_cohort(load_scenario("default"), 12, seed=5)[list(PROFILE_COLUMNS)]
    for column in frame.columns:  # plain types, as a program's export has them
        if isinstance(frame[column].dtype, pd.CategoricalDtype) or column == "person_id":
            frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)


def crisis_resource_names():
    return [resource.name for resource in safety_rules().crisis_resources]


@pytest.mark.parametrize(
    "flags",
    [
        [True, False] * 6,
        ["yes", "no"] * 6,
        [1, 0] * 6,
        ["maybe", ""] * 6,  # unreadable: the person gets the resources
    ],
    ids=["booleans", "words", "numbers", "unreadable"],
)
def test_flagged_rows_get_crisis_resources_and_no_arm(pyfunc, profiles, flags):
    rows = profiles.assign(crisis_risk=flags)
    table = pyfunc.predict(rows, params={"contributions": False})
    flagged = table.index % 2 == 0
    assert len(table) == len(rows)
    assert table["person_id"].tolist() == rows["person_id"].tolist()
    assert (table.loc[flagged, "safety_level"] == "crisis").all()
    for text in table.loc[flagged, "referral"]:
        assert any(name in text for name in crisis_resource_names())
    assert table.loc[flagged, "recommended"].isna().all()
    assert table.loc[flagged, list(JUDGEMENT_COLUMNS)].isna().all().all()
    effects = [c for c in table.columns if c.startswith(("effect_", "lower_", "upper_"))]
    assert table.loc[flagged, effects].isna().all().all()
    # the others are scored exactly as without anyone flagged
    alone = pyfunc.predict(
        profiles.loc[~flagged].reset_index(drop=True), params={"contributions": False}
    )
    kept = table.loc[~flagged].reset_index(drop=True)
    assert kept["recommended"].tolist() == alone["recommended"].tolist()
    pd.testing.assert_frame_equal(kept[effects], alone[effects])
    assert (kept["safety_level"] != "crisis").all()


def test_without_the_flag_every_row_is_scored_and_triaged(pyfunc, profiles):
    table = pyfunc.predict(profiles, params={"contributions": False})
    assert list(table.columns[-2:]) == list(SAFETY_COLUMNS)
    assert table["recommended"].notna().all()
    assert (table["safety_level"] != "crisis").all()


def test_a_table_of_flagged_rows_alone_keeps_its_columns(pyfunc, profiles):
    everyone = pyfunc.predict(profiles, params={"contributions": False})
    table = pyfunc.predict(profiles.assign(crisis_risk=True), params={"contributions": False})
    assert list(table.columns) == list(everyone.columns)
    assert (table["safety_level"] == "crisis").all() and table["recommended"].isna().all()
