"""A wellness program's year of the learning loop, as it runs it: people served in several
rounds, crisis answers and plans between a recommendation and its follow-up, follow-up dates
written as dates alone, and the retraining saying which outcomes made the new model."""

from datetime import datetime, timezone

import pytest

from recommender.catalog import load_catalog
from recommender.service import AuditLog, OutcomeRefused, logged_cohort, record_outcomes
from service_fixtures import AUDIT_RECORD, asgi_client, auth, linear_model, profile, service_home  # noqa: F401

ARMS = load_catalog().arm_ids
SCORES = {"arm_taken": "coaching", "ee_followup": 20, "dp_followup": 5, "pa_followup": 30}
JUNE = datetime(2027, 6, 1, tzinfo=timezone.utc)


def _at(day: int, hour: int = 10) -> datetime:
    return datetime(2027, 3, day, hour, 0, 0, 300000, tzinfo=timezone.utc)


def _ranked(audit, person_id, logged_at, request_id, *, version="3"):
    assignment = {"arm": "coaching", "probability": 0.8, "policy": "thompson", "cycle": 0}
    assignment["probabilities"] = {"coaching": 0.8, "none": 0.2}
    record = {**AUDIT_RECORD, "request_id": request_id, "person_id": person_id}
    record["model_version"] = version
    audit.append([{**record, "logged_at": logged_at, "assignment": assignment}])


def _unranked(audit, person_id, logged_at, request_id, *, crisis):
    record = {**AUDIT_RECORD, "request_id": request_id, "person_id": person_id}
    if crisis:  # a crisis answer of /recommend: no ranking, no batch
        record.update(safety_level="crisis", recommended=None, ranking_meaningful=None, effects={})
    else:  # a plan line carries its plan's id
        record.update(recommended="mindfulness", batch_id="plan-7f3a")
    audit.append([{**record, "logged_at": logged_at}])


def _outcome(person_id, measured_at):
    return {"person_id": person_id, "measured_at": measured_at, **SCORES}


def _one_refusal(audit, person_id, stamp, *, now=JUNE) -> dict:
    """The one problem of a submission of one outcome."""
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, [_outcome(person_id, stamp)], arms=ARMS, source="api", now=now)
    (problem,) = caught.value.problems
    return problem


def _served_in_march(person_id="p-1"):
    audit = AuditLog("sqlite://", salt="s-for-a-season-of-the-loop")
    _ranked(audit, person_id, _at(1), "r-march")
    return audit


@pytest.mark.parametrize("crisis", [True, False], ids=["crisis answer", "plan line"])
def test_an_outcome_measured_after_a_later_crisis_answer_or_plan_line_is_not_credited_to_the_arm(
    crisis,
):
    # Served coaching on 1 March, flagged in crisis (or allocated another arm by a plan) on 10
    # March, surveyed on 20 March: the score follows crisis care or the plan's arm, yet it was
    # linked to the coaching recommendation, and the next retraining credited coaching with it.
    audit = AuditLog("sqlite://", salt="s-for-a-season-of-the-loop")
    _ranked(audit, "p-1", _at(1), "r-march")
    _unranked(audit, "p-1", _at(10), "r-after", crisis=crisis)
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(
            audit, [_outcome("p-1", "2027-03-20T09:00:00Z")], arms=ARMS, source="api", now=JUNE
        )
    (problem,) = caught.value.problems
    assert caught.value.status == 422 and problem["field"] == "outcomes[0].measured_at"
    kind = "crisis answer" if crisis else "plan line (/allocate)"
    assert f"measured after the person's {kind} at 2027-03-10T10:00:00+00:00" in problem["message"]
    assert problem["accepted"].startswith("a time before 2027-03-10T10:00:00+00:00")
    assert "p-1" not in str(problem) and logged_cohort(audit).empty
    # measured before that answer, it is the recommendation's follow-up and is linked to it
    report = record_outcomes(
        audit, [_outcome("p-1", "2027-03-09T09:00:00Z")], arms=ARMS, source="api", now=JUNE
    )
    assert report.linked == ["r-march"]


