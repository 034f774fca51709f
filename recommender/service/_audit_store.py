"""Opening the audit store: the engine a URL is opened with (SQLite's pragmas, a new file
readable by its owner alone), the refusal of a store that cannot be opened, reaching a database
server's store once without changing it (``serve --check``: :func:`reach_audit_store`), and the
refusal of a URL that names no store this service can open (:func:`check_audit_url`).

What is written to the store, and how, is :class:`~recommender.service._audit.AuditLog`'s.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from recommender.errors import InputError
from recommender.service._migrate import check_schema_known, head_revision, schema_revision
from recommender.service._sqlite import sqlite_file
from recommender.service._store_check import check_privileges, connect_waits, not_permitted
from recommender.service._store_errors import AuditStoreUnreachable, shown_store

__all__ = [
    "AuditUrlRefused",
    "WAL_SIZE_LIMIT",
    "check_audit_url",
    "reach_audit_store",
]


# Bytes a SQLite store's write-ahead log keeps on disk once a checkpoint has restarted it.
# Under sustained load it stays under 10 MB (SQLite checkpoints every 1,000 pages, 4 MB).
WAL_SIZE_LIMIT = 16 << 20


def _make_engine(url: str, *, synchronous: str = "NORMAL") -> sa.Engine:
    # hide_parameters: a failed write's error (logged, and shown in tracebacks) would otherwise
    # quote the rows it held, a person's scores and profile among them, into the service log.
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
            if sa.engine.make_url(url).query.get("mode") != "ro":  # read-only: made by others
                _create_owner_only(database)
        memory = database is None
        engine = sa.create_engine(
            url,
            hide_parameters=True,
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
                # A WAL file keeps the largest size it ever reached: one long read (an
                # auditor's export, a backup) under load held checkpoints back and left
                # 236 MB on disk for good. Cut back at the next checkpoint that restarts it.
                cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(
        url, hide_parameters=True, pool_pre_ping=True, connect_args=connect_waits(url)
    )


def _create_owner_only(database: Path) -> None:
    # A new store is readable by its owner alone (SQLite gives its WAL and shared-memory files
    # the database file's mode): its rows are pseudonymous, but a profile beside a crisis
    # safety level can point at one colleague. An existing file keeps the mode it was given.
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _unopenable(url: sa.engine.URL, cause) -> AuditStoreUnreachable:
    remedy = (
        "a SQLite store needs its file and folder readable and writable by this user (it "
        "keeps a write-ahead log beside the file)"
        if url.get_backend_name() == "sqlite"
        else "the database server must be reachable from here and take this URL's host, "
        "port, database, user and password"
    )
    return AuditStoreUnreachable(
        f"cannot open the audit store {shown_store(url)} ({cause}); {remedy}"
    )


def reach_audit_store(url: str) -> str | None:
    """Reach a database server's audit store once, changing nothing (``serve --check``): its
    schema state in a few words, or the refusal opening it would give (an
    :class:`AuditStoreUnreachable` naming the server's reason, the URL without its password;
    a newer schema, :class:`AuditSchemaNewer`). ``None`` for SQLite, which has no server: its
    file is made and migrated when the service starts.

    Unlike opening the store, nothing is migrated: a check run before a rollout leaves the
    store as the serving release needs it.
    """
    check_audit_url(url)
    backend = sa.engine.make_url(url).get_backend_name()
    if backend == "sqlite":
        return None
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_waits(url))
    try:
        found = schema_revision(engine)
    except sa.exc.OperationalError as error:
        raise _unopenable(engine.url, error.orig) from None
    except sa.exc.ProgrammingError as error:
        if getattr(error.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        raise not_permitted(engine.url, error.orig, behind=False) from None
    finally:
        engine.dispose()
    head = head_revision()
    if found == head:
        # What opening it would check: every privilege the service reads and writes with.
        try:
            check_privileges(engine, shown=shown_store(engine.url))
        finally:
            engine.dispose()
        return f"at schema revision {head}, this release's"
    if found is not None:
        check_schema_known(engine, found)
    if backend == "postgresql" and not _may_create(engine):
        # What opening it would say (AuditMigrationsPending), before the service is started.
        cause = "permission denied to create tables in its schema"
        raise not_permitted(engine.url, cause, behind=True)
    if found is None:
        return "reached, not migrated yet: the service migrates it at start"
    return f"reached, at schema revision {found}: the service migrates it to {head} at start"


def _may_create(engine: sa.Engine) -> bool:
    """Whether the URL's role may create tables where the audit tables go (PostgreSQL)."""
    question = sa.text("SELECT has_schema_privilege(current_schema(), 'CREATE')")
    try:
        with engine.connect() as connection:
            return bool(connection.execute(question).scalar())
    finally:
        engine.dispose()


# SQLSTATE of a statement the role may not run (PostgreSQL's insufficient_privilege).
_INSUFFICIENT_PRIVILEGE = "42501"


def _behind(engine: sa.Engine) -> bool:
    """Whether the store's schema is older than this release's (a role refused while
    migrating it); False when the role may not even read its revision."""
    try:
        return schema_revision(engine) != head_revision()
    except sa.exc.SQLAlchemyError:
        return False


class AuditUrlRefused(InputError):
    """The audit store's URL names no store this service can open, whatever the server does."""


def check_audit_url(url: str) -> None:
    """Refuse a URL that names no store this service can open (:class:`AuditUrlRefused`: no
    SQLAlchemy URL, a dialect SQLAlchemy does not know, a driver not installed), without
    connecting: nothing a server does can make such a URL work.

    Examples
    --------
    >>> check_audit_url("sqlite:///models/audit.db")
    >>> check_audit_url("postgres://svc:secret@db/audit")
    Traceback (most recent call last):
    ...
    recommender.service._audit_store.AuditUrlRefused: the audit store URL postgres://svc:***@db/audit is not accepted: SQLAlchemy does not know its dialect (Can't load plugin: sqlalchemy.dialects:postgres); give sqlite:///path or postgresql+psycopg://user:PASSWORD@host/database (set by audit.url in serve.yaml, RECOMMENDER_AUDIT_URL or the secrets folder's audit_url)
    """
    try:
        sa.create_engine(url).dispose()  # loads the dialect and its driver; connects to nothing
    except (sa.exc.ArgumentError, ImportError) as error:
        raise AuditUrlRefused(_refused_url(url, error)) from None


def _refused_url(url: str, error: Exception) -> str:
    try:
        shown = shown_store(url)
    except sa.exc.ArgumentError:
        shown, reason = None, "it is not a SQLAlchemy URL"
    else:
        reason = (
            f"no driver for it is installed ({error})"
            if isinstance(error, ImportError)
            else f"SQLAlchemy does not know its dialect ({error})"
        )
    # A text that is not a URL is not repeated: it may hold a password.
    what = "the audit store URL" if shown is None else f"the audit store URL {shown}"
    return (
        f"{what} is not accepted: {reason}; give sqlite:///path or "
        "postgresql+psycopg://user:PASSWORD@host/database (set by audit.url in serve.yaml, "
        "RECOMMENDER_AUDIT_URL or the secrets folder's audit_url)"
    )
