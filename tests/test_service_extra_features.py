"""A model trained with extra features is served: /recommend and /recommend_batch take exactly
the served model's extra features, check them at the edge, and name what is wrong."""

from __future__ import annotations

import pytest

from recommender.errors import InputError
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    LinearModel,
    asgi_client,
    auth,
    profile,
    recommender_home,
    service_home,
)

NIGHT_SHIFTS = {"name": "night_shifts", "kind": "float"}
UNIT = {"name": "unit", "kind": "category", "categories": ["clinic", "icu", "ward"]}


@pytest.fixture
def linear_model():
    # Served by asgi_client: coaching helps 0.5 EE points more per monthly night shift.
    return LinearModel(
        weights={"coaching": {"night_shifts": -0.5}, "mindfulness": {"unit": -1.0}},
        extras=[NIGHT_SHIFTS, UNIT],
    )


def extra(**changes) -> dict:
    """A valid body for the model above, with changes."""
    return {**profile(night_shifts=6.0, unit="icu"), **changes}


def problems_of(response) -> dict:
    return {p["field"]: p for p in response.json()["problems"]}


def test_the_extra_features_reach_the_model_and_its_explanation(asgi_client):
    response = asgi_client.post("/recommend", json=extra(), headers=auth("program"))
    assert response.status_code == 200, response.text
    ranking = {a["arm"]: a for a in response.json()["ranking"]}
    assert ranking["coaching"]["ee_effect"] == pytest.approx(-2.0 - 0.5 * 6)
    assert ranking["mindfulness"]["ee_effect"] == pytest.approx(-1.0)  # unit is not clinic
    reasons = response.json()["explanation"]["versus_usual_care"]
    assert reasons[0] == {"feature": "night_shifts", "value": 6.0, "points": -3.0}
    fewer = asgi_client.post("/recommend", json=extra(night_shifts=0.0), headers=auth("program"))
    assert {a["arm"]: a["ee_effect"] for a in fewer.json()["ranking"]}["coaching"] == -2.0


@pytest.mark.parametrize(
    "body, field, value, accepted",
    [
        (profile(unit="icu"), "night_shifts", None, "a finite number"),
        (profile(night_shifts=2.0), "unit", None, "one of clinic, icu, ward"),
        (extra(night_shifts="three"), "night_shifts", "three", "a finite number"),
        (extra(night_shifts=True), "night_shifts", True, "a finite number"),
        (extra(unit="er"), "unit", "er", "one of clinic, icu, ward (the values the served model"),
        (extra(unit=3), "unit", 3, "one of clinic, icu, ward"),
        (
            extra(shift_pattern="nights"),
            "shift_pattern",
            "(not shown)",
            "no such field; known fields: person_id, age",
        ),
    ],
)
def test_a_missing_mistyped_or_unknown_field_is_a_422_naming_it(
    asgi_client, body, field, value, accepted
):
    response = asgi_client.post("/recommend", json=body, headers=auth("program"))
    assert response.status_code == 422, response.text
    problem = problems_of(response)[field]
    assert problem["value"] == value
    assert accepted in problem["accepted"]
    assert field in response.json()["error"]


def test_an_unknown_field_is_refused_with_the_served_models_fields_listed(asgi_client):
    response = asgi_client.post("/recommend", json=extra(email="x@y.org"), headers=auth("program"))
    assert response.status_code == 422
    accepted = problems_of(response)["email"]["accepted"]
    assert accepted.endswith("offered, night_shifts, unit")


def test_a_batch_reports_the_row_missing_an_extra_feature_and_answers_the_others(
    asgi_client, linear_model
):
    rows = [extra(person_id=f"p{i}") for i in range(4)]
    del rows[1]["unit"]
    rows[2]["night_shifts"] = "many"
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["answered"], body["rejected"], body["result_index"]) == (2, 2, [0, 3])
    errors = {e["index"]: e for e in body["errors"]}
    assert errors[1]["problems"][0]["field"] == "profiles[1].unit"
    assert "one of clinic, icu, ward" in errors[1]["problems"][0]["accepted"]
    assert errors[2]["problems"][0]["field"] == "profiles[2].night_shifts"
    assert linear_model.calls == [2]


