"""The service's tables are made and upgraded by Alembic migrations, on any SQLAlchemy URL.

:func:`upgrade_schema` runs when a store is opened: a new database gets every revision, an
up-to-date one costs one query, and an audit database made before migrations existed (by
``create_all``, with no version table) is stamped at the first revision and upgraded from
there. Several workers opening the same database at once take turns: PostgreSQL through an
advisory lock, a SQLite file through a lock file beside it. How to add a revision:
docs/migrations.md.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from pathlib import Path

import sqlalchemy as sa

from recommender.service._sqlite import sqlite_file
from recommender.service._store_errors import AuditMigrationFailed, AuditSchemaNewer, shown_store

__all__ = [
    "upgrade_schema",
    "schema_revision",
    "head_revision",
    "begin_atomically",
    "bound_lock_waits",
    "migration_failure",
    "check_schema_known",
    "VERSION_TABLE",
    "BASELINE",
    "LOCK_WAIT_SECONDS",
]

# Not Alembic's default `alembic_version`: the audit tables may share a database with MLflow's
# tracking store, which keeps its own revision there.
VERSION_TABLE = "recommender_schema_version"
# The revision matching the tables the service made with create_all before migrations.
BASELINE = "0001"
_FOLDER = Path(__file__).resolve().parent / "migrations"
# Any constant shared by every process migrating one PostgreSQL database.
_ADVISORY_KEY = 0x52454331
_in_process = threading.Lock()
# SQLSTATE insufficient_privilege.
_MAY_NOT = "42501"
# How long a migration on PostgreSQL waits for a lock on a table it changes (its lock_timeout,
# unless the session sets one of its own). Without it, a session holding the table (an open
# transaction: an export, a psql session, an older release still serving) kept the migration
# waiting for as long, the service that opened the store with it (crisis answers included)
# and, queued behind its request, every other session's reads and writes of that table.
LOCK_WAIT_SECONDS = 5
_EXISTS = (
    "an object this revision creates already exists (made by hand or by another tool in this "
    "database): drop or rename it, or give the service another database"
)
# What a failed revision's database error means, by SQLSTATE (or its class, the first two
# characters), as what to do before migrating again.
_REMEDIES = {
    "55P03": "another session holds a lock on a table this revision changes (an open "
    "transaction: an export, a psql session, a service of the older release; "
    "pg_stat_activity shows which): end it or let it finish",
    "57014": "a statement of this revision ran past the session's statement_timeout: run the "
    "migration with a longer one (PGOPTIONS='-c statement_timeout=0')",
    "42P07": _EXISTS,  # a table or an index
    "42710": _EXISTS,  # a constraint
    "42701": "a column this revision adds already exists (made by hand or by another tool): "
    "drop or rename it, or give the service another database",
    "53": "the database server ran out of a resource (disk, memory, connections): free it",
    _MAY_NOT: "this URL's role may not change the tables (only their owner may alter them, and "
    "since PostgreSQL 15 only the database's owner may create tables in schema public): run "
    "it with the tables' owner's URL",
}
# Errors said elsewhere as they are: the connection lost or refused (08), the server shut down
# (57P).
_NOT_A_REVISION = ("08", "57P")


@functools.cache
def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(_FOLDER))


def _config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_FOLDER))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this release knows (what :func:`upgrade_schema` brings a store to)."""
    return _scripts().get_current_head()


def schema_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(VERSION_TABLE):
            return None
        return connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def check_schema_known(engine: sa.Engine, found: str) -> None:
    """Refuse a store at a revision this release does not know (:class:`AuditSchemaNewer`)."""
    known = [script.revision for script in _scripts().walk_revisions()][::-1]
    if found not in known:
        # Alembic would say "Can't locate revision"; this is a store a newer release upgraded.
        raise AuditSchemaNewer(
            f"the audit store {shown_store(engine.url)} is at schema "
            f"revision {found!r}, which this release does not know (it knows "
            f"{', '.join(known)}): a newer release has upgraded it; serve that release, or "
            "give this one another store"
        )


