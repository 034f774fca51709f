"""A refused outcome row reads the answers' log through indexes and by row id, never whole.

To say why a row is refused, linking asks whether a person was served only by a release older
than the learning loop (a ranked answer with no assignment) and whether they were answered at
all. `recommendations.person_hash` has no full index, so both used to read every record (a
third of a second on a 760 MB store). Now a person's answers are found through `assignments`,
the partial index of crisis answers and plan lines, and, for answers with no assignment, by row
id up to the bound `store_facts` keeps (revision 0011; the writer extends it when it writes
such records). The refusals say what they said.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from recommender.service import AuditLog, OutcomeRefused, record_outcomes
from recommender.service._audit_tables import store_facts
from recommender.service._migrate import _config, schema_revision
from service_fixtures import AUDIT_RECORD, SALT
from test_loop_outcome_link_index import (  # noqa: F401 - store_url is a fixture used below
    ARMS,
    _answer,
    _full_scan,
    _outcome,
    _plan,
    _serve,
    _statements_reading_answers,
    store_url,
)
from test_upgrade_old_homes import BEFORE_THE_LOOP, _store_at

BOUND = "unassigned_answers_through:"
# The refusals' wording, as _outcomes.py has said it since before this change.
OLDER = (
    "this person id was served only by a release older than the learning loop (before audit "
    "revision 0003), which logged no assignment probability or profile, so no outcome can be "
    "linked to those recommendations"
)
UNLINKABLE_ONLY = (
    "this person id was answered only with a crisis answer or a plan line (/allocate), which no "
    "outcome is linked to"
)
UNKNOWN = (
    "unknown person: the store holds no recommendation for this person id (never served with "
    "this service's salt, or erased since: leave an erased person's rows out of the file or body)"
)


def _bounds(audit) -> list[int]:
    with audit.engine.connect() as connection:
        names = connection.execute(sa.select(store_facts.c.name)).scalars()
        return sorted(int(n[len(BOUND) :]) for n in names if n.startswith(BOUND))


def _refusals(audit, people, measured):
    """Each person's refusal (message) and the SELECTs on `recommendations` it sent."""
    caught = []

    def run():
        with pytest.raises(OutcomeRefused) as refused:
            record_outcomes(
                audit,
                [_outcome(p, measured) for p in people],
                arms=ARMS,
                source="api",
                now=measured,
            )
        caught.append(refused.value.problems)

    statements = _statements_reading_answers(audit.engine, run)
    return [problem["message"] for problem in caught[0]], statements


def _indexed(engine, statement, parameters) -> bool:
    plan = _plan(engine, statement, parameters)
    if engine.dialect.name == "sqlite":
        return not _full_scan(plan)
    return not _full_scan(plan) and ("Index Cond" in plan or "Recheck Cond" in plan)


def test_refusals_read_no_whole_log_and_say_what_they_said(store_url):
    # Pre-loop answers (a ranked one, a crisis answer, a plan line), then the service's own:
    # ranked answers, a crisis answer and a plan line since, for people of their own.
    _store_at(store_url, "0002", BEFORE_THE_LOOP)
    audit = AuditLog(store_url, salt=SALT)
    assert schema_revision(audit.engine) >= "0011"
    _serve(audit, *(f"p-{i}" for i in range(30)))
    later = datetime.now(timezone.utc) + timedelta(seconds=2)
    _answer(audit, "p-crisis-new", at=later, level="crisis", request_id="crisis-new")
    _answer(audit, "p-plan-new", at=later, batch_id="plan-9", request_id="plan-line-new")
    assert _bounds(audit) == [1]  # the pre-loop ranked answer, row 1; none written since
    people = ["p-ranked", "p-crisis", "p-planned", "p-crisis-new", "p-plan-new", "p-never"]
    messages, statements = _refusals(audit, people, later + timedelta(seconds=2))
    assert messages == [OLDER, *[UNLINKABLE_ONLY] * 4, UNKNOWN]
    assert statements
    for statement, parameters in statements:
        assert _indexed(audit.engine, statement, parameters), (
            statement,
            _plan(audit.engine, statement, parameters),
        )
    audit.close()


