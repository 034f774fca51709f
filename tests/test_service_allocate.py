"""POST /allocate: a cohort planned under a budget and capacities, with /recommend's safety, its
edge checks and its audit trail. The stand-in model's effects are known, so the best plan can be
worked out by hand."""

from __future__ import annotations

import csv
import io
import json

import pytest

from recommender.service._allocation import AllocationPlan
from service_fixtures import (  # noqa: F401  (fixtures)
    LinearModel,
    asgi_client,
    auth,
    profile,
    service_home,
)


@pytest.fixture
def linear_model():
    # Served by asgi_client. Coaching (US$1,400, 40 places, not for nurses) avoids 0.1 EE point
    # per point of exhaustion, +-4; mindfulness (US$300, groups of 1-25) avoids 2 +-1.
    return LinearModel(
        base={"coaching": 0.0, "mindfulness": -2.0},
        weights={"coaching": {"ee": -0.1}},
        half_width={"coaching": 4.0, "mindfulness": 1.0},
    )


def cohort(*rows) -> list[dict]:
    return [profile(person_id=f"p{i}", **row) for i, row in enumerate(rows)]


def plan(client, role="program", **body):
    return client.post("/allocate", json=body, headers=auth(role))


def test_the_best_plan_under_the_budget(asgi_client):
    # Coaching would avoid 1.5, 3 and 2.5 points. With US$2,000, coaching for the second
    # person and mindfulness for the others avoids 3 + 2 + 2 = 7 points; coaching for the third
    # instead 6.5, mindfulness for all 6, and coaching for two costs 2,800.
    response = plan(asgi_client, profiles=cohort({"ee": 15}, {"ee": 30}, {"ee": 25}), budget=2000)
    assert response.status_code == 200, response.text
    body = response.json()
    AllocationPlan.model_validate(body)  # the OpenAPI document describes what is sent
    assert [a["allocated"] for a in body["assignments"]] == [
        "mindfulness",
        "coaching",
        "mindfulness",
    ]
    # Without limits: the best arm for each (mindfulness's -2 beats coaching's -1.5 at ee 15).
    assert [a["recommended"] for a in body["assignments"]] == [
        "mindfulness",
        "coaching",
        "coaching",
    ]
    second = body["assignments"][1]
    assert (second["ee_effect"], second["ee_lower"], second["ee_upper"]) == (-3.0, -7.0, 1.0)
    assert (body["status"], body["budget"], body["total_cost"]) == ("optimal", 2000.0, 2000.0)
    assert body["expected_points_avoided"] == pytest.approx(7.0)
    arms = {a["arm"]: a for a in body["arms"]}
    assert (arms["coaching"]["people"], arms["coaching"]["cost"]) == (1, 1400.0)
    assert (arms["mindfulness"]["people"], arms["mindfulness"]["cost"]) == (2, 600.0)
    # The catalog's costs are assumptions, defaults to replace: the plan says so per arm.
    from recommender.catalog import load_catalog

    catalog = load_catalog()
    assert {a: arms[a]["cost_is_assumption"] for a in arms} == {
        a: catalog.arm(a).cost_is_assumption for a in arms
    }
    assert arms["coaching"]["cost_is_assumption"] is True
    assert "not a diagnosis" in body["disclaimer"]
    assert "p1" not in response.text  # ids are never echoed; answers are in the order sent


def test_capacity_eligibility_and_offered_bound_the_plan(asgi_client):
    rows = cohort(
        {"ee": 40}, {"ee": 40, "role": "nurse"}, {"ee": 40, "offered": ["mindfulness"]}, {"ee": 40}
    )
    free = plan(asgi_client, profiles=rows).json()
    assert [a["allocated"] for a in free["assignments"]] == [
        "coaching",
        "mindfulness",
        "mindfulness",
        "coaching",
    ]
    capped = plan(asgi_client, profiles=rows, capacity={"coaching": 1}).json()
    assert [a["allocated"] for a in capped["assignments"]].count("coaching") == 1
    assert {a["arm"]: a["capacity"] for a in capped["arms"]}["coaching"] == 1
    closed = plan(asgi_client, profiles=rows, capacity={"coaching": 0, "mindfulness": 0}).json()
    assert {a["allocated"] for a in closed["assignments"]} == {"none"}
    assert closed["total_cost"] == 0 and closed["assignments"][0]["ee_effect"] == 0.0


