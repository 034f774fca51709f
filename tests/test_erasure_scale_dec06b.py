"""An erasure on a SQLite store of years: the scan of the whole answer log (``person_hash`` has
no index there) runs before the write lock, so the service's answers never wait behind it;
under the lock, the erasure reads only by primary key, and what was appended or erased by
another erasure between the scan and the lock is still counted exactly."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from recommender.service import AuditLog, erase_people, erasure_history
from recommender.service._audit_tables import ERASED_PERSON, recommendations
from service_fixtures import SALT
from test_erasure_dec06 import _fill, _rows_of


@pytest.fixture
def audit(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt=SALT)
    _fill(log)
    yield log
    log.close()


def _database(audit: AuditLog) -> str:
    return audit.engine.url.database


def _on_the_scan(audit: AuditLog, action) -> list:
    """Run ``action`` once, just before the first statement that looks people up in the
    answer log by person hash (the scan); returns where the results of ``action`` go."""
    done: list = []

    def before(_conn, _cursor, statement, _parameters, _context, _many):
        if done or "FROM recommendations" not in statement or "person_hash IN" not in statement:
            return
        done.append(None)
        try:
            done.append(action())
        except Exception as error:  # what a writer that cannot wait meets: said by the test
            done.append(error)

    sa.event.listen(audit.engine, "before_cursor_execute", before)
    return done


def _append_crisis_answer_like(database: str, request_id: str) -> int:
    """A writer that does not wait (busy_timeout 0): the service answering the person of
    ``request_id`` again, in crisis."""
    writer = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        columns = ", ".join(c.name for c in recommendations.columns if c.name != "id")
        copied = columns.replace("request_id", "'crisis-meanwhile'").replace(
            "safety_level", "'crisis'"
        )
        row_id = writer.execute(
            f"INSERT INTO recommendations ({columns}) SELECT {copied} FROM recommendations "
            "WHERE request_id = ?",
            (request_id,),
        ).lastrowid
        writer.execute("COMMIT")
        return row_id
    finally:
        writer.close()


def test_an_answer_written_during_the_scan_never_waits_and_is_erased_too(audit):
    request = _rows_of(audit, "p-0")["recommendations"][0]
    hook = _on_the_scan(audit, lambda: _append_crisis_answer_like(_database(audit), request))
    report = erase_people(audit, ["p-0"])
    appended = hook[1]
    assert isinstance(appended, int), f"the concurrent answer failed: {appended!r}"
    # p-0's three answers (one crisis), and the crisis answer appended while the scan ran
    assert (report.found, report.answers, report.crisis_answers) == (1, 4, 2)
    assert _rows_of(audit, "p-0")["recommendations"] == []
    with audit.engine.connect() as connection:
        person, request = connection.execute(
            sa.select(recommendations.c.person_hash, recommendations.c.request_id).where(
                recommendations.c.id == appended
            )
        ).one()
    assert (person, request) == (ERASED_PERSON, f"erased-{appended}")


def test_answers_another_erasure_redacted_meanwhile_are_not_counted_twice(audit):
    other = AuditLog(audit.engine.url.render_as_string(hide_password=False), salt=SALT)
    try:
        hook = _on_the_scan(audit, lambda: erase_people(other, ["p-0"]))
        report = erase_people(audit, ["p-0", "p-1"])
    finally:
        other.close()
    assert hook[1].answers == 3
    # p-0 was erased by the other erasure in between: reported as not in the store
    assert (report.found, report.missing) == (1, (0,))
    assert (report.answers, report.crisis_answers) == (2, 1)  # p-1's ranked and crisis answers
    history = erasure_history(audit)
    assert [h["answers_redacted"] for h in history] == [3, 2]
    with audit.engine.connect() as connection:
        erased = connection.execute(
            sa.select(sa.func.count()).where(recommendations.c.person_hash == ERASED_PERSON)
        ).scalar_one()
    assert erased == 5


def test_under_the_write_lock_the_answer_log_is_read_by_primary_key_only(audit):
    """What bounds the time the lock is held, whatever the log's size: every statement between
    BEGIN IMMEDIATE and the commit finds its ``recommendations`` rows by row id (not by a scan,
    nor by probing the crisis answers' index for every hash and row id given)."""
    locked: list = []

    def before(_conn, _cursor, statement, parameters, _context, _many):
        if statement.startswith("BEGIN IMMEDIATE"):
            locked.append("begin")
        elif locked and "recommendations" in statement:
            locked.append((statement, parameters))

    sa.event.listen(audit.engine, "before_cursor_execute", before)
    report = erase_people(audit, ["p-0", "p-1", "p-never-served"])
    sa.event.remove(audit.engine, "before_cursor_execute", before)
    assert (report.found, report.answers) == (2, 5)
    statements = locked[1:]
    assert any(s.startswith("UPDATE recommendations") for s, _ in statements)
    planner = sqlite3.connect(_database(audit))
    try:
        for statement, parameters in statements:
            plan = [
                row[-1] for row in planner.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
            steps = [step for step in plan if " recommendations" in step]
            assert all("USING INTEGER PRIMARY KEY" in step for step in steps), (statement, plan)
    finally:
        planner.close()


def test_a_dry_run_counts_what_the_erasure_then_erases(audit):
    dry = erase_people(audit, ["p-0", "p-3"], dry_run=True)
    done = erase_people(audit, ["p-0", "p-3"])
    counts = ("found", "answers", "crisis_answers", "assignments", "outcomes")
    assert [getattr(dry, c) for c in counts] == [getattr(done, c) for c in counts]
    assert (done.answers, done.crisis_answers) == (4, 1)