def test_a_crisis_answer_before_the_recommendation_does_not_stop_its_outcome():
    audit = AuditLog("sqlite://", salt="s-for-a-season-of-the-loop")
    _unranked(audit, "p-1", _at(1), "r-crisis", crisis=True)
    _ranked(audit, "p-1", _at(5), "r-ranked")
    report = record_outcomes(
        audit, [_outcome("p-1", "2027-03-20T09:00:00Z")], arms=ARMS, source="api", now=JUNE
    )
    assert report.linked == ["r-ranked"]


def test_a_date_alone_refused_as_before_the_recommendation_says_it_is_read_as_midnight_utc():
    # A survey tool exports the day only: answered on the day of the recommendation, it reads
    # as midnight UTC, before it, and the refusal showed T00:00:00 without saying why.
    audit = _served_in_march()
    problem = _one_refusal(audit, "p-1", "2027-03-01")
    assert problem["value"] == "2027-03-01T00:00:00+00:00"
    assert "'2027-03-01' is a date alone, read as midnight UTC" in problem["message"]
    # a time given in full says nothing about dates
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(
            audit, [_outcome("p-1", "2027-03-01T09:00:00Z")], arms=ARMS, source="api", now=JUNE
        )
    assert "date alone" not in caught.value.problems[0]["message"]
    # the day after, the date alone is linked
    report = record_outcomes(
        audit, [_outcome("p-1", "2027-03-02")], arms=ARMS, source="api", now=JUNE
    )
    assert report.linked == ["r-march"]


def test_a_model_from_the_log_says_which_outcomes_and_which_versions_made_it():
    # The run said "5,300 served recommendations with outcomes, cycles 0, 1": with outcomes
    # still arriving for earlier cycles, no one could tell later which of the store's outcomes
    # had made the model, nor which versions had served them (a champion, one rolled back).
    from pipelines.train import log_description, log_summary

    audit = AuditLog("sqlite://", salt="s-for-a-season-of-the-loop")
    for i, version in enumerate(["1", "1", "10", "2"]):
        _ranked(audit, f"p-{i}", _at(1 + i), f"r-{i}", version=version)
    rows = [_outcome(f"p-{i}", "2027-03-20T09:00:00Z") for i in range(4)]
    record_outcomes(audit, rows[:2], arms=ARMS, source="api", now=JUNE)
    late = datetime(2027, 7, 2, 8, 30, 15, 999, tzinfo=timezone.utc)
    record_outcomes(audit, rows[2:], arms=ARMS, source="import late.csv", now=late)
    summary = log_summary(logged_cohort(audit), load_catalog(), min_arm_rows=1)
    assert summary["outcomes_recorded_through"] == "2027-07-02T08:30:15.000999+00:00"
    assert summary["served_by_version"] == {"1": 2, "2": 1, "10": 1}
    assert log_description(summary) == (
        "the service's log: 4 served recommendations with outcomes recorded up to "
        "2027-07-02T08:30:15.000999+00:00, cycles 0, served by version(s) 1 (2), 2 (1), 10 (1)"
    )


def test_an_outcome_file_imported_again_after_the_person_was_served_again_changes_nothing():
    # Stamped within the hour's grace (the program's clock a little ahead), the outcome was
    # linked to the March answer; the person was served again before that stamp, so the same
    # file imported again linked the same outcome to the new answer and stored it twice.
    audit = AuditLog("sqlite://", salt="s-for-a-season-of-the-loop")
    _ranked(audit, "p-1", _at(1), "r-march")
    row = _outcome("p-1", "2027-03-20T10:30:00Z")
    first = record_outcomes(audit, [row], arms=ARMS, source="import f.csv", now=_at(20, 10))
    assert first.linked == ["r-march"]
    _ranked(audit, "p-1", datetime(2027, 3, 20, 10, 10, tzinfo=timezone.utc), "r-next")
    again = record_outcomes(
        audit, [row], arms=ARMS, source="import f.csv", duplicates="skip", now=_at(20, 11)
    )
    assert (again.recorded, again.already_recorded) == (0, 1)
    assert logged_cohort(audit)["request_id"].tolist() == ["r-march"]
    with pytest.raises(OutcomeRefused, match="already recorded") as caught:
        record_outcomes(audit, [row], arms=ARMS, source="api", now=_at(20, 11))
    assert caught.value.status == 409