def test_confident_only_gives_an_arm_only_when_its_interval_excludes_no_benefit(asgi_client):
    # At ee 30 coaching (-3 +- 4) is expected to help most, but its interval includes harm;
    # mindfulness (-2 +- 1) surely helps.
    rows = cohort({"ee": 30})
    assert plan(asgi_client, profiles=rows).json()["assignments"][0]["allocated"] == "coaching"
    body = plan(asgi_client, profiles=rows, confident_only=True).json()
    assert body["assignments"][0]["allocated"] == "mindfulness"
    assert body["assignments"][0]["recommended"] == "coaching"


def test_crisis_gets_resources_only_and_severe_profiles_a_referral(asgi_client, linear_model):
    rows = cohort({"ee": 20, "crisis_risk": True}, {"ee": 50, "dp": 20}, {"ee": 20})
    response = plan(asgi_client, profiles=rows, budget=10_000)
    assert response.status_code == 200, response.text
    crisis, severe, routine = response.json()["assignments"]
    assert crisis["allocated"] is None and crisis["recommended"] is None
    assert crisis["ee_effect"] is None and crisis["safety"]["level"] == "crisis"
    assert any("988" in r["contact"] for r in crisis["safety"]["resources"])
    assert severe["safety"]["level"] == "referral" and "confidential" in severe["safety"]["notice"]
    assert severe["allocated"] == "coaching"
    assert routine["safety"] == {
        "level": "routine",
        "notice": None,
        "rule": None,
        "resources": [],
        "referral": None,
        "recorded_in": "audit log",
    }
    assert linear_model.calls == [2]  # the crisis row never reached the model


def test_a_cohort_of_crisis_flags_only_is_answered_without_the_model(asgi_client, linear_model):
    body = plan(asgi_client, profiles=cohort({"crisis_risk": True})).json()
    assert body["assignments"][0]["safety"]["level"] == "crisis"
    assert body["total_cost"] == 0 and {a["people"] for a in body["arms"]} == {0}
    assert linear_model.calls == []


