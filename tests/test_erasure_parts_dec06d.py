"""An erasure of many people is written in parts (whole people, a bounded number of rows each, one
transaction a part), so that the service's answers never wait behind the whole erasure; a stop
between parts leaves the parts before it done and recorded as not completed, and running the
same erasure again finishes it. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3

import pytest

import recommender.service._erasure as erasure
from recommender.service import AuditLog, erase_people, erasure_history
from recommender.service._audit_tables import recommendations
from service_fixtures import SALT, auth, profile
from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401 - fixtures
from test_erasure_dec06 import _fill, _rows_of, _snapshot
from test_loop_outcome_correction import store_url  # noqa: F401 - fixture: SQLite, PostgreSQL

PEOPLE = [f"p-{i}" for i in range(5)]
# Rows each person of _fill holds (answers, assignments, outcomes): p-0 7, p-1 4, p-2 3, p-3 3,
# p-4 2. Parts of at most 4 rows: [p-0] (more than 4 alone), [p-1], [p-2], [p-3], [p-4].
PART_ROWS = 4


@pytest.fixture
def audit(store_url):  # noqa: F811 - the fixture imported above
    log = AuditLog(store_url, salt=SALT)
    _fill(log)
    yield log
    log.close()


def _parts_written(monkeypatch) -> list[tuple[int, int]]:
    """(people, rows changed) of each part as it is written."""
    parts: list[tuple[int, int]] = []
    erase = erasure._erase

    def counted(connection, people, seen, *, dry_run):
        done = erase(connection, people, seen, dry_run=dry_run)
        if not dry_run:
            parts.append((len(people), done.answers + done.assignments + done.outcomes))
        return done

    monkeypatch.setattr(erasure, "_erase", counted)
    return parts


def test_a_large_erasure_is_written_in_parts_of_bounded_rows_and_erases_everyone(
    audit, monkeypatch
):
    dry = erase_people(audit, PEOPLE, dry_run=True)
    parts = _parts_written(monkeypatch)
    report = erase_people(audit, PEOPLE, part_rows=PART_ROWS)
    assert report.parts == len(parts) == 5
    assert parts == [(1, 7), (1, 4), (1, 3), (1, 3), (1, 2)]  # p-0 alone exceeds a part
    counted = ("found", "missing", "answers", "crisis_answers", "assignments", "outcomes")
    assert [getattr(report, c) for c in counted] == [getattr(dry, c) for c in counted]
    assert (report.found, report.rows) == (5, 19)
    for person in PEOPLE:
        assert _rows_of(audit, person) == {
            "recommendations": [],
            "assignments": [],
            "outcomes": [],
        }
    (record,) = erasure_history(audit)  # one row for the command, completed
    assert record["id"] == report.erasure_id and record["completed_at"] is not None
    assert (record["people_asked"], record["people_found"], record["answers_redacted"]) == (
        5,
        5,
        report.answers,
    )


def test_parts_hold_several_people_up_to_the_bound(audit, monkeypatch):
    parts = _parts_written(monkeypatch)
    report = erase_people(audit, PEOPLE[1:], part_rows=7)
    assert parts == [(2, 7), (2, 5)] and report.parts == 2  # p-1 + p-2, then p-3 + p-4


def test_a_part_that_fails_leaves_the_parts_before_done_and_a_rerun_finishes(audit, monkeypatch):
    before = _snapshot(audit)
    untouched = {p: _rows_of(audit, p) for p in PEOPLE[2:]}
    record = erasure._record
    calls = []

    def fail_in_the_third_part(connection, values):
        calls.append(values["people_found"])
        if len(calls) == 3:  # after the third part's deletes and redaction, before its commit
            raise RuntimeError("the store went away")
        return record(connection, values)

    monkeypatch.setattr(erasure, "_record", fail_in_the_third_part)
    with pytest.raises(RuntimeError, match="went away"):
        erase_people(audit, PEOPLE, part_rows=PART_ROWS)
    monkeypatch.undo()
    for person in PEOPLE[:2]:  # the first two parts: done
        assert not any(_rows_of(audit, person).values())
    for person, rows in untouched.items():  # the failing part and those after: untouched
        assert _rows_of(audit, person) == rows
    after = _snapshot(audit)
    assert len(after["assignments"]) == len(before["assignments"]) - 3  # p-0's 2, p-1's 1
    (stopped,) = erasure_history(audit)
    assert stopped["completed_at"] is None  # stopped between parts: said, naming no one
    assert (stopped["people_asked"], stopped["people_found"], stopped["answers_redacted"]) == (
        5,
        2,
        5,
    )
    # The same erasure again finishes it: the people erased already have no row left.
    again = erase_people(audit, PEOPLE, part_rows=PART_ROWS)
    assert (again.found, again.missing) == (3, (0, 1))
    assert not any(any(_rows_of(audit, p).values()) for p in PEOPLE)
    first, second = erasure_history(audit)
    assert first == stopped and second["completed_at"] is not None
    assert second["people_found"] == 3


def _append_crisis_answer_like(database: str, request_id: str, number: int) -> None:
    """A writer that does not wait (busy_timeout 0): the service answering the person of
    ``request_id`` again, in crisis (request id ``crisis-meanwhile-<number>``)."""
    writer = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        columns = ", ".join(c.name for c in recommendations.columns if c.name != "id")
        copied = columns.replace("request_id", f"'crisis-meanwhile-{number}'").replace(
            "safety_level", "'crisis'"
        )
        writer.execute(
            f"INSERT INTO recommendations ({columns}) SELECT {copied} FROM recommendations "
            "WHERE request_id = ?",
            (request_id,),
        )
        writer.execute("COMMIT")
    finally:
        writer.close()


def test_the_service_writes_between_parts_without_waiting(tmp_path):
    """Between two parts no lock is held: an answer written then by a writer that cannot wait
    (SQLite busy timeout 0) is stored, and, the person being on the list, erased by their part."""
    audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt=SALT)
    _fill(audit)
    request = _rows_of(audit, "p-4")["recommendations"][0]
    appended = []
    erase = erasure._erase_part

    def between_parts(*args, **kwargs):
        if erasure_calls:
            _append_crisis_answer_like(audit.engine.url.database, request, len(appended))
            appended.append(None)
        erasure_calls.append(None)
        return erase(*args, **kwargs)

    erasure_calls: list = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(erasure, "_erase_part", between_parts)
        report = erase_people(audit, PEOPLE, part_rows=PART_ROWS)
    assert report.parts == 5 and len(appended) == 4  # written between each two parts
    # p-0's and p-1's crisis answers, and the four appended for p-4 meanwhile
    assert report.crisis_answers == 2 + 4
    assert not any(_rows_of(audit, "p-4").values())
    audit.close()


def test_a_dry_run_is_one_read_and_records_nothing(audit):
    before = _snapshot(audit)
    dry = erase_people(audit, PEOPLE, dry_run=True, part_rows=1)
    assert dry.dry_run and (dry.parts, dry.erasure_id, dry.found) == (0, None, 5)
    assert _snapshot(audit) == before


def test_the_part_size_is_a_setting_checked_where_it_is_read(tmp_path):
    import yaml

    from recommender.errors import InputError
    from recommender.service import load_serve_config

    assert load_serve_config().erase_part_rows == erasure.PART_ROWS
    raw = yaml.safe_load(load_serve_config().source.read_text())
    raw["erasure"]["part_rows"] = 0
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match="erasure.part_rows"):
        load_serve_config(tmp_path / "serve.yaml")


# -- over HTTP: POST /erasures, the program's route ---------------------------------------------


@pytest.fixture
def served(asgi_client, service_home):
    """The in-process app over a store holding _fill's people."""
    audit = AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=SALT)
    _fill(audit)
    yield asgi_client, audit
    audit.close()


