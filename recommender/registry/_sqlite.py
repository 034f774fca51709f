"""The embedded SQLite store's file: what state it is in, and who may set it up.

MLflow's client creates and migrates the schema of whatever store it opens that lacks its
tables. A service retrying to load its first champion opened the ``mlflow.db`` a first training
run had just begun to create, ran the same migrations at the same time, and one of the two
failed ("table ... already exists"); two first training runs did the same to each other. So a
reader never opens a store that is missing or not set up (to it, no model is registered yet),
and a writer sets one up holding the store's lock (:mod:`recommender.registry._lock`), making
a new one beside and renaming it into place whole. Stores that are not a SQLite file (a
database, a server, ``file:``) are MLflow's to create, as before.

Callers switch MLflow's logging and telemetry off first (``_store._quiet``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote, unquote

from recommender._restore_swap import make_durable
from recommender.errors import InputError, ModelUnavailable

__all__ = [
    "sqlite_uri",
    "sqlite_path",
    "sqlite_state",
    "require_sqlite_store",
    "set_up_sqlite_store",
    "check_sqlite_store",
]

# Every printable ASCII character but "%" and "?" stays as it is in a SQLite URL's path.
_SQLITE_PATH_SAFE = "".join(chr(c) for c in range(32, 127) if chr(c) not in "%?")


def sqlite_uri(path: Path) -> str:
    """The ``sqlite:///`` URL of the file at ``path``, naming it whatever its characters."""
    return f"sqlite:///{quote(path.as_posix(), safe=_SQLITE_PATH_SAFE)}"


def sqlite_path(uri: str) -> Path | None:
    """The file a ``sqlite:///`` URL names; ``None`` for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri[len("sqlite:///") :].split("?", 1)[0]))


def require_sqlite_store(uri: str) -> None:
    """Refuse, by name, a SQLite store a reader must not open: missing, not set up yet, or
    older than this MLflow.

    MLflow's client creates and migrates whatever store it opens that lacks its tables: a
    reader that opened the store a first training run was still creating ran the same
    migrations at the same time, and one of them failed. Only writers set a store up
    (:func:`set_up_sqlite_store`); to a reader a store not set up holds no model yet.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    try:
        state = sqlite_state(path)
    except sqlite3.OperationalError as error:
        # Locked, perhaps by the training run creating it: MLflow would not wait any better,
        # and might set the store up itself once it got in.
        raise ModelUnavailable(
            f"the MLflow store at {path} could not be read ({error}): another program (a "
            "training run setting it up, a SQL shell) may hold it locked, or this user may not "
            "read it; nothing was changed, try again"
        ) from None
    if state == _MISSING:
        raise InputError(
            f"there is no MLflow store at {path}: nothing was ever trained or registered there. "
            "Point RECOMMENDER_HOME (or MLFLOW_TRACKING_URI) at the store that holds the "
            "models, or train one first (`recommender train`); nothing was created"
        )
    if state == _OLDER:
        from importlib.metadata import version

        raise ModelUnavailable(
            f"the MLflow store {path} lacks tables this MLflow ({version('mlflow')}) needs: it "
            "was made by an older MLflow, or a training run is upgrading it right now. The next "
            "`recommender train` upgrades it (back it up first), as does `mlflow db upgrade "
            f"{uri}`; nothing was changed"
        )
    if state == _NOT_SET_UP:
        raise InputError(
            f"the MLflow store {path} is not set up yet: a first `recommender train` is "
            "creating it (or was stopped while it did), so nothing is registered there yet. "
            "Try again once training has registered a model (the next training run finishes "
            "setting it up); nothing was changed"
        )


def set_up_sqlite_store(uri: str, *, artifact_root: str) -> None:
    """Make the SQLite store MLflow's schema complete before a writer uses it.

    Done holding the store's lock, so that first training runs started together set it up one
    after the other. A new store is made beside the file and renamed into place whole: a
    reader sees no store or a complete one, never one half made. A store whose creation was
    cut short is finished in place by MLflow. ``artifact_root`` is the default experiment's.
    """
    path = sqlite_path(uri)
    if path is None or _ready(path):
        return
    # Imported here: the lock's module imports this one to name its file after the store.
    from recommender.registry._lock import registry_lock

    with registry_lock():
        try:
            state = sqlite_state(path)
        except sqlite3.OperationalError:
            return  # held by another program: MLflow waits for it, and says so if in vain
        if state == _READY:  # set up by the writer this one waited for
            return
        if state == _OLDER or (state == _NOT_SET_UP and path.stat().st_size > 0):
            _open_mlflow_store(uri, artifact_root)  # MLflow upgrades or finishes it in place
            return
        staging = path.with_name(f".{path.name}.{os.getpid()}.new")
        journal = staging.with_name(staging.name + "-journal")
        try:
            for left in (staging, journal):  # by a process of this id killed while making it
                left.unlink(missing_ok=True)
            with _unsynced(staging):
                _open_mlflow_store(sqlite_uri(staging), artifact_root)
            make_durable(staging)  # once, before it is in place
            os.replace(staging, path)
        finally:
            staging.unlink(missing_ok=True)