def test_the_training_display_shows_a_notes_brackets_as_written(capsys):
    # Read as rich markup, "[unused_arm]" vanished from every note train printed, leaving
    # "note: intervention : catalog arm ..."; a value in brackets would vanish alike.
    from recommender.cli.cmd_train import RichProgress

    RichProgress().note("note: intervention [unused_arm]: catalog arm 'x' has no rows; [b]")
    said = " ".join(capsys.readouterr().err.split())
    assert "note: intervention [unused_arm]: catalog arm 'x' has no rows; [b]" in said


def test_a_file_with_a_few_bad_rows_among_many_is_refused_with_its_problems_in_row_order():
    # The checks of values ran before the links, so the unknown person of row 3 was listed
    # after row 40's bad score, and past the import's first 50 problems in a larger file.
    audit = AuditLog("sqlite://", salt="s-for-a-season-of-the-loop")
    for i in range(60):
        _ranked(audit, f"p-{i}", _at(1), f"r-{i}")
    rows = [_outcome(f"p-{i}", "2027-03-20T09:00:00Z") for i in range(60)]
    rows[3]["person_id"] = "never-served"
    rows[40]["ee_followup"] = 60
    rows[7]["arm_taken"] = "Coaching"
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, rows, arms=ARMS, source="import f.csv", now=JUNE)
    fields = [problem["field"] for problem in caught.value.problems]
    assert fields == ["outcomes[3].person_id", "outcomes[7].arm_taken", "outcomes[40].ee_followup"]
    # a spreadsheet's capital is named, as validate names a cohort file's
    assert caught.value.problems[1]["message"] == "unknown arm (did you mean 'coaching'?)"
    assert logged_cohort(audit).empty


@pytest.mark.parametrize(
    "route, key", [("/outcomes", "outcomes"), ("/recommend_batch", "profiles")]
)
def test_a_list_longer_than_a_route_takes_is_refused_without_its_first_person_id(
    asgi_client,  # noqa: F811
    route,
    key,
):
    # A program sending a year's follow-ups at once: the refusal echoed the list's first 120
    # characters, the first row's person_id among them, in an error body gateways log.
    fields = {k: v for k, v in profile().items() if k != "person_id"}
    if key == "outcomes":
        fields = {k: v for k, v in _outcome("x", "2027-03-20").items() if k != "person_id"}
    rows = [{"person_id": f"p-never-shown-{i}", **fields} for i in range(10_001)]
    refused = asgi_client.post(route, json={key: rows}, headers=auth("program"))
    assert refused.status_code == 422, refused.text
    (problem,) = refused.json()["problems"]
    assert problem["field"] == key and "10,000" in problem["accepted"]
    assert problem["value"] == "(a list of 10,001 items; not shown)"
    assert "p-never-shown" not in refused.text


def test_a_local_time_without_a_zone_refused_as_in_the_future_says_it_is_read_as_utc():
    # A program west of UTC writes its clock's 09:30 without a zone: read as
    # UTC it is hours ahead, and "in the future" gave no reason for a time that had passed.
    audit = _served_in_march()
    now = datetime(2027, 3, 20, 5, 0, tzinfo=timezone.utc)  # 09:30 happened, at UTC-05:00
    problem = _one_refusal(audit, "p-1", "2027-03-20 09:30", now=now)
    assert problem["message"].startswith("in the future ('2027-03-20 09:30' has no zone and is")
    assert "2027-03-20T09:30:00+01:00" in problem["message"]
    assert _one_refusal(audit, "p-1", "2027-03-20T09:30:00Z", now=now)["message"] == (
        "in the future"
    )
    report = record_outcomes(
        audit, [_outcome("p-1", "2027-03-20T09:30-05:00")], arms=ARMS, source="api", now=_at(21)
    )
    assert report.linked == ["r-march"]


def test_an_unknown_person_refusal_says_ids_are_compared_as_written():
    # A spreadsheet re-saves an export's 000123 as 123: the id was "unknown", and nothing
    # said that a leading zero, a case or a space makes another id.
    problem = _one_refusal(_served_in_march("000123"), "123", "2027-03-20")
    assert problem["message"].startswith("unknown person") and problem["value"] == "(hidden)"
    assert "leading zeros count" in problem["accepted"] and "123" not in problem["message"]