def test_the_route_erases_as_the_command_does_for_the_program_only(served):
    client, audit = served
    body = {"person_ids": ["p-0", "nobody", "p-1"]}
    assert client.post("/erasures", json=body).status_code == 401
    assert (
        client.post("/erasures", json=body, headers={"Authorization": "Bearer no"}).status_code
        == 401
    )
    for role in ("auditor", "scientist"):
        refused = client.post("/erasures", json=body, headers=auth(role))
        assert refused.status_code == 403 and "program" in refused.json()["error"]
    assert any(_rows_of(audit, "p-0").values())  # nothing erased by a refused caller
    dry = client.post("/erasures", json={**body, "dry_run": True}, headers=auth("program"))
    assert dry.status_code == 200
    assert dry.json() == {
        "asked": 3,
        "found": 2,
        "missing": [1],
        "answers_redacted": 5,
        "crisis_answers_redacted": 2,
        "assignments_deleted": 3,
        "outcomes_deleted": 3,
        "dry_run": True,
        "erasure_id": None,
        "parts": 0,
    }
    assert any(_rows_of(audit, "p-0").values())
    done = client.post("/erasures", json=body, headers=auth("program"))
    assert done.status_code == 200 and "nobody" not in done.text and "p-0" not in done.text
    said = done.json()
    assert (said["found"], said["missing"], said["dry_run"], said["parts"]) == (2, [1], False, 1)
    assert said["erasure_id"] == erasure_history(audit)[-1]["id"]
    assert not any(_rows_of(audit, "p-0").values()) and not any(_rows_of(audit, "p-1").values())
    # The same request again: nothing left to erase, nothing recorded.
    again = client.post("/erasures", json=body, headers=auth("program")).json()
    assert (again["found"], again["missing"], again["erasure_id"]) == (0, [0, 1, 2], None)
    # The service still answers, crisis answers included.
    crisis = client.post(
        "/recommend", json=profile(person_id="p-0", crisis_risk=True), headers=auth("program")
    )
    assert crisis.status_code == 200 and crisis.json()["safety"]["level"] == "crisis"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"person_ids": []}, "person_ids"),
        ({}, "person_ids"),
        ({"person_ids": ["p-0", 7]}, "person_ids[1]"),
        ({"person_ids": ["p-0", "   "]}, "person_ids[1]"),
        ({"person_ids": ["p-0", ""]}, "person_ids[1]"),
        ({"person_ids": ["p-0"], "dry_run": "yes"}, "dry_run"),
        ({"person_ids": ["p-0"], "people": ["p-1"]}, "people"),
    ],
)
def test_the_route_refuses_bad_input_naming_the_field_and_erases_nothing(served, body, field):
    client, audit = served
    before = _snapshot(audit)
    refused = client.post("/erasures", json=body, headers=auth("program"))
    assert refused.status_code == 422, refused.text
    (problem, *_) = refused.json()["problems"]
    assert problem["field"] == field
    if field.startswith("person_ids["):  # what stood there is never shown
        assert problem["value"] == "(hidden)"
    assert "p-0" not in refused.text and "p-1" not in refused.text  # no id echoed
    assert _snapshot(audit) == before


