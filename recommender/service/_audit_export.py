"""The audit log read out for auditors: rows as CSV, and the ``since`` of an export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone

from recommender.errors import InputError
from recommender.service._audit_tables import AUDIT_COLUMNS

__all__ = ["audit_csv", "rows_csv", "parse_since", "as_utc", "stored_since"]


def audit_csv(rows: Iterable[Mapping]) -> str:
    """Audit rows (as from :meth:`AuditLog.export`) as CSV text; effects as JSON in one column."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(AUDIT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **row,
                "logged_at": row["logged_at"].isoformat(),
                "effects": json.dumps(row["effects"], separators=(",", ":")),
            }
        )
    return out.getvalue()


def rows_csv(rows: Iterable[Mapping], columns: Sequence[str]) -> str:
    """Rows as CSV text with ``columns``; times in ISO 8601, empty where there is none."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                name: value.isoformat() if isinstance(value, datetime) else value
                for name, value in row.items()
            }
        )
    return out.getvalue()


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or time for ``export(since=...)``, as UTC.

    An offset is honoured (``2026-12-03T09:00:00+05:00`` is 04:00 UTC); a date or time without
    one is read as UTC.

    Examples
    --------
    >>> parse_since("2026-12-03T09:00:00+05:00").isoformat()
    '2026-12-03T04:00:00+00:00'
    >>> parse_since("2026-12-03").isoformat()
    '2026-12-03T00:00:00+00:00'
    """
    try:
        return as_utc(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):  # not a date, or beyond the calendar once in UTC
        raise InputError(
            f"since: {text[:120]!r} is not accepted; give an ISO 8601 date or time "
            "(years 1 to 9999 in UTC)",
            problems=[
                {
                    "field": "since",
                    "value": text[:120],
                    "message": "not a date",
                    "accepted": "an ISO 8601 date or time, UTC unless it carries an offset, "
                    "e.g. 2026-11-25, 2026-11-25T13:00:00Z or "
                    "2026-11-25T18:00:00+05:00",
                }
            ],
        ) from None


def as_utc(stamp: datetime) -> datetime:
    """``stamp`` in UTC; a time without an offset is read as UTC."""
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc)


def stored_since(since: datetime, engine) -> datetime:
    """``since`` as a query compares it with the store's times: in UTC, which rows hold, and
    naive on SQLite, which compares the stored text and would ignore an offset."""
    since = as_utc(since)
    return since.replace(tzinfo=None) if engine.dialect.name == "sqlite" else since
