"""Linking an outcome reads the answers' log through indexes, on SQLite and PostgreSQL.

`recommendations.person_hash` has no full index (every answer would pay a random B-tree insert
for it): a person's ranked answers are found through `assignments`, and their crisis answers
and plan lines through a partial index over those rows alone (revision 0006). Without it,
linking one outcome read every record of the log. These tests read the plans of the very
statements linking runs, not the time it takes.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from recommender.catalog import load_catalog
from recommender.service import (
    AuditLog,
    OutcomeRefused,
    RecommendationEngine,
    load_serve_config,
    record_outcomes,
)
from recommender.service._migrate import schema_revision
from service_fixtures import SALT, LinearModel, profile
from test_upgrade_old_homes import _store_at

ARMS = load_catalog().arm_ids
INDEX = "ix_recommendations_unlinkable_person"
NOW = datetime.now(timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return request.getfixturevalue("postgres").database("audit")


def _serve(audit, *people):
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    rows = [engine.check_row(profile(person_id=person)) for person in people]
    return engine.recommend(rows, caller_role="program")


def _outcome(person_id, measured_at):
    return {
        "person_id": person_id,
        "measured_at": measured_at.isoformat(),
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 7,
        "pa_followup": 38,
    }


def _answer(audit, person_id, *, at, level="routine", batch_id=None, request_id):
    """A crisis answer or a plan line, written as the service writes them (no assignment)."""
    audit.append(
        [
            {
                "request_id": request_id,
                "batch_id": batch_id,
                "logged_at": at,
                "model_version": "5",
                "caller_role": "program",
                "person_id": person_id,
                "safety_level": level,
                "recommended": None if level == "crisis" else "coaching",
                "ranking_meaningful": None,
                "effects": {},
            }
        ]
    )


def _statements_reading_answers(engine, run):
    """The SELECTs on `recommendations` that ``run()`` sends, with their parameters."""
    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "recommendations" in statement:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", grab)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", grab)
    return seen


def _plan(engine, statement, parameters) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in rows)
        # A table of a few rows is read whole by PostgreSQL's planner whatever its indexes; with
        # sequential scans priced out, it takes the index wherever the index can answer.
        connection.exec_driver_sql("SET enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(row[0] for row in rows)


def _full_scan(plan: str) -> bool:
    return "SCAN recommendations" in plan or "Seq Scan on recommendations" in plan


def test_linking_an_outcome_reads_answers_only_through_the_partial_index(store_url):
    audit = AuditLog(store_url, salt=SALT)
    _serve(audit, "p-linked", "p-crisis")
    later = datetime.now(timezone.utc) + timedelta(seconds=2)
    _answer(audit, "p-crisis", at=later, level="crisis", request_id="crisis-1")
    _answer(audit, "p-planned", at=later, batch_id="plan-1", request_id="plan-line-1")
    measured = later + timedelta(seconds=2)
    report = []
    statements = _statements_reading_answers(
        audit.engine,
        lambda: report.append(
            record_outcomes(
                audit,
                [_outcome("p-linked", measured)],
                arms=ARMS,
                source="api",
                now=measured,
            )
        ),
    )
    assert report[0].recorded == 1
    # The crisis answers and plan lines since the recommendation: one statement, indexed.
    assert len(statements) == 1, [s for s, _ in statements]
    plan = _plan(audit.engine, *statements[0])
    assert INDEX in plan and not _full_scan(plan), plan

    # A crisis answer since the recommendation is still found, through the same index.
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(
            audit, [_outcome("p-crisis", measured)], arms=ARMS, source="api", now=measured
        )
    (problem,) = caught.value.problems
    assert problem["field"] == "outcomes[0].measured_at"
    assert "crisis answer at" in problem["message"]
    # A person given only a plan line is still told so, and one never served still is.
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(
            audit,
            [_outcome("p-planned", measured), _outcome("p-never", measured)],
            arms=ARMS,
            source="api",
            now=measured,
        )
    planned, never = caught.value.problems
    assert planned["field"] == "outcomes[0].person_id"
    assert "crisis answer or a plan line" in planned["message"]
    assert never["field"] == "outcomes[1].person_id"
    assert never["message"].startswith("unknown person")
    audit.close()


def test_ranked_answers_stay_out_of_the_partial_index(store_url):
    # The answer path's rows are not in the index: writing them costs it nothing.
    audit = AuditLog(store_url, salt=SALT)
    _serve(audit, *(f"p-{i}" for i in range(20)))
    _answer(audit, "p-crisis", at=NOW, level="crisis", request_id="crisis-1")
    _answer(audit, "p-planned", at=NOW, batch_id="plan-7", request_id="plan-line-7")
    _answer(audit, "p-batch", at=NOW, batch_id="batch-7", request_id="batch-7-0")
    engine = audit.engine
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            (where,) = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (INDEX,)
            ).one()
            indexed = connection.exec_driver_sql(
                f"SELECT request_id FROM recommendations INDEXED BY {INDEX} "
                "WHERE person_hash IS NOT NULL AND (safety_level = 'crisis' OR "
                "batch_id LIKE 'plan-%') ORDER BY request_id"
            ).scalars()
        else:
            (where,) = connection.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %(name)s", {"name": INDEX}
            ).one()
            indexed = connection.exec_driver_sql(
                "SELECT request_id FROM recommendations WHERE safety_level = 'crisis' OR "
                "batch_id LIKE 'plan-%%' ORDER BY request_id"
            ).scalars()
        assert list(indexed) == ["crisis-1", "plan-line-7"]
    assert "WHERE" in where.upper() and "crisis" in where and "plan-" in where, where
    audit.close()


def test_a_store_at_revision_0005_gets_the_index_over_its_earlier_answers(tmp_path):
    # Built over the rows already there: a crisis answer logged before the upgrade still
    # refuses an outcome measured after it, found through the index.
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _store_at(url, "0005", [("crisis-1", None, "p-old", "crisis", None)])  # at 10:00
    hashing = AuditLog("sqlite://", salt=SALT)
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # the person's ranked answer an hour before
        connection.execute(
            sa.text(
                "INSERT INTO assignments (logged_at, request_id, person_hash, model_version, "
                "safety_level, cycle, policy, arm, probability, probabilities, profile) VALUES "
                "('2026-12-03 09:00:00.000000', 'ranked-1', :h, '1', 'routine', 0, 'greedy', "
                "'coaching', 1.0, '{\"coaching\": 1.0}', '{}')"
            ),
            {"h": hashing.person_hash("p-old")},
        )
    hashing.close()
    assert INDEX not in {i["name"] for i in sa.inspect(engine).get_indexes("recommendations")}
    engine.dispose()

    audit = AuditLog(url, salt=SALT)  # upgrades the store
    assert schema_revision(audit.engine) >= "0006"
    assert INDEX in {i["name"] for i in sa.inspect(audit.engine).get_indexes("recommendations")}
    measured = datetime(2026, 12, 3, 11, tzinfo=timezone.utc)
    statements = []

    def refused():
        with pytest.raises(OutcomeRefused) as caught:
            record_outcomes(
                audit, [_outcome("p-old", measured)], arms=ARMS, source="api", now=measured
            )
        statements.append(caught.value.problems)

    (statement,) = _statements_reading_answers(audit.engine, refused)
    ((problem,),) = statements
    assert problem["field"] == "outcomes[0].measured_at"
    assert "crisis answer at 2026-12-03T10:00:00+00:00" in problem["message"]
    assert INDEX in _plan(audit.engine, *statement)
    audit.close()