def test_what_is_accepted_follows_the_model_reload_serves(asgi_client, monkeypatch):
    from recommender.service import service as service_module

    plain = LinearModel()
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (plain, "8"))
    assert asgi_client.post("/reload", headers=auth("scientist")).status_code == 200
    refused = asgi_client.post("/recommend", json=extra(), headers=auth("program"))
    assert refused.status_code == 422
    assert set(problems_of(refused)) == {"night_shifts", "unit"}
    answered = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert answered.status_code == 200 and answered.json()["model_version"] == "8"


def test_an_extra_feature_named_like_a_request_field_cannot_be_served():
    from recommender.catalog import load_catalog
    from recommender.service import AuditLog, RecommendationEngine, load_serve_config

    with pytest.raises(InputError, match="offered"):
        RecommendationEngine(
            LinearModel(extras=[{"name": "offered", "kind": "float"}]),
            "1",
            catalog=load_catalog(),
            config=load_serve_config(),
            audit=AuditLog("sqlite://", salt="s"),
        )


# -- a real model, trained with extra features --------------------------------------------------

_TRAINED: dict = {}


@pytest.fixture(scope="module")
def trained_with_extras(tmp_path_factory):
    """A champion trained (small and fast) on a cohort file with two extra features."""
    if "model" not in _TRAINED:
        import numpy as np

        from pipelines.train import run_training
        from recommender.registry import load_champion
        from recommender.simulate import simulate_cohort

        home = tmp_path_factory.mktemp("extra-features")
        cohort = simulate_cohort("default", 3000, seed=3, assignment="rct")
        rng = np.random.default_rng(3)
        cohort["night_shifts"] = rng.integers(0, 9, len(cohort)).astype(float)
        cohort["unit"] = rng.choice(["clinic", "icu", "ward"], len(cohort))
        path = home / "cohort.csv"
        cohort.to_csv(path, index=False)
        with recommender_home(home):
            run_training(
                data=path,
                reason="service extra-feature test",
                overrides={
                    "learner": {"learner": "t", "n_folds": 2},
                    "evaluation": {"n_folds": 2},
                    "extra_features": ["night_shifts", "unit"],
                },
            )
            _TRAINED["model"] = load_champion()
    return _TRAINED["model"]


