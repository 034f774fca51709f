"""An impossible profile ("30 years old, 40 years in practice") is neither simulated nor served.

The data contract's rule across two fields (recommender.cohort.PRACTICE_START_AGE: practice
begins at 16 at the earliest, so years_in_practice <= age - 16): the simulator draws no one
near it (age_at_entry has a per-role minimum, the normal draw reflected above it), and every
edge refuses it naming both fields, their values, the row and what is accepted: a request, a
batch entry, a cohort table, the CLI's validate. A crisis flag still gets its resources.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from recommender.cli import main
from recommender.cohort import PRACTICE_START_AGE, validate_cohort, write_cohort
from recommender.errors import InputError
from recommender.paths import config_path
from recommender.simulate import load_scenario, scenario_names, simulate_cohort
from service_fixtures import (  # noqa: F401  (fixtures)
    _app,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)
from test_cohort_helpers import clean_cohort

IMPOSSIBLE = {"age": 30, "years_in_practice": 40.0}
ACCEPTED = f"years_in_practice at most age - {PRACTICE_START_AGE}"


# -- the simulator -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", scenario_names())
@pytest.mark.parametrize("seed", [7, 2024])
def test_no_simulated_person_began_practice_before_16_with_margin(name, seed):
    cohort = simulate_cohort(name, 20_000, seed=seed)
    began = cohort["age"] - cohort["years_in_practice"]
    # Before: a nurse began at 9.7 and 1 % of nurses before 15.4 (default, seed 7).
    assert began.min() >= PRACTICE_START_AGE + 3, began.min()
    minimum = {"physician": 26, "resident": 23, "nurse": 20, "app": 23}
    for role, group in began.groupby(cohort["role"]):
        assert group.min() >= minimum[role] - 0.5, (role, group.min())  # whole ages round
    report = validate_cohort(cohort, training=True)
    assert not [p for p in report.problems if p.rule == "practice_too_early"]


@pytest.fixture(scope="module")
def default_raw() -> dict:
    return yaml.safe_load(config_path("scenarios/default.yaml").read_text())


def _with_minimum(raw: dict, role: str, value) -> dict:
    raw = copy.deepcopy(raw)
    entry = raw["population"]["age_at_entry"]["value"][role]
    if value is None:
        del entry["min"]
    else:
        entry["min"] = value
    return raw


@pytest.mark.parametrize(
    "value, words",
    [
        (None, "field 'population.age_at_entry.nurse.min' is missing"),
        (26, "field 'population.age_at_entry.nurse.min' must not exceed mean (25), got 26"),
        (16, "field 'population.age_at_entry.nurse.min' must be at least 17, got 16"),
        ("20", "field 'population.age_at_entry.nurse.min' must be a finite number, got '20'"),
    ],
)
def test_a_scenario_minimum_is_checked_like_every_parameter(default_raw, value, words):
    with pytest.raises(InputError) as caught:
        load_scenario(_with_minimum(default_raw, "nurse", value))
    assert words in str(caught.value), str(caught.value)


def test_the_minimum_reflects_the_draw_and_leaves_the_rest_of_the_stream_alone(default_raw):
    # Minima of 17 reflect almost no one; the shipped ones reflect a tenth of the nurses. A
    # redraw would shift every later draw (hours, scores, arms); reflection shifts none.
    raw = copy.deepcopy(default_raw)
    for entry in raw["population"]["age_at_entry"]["value"].values():
        entry["min"] = 17
    low = simulate_cohort(load_scenario(raw), 20_000, seed=7)
    shipped = simulate_cohort("default", 20_000, seed=7)
    unchanged = [c for c in shipped.columns if c != "age"]
    pd.testing.assert_frame_equal(low[unchanged], shipped[unchanged])
    moved = low["age"] != shipped["age"]
    assert 0.02 < moved.mean() < 0.1 and (shipped["age"] >= low["age"]).all()


# -- a cohort table and the CLI ----------------------------------------------------------------
def test_a_cohort_row_that_began_practice_before_16_is_refused_naming_both_fields():
    table = clean_cohort(240, training=False)
    table.loc[3, ["age", "years_in_practice"]] = [30, 40.0]
    table.loc[4, ["age", "years_in_practice"]] = [30, 14.0]  # began at 16: accepted
    table.loc[5, ["age", "years_in_practice"]] = [17, 0.0]  # age refused on its own, once
    (problem,) = [p for p in validate_cohort(table).problems if p.rule == "practice_too_early"]
    assert (problem.row, problem.column, problem.value) == (3, "years_in_practice", 40.0)
    assert problem.person_id == table.loc[3, "person_id"]
    message = problem.message
    assert message.startswith(
        f"row 3 (person {table.loc[3, 'person_id']}), column years_in_practice"
    )
    assert "years_in_practice 40 with age 30: practice would have begun at age -10" in message
    assert "at most 14 at age 30" in message and f"accepted: {ACCEPTED}" in message
    assert [p.rule for p in validate_cohort(table).problems if p.row == 5] == ["range"]


def test_the_cli_refuses_the_file_and_says_why(tmp_path, capsys):
    table = clean_cohort(240, training=False)
    table.loc[7, ["age", "years_in_practice"]] = [30, 40.0]
    path = write_cohort(table, tmp_path / "cohort.csv")
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "years_in_practice [practice_too_early]" in out, out
    assert "age 30" in out and ACCEPTED in out


# -- the service -------------------------------------------------------------------------------
def test_a_request_that_began_practice_before_16_is_refused_like_an_age_out_of_range(
    asgi_client, linear_model
):
    response = asgi_client.post("/recommend", json=profile(**IMPOSSIBLE), headers=auth("program"))
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "years_in_practice" and problem["value"] == 40.0
    assert problem["accepted"].startswith(ACCEPTED)
    assert "years_in_practice 40 with age 30" in problem["message"]
    assert linear_model.calls == []
    fits = asgi_client.post(
        "/recommend", json=profile(age=30, years_in_practice=14.0), headers=auth("program")
    )
    assert fits.status_code == 200, fits.text


def test_a_batch_names_the_entry(asgi_client, linear_model):
    rows = [profile(person_id="ok"), profile(person_id="bad", **IMPOSSIBLE)]
    body = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    ).json()
    assert body["result_index"] == [0] and [e["index"] for e in body["errors"]] == [1]
    (problem,) = body["errors"][0]["problems"]
    assert problem["field"] == "profiles[1].years_in_practice"
    assert problem["accepted"].startswith(ACCEPTED) and "age 30" in problem["message"]


def test_a_crisis_flag_with_an_impossible_profile_still_gets_its_resources(
    asgi_client, linear_model
):
    answer = asgi_client.post(
        "/recommend", json=profile(crisis_risk=True, **IMPOSSIBLE), headers=auth("program")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["safety"]["level"] == "crisis" and body["ranking"] == []
    assert [p["field"] for p in body["ignored"]] == ["years_in_practice"]
    rows = [profile(person_id="c", crisis_risk=True, **IMPOSSIBLE), profile(person_id="ok")]
    batch = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    ).json()
    assert batch["result_index"] == [0, 1] and batch["errors"] == []
    assert batch["results"][0]["safety"]["level"] == "crisis"
    assert [p["field"] for p in batch["results"][0]["ignored"]] == ["profiles[0].years_in_practice"]
    plan = asgi_client.post(
        "/allocate",
        json={"profiles": [profile(person_id="a"), profile(person_id="b", **IMPOSSIBLE)]},
        headers=auth("program"),
    )
    assert plan.status_code == 422
    assert [p["field"] for p in plan.json()["problems"]] == ["profiles[1].years_in_practice"]
    assert linear_model.calls == [1]  # the batch's one valid row; crisis rows never scored


def test_the_public_schema_says_it():
    from recommender.service._requests import ProfileRequest

    description = ProfileRequest.model_json_schema()["properties"]["years_in_practice"]
    assert "at most age - 16" in description["description"]
    assert np.isclose(PRACTICE_START_AGE, 16)
