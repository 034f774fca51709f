"""The seventh pass's shortcuts of the 1,000-row path give what the plain path gives, exactly.

Each shortcut is held against the reference it replaces on varied input: the audit store's
SQLite insert through the driver against SQLAlchemy's own insert (the very stored values), and
a batch's answers and audit rows against each person's answered alone.
"""

import datetime as dt
import random

import pytest
import sqlalchemy as sa

from recommender.service._audit_tables import assignments, recommendations
from recommender.service._audit_writer import _DriverInsert
from recommender.service._migrate import upgrade_schema
from test_fastpath4_equivalence import engine_for, varied_bodies


def _stored(insert) -> dict:
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    upgrade_schema(engine)
    with engine.begin() as connection:
        insert(connection)
    with engine.connect() as connection:
        return {
            table: connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").all()
            for table in ("recommendations", "assignments")
        }


def test_the_driver_insert_stores_what_sqlalchemys_insert_stores():
    rng = random.Random(3)
    zones = [dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30)), None]
    now = dt.datetime(2026, 12, 4, 9, 41, 3, 108812, tzinfo=dt.timezone.utc)
    rows, served = [], []
    for i in range(300):
        # One shared timestamp (as a request's rows), the same instant in other zones, naive.
        zone = rng.choice(zones)
        stamp = now if i % 3 else now.astimezone(zone) if zone else now.replace(tzinfo=None)
        rows.append(
            {
                "logged_at": stamp,
                "request_id": f"r{i}",
                "batch_id": rng.choice([None, "b1"]),
                "model_version": "7",
                "caller_role": "program",
                "person_hash": f"{i:064x}",
                "safety_level": rng.choice(["routine", "referral", "crisis"]),
                "recommended": rng.choice([None, "coaching", "none"]),
                "ranking_meaningful": rng.choice([None, True, False]),
                "effects": '{"coaching":[-4.25,-6.0,-2.5]}',
                # the served arm's DP and PA figures (revision 0005): null where none was shown
                **{
                    f"{outcome}_{part}": rng.choice([None, -1.25, 0.5 + i / 7])
                    for outcome in ("dp", "pa")
                    for part in ("effect", "lower", "upper")
                },
            }
        )
        if i % 4:
            served.append(
                {
                    "logged_at": stamp,
                    "request_id": f"r{i}",
                    "person_hash": f"{i:064x}",
                    "model_version": "7",
                    "safety_level": "routine",
                    "cycle": i % 3,
                    "policy": rng.choice(["thompson", "greedy"]),
                    "arm": "coaching",
                    "probability": rng.choice([1, 0.25, rng.random(), 1e-300]),
                    "probabilities": '{"coaching":1.0}',
                    "profile": '{"age":41}',
                }
            )

    def plain(connection):
        connection.execute(recommendations.insert(), rows)
        connection.execute(assignments.insert(), served)

    def driver(connection):
        for table, records in ((recommendations, rows), (assignments, served)):
            _DriverInsert(table, connection.dialect)(connection, records)

    expected, got = _stored(plain), _stored(driver)
    assert len(expected["recommendations"]) == 300 and len(expected["assignments"]) == 225
    assert got == expected
    # Types as stored too (SQLite keeps 1 and 1.0 apart).
    assert [tuple(map(type, r)) for t in got for r in got[t]] == [
        tuple(map(type, r)) for t in expected for r in expected[t]
    ]


@pytest.mark.parametrize("policy", ["thompson", "epsilon"])
def test_a_batchs_answers_and_audit_rows_are_each_persons_own(policy):
    # Every vectorised step of a batch (the shared offered-list rankings, the estimate check,
    # rank_many, assign_many, top_contributions_many) against one person at a time, where each
    # takes its one-person path; request ids, times and the batch id aside.
    engine = engine_for(policy, cycle=5)
    rows, _, _ = engine.check_rows(varied_bodies(300, seed=70 + len(policy)))
    together = engine.recommend(rows, caller_role="program", batch_id="b")
    alone = [engine.recommend([row], caller_role="program")[0] for row in rows]
    assert any(a["excluded"] for a in together) and any(a["assignment"] for a in together)
    assert sum(a["safety"]["level"] == "crisis" for a in together) > 3
    for a, b in zip(together, alone):
        assert repr({**a, "request_id": ""}) == repr({**b, "request_id": ""})
    stored = stored_by_request(engine)
    assert len(stored["assignments"]) > 300  # every ranked row, answered twice
    for a, b in zip(together, alone):
        assert a["request_id"] in stored["recommendations"]
        for by_request in stored.values():
            assert by_request.get(a["request_id"]) == by_request.get(b["request_id"])


# What an audit row stores of its answer (its id, time and batch aside).
STORED = {
    "recommendations": (
        "model_version caller_role person_hash safety_level recommended ranking_meaningful effects"
    ).split(),
    "assignments": (
        "person_hash model_version safety_level cycle policy arm probability probabilities profile"
    ).split(),
}


def stored_by_request(engine) -> dict:
    """Per table, what each audit row stores of its answer, by request id."""
    return {
        table: {
            row[0]: row[1:]
            for row in _select(engine, table, "request_id, " + ", ".join(STORED[table]))
        }
        for table in STORED
    }


def _select(engine, table, what):
    with engine.audit.engine.connect() as connection:
        return connection.exec_driver_sql(f"SELECT {what} FROM {table}").all()
