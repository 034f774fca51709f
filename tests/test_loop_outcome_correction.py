"""Correcting an outcome: only when asked, appended beside the outcome it replaces, never over it.

A second, different outcome for a recommendation is refused unless it is sent as a correction
(`"correct": true`, `recommender outcomes import --correct`). A correction is a row of its own
naming the row it replaces; training reads the latest, the audit export shows both.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from recommender.cli import main
from recommender.service import AuditLog, OutcomeRefused, logged_cohort, outcome_history
from recommender.service import record_outcomes
from recommender.service._audit_tables import assignments, outcomes, recommendations
from recommender.service._migrate import _config, schema_revision
from service_fixtures import SALT, auth, profile
from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401 - fixtures
from test_loop_outcomes import ARMS, _served

# Each test's follow-up time: after its answers, within the hour's grace for clocks ahead.
_CLOCK: dict = {}


@pytest.fixture(autouse=True)
def _clock():
    _CLOCK["measured"] = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=30)
    _CLOCK["recorded"] = _CLOCK["measured"] + timedelta(seconds=5)


def _outcome(i, **changes):
    return {
        "person_id": f"p-{i}",
        "measured_at": _CLOCK["measured"].isoformat(),
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 7,
        "pa_followup": 38,
        **changes,
    }


def _record(audit, rows, **options):
    now = _CLOCK["recorded"]
    return record_outcomes(audit, rows, arms=ARMS, source="api", now=now, **options)


@pytest.fixture
def audit():
    log = AuditLog("sqlite://", salt="s")
    _served(log, n=3)
    _record(log, [_outcome(0), _outcome(1)])
    return log


def _scores(audit) -> dict:
    cohort = logged_cohort(audit)
    by_person = dict(zip(cohort["person_id"], cohort["ee_followup"]))
    return {i: by_person.get(audit.person_hash(f"p-{i}")) for i in range(3)}


def test_a_correction_is_appended_and_training_reads_it(audit):
    report = _record(audit, [_outcome(0, ee_followup=25)], correct=True)
    assert (report.recorded, report.corrected, report.already_recorded) == (0, 1, 0)
    assert _scores(audit) == {0: 25, 1: 20, 2: None}
    assert len(logged_cohort(audit)) == 2  # one row for p-0: the correction
    history = outcome_history(audit)
    first, other, correction = history
    assert len(history) == 3  # nothing replaced in place, nothing deleted
    assert (first["ee_followup"], first["corrects"]) == (20, None)
    assert (correction["ee_followup"], correction["corrects"]) == (25, first["id"])
    assert correction["request_id"] == first["request_id"]
    # Who replaced the first outcome, and when, beside it; the rows in force say nothing.
    assert first["superseded_by"] == correction["id"]
    assert first["superseded_at"] == _CLOCK["recorded"] and first["superseded_source"] == "api"
    assert other["superseded_by"] is None and correction["superseded_by"] is None


def test_a_correction_corrected_again_leaves_the_latest_in_force(audit):
    _record(audit, [_outcome(0, ee_followup=25)], correct=True)
    _record(audit, [_outcome(0, ee_followup=20, pa_followup=40)], correct=True)
    cohort = logged_cohort(audit)
    (row,) = cohort[cohort["person_id"] == audit.person_hash("p-0")].to_dict(orient="records")
    assert (row["ee_followup"], row["pa_followup"]) == (20, 40)
    chain = [r for r in outcome_history(audit) if r["request_id"] == row["request_id"]]
    assert [r["corrects"] for r in chain] == [None, chain[0]["id"], chain[1]["id"]]
    assert [r["superseded_by"] for r in chain] == [chain[1]["id"], chain[2]["id"], None]


def test_a_different_outcome_without_the_flag_is_refused_naming_it(audit):
    for duplicates in ("refuse", "skip"):
        with pytest.raises(OutcomeRefused) as caught:
            _record(audit, [_outcome(1), _outcome(0, ee_followup=25)], duplicates=duplicates)
        assert caught.value.status == 409
        problems = [p for p in caught.value.problems if p["field"] == "outcomes[1].person_id"]
        (problem,) = problems
        assert "different outcome is already recorded" in problem["message"]
        assert '"correct": true' in problem["message"] and "--correct" in problem["message"]
    assert len(outcome_history(audit)) == 2 and _scores(audit)[0] == 20


def test_a_correction_of_an_outcome_that_does_not_exist_is_refused(audit):
    # p-2 was served, but no outcome of theirs was ever recorded: nothing to correct.
    with pytest.raises(OutcomeRefused) as caught:
        _record(audit, [_outcome(0, ee_followup=25), _outcome(2)], correct=True)
    (problem,) = caught.value.problems
    assert caught.value.status == 422
    assert problem["field"] == "outcomes[1].person_id" and problem["value"] == "(hidden)"
    assert problem["message"].startswith("nothing to correct")
    assert "served at" in problem["message"] and "without it" in problem["accepted"]
    # A person never served is refused as any outcome of theirs is.
    with pytest.raises(OutcomeRefused) as caught:
        _record(audit, [_outcome(9)], correct=True)
    assert caught.value.problems[0]["message"].startswith("unknown person")
    assert len(outcome_history(audit)) == 2 and _scores(audit)[0] == 20


def test_corrections_keep_duplicates_idempotent(audit):
    fixed = [_outcome(0, ee_followup=25), _outcome(1)]  # a file with one row fixed
    report = _record(audit, fixed, correct=True, duplicates="skip")
    assert (report.corrected, report.already_recorded) == (1, 1)
    again = _record(audit, fixed, correct=True, duplicates="skip")  # the same import again
    assert (again.corrected, again.already_recorded) == (0, 2)
    with pytest.raises(OutcomeRefused) as caught:  # over HTTP, a duplicate is a 409
        _record(audit, fixed[:1], correct=True)
    assert caught.value.status == 409 and "already recorded" in str(caught.value)
    # The file as first imported, again without the flag: the replaced row is stored, so
    # nothing changes (the correction stays in force).
    old = _record(audit, [_outcome(0), _outcome(1)], duplicates="skip")
    assert (old.recorded, old.already_recorded) == (0, 2)
    assert len(outcome_history(audit)) == 3 and _scores(audit)[0] == 25
    # With the flag, the replaced value may be restored: a correction like any other.
    restored = _record(audit, [_outcome(0)], correct=True)
    assert restored.corrected == 1 and _scores(audit)[0] == 20


def test_one_recommendation_corrected_twice_in_one_submission_is_refused(audit):
    with pytest.raises(OutcomeRefused) as caught:
        _record(audit, [_outcome(0, ee_followup=25), _outcome(0, ee_followup=26)], correct=True)
    (problem,) = caught.value.problems
    assert caught.value.status == 409 and problem["field"] == "outcomes[1].person_id"
    assert "outcomes[0] of this submission" in problem["message"]
    assert len(outcome_history(audit)) == 2


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return request.getfixturevalue("postgres").database("audit")


def test_the_store_itself_keeps_one_first_outcome_and_one_correction_a_row(store_url):
    # Two submissions racing past the checks: the unique indexes refuse the second write.
    audit = AuditLog(store_url, salt=SALT)
    _served(audit, n=1)
    _record(audit, [_outcome(0)])
    (first,) = outcome_history(audit)
    row = {k: v for k, v in first.items() if k in outcomes.c and k != "id"}

    def insert(**changes):
        with audit.engine.begin() as connection:
            connection.execute(outcomes.insert(), {**row, **changes})

    with pytest.raises(sa.exc.IntegrityError):  # a second first outcome of the recommendation
        insert(ee_followup=30)
    insert(ee_followup=25, corrects=first["id"])
    with pytest.raises(sa.exc.IntegrityError):  # a second correction of the same row
        insert(ee_followup=30, corrects=first["id"])
    assert [r["ee_followup"] for r in outcome_history(audit)] == [20, 25]
    audit.close()


def test_a_store_at_revision_0006_keeps_its_outcomes_and_takes_corrections(store_url):
    audit = AuditLog("sqlite://", salt=SALT)  # served and recorded at head, then copied back
    _served(audit, n=2)
    _record(audit, [_outcome(0), _outcome(1)])
    with audit.engine.connect() as connection:
        tables = {
            table.name: [dict(r._mapping) for r in connection.execute(sa.select(table))]
            for table in (recommendations, assignments, outcomes)
        }
    audit.close()
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        command.upgrade(_config(connection), "0006")
        meta = sa.MetaData()
        meta.reflect(connection, only=list(tables))
        for name, rows in tables.items():
            rows = [
                {
                    column: value.replace(tzinfo=timezone.utc)
                    if isinstance(value, datetime) and value.tzinfo is None
                    else value
                    for column, value in row.items()
                    if column not in ("id", "corrects")  # the store numbers its own rows
                }
                for row in rows
            ]
            connection.execute(meta.tables[name].insert(), rows)
    assert schema_revision(engine) == "0006"
    engine.dispose()

    upgraded = AuditLog(store_url, salt=SALT)
    assert schema_revision(upgraded.engine) >= "0007"
    assert _scores(upgraded) == {0: 20, 1: 20, 2: None}
    with pytest.raises(OutcomeRefused):  # still one outcome a recommendation without the flag
        _record(upgraded, [_outcome(0, ee_followup=25)])
    assert _record(upgraded, [_outcome(0, ee_followup=25)], correct=True).corrected == 1
    assert _scores(upgraded) == {0: 25, 1: 20, 2: None}
    assert [r["corrects"] is None for r in outcome_history(upgraded)] == [True, True, False]
    upgraded.close()


def test_correcting_over_http_and_exporting_both(asgi_client):  # noqa: F811
    asgi_client.post("/recommend", json=profile(person_id="p-0"), headers=auth("program"))
    now = datetime.now(timezone.utc).isoformat()
    first = _outcome(0, measured_at=now)
    post = asgi_client.post
    answer = post("/outcomes", json={"outcomes": [first]}, headers=auth("program"))
    assert answer.json() == {"recorded": 1, "corrected": 0, "already_recorded": 0}
    fixed = {"outcomes": [{**first, "ee_followup": 25}]}
    refused = post("/outcomes", json=fixed, headers=auth("program"))
    assert refused.status_code == 409 and '"correct": true' in refused.json()["error"]
    flagged = post("/outcomes", json={**fixed, "correct": "yes"}, headers=auth("program"))
    assert flagged.status_code == 422
    assert flagged.json()["problems"][0]["field"] == "correct"
    corrected = post("/outcomes", json={**fixed, "correct": True}, headers=auth("program"))
    assert corrected.status_code == 200, corrected.text
    assert corrected.json() == {"recorded": 0, "corrected": 1, "already_recorded": 0}
    again = post("/outcomes", json={**fixed, "correct": True}, headers=auth("program"))
    assert again.status_code == 409 and "already recorded" in again.json()["error"]

    export = asgi_client.get("/audit/export?table=outcomes", headers=auth("auditor"))
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["ee_followup"] for r in rows] == ["20", "25"]
    assert rows[0]["superseded_by"] == rows[1]["id"] and rows[0]["superseded_source"] == "api"
    assert rows[1]["corrects"] == rows[0]["id"] and rows[1]["superseded_by"] == ""
    assert "p-0" not in export.text  # hashed ids only
    unknown = asgi_client.get("/audit/export?table=people", headers=auth("auditor"))
    assert unknown.status_code == 422 and unknown.json()["problems"][0]["field"] == "table"
    document = asgi_client.get("/docs.json").json()
    outcomes_route = document["paths"]["/outcomes"]["post"]
    assert '"correct"' in json.dumps(outcomes_route["requestBody"])
    assert '"corrected"' in json.dumps(outcomes_route["responses"]["200"])
    assert "correct: true" in outcomes_route["responses"]["409"]["description"]
    export_route = document["paths"]["/audit/export"]["get"]
    assert "table" in [parameter["name"] for parameter in export_route["parameters"]]


def test_the_cli_corrects_with_a_flag_and_exports_the_history(  # noqa: F811
    service_home, tmp_path, capsys
):
    audit = AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=SALT)
    _served(audit, n=2)
    _record(audit, [_outcome(0), _outcome(1)])
    header = "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(
        header
        + "".join(
            f"p-{i},{_CLOCK['measured'].isoformat()},coaching,{20 + 5 * (i == 1)},7,38\n"
            for i in range(2)
        )
    )
    assert main(["outcomes", "import", str(fixed)]) == 2  # without the flag: refused
    err = capsys.readouterr().err
    assert "nothing was imported" in err and "--correct" in err and "outcomes[1]" in err
    assert main(["outcomes", "import", "--correct", str(fixed)]) == 0
    assert "corrected 1 outcome(s); 1 already recorded" in capsys.readouterr().out
    assert main(["outcomes", "import", "--correct", str(fixed)]) == 0  # again: nothing
    assert "corrected 0 outcome(s); 2 already recorded" in capsys.readouterr().out
    out = tmp_path / "outcomes.jsonl"
    assert main(["audit", "export", "--table", "outcomes", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["ee_followup"], r["source"]) for r in rows] == [
        (20, "api"),
        (20, "api"),
        (25, "import fixed.csv"),
    ]
    assert rows[1]["superseded_by"] == rows[2]["id"]
    assert rows[1]["superseded_source"] == "import fixed.csv"
    assert datetime.fromisoformat(rows[1]["superseded_at"]).tzinfo is not None
    audit.close()