def upgrade_schema(engine: sa.Engine) -> str:
    """Bring the database to the newest revision; returns it.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    >>> upgrade_schema(engine) == _scripts().get_current_head()
    True
    >>> sorted(sa.inspect(engine).get_table_names())  # doctest: +NORMALIZE_WHITESPACE
    ['assignments', 'erasures', 'outcome_submissions', 'outcomes', 'recommendations',
     'recommender_schema_version', 'service_reloads', 'store_facts']
    """
    head = head_revision()
    found = schema_revision(engine)
    if found == head:
        return head
    if found is not None:
        check_schema_known(engine, found)
    from alembic import command

    try:
        with _in_process, _exclusive(engine), engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY}
                )
            inspector = sa.inspect(connection)
            config = _config(connection)
            if not inspector.has_table(VERSION_TABLE) and inspector.has_table("recommendations"):
                command.stamp(config, BASELINE)
            command.upgrade(config, "head")
    except sa.exc.DBAPIError as error:
        failure = migration_failure(engine.url, error, found=found)
        if failure is None or getattr(error.orig, "sqlstate", None) == _MAY_NOT:
            raise  # a role that may not: the audit log names the GRANT or the owner to use
        raise failure from error
    return head


def bound_lock_waits(connection: sa.Connection) -> None:
    """Make a PostgreSQL migration wait :data:`LOCK_WAIT_SECONDS` at most for each lock it
    takes (``SET LOCAL lock_timeout``), unless the session already sets a wait of its own
    (``PGOPTIONS``, the URL's ``options``). Past it the revision fails and its transaction is
    rolled back: the store stays at the revision it had (:func:`migration_failure` says so)."""
    if connection.dialect.name != "postgresql":
        return
    if connection.exec_driver_sql("SHOW lock_timeout").scalar() == "0":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'")


def migration_failure(
    url: sa.engine.URL, error: sa.exc.DBAPIError, *, found: str | None
) -> AuditMigrationFailed | None:
    """What a migration that failed on the database server (a lock it waited for too long, an
    object that exists already) means: which revision failed, that the store is left at the
    revision it had, and what to do. ``None`` for an error said elsewhere as it is (the
    connection lost, the server shut down) and for one without a SQLSTATE (SQLite's)."""
    state = getattr(error.orig, "sqlstate", None)
    if not state or state.startswith(_NOT_A_REVISION):
        return None
    failed = _failed_revision(error)
    step = "a step" if failed is None else f"revision {failed[0]}'s {failed[1]}"
    cause = str(error.orig).strip().splitlines()[0]  # never its DETAIL, which may quote a row
    statement = " ".join((error.statement or "").split())
    if statement:
        cause += f"; in: {statement[:160]}"
    remedy = _REMEDIES.get(state) or _REMEDIES.get(state[:2]) or "correct what the server says"
    if found is None and failed == (BASELINE, "upgrade") and state == "42P07":
        # Only the command line gets here: a service opening such a store stamps it first.
        remedy = (
            f"it is a store made before migrations (its tables, no {VERSION_TABLE}): stamp it "
            f"at the first revision (`alembic -c alembic.ini stamp {BASELINE}`)"
        )
    kept = f"at revision {found}" if found else "without a revision, as before"
    return AuditMigrationFailed(
        f"the audit store {shown_store(url)} was not migrated: {step} failed (SQLSTATE "
        f"{state}: {cause}); nothing was changed, the store is still {kept}. What to do: "
        f"{remedy}; then run it again (a service opening the store migrates it, trying again "
        "every reload_poll_seconds; by hand, `alembic -c alembic.ini upgrade head` with the "
        "tables' owner's URL: docs/migrations.md)"
    )


def _failed_revision(error: BaseException) -> tuple[str, str] | None:
    """The revision whose ``upgrade`` or ``downgrade`` raised ``error``, from its traceback."""
    versions = str(_FOLDER / "versions")
    failed, trace = None, error.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        if frame.f_code.co_filename.startswith(versions) and "revision" in frame.f_globals:
            failed = (frame.f_globals["revision"], frame.f_code.co_name)
        trace = trace.tb_next
    return failed


def begin_atomically(connection: sa.Connection) -> None:
    """Make a SQLite connection's migration one transaction, as it is on PostgreSQL.

    Python's sqlite3 opens a transaction before INSERT, UPDATE and DELETE only: every CREATE,
    DROP and ALTER before the first of them is committed at once. A revision that failed (or a
    process stopped) half-way left its first statements applied under the old revision number:
    a downgrade of 0007 refused by a unique constraint had already dropped two indexes and left
    Alembic's copy of the table behind. An explicit BEGIN holds every statement until the one
    commit (sqlite3 commits and rolls back whatever transaction is open).
    """
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.dbapi_connection
    if not driver.in_transaction:
        connection.exec_driver_sql("BEGIN")


@contextlib.contextmanager
def _exclusive(engine: sa.Engine):
    """A lock file beside a SQLite database file, so two workers never migrate it at once."""
    database = sqlite_file(engine.url)
    if database is None:
        yield
        return
    import fcntl

    with open(f"{database}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
