"""The audit writer: one thread that commits the records of the requests waiting at that moment
in one transaction (a group commit), each request's records all or none.

A request hands its rows over and gets a :class:`PendingAppend`, whose ``result()`` waits for
their commit; under load the store commits once per group instead of once per request.
"""

from __future__ import annotations

import operator
import queue
import threading

import sqlalchemy as sa

from recommender._files import no_space
from recommender.service._audit_tables import (
    ROW_COLUMNS,
    SERVED_COLUMNS,
    UNASSIGNED_ANSWERS_FACT,
    assignments,
    recommendations,
    store_facts,
)

__all__ = ["FULL_REMEDY", "GroupWriter", "PendingAppend"]

# What a refusal says when the store's disk is full: retrying alone does not help.
FULL_REMEDY = (
    "no space left on the disk holding the audit store: free space there; the service "
    "records again by itself once it can write there, no restart needed"
)

# Rows committed in one transaction at most (a 10,000-row batch is one request: never split).
_GROUP_ROWS = 2_000


class _Job:
    __slots__ = ("rows", "served", "unassigned", "done", "error")

    def __init__(self, rows, served, unassigned):
        self.rows = rows
        self.served = served
        self.unassigned = unassigned
        self.done = threading.Event()
        self.error: BaseException | None = None


class PendingAppend:
    """Records handed to the audit writer (:meth:`AuditLog.start_append`), not yet known to be
    committed."""

    __slots__ = ("_job", "_count")

    def __init__(self, job: _Job | None, count: int):
        self._job = job
        self._count = count

    def result(self, timeout: float | None = None) -> int:
        """Wait until the records are committed and return their number; raise what the store
        raised otherwise (then none of them is stored).

        ``timeout``: seconds to wait at most; past it :class:`TimeoutError` is raised while the
        records stay queued (they may still be committed later).
        """
        job = self._job
        if job is not None:
            if not job.done.wait(timeout):
                raise TimeoutError(
                    f"the audit store did not confirm the record within {timeout:g} s"
                )
            if job.error is not None:
                raise job.error
        return self._count


class GroupWriter:
    """One thread that commits waiting requests' records together, each request's all or none.

    A request hands its rows over (:meth:`submit`) and waits for its own commit. The thread
    takes every request waiting when it is free and inserts them in one transaction; if that
    transaction fails (one request's duplicate id, say), each request of the group is retried
    in a transaction of its own, so one request's failure never costs another its answer.
    """

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        # SQLite: the rows go to the driver as tuples, each value converted by the column
        # type's own bind processor (SQLAlchemy's storage format), so that a group's insert is
        # not dominated by SQLAlchemy's per-row parameter handling (about half of a 1,000-row
        # batch's insert). Other databases keep SQLAlchemy's executemany.
        self._driver_inserts = (
            {
                table.name: _DriverInsert(table, engine.dialect)
                for table in (recommendations, assignments)
            }
            if engine.dialect.name == "sqlite"
            else None
        )
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # Whether a commit failed for want of space (until the store's owner sees room again:
        # a small record may still fit in the file's free pages of a disk that is full).
        self.full = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit(self, rows: list[tuple], served: list[tuple] = (), unassigned=()) -> _Job:
        """Queue ``rows`` (and their ``served`` assignments; values in ROW_COLUMNS and
        SERVED_COLUMNS order) for the next group commit. ``unassigned``: the request ids of
        those that are answers without assignment (see UNASSIGNED_ANSWERS_FACT)."""
        driver = self._driver_inserts
        if driver is not None:
            # Turned into the driver's parameters here, on the caller's thread: the writer
            # thread then holds the interpreter only to hand them to SQLite, and the caller's
            # next work (wording the answers) runs while SQLite inserts.
            rows = driver["recommendations"].bound(rows)
            served = driver["assignments"].bound(served)
        else:
            rows = [dict(zip(ROW_COLUMNS, row)) for row in rows]
            served = [dict(zip(SERVED_COLUMNS, row)) for row in served]
        job = _Job(rows, list(served), list(unassigned))
        self._queue.put(job)
        return job

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            group, size = [job], len(job.rows)
            while size < _GROUP_ROWS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(more)
                size += len(more.rows)
            self._commit(group)

    def _commit(self, group: list[_Job]) -> None:
        try:
            self._insert(
                [row for job in group for row in job.rows],
                [row for job in group for row in job.served],
                [request_id for job in group for request_id in job.unassigned],
            )
        except Exception as error:  # noqa: BLE001 - find whose records failed, one each
            if len(group) == 1:
                group[0].error = self._failed(error)
            else:
                for job in group:
                    try:
                        self._insert(job.rows, job.served, job.unassigned)
                    except Exception as own:  # noqa: BLE001 - handed to the waiting request
                        job.error = self._failed(own)
        finally:
            for job in group:
                job.done.set()

    def _failed(self, error: Exception) -> Exception:
        """``error``, with what to do when the store's disk is full (its ``remedy``)."""
        if no_space(error):
            self.full = True
            error.remedy = FULL_REMEDY
        return error

    def _insert(self, rows: list, served: list, unassigned: list) -> None:
        driver = self._driver_inserts
        with self._engine.begin() as connection:
            if driver is None:
                connection.execute(recommendations.insert(), rows)
                if served:
                    connection.execute(assignments.insert(), served)
            else:
                # Rows and assignments as the driver's parameters (see submit).
                driver["recommendations"].insert(connection, rows)
                if served:
                    driver["assignments"].insert(connection, served)
            if unassigned:
                _extend_unassigned_bound(connection, unassigned)


