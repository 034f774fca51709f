"""MBI item-level answers are neither asked for nor stored (red-team redprivacy).

The MBI is copyrighted: the project uses the subscale scores ee, dp and pa only. Found on main:
a training config could name item-level columns (``ee_item_1``) as extra features, so a model
learned from them, the service then required them in every request and stored them in the
audit store's assignment profiles; and the service refused item fields sent by a program only
as "no such field", without saying that the subscale sums are what it takes.
"""

from __future__ import annotations

import pytest

from pipelines.train import config_from_mapping
from recommender.cohort import looks_like_mbi_item
from recommender.errors import InputError
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)


@pytest.mark.parametrize(
    "name", ["ee_item_1", "EE3", "dp_q2", "pa-item-8", "mbi_1", "MBI-HSS-Q22", "mbi_items", "items"]
)
def test_item_like_names_are_recognised(name):
    assert looks_like_mbi_item(name)


@pytest.mark.parametrize("name", ["ee", "dp", "pa", "unit", "team_size", "night_shifts", "ee_sd"])
def test_other_names_are_not(name):
    assert not looks_like_mbi_item(name)


def test_a_training_config_naming_item_columns_as_extra_features_is_refused():
    with pytest.raises(InputError) as refused:
        config_from_mapping({"extra_features": ["unit", "ee_item_1", "mbi_q4"]})
    message = str(refused.value)
    assert "extra_features" in message and "'ee_item_1'" in message and "'mbi_q4'" in message
    assert "'unit'" not in message
    assert "subscale" in message and "ee, dp and pa" in message
    config_from_mapping({"extra_features": ["unit"]})  # other extra features are taken


def test_the_service_refuses_item_answers_saying_what_it_takes(asgi_client):
    sent = profile(ee_item_1=4, mbi_q3=2)
    answer = asgi_client.post("/recommend", json=sent, headers=auth("program"))
    assert answer.status_code == 422, answer.text
    problems = {p["field"]: p for p in answer.json()["problems"]}
    assert set(problems) == {"ee_item_1", "mbi_q3"}
    for problem in problems.values():
        assert "MBI item" in problem["message"]
        assert "subscale scores ee, dp and pa" in problem["accepted"]
    assert "MBI item" in answer.json()["error"]
    batch = asgi_client.post(
        "/recommend_batch",
        json={"profiles": [profile(person_id="a"), profile(person_id="b", dp_item_2=1)]},
        headers=auth("program"),
    )
    assert batch.status_code == 200, batch.text
    (refused,) = batch.json()["errors"]
    assert "MBI item" in str(refused) and "subscale scores" in str(refused)


def test_outcomes_refuse_item_answers_saying_what_they_take(asgi_client):
    assert asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    outcome = {
        "person_id": PROFILE["person_id"],
        "measured_at": "2099-01-01",
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 5,
        "pa_followup": 30,
        "ee_followup_item_1": 3,
    }
    answer = asgi_client.post("/outcomes", json={"outcomes": [outcome]}, headers=auth("program"))
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["field"] == "outcomes[0].ee_followup_item_1"
    assert "MBI item" in problem["message"] and "subscale" in problem["accepted"]
