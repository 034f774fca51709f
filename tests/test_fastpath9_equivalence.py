"""The ninth pass's changes to the 1,000-row path give what they replace, exactly.

- The audit records are handed to the writer before the answers are worded, and the answers
  wait for the commit: no answer is returned before its records are committed, and a store
  that cannot be written still fails the request (crisis answers aside), with nothing stored.
- Rows go to the store as values in column order: what is stored (values and their types)
  equals SQLAlchemy's own insert of the same records.
- People alike in offered list, eligibility and the fields the eligibility rules read share
  one ``offered_arms``: a batch's answers and audit rows equal each person's answered alone,
  under a catalog whose rules read specialty and years in practice too.
"""

import dataclasses
import datetime as dt
import math
import random
import threading
import time

import pytest

from recommender.catalog import load_catalog
from recommender.service import AuditLog, AuditUnavailable, RecommendationEngine
from recommender.service._audit_writer import GroupWriter
from test_fastpath4_equivalence import engine_for, varied_bodies, varied_model
from test_fastpath7_equivalence import _select, stored_by_request


def _ruled_catalog():
    """The catalog with eligibility rules that read specialty and years in practice."""
    catalog = load_catalog()
    arms = []
    for arm in catalog.arms:
        rule = arm.eligibility
        if arm.id == "coaching":
            rule = dataclasses.replace(rule, min_years_in_practice=2.0, max_years_in_practice=40.0)
        elif arm.id == "mindfulness":
            rule = dataclasses.replace(
                rule, specialties=("internal_medicine", "pediatrics", "surgery")
            )
        elif arm.id == "peer_group":
            rule = dataclasses.replace(rule, min_years_in_practice=0.0)
        arms.append(dataclasses.replace(arm, eligibility=rule))
    return dataclasses.replace(catalog, arms=tuple(arms))


def _ruled_engine(policy: str) -> RecommendationEngine:
    plain = engine_for(policy, cycle=3)
    return RecommendationEngine(
        varied_model(),
        "9",
        catalog=_ruled_catalog(),
        config=plain.config,
        audit=AuditLog("sqlite://", salt="s"),
    )


@pytest.mark.parametrize("policy", ["thompson", "greedy"])
def test_people_alike_share_offered_arms_and_answers_are_each_persons_own(policy):
    engine = _ruled_engine(policy)
    bodies = varied_bodies(400, seed=90 + len(policy))
    rng = random.Random(9)
    for body in bodies[::7]:  # years on either side of the rules' bounds, -0.0 and ints too
        body["years_in_practice"] = rng.choice([0.0, -0.0, 1.99, 2.0, 2, 40.0, 40.5, 41])
        body["age"] = max(body["age"], 57)  # 41 years in practice began at 16 at the latest
    rows, _, errors = engine.check_rows(bodies)
    together = engine.recommend(rows, caller_role="program", batch_id="b")
    alone = [engine.recommend([row], caller_role="program")[0] for row in rows]
    reasons = {e["reason"] for a in together for e in a["excluded"]}
    assert any("years in practice" in r for r in reasons), reasons
    assert any("specialty" in r for r in reasons), reasons
    for a, b in zip(together, alone):
        assert repr({**a, "request_id": ""}) == repr({**b, "request_id": ""})
    stored = stored_by_request(engine)
    for a, b in zip(together, alone):
        assert a["request_id"] in stored["recommendations"]
        for by_request in stored.values():
            assert by_request.get(a["request_id"]) == by_request.get(b["request_id"])


PLUS_5 = dt.timezone(dt.timedelta(hours=5))