def test_the_route_is_listed_in_the_openapi_document_with_its_statuses(asgi_client):
    document = asgi_client.get("/docs.json").json()
    route = document["paths"]["/erasures"]["post"]
    assert {"200", "401", "403", "422", "503"} <= set(route["responses"])
    schema = json.dumps(route["requestBody"])
    assert "person_ids" in schema and "dry_run" in schema


def test_the_service_answers_a_crisis_between_the_parts_of_an_erasure_over_http(
    served, monkeypatch
):
    """While POST /erasures is between two parts, a /recommend flagged crisis_risk is answered
    at once (and recorded), and the erasure goes on to erase its people."""
    import recommender.service._answering as answering

    client, audit = served
    erase = erasure.erase_people
    monkeypatch.setattr(
        answering,
        "erase_people",
        lambda *args, **kwargs: erase(*args, **{**kwargs, "part_rows": PART_ROWS}),
    )
    answered = []
    erase_part = erasure._erase_part

    def between_parts(*args, **kwargs):
        if kwargs["last"]:
            crisis = client.post(
                "/recommend",
                json=profile(person_id="p-9", crisis_risk=True),
                headers=auth("program"),
            )
            answered.append((crisis.status_code, crisis.json()["safety"]["level"]))
        return erase_part(*args, **kwargs)

    monkeypatch.setattr(erasure, "_erase_part", between_parts)
    done = client.post("/erasures", json={"person_ids": PEOPLE}, headers=auth("program"))
    assert done.status_code == 200, done.text
    assert (done.json()["parts"], done.json()["found"]) == (5, 5)
    assert answered == [(200, "crisis")]
    assert _rows_of(audit, "p-9")["recommendations"]  # the crisis answer was recorded
