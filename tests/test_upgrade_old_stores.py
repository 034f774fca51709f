"""A home made by an older release, opened by this one: nothing lost, and what cannot be used
said as old, never as something else.

The fixtures are built here, by the migrations themselves (an audit store at an older revision)
or by hand (an artifact without a newer field), never by running an older commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from recommender.catalog import load_catalog
from recommender.service import AuditLog, OutcomeRefused, logged_cohort, record_outcomes
from recommender.service._migrate import _config, schema_revision
from service_fixtures import SALT

ARMS = load_catalog().arm_ids
# Rows as a release before the learning loop (revision 0002) wrote them: a ranked answer, a
# crisis answer and a plan line, each for its own person; no assignment table existed.
BEFORE_THE_LOOP = [
    ("old-ranked", None, "p-ranked", "routine", "coaching"),
    ("old-crisis", None, "p-crisis", "crisis", None),
    ("old-plan", "plan-1", "p-planned", "routine", "mindfulness"),
]


def _store_at(url: str, revision: str, rows) -> None:
    hashing = AuditLog("sqlite://", salt=SALT)  # the salt the old service hashed ids with
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)
        for request_id, batch_id, person_id, level, arm in rows:
            connection.execute(
                sa.text(
                    "INSERT INTO recommendations (logged_at, request_id, batch_id, "
                    "model_version, caller_role, person_hash, safety_level, recommended, "
                    "ranking_meaningful, effects) VALUES ('2026-12-03 10:00:00.000000', :r, :b, "
                    "'1', 'program', :h, :level, :arm, NULL, '{}')"
                ),
                {
                    "r": request_id,
                    "b": batch_id,
                    "h": hashing.person_hash(person_id),
                    "level": level,
                    "arm": arm,
                },
            )
    assert schema_revision(engine) == revision
    engine.dispose()
    hashing.close()


def _outcome(person_id: str) -> dict:
    return {
        "person_id": person_id,
        "measured_at": datetime.now(timezone.utc).isoformat(),
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 7,
        "pa_followup": 38,
    }


def test_an_outcome_of_a_person_served_before_the_learning_loop_says_so(tmp_path):
    # A ranked answer of an older release has no assignment (probability, profile), so no
    # outcome links to it; it used to be refused as "answered only with a crisis answer or a
    # plan line", which sent the program looking for a crisis answer that never was.
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _store_at(url, "0002", BEFORE_THE_LOOP)
    audit = AuditLog(url, salt=SALT)
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(
            audit,
            [_outcome("p-ranked"), _outcome("p-crisis"), _outcome("p-planned")],
            arms=ARMS,
            source="api",
            now=datetime.now(timezone.utc) + timedelta(seconds=5),
        )
    ranked, crisis, planned = caught.value.problems
    assert caught.value.status == 422
    assert ranked["field"] == "outcomes[0].person_id" and ranked["value"] == "(hidden)"
    assert "older than the learning loop" in ranked["message"]
    assert "revision 0003" in ranked["message"]
    assert "serve the person again" in ranked["accepted"]
    for problem in (crisis, planned):
        assert "crisis answer or a plan line" in problem["message"], problem
    assert logged_cohort(audit).empty
    assert [row["request_id"] for row in audit.export()] == [r[0] for r in BEFORE_THE_LOOP]
    audit.close()
