"""Follow-up scores in: linked by the salted hash, refused clearly, imported idempotently."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.service import (
    AuditLog,
    OutcomeRefused,
    RecommendationEngine,
    load_serve_config,
    logged_cohort,
    record_outcomes,
)
from service_fixtures import (  # noqa: F401
    SALT,
    LinearModel,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)

ARMS = load_catalog().arm_ids


def _served(audit, n=5):
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    rows = [engine.check_row(profile(person_id=f"p-{i}")) for i in range(n)]
    return engine.recommend(rows, caller_role="program")


def _outcome(i, **changes):
    later = datetime.now(timezone.utc).isoformat()
    return {
        "person_id": f"p-{i}",
        "measured_at": later,
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 7,
        "pa_followup": 38,
        **changes,
    }


@pytest.fixture
def audit():
    return AuditLog("sqlite://", salt="s")


def test_outcomes_link_to_the_served_recommendation(audit):
    answers = _served(audit)
    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    report = record_outcomes(
        audit, [_outcome(i) for i in range(3)], arms=ARMS, source="api", now=now
    )
    assert report.recorded == 3 and report.linked == [a["request_id"] for a in answers[:3]]
    cohort = logged_cohort(audit)
    assert len(cohort) == 3
    # read in person hash order (the same in every store): compare in the order served
    served = [a["request_id"] for a in answers[:3]]
    cohort = cohort.set_index("request_id").loc[served].reset_index()
    assert list(cohort["intervention"]) == [a["recommended"] for a in answers[:3]]
    assert list(cohort["propensity"]) == [a["assignment"]["probability"] for a in answers[:3]]
    assert (cohort["person_id"] == [audit.person_hash(f"p-{i}") for i in range(3)]).all()
    assert cohort["ee_followup"].tolist() == [20, 20, 20] and "p-0" not in cohort.to_string()


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"ee_followup": 60}, "outcomes[0].ee_followup", "less than or equal to 54"),
        ({"pa_followup": -1}, "outcomes[0].pa_followup", "greater than or equal to 0"),
        ({"dp_followup": 3.5}, "outcomes[0].dp_followup", "integer"),
        ({"arm_taken": "yoga"}, "outcomes[0].arm_taken", "unknown arm"),
        ({"person_id": "never-served"}, "outcomes[0].person_id", "unknown person"),
        ({"measured_at": "2001-01-01"}, "outcomes[0].measured_at", "before its recommendation"),
        ({"measured_at": "2099-01-01T00:00:00Z"}, "outcomes[0].measured_at", "in the future"),
        ({"measured_at": "next week"}, "outcomes[0].measured_at", "datetime"),
        ({"colour": "red"}, "outcomes[0].colour", "Extra inputs"),
    ],
)
def test_bad_outcomes_are_refused_by_field_and_nothing_is_written(audit, change, field, message):
    _served(audit)
    good = _outcome(1)
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [_outcome(0, **change), good], arms=ARMS, source="api")
    assert caught.value.status == 422
    problem = caught.value.problems[0]
    assert problem["field"] == field and message in problem["message"], problem
    assert problem["accepted"]
    assert logged_cohort(audit).empty  # the good row was not written either


def test_duplicates_conflict_over_http_semantics_and_are_skipped_on_import(audit):
    _served(audit)
    first = [_outcome(0), _outcome(1)]
    record_outcomes(audit, first, arms=ARMS, source="api")
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, first[:1], arms=ARMS, source="api")
    assert caught.value.status == 409 and "already recorded" in str(caught.value)
    again = record_outcomes(audit, first, arms=ARMS, source="import", duplicates="skip")
    assert (again.recorded, again.already_recorded) == (0, 2)
    with pytest.raises(OutcomeRefused) as caught:  # a different outcome for the same answer
        record_outcomes(
            audit, [{**first[0], "ee_followup": 5}], arms=ARMS, source="import", duplicates="skip"
        )
    assert caught.value.status == 409 and "different outcome" in str(caught.value)
    assert len(logged_cohort(audit)) == 2


def test_an_outcome_given_twice_in_one_submission_is_not_called_already_recorded(audit):
    _served(audit, n=1)
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [_outcome(0), _outcome(0)], arms=ARMS, source="api")
    (problem,) = caught.value.problems
    assert caught.value.status == 409 and problem["field"] == "outcomes[1].person_id"
    # Nothing is recorded yet: the problem is the repeat of outcomes[0] in this submission.
    assert "already recorded" not in problem["message"] and "outcomes[0]" in problem["message"]
    assert logged_cohort(audit).empty


def test_an_outcome_of_a_person_answered_without_a_ranking_says_so(audit):
    # A crisis answer or a plan line is in the audit log, but no ranked recommendation an
    # outcome could follow: "no recommendation was served" would send the program looking
    # for a wrong id or salt.
    audit.append(
        [
            {
                "request_id": "r-crisis",
                "model_version": "5",
                "caller_role": "program",
                "person_id": "p-0",
                "safety_level": "crisis",
                "recommended": None,
                "ranking_meaningful": None,
                "effects": {},
            }
        ]
    )
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [_outcome(0), _outcome(1)], arms=ARMS, source="api")
    answered, unknown = caught.value.problems
    assert answered["field"] == "outcomes[0].person_id"
    assert "crisis answer or a plan line" in answered["message"]
    assert "/recommend" in answered["accepted"]
    assert unknown["field"] == "outcomes[1].person_id"
    assert unknown["message"].startswith("unknown person")


def test_import_twice_changes_nothing(service_home, tmp_path, capsys):  # noqa: F811
    audit = AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=SALT)
    _served(audit, n=4)
    path = tmp_path / "followup.csv"
    rows = [_outcome(i) for i in range(4)]
    path.write_text(
        "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"
        + "".join(
            f"{r['person_id']},{r['measured_at']},{r['arm_taken']},"
            f"{r['ee_followup']},{r['dp_followup']},{r['pa_followup']}\n"
            for r in rows
        )
    )
    assert main(["outcomes", "import", str(path)]) == 0
    assert "recorded 4 outcome(s); 0 already recorded" in capsys.readouterr().out
    before = logged_cohort(audit).drop(columns=[]).to_dict(orient="records")
    assert main(["outcomes", "import", str(path)]) == 0
    assert "recorded 0 outcome(s); 4 already recorded" in capsys.readouterr().out
    assert logged_cohort(audit).to_dict(orient="records") == before
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text().replace(",20,7,38", ",99,7,38", 1))
    assert main(["outcomes", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "nothing was imported" in err and "ee_followup" in err and "99" in err


def test_post_outcomes_over_http(asgi_client):  # noqa: F811
    served = asgi_client.post(
        "/recommend", json=profile(person_id="p-0"), headers=auth("program")
    ).json()
    assert served["assignment"]["arm"] == served["recommended"]
    body = {"outcomes": [_outcome(0)]}
    assert asgi_client.post("/outcomes", json=body, headers=auth("auditor")).status_code == 403
    response = asgi_client.post("/outcomes", json=body, headers=auth("program"))
    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 1, "corrected": 0, "already_recorded": 0}
    duplicate = asgi_client.post("/outcomes", json=body, headers=auth("program"))
    assert (
        duplicate.status_code == 409
        and duplicate.json()["problems"][0]["field"] == "outcomes[0].person_id"
    )
    bad = asgi_client.post(
        "/outcomes", json={"outcomes": [_outcome(0, ee_followup=70)]}, headers=auth("program")
    )
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["field"] == "outcomes[0].ee_followup"
    assert bad.json()["problems"][0]["value"] == 70
    empty = asgi_client.post("/outcomes", json={"outcomes": []}, headers=auth("program"))
    assert empty.status_code == 422
    json.dumps(response.json())


@pytest.mark.parametrize(
    ("body", "field"),
    [({"outcomes": [5]}, "outcomes[0]"), ({"outcomes": []}, "outcomes"), ({}, "outcomes")],
)
def test_an_outcomes_body_of_the_wrong_shape_says_what_is_accepted(asgi_client, body, field):  # noqa: F811
    response = asgi_client.post("/outcomes", json=body, headers=auth("program"))
    assert response.status_code == 422, response.text
    problem = response.json()["problems"][0]
    assert problem["field"] == field
    # not "see the OpenAPI document": the fields of an outcome, by name
    assert "1 to 10,000" in problem["accepted"] and "ee_followup" in problem["accepted"]