@pytest.mark.slow
def test_a_model_trained_with_extra_features_is_served_and_answers(
    asgi_client, trained_with_extras, monkeypatch
):
    from recommender.service import service as service_module

    model, version = trained_with_extras
    assert {"night_shifts", "unit"} <= set(model.feature_names)
    monkeypatch.setattr(service_module, "load_champion_model", lambda: trained_with_extras)
    reload = asgi_client.post("/reload", headers=auth("scientist"))
    assert reload.status_code == 200 and reload.json()["model_version"] == version

    answer = asgi_client.post("/recommend", json=extra(), headers=auth("program"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["recommended"] in model.arms and answer.json()["ranking"]
    batch = asgi_client.post(
        "/recommend_batch",
        headers=auth("program"),
        json={
            "profiles": [
                extra(person_id="a"),
                profile(person_id="b"),
                extra(person_id="c", unit="ward"),
            ]
        },
    )
    assert (batch.json()["answered"], batch.json()["rejected"]) == (2, 1)
    missing = batch.json()["errors"][0]["problems"]
    assert {p["field"] for p in missing} == {"profiles[1].night_shifts", "profiles[1].unit"}
    unseen = asgi_client.post("/recommend", json=extra(unit="er"), headers=auth("program"))
    assert unseen.status_code == 422
    assert problems_of(unseen)["unit"]["accepted"].startswith("one of clinic, icu, ward")


# -- a crisis flag never reaches the model, so it never needs the model's inputs ----------------


@pytest.mark.parametrize(
    "body",
    [
        profile(crisis_risk=True),  # no extra feature at all
        profile(crisis_risk=True, unit="icu"),  # some of them
        extra(crisis_risk=True, unit="er", night_shifts="many"),  # values the model would refuse
    ],
    ids=["none", "some", "unusable"],
)
def test_a_crisis_flag_gets_crisis_resources_whatever_its_extra_features(
    asgi_client, linear_model, body
):
    response = asgi_client.post("/recommend", json=body, headers=auth("program"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["safety"]["level"] == "crisis" and answer["safety"]["resources"]
    assert answer["ranking"] == [] and answer["recommended"] is None
    assert linear_model.calls == []


def test_a_crisis_flag_with_invalid_fields_gets_resources_and_names_what_was_ignored(asgi_client):
    # Issue 9: an invalid other field must not turn a crisis flag into a 422 without resources.
    bad = asgi_client.post(
        "/recommend", json=profile(crisis_risk=True, age=5), headers=auth("program")
    )
    assert bad.status_code == 200, bad.text
    assert bad.json()["safety"]["level"] == "crisis" and bad.json()["safety"]["resources"]
    assert {p["field"] for p in bad.json()["ignored"]} == {"age"}  # not the extra features
    unknown = asgi_client.post(
        "/recommend", json=profile(crisis_risk=True, email="x@y.org"), headers=auth("program")
    )
    assert unknown.status_code == 200 and unknown.json()["safety"]["level"] == "crisis"
    assert "email" in {p["field"] for p in unknown.json()["ignored"]}
    assert "x@y.org" not in asgi_client.get("/audit/export", headers=auth("auditor")).text
    unflagged = asgi_client.post(
        "/recommend", json=profile(crisis_risk=False), headers=auth("program")
    )
    assert unflagged.status_code == 422
    assert set(problems_of(unflagged)) == {"night_shifts", "unit"}


def test_a_batch_answers_crisis_flags_without_extra_features_and_refuses_scored_rows(
    asgi_client, linear_model
):
    rows = [profile(person_id="c", crisis_risk=True), profile(person_id="s"), extra(person_id="e")]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["answered"], body["rejected"], body["result_index"]) == (2, 1, [0, 2])
    assert body["results"][0]["safety"]["level"] == "crisis"
    assert {p["field"] for p in body["errors"][0]["problems"]} == {
        "profiles[1].night_shifts",
        "profiles[1].unit",
    }
    assert linear_model.calls == [1]  # only the row with its extra features was scored


def test_an_allocation_plans_around_crisis_flags_without_extra_features(asgi_client, linear_model):
    rows = [extra(person_id="e"), profile(person_id="c", crisis_risk=True, unit="er")]
    response = asgi_client.post("/allocate", json={"profiles": rows}, headers=auth("program"))
    assert response.status_code == 200, response.text
    scored, crisis = response.json()["assignments"]
    assert scored["allocated"] == "coaching"
    assert crisis["allocated"] is None and crisis["safety"]["level"] == "crisis"
    assert linear_model.calls == [1]
    missing = asgi_client.post(
        "/allocate", json={"profiles": [profile(person_id="s")]}, headers=auth("program")
    )
    assert missing.status_code == 422
    assert {p["field"] for p in missing.json()["problems"]} == {
        "profiles[0].night_shifts",
        "profiles[0].unit",
    }


def test_reloading_a_champion_that_cannot_be_served_says_why(asgi_client, monkeypatch):
    from recommender.service import service as service_module

    clash = LinearModel(extras=[{"name": "offered", "kind": "float"}])
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (clash, "10"))
    answer = asgi_client.post("/reload", headers=auth("scientist"))
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert "no champion to load" not in error
    assert "version 10" in error and "cannot be served" in error and "offered" in error
    assert "still serving version 7" in error


def test_a_crisis_flag_with_extra_features_does_not_call_them_ignored(asgi_client):
    answer = asgi_client.post(
        "/recommend", json=extra(crisis_risk=True, age=5), headers=auth("program")
    ).json()
    assert answer["safety"]["level"] == "crisis"
    assert [p["field"] for p in answer["ignored"]] == ["age"]
