"""Erasing people from the audit store: what a program does when a clinician withdraws consent
or leaves.

A person's ranked answers left ``assignments`` (the profile, the arm served and its
probability) and their follow-up scores left ``outcomes``: both are deleted, corrections and the
rows they replaced alike. Their answers in ``recommendations`` are kept, redacted, because the
audit log must still count the answers given (per day, model version, caller role, safety
level and arm recommended): the person hash becomes :data:`ERASED_PERSON`, the request id
``erased-<row id>`` (the program's records and the service log name the request id beside
the person), and the effects and DP/PA figures, which the person's profile decided, are
cleared. Crisis answers are the person's data too and are redacted alike: the count of crisis
answers stays, with nothing left that says whose.

The work is written in parts (:data:`PART_ROWS` rows at most, whole people each), each part one
transaction, so that the service's answers never wait long for SQLite's write lock (which is
left free between parts as long as a part held it: :func:`_let_writers_in`). One row in
``erasures`` says when and how many (never whose): written with the first part that erases
anyone, brought up to date by each part, and marked completed (``completed_at``) by the last. A
failure in a part leaves that part undone and the parts before it done and recorded (the row
not completed); running the same erasure again finishes it, since the people erased already
have no row left to find. On SQLite the people's answers
are first looked for without the write lock (``recommendations.person_hash`` has no index, so
that is a scan of the whole log, which the service's answers would otherwise wait behind);
under the lock, only the rows found and those appended since are read again, by primary key.
Ids are hashed with the store's salt by :meth:`AuditLog.person_hash`, as the service hashed
them; an id with no row is reported, not an error for the others, and erasing the same people
twice changes nothing the second time (and records nothing).

Whose rows are found, and cut into which parts, is :mod:`recommender.service._erasure_rows`'s;
the privileges an erasure needs on PostgreSQL, :mod:`recommender.service._erasure_privileges`'s.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import sqlalchemy as sa

from recommender._files import signals_held
from recommender.service._audit import _INSUFFICIENT_PRIVILEGE, AuditLog
from recommender.service._audit_export import as_utc, rows_csv, stored_since
from recommender.service._audit_tables import (
    ERASED_PERSON,
    SECONDARY_COLUMNS,
    assignments,
    erasures,
    outcomes,
    recommendations,
)
from recommender.service._erasure_privileges import _check_permitted, _not_permitted
from recommender.service._erasure_rows import (
    _answers_of,
    _answers_seen,
    _hashes,
    _parts,
    _rows_held,
)
from recommender.service._outcome_links import query_batches

__all__ = [
    "ErasureReport",
    "erase_people",
    "erasure_history",
    "erasure_history_csv",
    "ERASURE_COLUMNS",
]

# What an erasure record holds, in table order: when, and how many (never whose).
ERASURE_COLUMNS = tuple(c.name for c in erasures.columns)


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did (or, dry, would do).

    ``asked``: the distinct ids given; ``found``: those the store holds rows of; ``missing``:
    the positions (0-based, in the order given) of the ids no row of the store holds: never
    served under this store's salt, or erased already. ``erasure_id``: the ``erasures`` row
    recorded, None when nothing was changed (a dry run, or no one found). ``parts``: the
    transactions it was written in (0 for a dry run, or when no one was found).
    """

    asked: int
    found: int
    missing: tuple[int, ...]
    answers: int
    crisis_answers: int
    assignments: int
    outcomes: int
    dry_run: bool
    erasure_id: int | None = None
    parts: int = 0

    @property
    def rows(self) -> int:
        return self.answers + self.assignments + self.outcomes

    def as_dict(self) -> dict:
        """The report as ``POST /erasures`` answers it (named as the ``erasures`` table)."""
        return {
            "asked": self.asked,
            "found": self.found,
            "missing": list(self.missing),
            "answers_redacted": self.answers,
            "crisis_answers_redacted": self.crisis_answers,
            "assignments_deleted": self.assignments,
            "outcomes_deleted": self.outcomes,
            "dry_run": self.dry_run,
            "erasure_id": self.erasure_id,
            "parts": self.parts,
        }


# Rows one part of an erasure may change (answers redacted, assignments and outcomes deleted):
# each part is one transaction, which holds SQLite's write lock while the service's answers
# wait for it. 5,000 rows held it about 0.2 s on a store of 2 million answers (README).
PART_ROWS = 5_000


