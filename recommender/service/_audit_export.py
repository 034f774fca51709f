"""The audit log read out for auditors: rows as CSV, and the ``since`` of an export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from itertools import islice

from recommender.errors import InputError
from recommender.service._audit_tables import AUDIT_COLUMNS

__all__ = [
    "audit_csv",
    "audit_csv_chunks",
    "rows_csv",
    "rows_csv_chunks",
    "parse_since",
    "as_utc",
    "stored_since",
    "EXPORT_CHUNK_ROWS",
    "SINCE_ACCEPTED",
]

# Rows an export reads from the store and writes out at a time: a store of years holds
# millions, which an export held whole in memory (several GB) before writing any.
EXPORT_CHUNK_ROWS = 5_000

# What an export's since takes (GET /audit/export?since=, `recommender audit export --since`).
SINCE_ACCEPTED = (
    "an ISO 8601 date or time, UTC unless it carries an offset, e.g. 2026-11-25, "
    "2026-11-25T13:00:00Z or 2026-11-25T18:00:00+05:00"
)


def audit_csv(rows: Iterable[Mapping]) -> str:
    """Audit rows (as from :meth:`AuditLog.export`) as CSV text; effects as JSON in one column."""
    return "".join(audit_csv_chunks(rows))


def audit_csv_chunks(
    rows: Iterable[Mapping], *, chunk_rows: int = EXPORT_CHUNK_ROWS
) -> Iterator[str]:
    """:func:`audit_csv`'s text in pieces: the header, then ``chunk_rows`` rows a piece, each
    read from ``rows`` (an iterator, as from :meth:`AuditLog.export_rows`) only when the piece
    before it has been taken."""
    rows = (
        {
            **row,
            "logged_at": row["logged_at"].isoformat(),
            "effects": json.dumps(row["effects"], separators=(",", ":")),
        }
        for row in rows
    )
    return _csv_chunks(rows, AUDIT_COLUMNS, chunk_rows)


def rows_csv(rows: Iterable[Mapping], columns: Sequence[str]) -> str:
    """Rows as CSV text with ``columns``; times in ISO 8601, empty where there is none."""
    return "".join(rows_csv_chunks(rows, columns))


def rows_csv_chunks(
    rows: Iterable[Mapping], columns: Sequence[str], *, chunk_rows: int = EXPORT_CHUNK_ROWS
) -> Iterator[str]:
    """:func:`rows_csv`'s text in pieces of ``chunk_rows`` rows, after the header."""
    rows = (
        {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in row.items()
        }
        for row in rows
    )
    return _csv_chunks(rows, columns, chunk_rows)


def _csv_chunks(rows: Iterable[Mapping], columns: Sequence[str], chunk_rows: int) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    yield out.getvalue()
    rows = iter(rows)
    while chunk := list(islice(rows, chunk_rows)):
        out.seek(0)
        out.truncate()
        writer.writerows(chunk)
        yield out.getvalue()


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
                    "accepted": SINCE_ACCEPTED,
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
