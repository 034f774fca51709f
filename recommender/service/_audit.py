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
disk). The tables are in :mod:`recommender.service._audit_tables`, the writer thread in
:mod:`recommender.service._audit_writer`, the export helpers (CSV, ``since``) in
:mod:`recommender.service._audit_export`, and how a URL is opened, reached and refused in
:mod:`recommender.service._audit_store`.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone

import sqlalchemy as sa

from recommender.errors import InputError
from recommender.service._audit_export import EXPORT_CHUNK_ROWS, stored_since
from recommender.service._audit_store import (
    _INSUFFICIENT_PRIVILEGE,
    AuditUrlRefused,
    _behind,
    _make_engine,
    _unopenable,
    check_audit_url,
)
from recommender.service._audit_tables import (
    SECONDARY_COLUMNS,
    ranked_answer,
    recommendations,
    reloads,
)
from recommender.service._audit_writer import GroupWriter, PendingAppend
from recommender.service._migrate import (
    upgrade_schema,
)
from recommender.service._readiness import Reason
from recommender.service._sqlite import AuditFileReplaced, sqlite_file, watch_file
from recommender.service._store_check import (
    StoreCheck,
    check_privileges,
    not_permitted,
)
from recommender.service._store_errors import (
    AuditStoreDamaged,
    shown_store,
)
from recommender.service._store_salt import (
    SALT_ENV,
    AuditSaltMismatch,
    AuditSaltMissing,
    check_store_salt,
    resolve_salt,
)

__all__ = [
    "AuditLog",
    "AuditSaltMismatch",
    "AuditSaltMissing",
    "AuditUrlRefused",
    "check_audit_url",
    "PendingAppend",
    "resolve_salt",
    "salted_hash",
    "SALT_ENV",
    "DURABILITY",
]

# What a committed audit record survives -> SQLite's synchronous level in WAL mode. An answer
# is given only after its record's commit returns; whether that commit has reached the disk
# is what differs. process_crash: the WAL is written (the operating system holds it) but not
# fsynced per commit, so a killed or crashed service loses nothing, an OS crash or power cut
# may lose the last commits; power_loss: each group commit waits for an fsync (a few ms on a
# virtual disk). PostgreSQL follows its own synchronous_commit and ignores this.
DURABILITY = {"process_crash": "NORMAL", "power_loss": "FULL"}
# Free bytes a SQLite store's disk needs, after a write failed for want of space, for /readyz to
# say ready again: a request's rows and their write-ahead log pages many times over.
ROOM = 1 << 20

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


def salted_hash(salt: str | bytes, person_id: str) -> str:
    """What the audit log stores of a person id: its HMAC-SHA-256 under ``salt`` (hex).

    >>> salted_hash("s", "p-1") == AuditLog("sqlite://", salt="s").person_hash("p-1")
    True
    """
    if not salt:  # an HMAC with an empty key is one anyone can compute from a guessed id
        raise ValueError("an empty audit salt hashes no person id")
    if isinstance(salt, str):
        salt = salt.encode("utf-8")
    # hmac.digest: the same HMAC in one call to the C implementation (a third faster).
    return hmac.digest(salt, person_id.encode("utf-8"), "sha256").hex()