def erase_people(
    audit: AuditLog,
    person_ids: Sequence[str],
    *,
    dry_run: bool = False,
    named: Sequence[str] | None = None,
    now: datetime | None = None,
    part_rows: int = PART_ROWS,
) -> ErasureReport:
    """Erase the people ``person_ids`` (raw ids, as the program sent them) from the store.

    Their assignments and outcomes are deleted and their answers redacted (see the module's
    docstring), in parts of whole people of at most ``part_rows`` rows each (a person with more
    rows is a part alone), each part one transaction that also records the erasure so far;
    ``dry_run`` counts what would be erased and changes nothing. ``audit`` must be opened with
    the store's salt. ``named``: how a message names each id (``line 3 of ids.txt``); by default
    ``person id 3`` (counted from 1). No message shows an id.

    Raises
    ------
    InputError
        No id, or an id that no store can hold (empty, only spaces, a lone surrogate), naming
        its position; nothing is erased then.
    AuditPrivilegeMissing
        The store's role may not change the rows (PostgreSQL): what it lacks and which role may;
        nothing is erased.

    Examples
    --------
    >>> log = AuditLog("sqlite://", salt="s" * 16)
    >>> erase_people(log, ["p-1"]).missing  # never served: reported, not refused
    (0,)
    """
    people = _hashes(audit, person_ids, named)
    if dry_run:
        with audit.engine.connect() as connection:
            seen = _answers_seen(connection, people)
            report = _erase(connection, people, seen, dry_run=True)
            connection.rollback()
        return _reported(people, report, dry_run=True)
    with audit.engine.connect() as connection:
        _check_permitted(audit, connection)
        seen = _answers_seen(connection, people)
        parts = _parts(people, _rows_held(connection, people, seen), part_rows)
        connection.rollback()
    done = _Erased.none(len(people), now or datetime.now(timezone.utc))
    for number, part in enumerate(parts, 1):
        began, written = time.monotonic(), done.parts
        done = _erase_part(audit, part, seen, done, last=number == len(parts))
        if number < len(parts) and done.parts > written:
            _let_writers_in(audit.engine, time.monotonic() - began)
    return _reported(people, done, dry_run=False)


# The longest a writer waiting for SQLite's write lock sleeps between two tries (its busy
# handler's longest step).
_WRITER_POLL_SECONDS = 0.1


def _let_writers_in(engine: sa.Engine, part_seconds: float) -> None:
    """SQLite: leave the write lock free between two parts, as long as the part held it and at
    least a waiting writer's sleep between tries. SQLite hands its lock to no one in turn: the
    service's answers, waiting with their busy handler's sleeps, found it taken again by the
    next part each time they tried, and waited for the whole erasure (1.5 to 2.8 s an answer
    over 200 parts of 6 rows, measured through ``recommender serve``)."""
    if engine.dialect.name == "sqlite":
        time.sleep(max(part_seconds, _WRITER_POLL_SECONDS))


@dataclass(frozen=True)
class _Erased:
    """What the parts written so far erased (the ``erasures`` row's values, and its id once
    written): one more part adds to it."""

    erasure_id: int | None
    erased_at: datetime
    people_asked: int
    found: frozenset[str]
    answers: int
    crisis_answers: int
    assignments: int
    outcomes: int
    parts: int = 0

    @classmethod
    def none(cls, asked: int, at: datetime) -> _Erased:
        return cls(None, at, asked, frozenset(), 0, 0, 0, 0)

    def plus(self, part: _Erased) -> _Erased:
        return _Erased(
            self.erasure_id,
            self.erased_at,
            self.people_asked,
            self.found | part.found,
            *(getattr(self, n) + getattr(part, n) for n in _COUNTED),
            parts=self.parts + 1,
        )

    def record(self, *, completed: bool) -> dict:
        """The ``erasures`` row's values: when and how many, never whose."""
        return {
            "id": self.erasure_id,
            "erased_at": self.erased_at,
            "completed_at": datetime.now(timezone.utc) if completed else None,
            "people_asked": self.people_asked,
            "people_found": len(self.found),
            "answers_redacted": self.answers,
            "crisis_answers_redacted": self.crisis_answers,
            "assignments_deleted": self.assignments,
            "outcomes_deleted": self.outcomes,
        }


_COUNTED = ("answers", "crisis_answers", "assignments", "outcomes")


def _reported(people, erased: _Erased, *, dry_run: bool) -> ErasureReport:
    missing = tuple(sorted(p for h, at in people.items() if h not in erased.found for p in at))
    return ErasureReport(
        asked=len(people),
        found=len(erased.found),
        missing=missing,
        dry_run=dry_run,
        erasure_id=erased.erasure_id,
        parts=0 if dry_run else erased.parts,
        **{n: getattr(erased, n) for n in _COUNTED},
    )