def _extend_unassigned_bound(connection, request_ids: list) -> None:
    """Name the highest row id of the answers without assignment just inserted (``request_ids``)
    in ``store_facts``, in their transaction: a new row (the service may only insert), named by
    that id, which no other write has."""
    row = recommendations.c
    last = max(
        connection.execute(
            sa.select(sa.func.max(row.id)).where(row.request_id.in_(request_ids[i : i + 10_000]))
        ).scalar()
        for i in range(0, len(request_ids), 10_000)
    )
    connection.execute(
        store_facts.insert().values(name=f"{UNASSIGNED_ANSWERS_FACT}{last}", value=str(last))
    )


_NONE = object()  # no value seen yet


class _DriverInsert:
    """``connection.execute(table.insert(), rows)`` on SQLite, the same stored values.

    Every row must hold every column but ``id`` (as :meth:`AuditLog.append` builds them). The
    values pass through the bind processor SQLAlchemy would apply (the timestamp's text, a
    boolean's integer); one timestamp is shared by a request's rows, so it is converted once.
    """

    def __init__(self, table: sa.Table, dialect):
        columns = [c for c in table.columns if c.name != "id"]
        self._sql = (
            f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        self._values = operator.itemgetter(*(c.name for c in columns))
        self._processors = [
            (j, processor, isinstance(c.type, sa.DateTime))
            for j, c in enumerate(columns)
            if (processor := c.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]

    def __call__(self, connection, rows: list[dict]) -> None:
        self.insert(connection, self.parameters(rows))

    def insert(self, connection, parameters: list[tuple]) -> None:
        """Insert rows given as :meth:`parameters`."""
        connection.exec_driver_sql(self._sql, parameters)

    def parameters(self, rows: list[dict]) -> list[tuple]:
        """Each row's values in the statement's order, as SQLAlchemy would bind them."""
        return self.bound(list(map(self._values, rows)))

    def bound(self, rows: list[tuple]) -> list[tuple]:
        """Rows given as values in the statement's order, as SQLAlchemy would bind them."""
        if not rows:
            return []
        # Column by column: each processor mapped over its column in one call, rather than
        # looked up and called row by row (a thousand rows per batch).
        columns = list(zip(*rows))
        for j, processor, stamp in self._processors:
            if stamp:  # equal instants in other zones are stored as other text
                stamps: dict = {}  # (datetime, zone) -> its stored text
                texts, last, text = [], _NONE, None
                for value in columns[j]:
                    if value is not last:  # a request's rows share one datetime
                        key = value, getattr(value, "tzinfo", None)
                        text = stamps.get(key)
                        if text is None:
                            text = stamps[key] = processor(value)
                        last = value
                    texts.append(text)
                columns[j] = texts
            else:
                columns[j] = list(map(processor, columns[j]))
        return list(zip(*columns))
