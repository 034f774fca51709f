"""The audit log: one row for every answered recommendation request, append-only.

Rows hold what an auditor needs to reconstruct a decision (time, request id, model version,
caller role, safety level, recommended arm and the effects behind it) and nothing that
identifies a person: ``person_id`` is stored only as a salted HMAC-SHA-256, and the salt is
never written to a log or to the store.

SQLite under the models folder by default; any SQLAlchemy URL (PostgreSQL in production) by
configuration. Written with SQLAlchemy Core by one writer thread that commits the records of
the requests waiting at that moment in one transaction (a group commit): under load the store
commits once per group instead of once per request, and each request still waits until its
own records are committed before it answers. What "committed" survives is a setting
(``durability``, see :data:`DURABILITY`): by default a commit survives a crash of the service
process but not a power cut (SQLite WAL with ``synchronous=NORMAL``: no fsync per commit),
or with ``power_loss`` a power cut too (``synchronous=FULL``: every group waits for the
disk). The tables below are what queries use; the
database's schema is made and upgraded by the Alembic migrations in ``migrations/`` (a test
checks that the two agree).
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import operator
import os
import queue
import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from recommender.errors import InputError
from recommender.service._migrate import upgrade_schema
from recommender.service._sqlite import sqlite_file

__all__ = [
    "AuditLog",
    "PendingAppend",
    "resolve_salt",
    "audit_csv",
    "parse_since",
    "SALT_ENV",
    "AUDIT_COLUMNS",
    "DURABILITY",
]

SALT_ENV = "RECOMMENDER_AUDIT_SALT"

# What a committed audit record survives -> SQLite's synchronous level in WAL mode. An answer
# is given only after its record's commit returns; whether that commit has reached the disk
# is what differs. process_crash: the WAL is written (the operating system holds it) but not
# fsynced per commit, so a killed or crashed service loses nothing, an OS crash or power cut
# may lose the last commits; power_loss: each group commit waits for an fsync (a few ms on a
# virtual disk). PostgreSQL follows its own synchronous_commit and ignores this.
DURABILITY = {"process_crash": "NORMAL", "power_loss": "FULL"}

# Compact JSON for the stored effects, probabilities and profiles. One encoder for every record:
# json.dumps builds a new one on each call when given separators (a few µs, three per answer).
_compact = json.JSONEncoder(separators=(",", ":")).encode


def _one_shot_compact():
    """``_compact`` without JSONEncoder.encode's set-up per call (the C encoder is made once).

    The same bytes: the C encoder is what ``encode`` itself uses, with the same string
    encoder, separators, key order and float text. Without a circular-reference check
    (records are trees) it keeps no state between calls, so request threads may share it.
    """
    make = json.encoder.c_make_encoder
    if make is None:  # a Python without the C accelerator
        return _compact

    def refuse(value):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    encode = make(
        None, refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    return lambda value: "".join(encode(value, 0))


_compact_record = _one_shot_compact()

_metadata = sa.MetaData()
recommendations = sa.Table(
    "recommendations",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("batch_id", sa.String(64), nullable=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("caller_role", sa.String(16), nullable=False),
    sa.Column("person_hash", sa.String(64), nullable=False),
    sa.Column("safety_level", sa.String(16), nullable=False),
    sa.Column("recommended", sa.String(64), nullable=True),
    sa.Column("ranking_meaningful", sa.Boolean, nullable=True),
    # {"arm": [effect, lower, upper]} in EE points; JSON text so every backend stores it alike.
    sa.Column("effects", sa.Text, nullable=False),
)
AUDIT_COLUMNS = tuple(c.name for c in recommendations.columns)
# Every accepted /reload, so that all workers (and replicas) sharing this store follow it, and
# an auditor can see who put which version in service when.
reloads = sa.Table(
    "service_reloads",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("caller_role", sa.String(16), nullable=False),
)

# The learning loop's tables (issue 11), beside the audit log in the same database. One row per
# ranked answer: the arm served, the probability of every candidate arm and the profile without
# its identifier, which is what retraining from the log needs.
assignments = sa.Table(
    "assignments",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("person_hash", sa.String(64), nullable=False, index=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("safety_level", sa.String(16), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("policy", sa.String(16), nullable=False),
    sa.Column("arm", sa.String(64), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    # {"arm": probability} of every ranked arm, and the profile's fields except person_id.
    sa.Column("probabilities", sa.Text, nullable=False),
    sa.Column("profile", sa.Text, nullable=False),
)
# The columns an append writes, in table order (the id is the database's).
ROW_COLUMNS = tuple(c.name for c in recommendations.columns if c.name != "id")
SERVED_COLUMNS = tuple(c.name for c in assignments.columns if c.name != "id")
# Follow-up scores, each linked to the one served recommendation it follows.
outcomes = sa.Table(
    "outcomes",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("person_hash", sa.String(64), nullable=False, index=True),
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("arm_taken", sa.String(64), nullable=False),
    sa.Column("ee_followup", sa.Integer, nullable=False),
    sa.Column("dp_followup", sa.Integer, nullable=False),
    sa.Column("pa_followup", sa.Integer, nullable=False),
    sa.Column("source", sa.String(120), nullable=False),
)


def resolve_salt(configured: str | None, models_dir: Path) -> str:
    """The salt for person hashes: the environment, the secrets folder, the config, a salt file.

    ``$RECOMMENDER_AUDIT_SALT`` first, then ``$RECOMMENDER_SECRETS_DIR/audit_salt`` (see
    :func:`recommender.settings.read_secret`). Several workers or replicas must share one salt,
    so a deployment gives it one of these ways. Otherwise the file (``<models_dir>/audit.salt``, owner-only) is created once with a random salt, so
    hashes of the same person stay comparable across restarts of a local service.
    """
    from recommender.settings import read_secret

    secret = read_secret("audit_salt", env=SALT_ENV)
    if secret:
        return secret
    if configured:
        return configured
    path = Path(models_dir) / "audit.salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker created it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip()


class AuditLog:
    """Append and read recommendation records.

    Parameters
    ----------
    url : str
        SQLAlchemy database URL (``sqlite:////abs/path/audit.db``, ``postgresql+psycopg://...``).
    salt : str or None
        Secret mixed into every person hash; ``None`` opens the log for reading only.
    durability : {"process_crash", "power_loss"}, default "process_crash"
        What a committed record must survive before its answer is given (SQLite; see
        :data:`DURABILITY`).

    Examples
    --------
    >>> log = AuditLog("sqlite://", salt="s")
    >>> log.append([{"request_id": "r1", "model_version": "1", "caller_role": "program",
    ...              "person_id": "p-1", "safety_level": "routine", "recommended": "coaching",
    ...              "ranking_meaningful": True, "effects": {"coaching": [-4.0, -6.0, -2.0]}}])
    1
    >>> row = log.export()[0]
    >>> row["recommended"], row["person_hash"] == log.person_hash("p-1"), "p-1" in str(row)
    ('coaching', True, False)
    """

    def __init__(self, url: str, *, salt: str | None, durability: str = "process_crash"):
        if durability not in DURABILITY:
            raise InputError(
                f"audit durability {durability!r} is not accepted; accepted: "
                f"{' | '.join(DURABILITY)}"
            )
        self.url = url
        self.durability = durability
        # Reading (an auditor's export) needs no salt; writing does.
        self._salt = salt.encode("utf-8") if salt else None
        self._engine = _make_engine(url, synchronous=DURABILITY[durability])
        # The schema is Alembic's (recommender/service/migrations), never create_all's.
        upgrade_schema(self._engine)

    def __repr__(self) -> str:  # never show the salt
        return f"AuditLog({self._engine.url.render_as_string(hide_password=True)!r})"

    def person_hash(self, person_id: str) -> str:
        """Salted HMAC-SHA-256 of a person id (hex)."""
        if self._salt is None:
            raise InputError("the audit salt is empty; set RECOMMENDER_AUDIT_SALT or audit.salt")
        # hmac.digest: the same HMAC in one call to the C implementation (a third faster).
        return hmac.digest(self._salt, person_id.encode("utf-8"), "sha256").hex()

    def append(self, records: Iterable[Mapping]) -> int:
        """Append records in one transaction; returns the number of rows written.

        Each record has ``request_id``, ``model_version``, ``caller_role``, ``person_id`` (hashed
        here, never stored), ``safety_level``, ``recommended``, ``ranking_meaningful``,
        ``effects`` (mapping) and optionally ``person_hash`` (this log's :meth:`person_hash` of
        ``person_id``, when the caller has it already), ``batch_id``, ``logged_at``, and ``assignment``
        (arm, probability, policy, cycle, probabilities) with ``profile`` (the non-identifying
        fields), which go to the ``assignments`` table in the same transaction.
        """
        return self.start_append(records).result()

    def start_append(self, records: Iterable[Mapping]) -> "PendingAppend":
        """Hand records to the writer and return at once; :meth:`PendingAppend.result` waits
        for their commit (or raises what the store raised), as :meth:`append` does.

        The caller does other work while the writer thread inserts and commits (SQLite releases
        the interpreter while it writes), and must wait for the result before it gives any
        answer these records stand for. A record that cannot be turned into a row raises here.
        """
        now = datetime.now(timezone.utc)
        records = list(records)
        hashes = [
            record.get("person_hash") or self.person_hash(record["person_id"]) for record in records
        ]
        # Each row's values in its table's column order (ROW_COLUMNS, SERVED_COLUMNS): the
        # writer hands them to the driver as they are (SQLite, after the column types' own
        # conversions) or as dicts (other databases).
        rows = [
            (
                record.get("logged_at") or now,
                record["request_id"],
                record.get("batch_id"),
                str(record["model_version"]),
                record["caller_role"],
                person_hash,
                record["safety_level"],
                record.get("recommended"),
                record.get("ranking_meaningful"),
                _compact_record(record.get("effects") or {}),
            )
            for record, person_hash in zip(records, hashes)
        ]
        served = [
            (
                row[0],
                row[1],
                row[5],
                row[3],
                row[6],
                int(given["cycle"]),
                given["policy"],
                given["arm"],
                float(given["probability"]),
                _compact_record(given["probabilities"]),
                _compact_record(record.get("profile") or {}),
            )
            for record, row in zip(records, rows)
            if (given := record.get("assignment")) is not None
        ]
        if not rows:
            return PendingAppend(None, 0)
        return PendingAppend(self._writer().submit(rows, served), len(rows))

    @property
    def engine(self) -> sa.Engine:
        """The database engine, shared with the outcome store (same database)."""
        return self._engine

    def _writer(self) -> "_GroupWriter":
        writer = self.__dict__.get("_group_writer")
        if writer is None:
            with _WRITER_LOCK:
                writer = self.__dict__.get("_group_writer")
                if writer is None:
                    writer = self._group_writer = _GroupWriter(self._engine)
        return writer

    def count(self) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(recommendations)
                ).scalar_one()
            )

    def export(self, *, since: datetime | None = None) -> list[dict]:
        """All records (optionally from ``since`` on), oldest first, effects parsed."""
        query = sa.select(recommendations).order_by(recommendations.c.id)
        if since is not None:
            # Rows hold UTC; SQLite compares the stored text and would ignore an offset.
            since = _as_utc(since)
            if self._engine.dialect.name == "sqlite":
                since = since.replace(tzinfo=None)
            query = query.where(recommendations.c.logged_at >= since)
        with self._engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        for row in rows:
            stamp = row["logged_at"]
            if stamp.tzinfo is None:  # SQLite hands back naive datetimes; they were UTC
                row["logged_at"] = stamp.replace(tzinfo=timezone.utc)
            row["effects"] = json.loads(row["effects"])
        return rows

    def announce_reload(self, model_version: str, caller_role: str) -> int:
        """Record that ``model_version`` was put in service by /reload; returns the record id."""
        with self._engine.begin() as connection:
            result = connection.execute(
                reloads.insert().values(
                    requested_at=datetime.now(timezone.utc),
                    model_version=str(model_version),
                    caller_role=caller_role,
                )
            )
            return int(result.inserted_primary_key[0])

    def latest_reload(self) -> tuple[int, str] | None:
        """``(id, model_version)`` of the newest /reload record, or ``None``."""
        query = (
            sa.select(reloads.c.id, reloads.c.model_version).order_by(reloads.c.id.desc()).limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def close(self) -> None:
        writer = self.__dict__.pop("_group_writer", None)
        if writer is not None:
            writer.stop()
        self._engine.dispose()


_WRITER_LOCK = threading.Lock()
# Rows committed in one transaction at most (a 10,000-row batch is one request: never split).
_GROUP_ROWS = 2_000


class _Job:
    __slots__ = ("rows", "served", "done", "error")

    def __init__(self, rows, served):
        self.rows = rows
        self.served = served
        self.done = threading.Event()
        self.error: BaseException | None = None


class PendingAppend:
    """Records handed to the audit writer (:meth:`AuditLog.start_append`), not yet known to be
    committed."""

    __slots__ = ("_job", "_count")

    def __init__(self, job: _Job | None, count: int):
        self._job = job
        self._count = count

    def result(self) -> int:
        """Wait until the records are committed and return their number; raise what the store
        raised otherwise (then none of them is stored)."""
        job = self._job
        if job is not None:
            job.done.wait()
            if job.error is not None:
                raise job.error
        return self._count


class _GroupWriter:
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
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit(self, rows: list[tuple], served: list[tuple] = ()) -> _Job:
        """Queue ``rows`` (and their ``served`` assignments; values in ROW_COLUMNS and
        SERVED_COLUMNS order) for the next group commit."""
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
        job = _Job(rows, list(served))
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
            )
        except Exception as error:  # noqa: BLE001 - find whose records failed, one each
            if len(group) == 1:
                group[0].error = error
            else:
                for job in group:
                    try:
                        self._insert(job.rows, job.served)
                    except Exception as own:  # noqa: BLE001 - handed to the waiting request
                        job.error = own
        finally:
            for job in group:
                job.done.set()

    def _insert(self, rows: list, served: list) -> None:
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
        processors = self._processors
        stamps: dict = {}  # datetime -> its stored text: a request's rows share one
        out = []
        for row in rows:
            line = list(row)
            for j, processor, stamp in processors:
                value = line[j]
                if stamp:  # equal instants in other zones are stored as other text
                    key = value, getattr(value, "tzinfo", None)
                    text = stamps.get(key)
                    if text is None:
                        text = stamps[key] = processor(value)
                    line[j] = text
                else:
                    line[j] = processor(value)
            out.append(tuple(line))
        return out


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
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"since: {text[:120]!r} is not accepted; give an ISO 8601 date or time",
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
    return _as_utc(stamp)


def _as_utc(stamp: datetime) -> datetime:
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc)


def _make_engine(url: str, *, synchronous: str = "NORMAL") -> sa.Engine:
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        memory = database is None
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            # An in-memory database exists once per connection; keep exactly one.
            poolclass=sa.pool.StaticPool if memory else None,
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            # WAL lets auditors read while the service writes; busy_timeout queues writers
            # of several worker processes instead of failing them.
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)