def _erase_part(audit: AuditLog, part: dict, seen, done: _Erased, *, last: bool) -> _Erased:
    """One part, in one transaction with the erasure's record: the record is written with the
    first part that finds anyone, its counts grow with each part, and the last part says it
    completed. A failure leaves this part undone and the parts before it done (and recorded)."""
    with contextlib.ExitStack() as held:
        with audit.engine.connect() as connection:
            _begin_writing(connection, dry_run=False)
            try:
                part_done = _erase(connection, part, seen, dry_run=False)
                total = done.plus(part_done)
                # Written when this part erased someone, and by the last part of an erasure
                # that erased anyone (to say it completed).
                written = bool(part_done.found) or (last and total.found)
                if written:
                    erasure_id = _record(connection, total.record(completed=last))
                    total = replace(total, erasure_id=erasure_id)
            except sa.exc.ProgrammingError as error:
                connection.rollback()
                if getattr(error.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                    raise
                raise _not_permitted(audit, error.orig, done) from None
            except BaseException:
                connection.rollback()
                raise
            if not written:  # no one found in this part: nothing changed, no part written
                connection.rollback()
                return replace(total, parts=done.parts)
            # From the commit to the checkpoint, Ctrl-C or a kill waits: stopped between them,
            # the erased rows stayed readable in the write-ahead log, and running the command
            # again finds no one left to erase, so it would not checkpoint either.
            held.enter_context(signals_held())
            connection.commit()
        _reclaim(audit.engine)
    return total


def _begin_writing(connection: sa.Connection, *, dry_run: bool) -> None:
    """On SQLite, take the write lock before the first read (BEGIN IMMEDIATE), so that what is
    counted is what is erased even while the service writes; and overwrite what is deleted
    (secure_delete) rather than leave it in the file's free pages."""
    if connection.dialect.name != "sqlite" or dry_run:
        return
    connection.exec_driver_sql("PRAGMA secure_delete = ON")
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _erase(connection, people: dict[str, list[int]], seen, *, dry_run: bool) -> _Erased:
    """Erase (or, dry, count) the rows of ``people`` in the connection's transaction."""
    found: set[str] = set()
    crisis = 0
    for batch in query_batches(people):
        for theirs in _answers_of(batch, seen):
            # Counted here rather than by a second query: with a condition on safety_level,
            # SQLite probes the crisis answers' index once for every hash and row id given.
            row = recommendations.c
            query = sa.select(row.person_hash, row.safety_level).where(theirs)
            for person_hash, safety_level in connection.execute(query):
                found.add(person_hash)
                crisis += safety_level == "crisis"
        for table in (assignments, outcomes):
            query = sa.select(table.c.person_hash).where(table.c.person_hash.in_(batch)).distinct()
            found.update(h for (h,) in connection.execute(query))
    counts = {"answers": 0, "assignments": 0, "outcomes": 0}
    for batch in query_batches(found):
        if dry_run:
            for name, table in (("assignments", assignments), ("outcomes", outcomes)):
                counts[name] += _count(connection, table, table.c.person_hash.in_(batch))
        else:
            counts["outcomes"] += _delete(connection, outcomes, batch)
            counts["assignments"] += _delete(connection, assignments, batch)
        for theirs in _answers_of(batch, seen):
            counts["answers"] += (
                _count(connection, recommendations, theirs)
                if dry_run
                else _redact(connection, theirs)
            )
    return _Erased(
        None,
        datetime.now(timezone.utc),
        len(people),
        frozenset(found),
        crisis_answers=crisis,
        **counts,
    )


def _delete(connection, table: sa.Table, batch: list[str]) -> int:
    return connection.execute(table.delete().where(table.c.person_hash.in_(batch))).rowcount


def _count(connection, table: sa.Table, where) -> int:
    return connection.execute(
        sa.select(sa.func.count()).select_from(table).where(where)
    ).scalar_one()


def _redact(connection, theirs) -> int:
    """Keep the answers' non-personal fields; replace what is the person's or points to them."""
    row = recommendations.c
    return connection.execute(
        recommendations.update()
        .where(theirs)
        .values(
            person_hash=ERASED_PERSON,
            request_id=sa.literal("erased-") + sa.cast(row.id, sa.String),
            effects="{}",
            **{name: None for name in SECONDARY_COLUMNS},
        )
    ).rowcount


def _record(connection, record: dict) -> int:
    """Write the erasure's row (its first part) or bring it up to date (each later part)."""
    erasure_id = record["id"]
    values = {name: value for name, value in record.items() if name != "id"}
    if erasure_id is None:
        result = connection.execute(erasures.insert().values(**values))
        return int(result.inserted_primary_key[0])
    connection.execute(erasures.update().where(erasures.c.id == erasure_id).values(**values))
    return erasure_id


def _reclaim(engine: sa.Engine) -> None:
    """SQLite: move the erased pages out of the write-ahead log into the (overwritten) file, as
    far as no reader holds it back, without waiting. A checkpoint that waits for a reader (an
    auditor's export, a backup) holds the write lock meanwhile, up to the busy timeout (30 s):
    after every part, the service's answers waited behind it and past their own busy timeout
    were refused. What a reader holds back stays in the log until a later checkpoint."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        waits = int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
        connection.exec_driver_sql("PRAGMA busy_timeout = 0")
        try:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {waits}")


def erasure_history(audit: AuditLog, *, since: datetime | None = None) -> list[dict]:
    """Every erasure recorded (from ``since`` on), oldest first, with :data:`ERASURE_COLUMNS`;
    times in UTC."""
    query = sa.select(erasures).order_by(erasures.c.id)
    if since is not None:
        query = query.where(erasures.c.erased_at >= stored_since(since, audit.engine))
    with audit.engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    for row in rows:
        row["erased_at"] = as_utc(row["erased_at"])
        if row["completed_at"] is not None:
            row["completed_at"] = as_utc(row["completed_at"])
    return rows


def erasure_history_csv(rows) -> str:
    """Erasure rows (as from :func:`erasure_history`) as CSV text."""
    return rows_csv(rows, ERASURE_COLUMNS)