def _open_mlflow_store(uri: str, artifact_root: str) -> None:
    """Let MLflow create (or finish) its tables and default experiment in the store at ``uri``.

    The store MLflow's client would make for ``uri``, opened once and closed, so no connection
    stays open on a file about to be renamed.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, artifact_root)
    store.engine.dispose()


@contextlib.contextmanager
def _unsynced(staging: Path):
    """For the block, connections to the file ``staging`` neither sync nor keep a journal file.

    MLflow builds a new store by some seventy migrations, each committed and synced to disk: on a
    busy disk that took seconds for a file of under a megabyte. A staging file is no store until
    it is renamed into place whole (after one sync), and one cut short is made
    again from scratch, so syncing each step protects nothing. The journal stays in memory: a
    migration that fails still rolls back. Other connections, and this file once in place, keep
    SQLite's and MLflow's defaults.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = os.path.realpath(staging)

    def unsynced(connection, _record) -> None:
        if not isinstance(connection, sqlite3.Connection):
            return
        names = {
            os.path.realpath(row[2]) for row in connection.execute("PRAGMA database_list") if row[2]
        }
        if target in names:
            connection.execute("PRAGMA synchronous = OFF")
            connection.execute("PRAGMA journal_mode = MEMORY")

    event.listen(Engine, "connect", unsynced)
    try:
        yield
    finally:
        event.remove(Engine, "connect", unsynced)


def _ready(path: Path) -> bool:
    try:
        return sqlite_state(path) == _READY
    except sqlite3.OperationalError:
        return False


def check_sqlite_store(uri: str) -> None:
    """Refuse, by name, a SQLite store whose file exists but is not a readable database (see
    :func:`sqlite_state`); a missing, empty, unfinished or busy one is not damage."""
    path = sqlite_path(uri)
    if path is not None:
        with contextlib.suppress(sqlite3.OperationalError):
            sqlite_state(path)


_MISSING, _NOT_SET_UP, _OLDER, _READY = "missing", "not set up", "older", "ready"


def sqlite_state(path: Path) -> str:
    """Whether the SQLite store at ``path`` is missing, not set up yet, older than this MLflow,
    or ready for it.

    Ready is a file with MLflow's schema revision stamped and every table MLflow checks for
    before it decides to create its schema (so opening it, MLflow creates and migrates
    nothing). Not set up is an empty file or one without a revision stamped (its creation under
    way or cut short); older, one with a revision but without some of those tables (made by an
    older MLflow, or being upgraded). Read through a read-only connection: looking never changes the file. A ready
    store stays ready, so a file once found ready (same inode, size and modification time) is
    not read again.

    Raises
    ------
    InputError
        For a file that is not a SQLite database: MLflow would otherwise end in SQLAlchemy's
        traceback ("file is not a database") on its first query.
    sqlite3.OperationalError
        When the file cannot be read now (locked, busy, not readable by this user): not damage.
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        return _MISSING
    if status.st_size == 0:
        return _NOT_SET_UP
    key = (str(path), status.st_ino, status.st_size, status.st_mtime_ns)
    if key in _READY_STORES:
        return _READY
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        ) as db:
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            stamped = "alembic_version" in tables and bool(
                db.execute("SELECT version_num FROM alembic_version").fetchall()
            )
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as error:
        raise InputError(
            f"the MLflow store {path} is not a readable SQLite database ({error}): it was "
            "damaged or replaced by another file. Restore it from a backup, or point "
            "MLFLOW_TRACKING_URI (or RECOMMENDER_HOME) at another store; nothing was written"
        ) from None
    if not stamped:
        return _NOT_SET_UP
    if not _mlflow_tables() <= tables:
        return _OLDER
    _READY_STORES.add(key)
    return _READY


_READY_STORES: set = set()


def _mlflow_tables() -> frozenset:
    """The tables whose absence makes MLflow's client create its schema in a store."""
    import mlflow.store.db.utils  # noqa: F401 - imports every table's model into Base
    from mlflow.store.db.base_sql_model import Base

    return frozenset(Base.metadata.tables)