def _records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    stamp = dt.datetime(2026, 12, 4, 18, 0, 0, 123456, tzinfo=dt.timezone.utc)
    out = []
    for i in range(n):
        record = {
            "request_id": f"r{seed}-{i}",
            "batch_id": rng.choice([None, "b1"]),
            "model_version": rng.choice(["9", 9]),
            "caller_role": "program",
            "person_id": f"p{i}",
            "safety_level": rng.choice(["routine", "referral", "crisis"]),
            "recommended": rng.choice([None, "coaching"]),
            "ranking_meaningful": rng.choice([None, True, False]),
            "effects": rng.choice([{}, {"coaching": (-4.25, -6.0, -2.5)}]),
            # the recommended arm's DP and PA figures: none, all, or DP alone (NaN for PA)
            "dp_pa": rng.choice(
                [None, (-1.5, -2.0, -1.0, 0.25, 0.0, 0.5), (-1.5, -2.0, -1.0, *[math.nan] * 3)]
            ),
        }
        # Given times (the time of the append otherwise differs between the two stores),
        # equal instants in another zone among them.
        record["logged_at"] = rng.choice(
            [stamp, stamp + dt.timedelta(seconds=1), stamp.astimezone(PLUS_5)]
        )
        if rng.random() < 0.2:
            record["person_hash"] = f"{i:064x}"
        if rng.random() < 0.7:
            record["assignment"] = {
                "arm": "coaching",
                "probability": rng.choice([1, 0.25, rng.random(), 1e-300]),
                "policy": "thompson",
                "cycle": rng.choice([1, 2.0]),
                "probabilities": {"coaching": 0.25, "none": 0.75},
            }
            record["profile"] = rng.choice([{}, {"age": 41, "role": "nurse", "weekly_hours": 40.5}])
        out.append(record)
    return out


def test_rows_as_values_store_what_sqlalchemys_insert_stores(tmp_path):
    # The SQLite path (values in column order, the column types' conversions applied here)
    # against SQLAlchemy's own executemany of the same rows as dicts.
    stored = {}
    for name in ("driver", "sqlalchemy"):
        log = AuditLog(f"sqlite:///{tmp_path / name}.db", salt="s")
        if name == "sqlalchemy":
            log._writer()._driver_inserts = None
        for seed in range(3):
            assert log.append(_records(150, seed)) == 150
        with log.engine.connect() as connection:
            stored[name] = {
                table: [
                    row[1:]
                    for row in connection.exec_driver_sql(
                        f"SELECT * FROM {table} ORDER BY id"
                    ).all()
                ]
                for table in ("recommendations", "assignments")
            }
        log.close()
    assert len(stored["driver"]["recommendations"]) == 450
    assert stored["driver"] == stored["sqlalchemy"]
    types = {n: [tuple(map(type, r)) for t in s.values() for r in t] for n, s in stored.items()}
    assert types["driver"] == types["sqlalchemy"]


def test_no_answer_is_returned_before_its_records_are_committed(monkeypatch):
    engine = engine_for("thompson")
    rows, _, _ = engine.check_rows(varied_bodies(200, seed=3))
    committed = []
    plain = GroupWriter._insert

    def slow(self, *args, **kwargs):
        time.sleep(0.3)  # longer than wording the answers takes
        plain(self, *args, **kwargs)
        committed.append(time.perf_counter())

    monkeypatch.setattr(GroupWriter, "_insert", slow)
    answers = engine.recommend(rows, caller_role="program", batch_id="b")
    returned = time.perf_counter()
    assert len(committed) == 1 and committed[0] <= returned
    ids = {row[0] for row in _select(engine, "recommendations", "request_id")}
    assert {a["request_id"] for a in answers} == ids


def test_a_store_that_cannot_be_written_fails_the_batch_but_not_its_crisis_answers(
    monkeypatch,
):
    engine = engine_for("thompson")
    rows, _, _ = engine.check_rows(varied_bodies(200, seed=4))
    crisis = [i for i, row in enumerate(rows) if row.get("crisis_risk")]
    assert crisis
    started = threading.Event()

    def broken(self, *args, **kwargs):
        started.set()
        raise OSError("disk full")

    monkeypatch.setattr(GroupWriter, "_insert", broken)
    with pytest.raises(AuditUnavailable) as failure:
        engine.recommend(rows, caller_role="program", batch_id="b")
    assert started.is_set()
    assert sorted(failure.value.crisis) == crisis
    for answer in failure.value.crisis.values():
        assert answer["safety"]["recorded_in"].startswith("service log")
    assert _select(engine, "recommendations", "request_id") == []
