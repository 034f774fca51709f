"""`logged_cohort` builds its frame column by column as rows stream in: the same frame as one
built from a list of records, profiles that lack a field or hold one more included."""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa

from recommender.service import AuditLog, logged_cohort
from recommender.service._audit_export import as_utc
from recommender.service._audit_tables import assignments, outcomes
from recommender.service._outcome_log import CURRENT_OUTCOME
from service_fixtures import SALT
from test_erasure_dec06 import _fill


def _as_records(audit: AuditLog) -> pd.DataFrame:
    """The frame as it was built before: every row a record, then one frame of them."""
    query = (
        sa.select(assignments, outcomes)
        .join(outcomes, outcomes.c.request_id == assignments.c.request_id)
        .where(CURRENT_OUTCOME)
        .order_by(assignments.c.id)
    )
    with audit.engine.connect() as connection:
        rows = connection.execute(query).all()
    records = [
        {
            "person_id": row.person_hash,
            **json.loads(row.profile),
            "intervention": row.arm,
            "propensity": float(row.probability),
            "ee_followup": row.ee_followup,
            "dp_followup": row.dp_followup,
            "pa_followup": row.pa_followup,
            "arm_taken": row.arm_taken,
            "cycle": row.cycle,
            "policy": row.policy,
            "probabilities": row.probabilities,
            "request_id": row.request_id,
            "model_version": row.model_version,
            "recorded_at": as_utc(row.recorded_at),
            "outcome_id": int(row._mapping[outcomes.c.id]),
        }
        for row in rows
    ]
    ordered = pd.DataFrame(records).sort_values(["person_id", "request_id"], kind="stable")
    return ordered.reset_index(drop=True)


def test_the_cohort_frame_is_the_frame_of_its_records_whatever_each_profile_holds():
    audit = AuditLog("sqlite://", salt=SALT)
    _fill(audit)
    with audit.engine.begin() as connection:
        served = connection.execute(
            sa.select(assignments.c.id, assignments.c.profile).order_by(assignments.c.id)
        ).all()
        # p-1's and p-2's answers (p-0's first answer has no outcome: its second has)
        first, second = (json.loads(profile) for _, profile in served[1:3])
        del first["weekly_hours"]  # a row written before the field existed
        second["shift_pattern"] = "nights"  # and one after a field was added
        for (row_id, _), profile in zip(served[1:3], (first, second)):
            connection.execute(
                assignments.update()
                .where(assignments.c.id == row_id)
                .values(profile=json.dumps(profile))
            )
    cohort = logged_cohort(audit)
    expected = _as_records(audit)
    audit.close()
    pd.testing.assert_frame_equal(cohort, expected, check_exact=True)
    # columns in the order they first appear: p-1's profile lacks weekly_hours
    assert list(cohort.columns[-2:]) == ["weekly_hours", "shift_pattern"]
    assert cohort["weekly_hours"].isna().sum() == cohort["shift_pattern"].notna().sum() == 1
    assert len(cohort) == 4  # p-0 .. p-3's outcomes in force (p-0's correction, not its first)
