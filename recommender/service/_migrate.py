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
from recommender.service._store_errors import AuditSchemaNewer, shown_store

__all__ = [
    "upgrade_schema",
    "schema_revision",
    "head_revision",
    "begin_atomically",
    "check_schema_known",
    "VERSION_TABLE",
    "BASELINE",
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
    ['assignments', 'erasures', 'outcomes', 'recommendations', 'recommender_schema_version',
     'service_reloads', 'store_facts']
    """
    head = head_revision()
    found = schema_revision(engine)
    if found == head:
        return head
    if found is not None:
        check_schema_known(engine, found)
    from alembic import command

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
    return head


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