def test_a_store_with_no_answer_without_assignment_never_reads_for_them(store_url):
    audit = AuditLog(store_url, salt=SALT)
    _serve(audit, "p-1", "p-2")
    _answer(audit, "p-crisis", at=NOW_PLUS(), level="crisis", request_id="crisis-1")
    assert _bounds(audit) == []
    messages, statements = _refusals(audit, ["p-crisis", "p-never"], NOW_PLUS(4))
    assert messages == [UNLINKABLE_ONLY, UNKNOWN]
    for statement, parameters in statements:
        assert _indexed(audit.engine, statement, parameters), statement
    audit.close()


def NOW_PLUS(seconds: int = 2) -> datetime:  # noqa: N802 - reads as the time it is
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def test_a_ranked_record_appended_without_assignment_extends_the_bound(store_url):
    # AuditLog.append takes records without assignment (an older release's did, tests do):
    # the writer names their last row id in the same transaction, so they are still found.
    audit = AuditLog(store_url, salt=SALT)
    _serve(audit, "p-served")
    assert _bounds(audit) == []
    record = {**AUDIT_RECORD, "logged_at": NOW_PLUS(-60)}
    audit.append([{**record, "request_id": "r-a", "person_id": "p-old"}])
    crisis = {**record, "safety_level": "crisis", "recommended": None, "effects": {}}
    audit.append([{**crisis, "request_id": "r-c", "person_id": "p-c"}])  # no bound: a crisis
    with audit.engine.connect() as connection:
        ids = dict(connection.exec_driver_sql("SELECT request_id, id FROM recommendations").all())
    assert _bounds(audit) == [ids["r-a"]]
    unranked = {**record, "recommended": None, "request_id": "r-u", "person_id": "p-unranked"}
    audit.append([unranked, {**record, "request_id": "r-b", "person_id": "p-old-2"}])
    with audit.engine.connect() as connection:
        ids = dict(connection.exec_driver_sql("SELECT request_id, id FROM recommendations").all())
    assert _bounds(audit) == [ids["r-a"], max(ids["r-u"], ids["r-b"])]
    messages, _ = _refusals(audit, ["p-old", "p-old-2", "p-unranked", "p-c", "p-x"], NOW_PLUS())
    # An unranked answer with no assignment: answered, neither ranked nor crisis nor plan line.
    assert messages == [OLDER, OLDER, UNLINKABLE_ONLY, UNLINKABLE_ONLY, UNKNOWN]
    audit.close()


def test_revision_0011_bounds_the_answers_without_assignment_found_at_the_upgrade(store_url):
    # A store at 0010: a ranked answer with no assignment, one with, a crisis answer, a plan
    # line and an erased answer (which matches no one) after them.
    engine = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        command.upgrade(_config(connection), "0010")
        for request_id, batch_id, person, level, arm in [
            ("old", None, "h-old", "routine", "coaching"),
            ("new", None, "h-new", "routine", "coaching"),
            ("crisis", None, "h-crisis", "crisis", None),
            ("plan", "plan-1", "h-plan", "routine", "coaching"),
            ("erased-5", None, "erased", "routine", "coaching"),
        ]:
            connection.execute(
                sa.text(
                    "INSERT INTO recommendations (logged_at, request_id, batch_id, "
                    "model_version, caller_role, person_hash, safety_level, recommended, "
                    "effects) VALUES ('2026-12-03 10:00:00', :r, :b, '1', 'program', :h, "
                    ":level, :arm, '{}')"
                ),
                {"r": request_id, "b": batch_id, "h": person, "level": level, "arm": arm},
            )
        connection.execute(
            sa.text(
                "INSERT INTO assignments (logged_at, request_id, person_hash, model_version, "
                "safety_level, cycle, policy, arm, probability, probabilities, profile) VALUES "
                "('2026-12-03 10:00:00', 'new', 'h-new', '1', 'routine', 0, 'greedy', "
                "'coaching', 1.0, '{}', '{}')"
            )
        )
        command.upgrade(_config(connection), "0011")
    with engine.connect() as connection:
        facts = connection.execute(sa.select(store_facts)).all()
        assert [tuple(f) for f in facts] == [(f"{BOUND}1", "1")]
    with engine.begin() as connection:
        command.downgrade(_config(connection), "0010")
    with engine.connect() as connection:
        assert connection.execute(sa.select(store_facts)).all() == []
    engine.dispose()
