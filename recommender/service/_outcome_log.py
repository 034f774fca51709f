"""The outcomes read out: the training cohort and the auditor's history of every outcome row.

Outcomes are append-only: a correction is a row of its own naming the row it replaces
(``corrects``), which stays as it was. Training reads each recommendation's outcome in force,
the row no other row corrects; the history shows every row with who replaced it and when.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recommender.service._audit import AuditLog
from recommender.errors import InputError
from recommender.service._audit_export import (
    EXPORT_CHUNK_ROWS,
    as_utc,
    audit_csv_chunks,
    rows_csv,
    rows_csv_chunks,
    stored_since,
)
from recommender.service._audit_tables import assignments, outcomes
from recommender.service._erasure import ERASURE_COLUMNS, erasure_history

__all__ = [
    "logged_cohort",
    "outcome_history",
    "outcome_history_rows",
    "outcome_history_csv",
    "export_of",
    "EXPORT_TABLES",
    "EXPORT_TABLES_ACCEPTED",
    "OUTCOME_HISTORY_COLUMNS",
    "CURRENT_OUTCOME",
]

_later = outcomes.alias("correction")
# The recommendation's outcome in force: the row no other row corrects (its latest correction,
# or its first outcome where it was never corrected).
CURRENT_OUTCOME = ~sa.exists().where(_later.c.corrects == outcomes.c.id)
# Each row as stored, then who replaced it and when: the correcting row's id, recorded_at and
# source (empty where the row is in force).
OUTCOME_HISTORY_COLUMNS = (
    *(c.name for c in outcomes.columns),
    "superseded_by",
    "superseded_at",
    "superseded_source",
)


def logged_cohort(audit: AuditLog) -> pd.DataFrame:
    """Served recommendations joined with their outcomes, one row per outcome: the latest
    correction of each, where it was corrected.

    Columns: the profile fields, ``person_id`` (the salted hash: pseudonymous, as the data
    contract asks), ``intervention`` (the arm served: the model learns the effect of
    recommending, intention to treat), ``propensity`` (its logged probability), ``arm_taken``,
    ``cycle``, ``policy``, ``probabilities`` (JSON), ``request_id``, ``model_version`` (the
    version that served the row), ``recorded_at`` (when its outcome, or the correction in force,
    was stored, in UTC), ``outcome_id`` (that outcome row's id in this store) and the follow-up
    scores.

    Rows come in the order of the person hash, then the request id: keys of the rows themselves,
    so the same rows read from another store (PostgreSQL or SQLite, a store rebuilt or filled in
    another order) come in the same order, and a model trained on them is the same. The store's
    own ids follow the order rows were written, and a model fitted in that order followed it.
    """
    query = (
        sa.select(
            assignments,
            outcomes.c.arm_taken,
            outcomes.c.measured_at,
            outcomes.c.recorded_at,
            outcomes.c.id.label("outcome_id"),
            outcomes.c.ee_followup,
            outcomes.c.dp_followup,
            outcomes.c.pa_followup,
        )
        .join(outcomes, outcomes.c.request_id == assignments.c.request_id)
        .where(CURRENT_OUTCOME)
        .order_by(assignments.c.id)
    )
    # Column by column as the rows stream in: a list of rows and a list of records before the
    # frame held the cohort twice over. A profile field absent from a row (written before the
    # field existed) is NaN, and a column comes where it first appears, as a frame of records has.
    columns: dict[str, list] = {}
    count = 0
    with audit.engine.connect() as connection:
        result = connection.execution_options(yield_per=EXPORT_CHUNK_ROWS).execute(query)
        for row in result.mappings():
            for name, value in _cohort_record(row).items():
                column = columns.get(name)
                if column is None:
                    column = columns[name] = [np.nan] * count
                column.append(value)
            count += 1
            for column in columns.values():
                if len(column) < count:
                    column.append(np.nan)
    if not count:
        return pd.DataFrame()
    # sorted here, not by the database: a text ORDER BY follows the database's collation
    ordered = pd.DataFrame(columns).sort_values(["person_id", "request_id"], kind="stable")
    return ordered.reset_index(drop=True)


def _cohort_record(row: Mapping) -> dict:
    """One :func:`logged_cohort` row, its fields in column order."""
    return {
        "person_id": row["person_hash"],
        **json.loads(row["profile"]),
        "intervention": row["arm"],
        "propensity": float(row["probability"]),
        "ee_followup": row["ee_followup"],
        "dp_followup": row["dp_followup"],
        "pa_followup": row["pa_followup"],
        "arm_taken": row["arm_taken"],
        "cycle": row["cycle"],
        "policy": row["policy"],
        "probabilities": row["probabilities"],
        "request_id": row["request_id"],
        "model_version": row["model_version"],
        "recorded_at": as_utc(row["recorded_at"]),
        "outcome_id": int(row["outcome_id"]),
    }


def outcome_history(audit: AuditLog, *, since: datetime | None = None) -> list[dict]:
    """Every outcome row (recorded from ``since`` on), oldest first, corrections and the rows
    they replaced alike, with :data:`OUTCOME_HISTORY_COLUMNS`; times in UTC."""
    return list(outcome_history_rows(audit, since=since))


def outcome_history_rows(
    audit: AuditLog, *, since: datetime | None = None, chunk_rows: int = EXPORT_CHUNK_ROWS
) -> Iterator[dict]:
    """:func:`outcome_history`'s rows one at a time, read from the store ``chunk_rows`` at a
    time (see :meth:`AuditLog.export_rows`)."""
    query = (
        sa.select(
            outcomes,
            _later.c.id.label("superseded_by"),
            _later.c.recorded_at.label("superseded_at"),
            _later.c.source.label("superseded_source"),
        )
        .outerjoin(_later, _later.c.corrects == outcomes.c.id)
        .order_by(outcomes.c.id)
    )
    if since is not None:
        query = query.where(outcomes.c.recorded_at >= stored_since(since, audit.engine))
    with audit.engine.connect() as connection:
        result = connection.execution_options(yield_per=chunk_rows).execute(query)
        for record in result:
            row = dict(record._mapping)
            for name in ("recorded_at", "measured_at", "superseded_at"):
                if row[name] is not None:
                    row[name] = as_utc(row[name])
            yield row


def outcome_history_csv(rows: Iterable[Mapping]) -> str:
    """Outcome rows (as from :func:`outcome_history`) as CSV text; times in ISO 8601, empty
    where there is none."""
    return rows_csv(rows, OUTCOME_HISTORY_COLUMNS)


# What an audit export can read out, as pieces of CSV text (the header, then a chunk of rows
# each, read from the store as they are taken) from a store and a ``since`` (or None).
EXPORT_TABLES = {
    "recommendations": lambda audit, since: audit_csv_chunks(audit.export_rows(since=since)),
    "outcomes": lambda audit, since: rows_csv_chunks(
        outcome_history_rows(audit, since=since), OUTCOME_HISTORY_COLUMNS
    ),
    # When and how many, never whose: what POST /erasures answers with an erasure_id, and where
    # an erasure stopped between parts (or still running past a 504) shows no completed_at.
    "erasures": lambda audit, since: rows_csv_chunks(
        erasure_history(audit, since=since), ERASURE_COLUMNS
    ),
}


# What an export's table takes: the answers, every outcome with its corrections, the erasures.
EXPORT_TABLES_ACCEPTED = "one of " + ", ".join(EXPORT_TABLES)


def export_of(table: str):
    """The export of ``table`` (one of :data:`EXPORT_TABLES`), or :class:`InputError` naming
    what is accepted."""
    if table in EXPORT_TABLES:
        return EXPORT_TABLES[table]
    raise InputError(
        f"table: {table[:120]!r} is not accepted; accepted: {EXPORT_TABLES_ACCEPTED}",
        problems=[
            {
                "field": "table",
                "value": table[:120],
                "message": "unknown table",
                "accepted": EXPORT_TABLES_ACCEPTED,
            }
        ],
    )