class AuditLog:
    """Append and read recommendation records.

    Parameters
    ----------
    url : str
        SQLAlchemy database URL (``sqlite:////abs/path/audit.db``, ``postgresql+psycopg://...``).
    salt : str or None
        Secret mixed into every person hash; ``None`` opens the log for reading only. A store
        keeps a fingerprint of the salt it was first written with and refuses another
        (:class:`AuditSaltMismatch`).
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
        # Reading (an auditor's export) needs no salt (None); writing does, and never an empty
        # one, which would hash person ids as anyone could.
        if salt is not None and not salt.strip():
            raise InputError(
                f"the audit salt is empty; accepted: a secret text ({SALT_ENV}, the secrets "
                "folder's audit_salt, audit.salt in serve.yaml, or the audit.salt file in the "
                "models folder), or None to only read the store"
            )
        self._salt = None if salt is None else salt.encode("utf-8")
        check_audit_url(url)
        try:
            self._engine = _make_engine(url, synchronous=DURABILITY[durability])
        except OSError as error:  # a SQLite file's folder that cannot be made
            raise _unopenable(sa.engine.make_url(url), error.strerror) from None
        shown = shown_store(self._engine.url)
        database = sqlite_file(url)
        self._database = database
        self._check_file = None if database is None else watch_file(self._engine, database)
        # A database server may go down while the service runs (a SQLite file is checked above).
        self._check_server = (
            None
            if self._engine.dialect.name == "sqlite"
            else StoreCheck(self._engine, shown=shown, writes=self._salt is not None)
        )
        # The schema is Alembic's (recommender/service/migrations), never create_all's.
        try:
            upgrade_schema(self._engine)
            if self._salt is not None:  # a service writes: its role must be allowed to
                check_privileges(self._engine, shown=shown)
        except sa.exc.OperationalError as error:  # the first connection: a store not ours to open
            self._engine.dispose()
            raise _unopenable(self._engine.url, error.orig) from None
        except sa.exc.ProgrammingError as error:
            if getattr(error.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                self._engine.dispose()
                raise
            behind = _behind(self._engine)
            self._engine.dispose()
            raise not_permitted(self._engine.url, error.orig, behind=behind) from None
        except sa.exc.DatabaseError as error:  # a SQLite file that is not (or no longer) one
            self._engine.dispose()
            if database is None:
                raise
            raise AuditStoreDamaged(
                f"the audit store {url} is not a database this service can read ({error.orig}): "
                "a damaged file or another file in its place; it is left as it is: restore it "
                "from a backup, or move it away to start a new store"
            ) from None
        except Exception:
            self._engine.dispose()
            raise
        # One store, one salt (reading needs none, so it is not checked then).
        if self._salt is not None:
            try:
                check_store_salt(self._engine, self._salt, shown=shown)
            except AuditSaltMismatch:
                self._engine.dispose()
                raise

    def __repr__(self) -> str:  # never show the salt
        return f"AuditLog({shown_store(self._engine.url)!r})"

    def writable(self) -> bool:
        """Whether the store can take records now (see :meth:`unwritable`)."""
        return self.unwritable() is None

    def unwritable(self) -> tuple[Reason, str | None] | None:
        """Why the store cannot take records now, as a readiness reason and a detail holding
        no secret, or ``None`` when it can: its SQLite file was removed or replaced (see
        :class:`AuditFileReplaced`), or its database server does not answer, takes no writes
        or no longer lets its role write. A readiness probe may ask: SQLite is not queried, a
        server at most once every few seconds and never waited for long (see
        :class:`~recommender.service._store_check.StoreCheck`)."""
        try:
            if self._check_file is not None:
                self._check_file()
        except AuditFileReplaced:
            return Reason.AUDIT_FILE_REPLACED, None
        if self._full():
            return Reason.AUDIT_STORE_FULL, None
        return None if self._check_server is None else self._check_server.problem()

    def _full(self) -> bool:
        """Whether a write failed for want of space and its SQLite file's disk has no room yet
        (:data:`ROOM`): a probe sees the space freed with no write tried (none is sent to a
        service that is not ready), and a small record that still fitted in the file's free
        pages does not make a full disk ready. A database server's disk is not ours to see."""
        writer = self.__dict__.get("_group_writer")
        if writer is None or not writer.full or self._database is None:
            return False
        try:
            disk = os.statvfs(self._database.parent)
        except OSError:
            return True
        if disk.f_bavail * disk.f_frsize < ROOM:
            return True
        writer.full = False
        return False

    def person_hash(self, person_id: str) -> str:
        """Salted HMAC-SHA-256 of a person id (hex)."""
        if self._salt is None:
            raise InputError("the audit salt is empty; set RECOMMENDER_AUDIT_SALT or audit.salt")
        return salted_hash(self._salt, person_id)

    def append(self, records: Iterable[Mapping], *, timeout: float | None = None) -> int:
        """Append records in one transaction; returns the number of rows written.

        ``timeout``: seconds to wait for the commit at most, then :class:`TimeoutError` (the
        records stay queued and may still be committed).

        Each record has ``request_id``, ``model_version``, ``caller_role``, ``person_id`` (hashed
        here, never stored), ``safety_level``, ``recommended``, ``ranking_meaningful``,
        ``effects`` (mapping) and optionally ``dp_pa`` (the recommended arm's DP effect, lower
        and upper bounds, then PA's, in :data:`SECONDARY_COLUMNS` order; NaN or ``None`` where
        the answer showed none), ``person_hash`` (this log's :meth:`person_hash` of
        ``person_id``, when the caller has it already), ``batch_id``, ``logged_at``, and ``assignment``
        (arm, probability, policy, cycle, probabilities) with ``profile`` (the non-identifying
        fields), which go to the ``assignments`` table in the same transaction.
        """
        return self.start_append(records).result(timeout)

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
                *_secondary(record.get("dp_pa")),
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
        # Answers without assignment: the writer extends the bound linking outcomes reads them by.
        unassigned = [
            row[1]
            for record, row in zip(records, rows)
            if record.get("assignment") is None and ranked_answer(row[6], row[2])
        ]
        return PendingAppend(self._writer().submit(rows, served, unassigned), len(rows))

    @property
    def engine(self) -> sa.Engine:
        """The database engine, shared with the outcome store (same database)."""
        return self._engine

    def _writer(self) -> "GroupWriter":
        writer = self.__dict__.get("_group_writer")
        if writer is None:
            with _WRITER_LOCK:
                writer = self.__dict__.get("_group_writer")
                if writer is None:
                    writer = self._group_writer = GroupWriter(self._engine)
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
        return list(self.export_rows(since=since))

    def export_rows(
        self, *, since: datetime | None = None, chunk_rows: int = EXPORT_CHUNK_ROWS
    ) -> Iterator[dict]:
        """:meth:`export`'s records one at a time, read from the store ``chunk_rows`` at a
        time (a server-side cursor on PostgreSQL), so that an export of years of records holds
        only a chunk in memory. The read stays open until the last record is taken or the
        iterator is closed."""
        query = sa.select(recommendations).order_by(recommendations.c.id)
        if since is not None:
            query = query.where(recommendations.c.logged_at >= stored_since(since, self._engine))
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=chunk_rows).execute(query)
            for record in result:
                row = dict(record._mapping)
                stamp = row["logged_at"]
                if stamp.tzinfo is None:  # SQLite hands back naive datetimes; they were UTC
                    row["logged_at"] = stamp.replace(tzinfo=timezone.utc)
                row["effects"] = json.loads(row["effects"])
                yield row

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

_NO_SECONDARY = (None,) * len(SECONDARY_COLUMNS)


def _secondary(figures) -> tuple:
    """A record's ``dp_pa`` as stored: a float each, ``None`` for a figure the answer lacked
    (NaN: JSON, the CSV export and PostgreSQL would each write it otherwise)."""
    if figures is None:
        return _NO_SECONDARY
    return tuple([None if v is None or v != v else float(v) for v in figures])  # a list: faster
