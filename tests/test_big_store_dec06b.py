"""A store of years: exports stream, so what they hold in memory does not grow with the rows.

The 2-million-row measurements are in the bigstore report; here the behaviour behind them, on
a few tens of thousands of rows: memory traced (tracemalloc, not time) while an export of
1,000 rows and one of 5,000 (chunks of 200 rows) are read and turned into CSV.
"""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timedelta, timezone

import pytest

from recommender.catalog import load_catalog
from recommender.service import (
    OUTCOME_HISTORY_COLUMNS,
    AuditLog,
    RecommendationEngine,
    audit_csv,
    audit_csv_chunks,
    outcome_history,
    outcome_history_csv,
    outcome_history_rows,
    load_serve_config,
    record_outcomes,
    rows_csv_chunks,
)
from service_fixtures import SALT, LinearModel, profile

ARMS = ("coaching", "mindfulness", "peer_group", "resilience_training", "balint_group", "none")
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
CATALOG = load_catalog()


def _records(first: int, count: int) -> list[dict]:
    return [
        {
            "request_id": f"r-{i:07d}",
            "model_version": "5",
            "caller_role": "program",
            "person_hash": f"{i % 5000:064x}",
            "safety_level": "routine",
            "recommended": "coaching",
            "ranking_meaningful": True,
            "effects": {arm: [-4.4 + k, -5.4 + k, -3.4 + k] for k, arm in enumerate(ARMS)},
            "dp_pa": (-1.4, -1.8, -1.1, 1.1, 0.85, 1.35),
            "logged_at": START + timedelta(minutes=i),
        }
        for i in range(first, first + count)
    ]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two stores, of 1,000 and of 5,000 answers."""
    folder = tmp_path_factory.mktemp("big_store")
    logs = {}
    for rows in (1_000, 5_000):
        log = AuditLog(f"sqlite:///{folder / f'audit{rows}.db'}", salt=SALT)
        for first in range(0, rows, 10_000):
            log.append(_records(first, min(10_000, rows - first)))
        logs[rows] = log
    yield logs
    for log in logs.values():
        log.close()


@pytest.fixture(scope="module")
def outcome_store(tmp_path_factory):
    """600 people served, an outcome for each, and a correction of every tenth (so the
    history's join of each row to the row replacing it has both kinds of rows)."""
    log = AuditLog(f"sqlite:///{tmp_path_factory.mktemp('outcomes') / 'audit.db'}", salt=SALT)
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=CATALOG, config=load_serve_config(), audit=log
    )
    people = [engine.check_row(profile(person_id=f"p-{i}")) for i in range(600)]
    engine.recommend(people, caller_role="program")
    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    rows = [
        {
            "person_id": f"p-{i}",
            "measured_at": (now - timedelta(seconds=4)).isoformat(),
            "arm_taken": "coaching",
            "ee_followup": 20 + i % 10,
            "dp_followup": 7,
            "pa_followup": 38,
        }
        for i in range(600)
    ]
    record_outcomes(log, rows, arms=CATALOG.arm_ids, source="test", now=now)
    fixed = [{**row, "ee_followup": 40} for row in rows[::10]]
    later = now + timedelta(minutes=1)  # the corrections' recorded_at: an export's since
    record_outcomes(log, fixed, arms=CATALOG.arm_ids, source="fix", now=later, correct=True)
    yield log
    log.close()


def _peak(pieces) -> tuple[int, int, int]:
    """Peak traced bytes while ``pieces`` (made inside the trace) are taken and let go, with
    how many pieces and lines there were."""
    tracemalloc.start()
    try:
        count = lines = 0
        for piece in pieces():
            count += 1
            lines += piece.count("\n")
        return tracemalloc.get_traced_memory()[1], count, lines
    finally:
        tracemalloc.stop()


def _chunks(log):
    return audit_csv_chunks(log.export_rows(chunk_rows=200), chunk_rows=200)


def test_an_answers_export_holds_a_chunk_not_the_store(stores):
    small, pieces_small, lines_small = _peak(lambda: _chunks(stores[1_000]))
    large, pieces_large, lines_large = _peak(lambda: _chunks(stores[5_000]))
    # the header, then a piece per chunk of rows
    assert (lines_small, lines_large) == (1_001, 5_001)
    assert pieces_large == 1 + 5_000 // 200
    # five times the rows, about the same memory (held whole, it was five times as much)
    assert large < 1.5 * small, (small, large)


def test_the_streamed_export_is_the_export(stores):
    log = stores[1_000]
    assert "".join(audit_csv_chunks(log.export_rows())) == audit_csv(log.export())
    since = START + timedelta(minutes=990)
    rows = log.export(since=since)
    assert [r["request_id"] for r in rows] == [f"r-{i:07d}" for i in range(990, 1_000)]
    assert rows[0]["logged_at"] == since and rows[0]["effects"]["coaching"] == [-4.4, -5.4, -3.4]


def test_an_outcome_history_export_streams_too(outcome_store):
    history = outcome_history(outcome_store)
    replaced = [row for row in history if row["superseded_by"] is not None]
    assert len(history) == 660 and len(replaced) == 60
    assert {row["ee_followup"] for row in history if row["corrects"] is not None} == {40}
    streamed = outcome_history_rows(outcome_store, chunk_rows=50)
    pieces = list(rows_csv_chunks(streamed, OUTCOME_HISTORY_COLUMNS, chunk_rows=200))
    assert len(pieces) == 1 + 4  # the header, then 200 + 200 + 200 + 60 rows
    assert "".join(pieces) == outcome_history_csv(history)
    since = history[-1]["recorded_at"]
    corrections = list(outcome_history_rows(outcome_store, since=since, chunk_rows=7))
    assert corrections == history[600:] and len(corrections) == 60


def _body(response) -> bytes:
    import asyncio

    async def read():
        return b"".join([piece async for piece in response.body_iterator])

    return asyncio.run(read())


def test_the_services_export_answers_the_whole_export(stores):
    from recommender.service._pages import audit_export_response

    log = stores[1_000]
    response = audit_export_response(log, None)
    assert response.status_code == 200 and response.media_type == "text/csv"
    assert _body(response).decode() == audit_csv(log.export())


def test_a_store_failing_midway_is_a_503_never_a_200_cut_short(stores, monkeypatch):
    """A 200 whose body stops early could be taken for the whole log by an auditor."""
    from recommender.service._pages import audit_export_response

    log = stores[1_000]
    read = log.export_rows

    def failing(since=None):
        for i, row in enumerate(read(since=since, chunk_rows=200)):
            if i == 700:  # past the first chunks read from the store
                raise OSError("disk I/O error")
            yield row

    monkeypatch.setattr(log, "export_rows", failing)
    response = audit_export_response(log, None)
    assert response.status_code == 503
    assert b"could not be read (OSError)" in response.body