@pytest.mark.parametrize(
    "body, status, field, accepted",
    [
        ({"budget": -1}, 422, "budget", "a number >= 0"),
        ({"budget": "lots"}, 422, "budget", "a number >= 0"),
        ({"budget": True}, 422, "budget", "a number >= 0"),
        ({"capacity": {"yoga": 3}}, 422, "capacity.yoga", "an intervention of catalog"),
        ({"capacity": {"none": 3}}, 422, "capacity.none", "coaching, mindfulness"),
        ({"capacity": {"coaching": -1}}, 422, "capacity.coaching", "whole numbers of places >= 0"),
        ({"capacity": {"coaching": 2.5}}, 422, "capacity.coaching", "whole numbers of places >= 0"),
        ({"capacity": {"peer_group": 3}}, 422, "capacity.peer_group", "at least 6"),
        # Too big for numpy once (a 500); now beyond the stated bound.
        ({"capacity": {"coaching": 10**30}}, 422, "capacity.coaching", "at most 1,000,000"),
        ({"capacity": {"coaching": 2**64}}, 422, "capacity.coaching", "at most 1,000,000"),
        ({"capacity": {"coaching": 1_000_001}}, 422, "capacity.coaching", "at most 1,000,000"),
        ({"confident_only": "yes"}, 422, "confident_only", "true or false"),
        ({"confident_only": 1}, 422, "confident_only", "true or false"),
        ({"cost": {"coaching": 900}}, 422, "cost", "no such field; known fields: profiles, budget"),
        ({"profiles": []}, 422, "profiles", "a list of 1 to 10,000 profile objects"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(asgi_client, body, status, field, accepted):
    response = plan(asgi_client, **{"profiles": cohort({}), **body})
    assert response.status_code == status, response.text
    problems = {p["field"]: p for p in response.json()["problems"]}
    assert accepted in problems[field]["accepted"], problems
    assert field in response.json()["error"]


def test_no_plan_while_an_entry_is_invalid_and_every_bad_entry_is_named(asgi_client, linear_model):
    rows = cohort({}, {"age": 5}, {}, {"role": "surgeon"})
    response = plan(asgi_client, profiles=rows)
    assert response.status_code == 422
    assert "2 of 4 profiles are not accepted" in response.json()["error"]
    fields = [p["field"] for p in response.json()["problems"]]
    assert fields == ["profiles[1].age", "profiles[3].role"]
    rows = cohort({}, {}) + [profile(person_id="p0")]
    duplicate = plan(asgi_client, profiles=rows).json()["problems"]
    assert duplicate[0]["field"] == "profiles[2].person_id"
    assert "profiles[0]" in duplicate[0]["accepted"]
    assert linear_model.calls == []


def test_a_duplicate_person_id_is_named_with_the_other_invalid_entries(asgi_client, linear_model):
    rows = cohort({}, {"age": 5}, {}) + [profile(person_id="p0")]
    response = plan(asgi_client, profiles=rows)
    assert response.status_code == 422
    assert "2 of 4 profiles are not accepted" in response.json()["error"]
    problems = response.json()["problems"]
    assert [p["field"] for p in problems] == ["profiles[1].age", "profiles[3].person_id"]
    assert problems[1]["message"] == "duplicate person_id"
    assert linear_model.calls == []


def test_the_largest_capacity_stated_is_accepted(asgi_client):
    response = plan(asgi_client, profiles=cohort({"ee": 40}), capacity={"coaching": 1_000_000})
    assert response.status_code == 200, response.text
    assert {a["arm"]: a["capacity"] for a in response.json()["arms"]}["coaching"] == 1_000_000


def test_a_plan_the_solver_cannot_find_is_a_clear_422_and_nothing_is_logged(
    asgi_client, monkeypatch
):
    from recommender.errors import InputError
    from recommender.policy import _planning

    def no_plan(*args, **kwargs):
        raise InputError("no allocation satisfies the constraints (The problem is infeasible.)")

    monkeypatch.setattr(_planning, "allocate", no_plan)
    response = plan(asgi_client, profiles=cohort({}))
    assert response.status_code == 422
    assert response.json()["error"].startswith("no plan was found for this cohort")
    assert "nothing was allocated" in response.json()["error"]
    export = asgi_client.get("/audit/export", headers=auth("auditor"))
    assert export.text.strip().count("\n") == 0  # the header only


def test_a_solver_out_of_time_before_any_plan_is_a_503_to_retry_and_nothing_is_logged(
    asgi_client, monkeypatch
):
    # Usual care for everyone always fits the constraints: running out of time is not the
    # caller's fault. HiGHS's answer when it stops before any plan is stood in for, so the
    # test does not depend on how fast this machine is.
    import scipy.optimize
    from scipy.optimize import OptimizeResult

    def out_of_time(*args, **kwargs):
        return OptimizeResult(
            x=None,
            status=1,
            success=False,
            fun=None,
            mip_gap=None,
            message="Time limit reached. (HiGHS Status 13: msg)",
        )

    monkeypatch.setattr(scipy.optimize, "milp", out_of_time)
    response = plan(asgi_client, profiles=cohort({"ee": 30}, {"ee": 20}))
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert "ran out of time" in error and "retry" in error and "split the cohort" in error
    assert response.json()["problems"] == []
    export = asgi_client.get("/audit/export", headers=auth("auditor"))
    assert export.text.strip().count("\n") == 0  # the header only


def test_an_audit_log_that_cannot_be_written_is_a_503_and_no_plan(asgi_client, monkeypatch):
    from recommender.service import AuditLog

    def unwritable(self, records, **_):
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(AuditLog, "append", unwritable)
        response = plan(asgi_client, profiles=cohort({"ee": 30}, {"crisis_risk": True}))
    assert response.status_code == 503, response.text
    assert "audit log could not be written" in response.json()["error"]
    assert "no plan was given" in response.json()["error"]
    assert "plan_id" not in response.json() and "assignments" not in response.json()
    # ...but the crisis flag still gets its resources, recorded in the service log instead
    (crisis,) = response.json()["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["level"] == "crisis"
    assert crisis["answer"]["safety"]["recorded_in"].startswith("service log")
    export = asgi_client.get("/audit/export", headers=auth("auditor"))
    assert export.status_code == 200 and export.text.strip().count("\n") == 0


def test_every_person_of_a_plan_is_audited_with_a_hashed_id(asgi_client):
    body = plan(
        asgi_client, profiles=cohort({"ee": 30}, {"ee": 20, "crisis_risk": True}), budget=500
    ).json()
    export = asgi_client.get("/audit/export", headers=auth("auditor")).text
    rows = list(csv.DictReader(io.StringIO(export)))
    # (crisis lines are recorded first, before any planning: they never wait for the plan)
    by_id = {r["request_id"]: r for r in rows}
    assert len(rows) == 2 and set(by_id) == {a["request_id"] for a in body["assignments"]}
    assert {r["batch_id"] for r in rows} == {body["plan_id"]}
    assert body["plan_id"].startswith("plan-")
    lines = [by_id[a["request_id"]] for a in body["assignments"]]
    assert [r["recommended"] for r in lines] == ["mindfulness", ""]
    assert [r["safety_level"] for r in lines] == ["routine", "crisis"]
    assert "p0" not in export and "p1" not in export


def test_allocate_is_for_programs_and_scientists(asgi_client):
    body = {"profiles": cohort({})}
    assert asgi_client.post("/allocate", json=body).status_code == 401
    assert plan(asgi_client, "auditor", **body).status_code == 403
    assert plan(asgi_client, "scientist", **body).status_code == 200


def test_the_openapi_document_describes_allocate(asgi_client):
    spec = asgi_client.get("/docs.json").json()
    assert "/allocate" in spec["paths"]
    text = json.dumps(spec)
    assert "Money available for the cohort" in text and "Places per intervention" in text


@pytest.fixture
def two_row_limit(service_home, monkeypatch):
    from recommender.paths import config_path

    path = service_home / "serve.yaml"
    path.write_text(
        config_path("serve.yaml").read_text().replace("max_batch_rows: 10000", "max_batch_rows: 2")
    )
    monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(path))


def test_the_cohort_size_limit_comes_from_the_config(two_row_limit, asgi_client):
    response = plan(asgi_client, profiles=cohort({}, {}, {}))
    assert response.status_code == 413
    assert response.json()["problems"][0]["accepted"] == "at most 2 entries"
    assert plan(asgi_client, profiles=cohort({}, {})).status_code == 200


def test_a_served_models_extra_features_are_part_of_each_profile(asgi_client, monkeypatch):
    from recommender.service import service as service_module

    model = LinearModel(extras=[{"name": "night_shifts", "kind": "float"}])
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (model, "9"))
    assert asgi_client.post("/reload", headers=auth("scientist")).status_code == 200
    missing = plan(asgi_client, profiles=cohort({}))
    assert missing.status_code == 422
    assert missing.json()["problems"][0]["field"] == "profiles[0].night_shifts"
    assert plan(asgi_client, profiles=[profile(night_shifts=4.0)]).status_code == 200


def test_the_readme_example_is_answered_as_described(asgi_client):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = re.search(
        r"curl -s -X POST http://127\.0\.0\.1:3000/allocate .*? -d '(.*?)'\n", readme, re.S
    )
    assert example, "the README has no /allocate curl example"
    response = plan(asgi_client, **json.loads(example.group(1)))
    assert response.status_code == 200, response.text
    levels = [a["safety"]["level"] for a in response.json()["assignments"]]
    assert levels == ["routine", "referral", "crisis"]


def test_floors_per_role_are_held_and_the_plan_reports_fairness(asgi_client):
    # US$300 buys one mindfulness place; it avoids 2 points for anyone, so without a floor the
    # nurse need not get it; with {"nurse": 1.0} the nurse does.
    rows = cohort(
        {"role": "physician"},
        {"role": "physician"},
        {"role": "physician"},
        {"role": "nurse", "specialty": "critical_care"},
    )
    held = plan(asgi_client, profiles=rows, budget=300, floors={"nurse": 1.0})
    assert held.status_code == 200, held.text
    body = held.json()
    AllocationPlan.model_validate(body)
    assert body["assignments"][3]["allocated"] == "mindfulness"
    assert sum(a["allocated"] != "none" for a in body["assignments"]) == 1
    attributes = {row["attribute"] for row in body["fairness"]}
    assert attributes == {"role", "gender", "setting"}
    # four people: every group is under the smallest cell, so nothing about them is shown
    assert all(row["suppressed"] and row["share_allocated"] is None for row in body["fairness"])


def test_floors_that_cannot_be_met_are_refused_saying_why(asgi_client):
    rows = cohort({"role": "physician"}, {"role": "physician"})
    response = plan(asgi_client, profiles=rows, budget=300, floors={"physician": 1.0})
    assert response.status_code in (400, 422), response.text
    assert "floors" in response.text and "cannot all be met" in response.text


def test_floors_that_cannot_be_met_are_named_with_what_would_be_accepted(asgi_client):
    # The problems named the field 'body' and accepted nothing: the library's refusals were
    # plain sentences.
    rows = cohort({"role": "physician"}, {"role": "physician"})
    budget = plan(asgi_client, profiles=rows, budget=300, floors={"physician": 1.0})
    (problem,) = budget.json()["problems"]
    assert problem["field"] == "floors.physician" and problem["value"] == 1.0
    assert "lower" in problem["accepted"] and "budget" in problem["accepted"]
    # a nurse offered only an arm nurses cannot take: no arm can reach her
    rows = cohort({"role": "nurse", "specialty": "critical_care", "offered": ["balint_group"]})
    unreachable = plan(asgi_client, profiles=rows, floors={"nurse": 1.0})
    assert unreachable.status_code == 422, unreachable.text
    (problem,) = unreachable.json()["problems"]
    assert problem["field"] == "floors.nurse" and problem["value"] == 1.0
    assert "at most 0" in problem["accepted"]


@pytest.mark.parametrize("floors", [{"nurse": 2}, {"nurse": "half"}])
def test_a_floor_that_is_not_a_share_is_refused(asgi_client, floors):
    response = plan(asgi_client, profiles=cohort({}), floors=floors)
    assert response.status_code == 422, response.text
    assert "floors" in response.json()["error"]


# -- red-team of cohort planning (redplan) --------------------------------------------------------
def _solver_fails(monkeypatch, how):
    import scipy.optimize
    from scipy.optimize import OptimizeResult

    def milp(*args, **kwargs):
        if how == "crash":
            raise RuntimeError("HiGHS crashed")
        status, message = {
            "time": (1, "Time limit reached. (HiGHS Status 13: msg)"),
            "error": (4, "Model error. (HiGHS Status 2: msg)"),
        }[how]
        return OptimizeResult(x=None, status=status, success=False, fun=None, message=message)

    monkeypatch.setattr(scipy.optimize, "milp", milp)


@pytest.mark.parametrize("how, status", [("time", 503), ("error", 422), ("crash", 500)])
def test_a_solver_that_fails_still_answers_the_crisis_flags(asgi_client, monkeypatch, how, status):
    _solver_fails(monkeypatch, how)
    profiles = cohort({"ee": 30}, {"crisis_risk": True, "role": "physician"}, {"ee": 20})
    response = plan(asgi_client, profiles=profiles, budget=5000)
    assert response.status_code == status, response.text
    crisis = response.json()["crisis_results"]
    assert [entry["index"] for entry in crisis] == [1]
    answer = crisis[0]["answer"]
    assert answer["safety"]["level"] == "crisis" and answer["recommended"] is None
    names = [resource["name"] for resource in answer["safety"]["resources"]]
    assert any("988" in name for name in names)
    assert any("Physician Support Line" in name for name in names)


def test_a_plan_of_a_model_recording_no_training_data_says_nothing_of_it(asgi_client):
    response = plan(asgi_client, profiles=cohort({"age": 90}, {"crisis_risk": True}))
    assert response.status_code == 200
    lines = response.json()["assignments"]
    assert [line["outside_training_data"] for line in lines] == [None, None]
    assert [line["note"] for line in lines] == [None, None]
