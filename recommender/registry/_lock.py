"""One alias change at a time per store: the lock that training runs, promote and rollback share.

A training run's gate reads the champion, and its registration moves the alias seconds later;
``promote`` and ``rollback`` read the aliases and the promotion history before they move one.
Two of them on the same store at once would each act on what the other is replacing (two gates
both judged against the old champion, a rollback undoing a promotion it never saw), so every
alias change, with the reads it depends on, holds this lock; so does setting up a new SQLite
store (:mod:`recommender.registry._sqlite`), which two first training runs would otherwise do at
once.

The lock is an exclusive ``flock`` on a file beside the store (``mlflow.db.lock`` for a SQLite
store, ``.registry.lock`` in a ``file:`` store's folder): processes of every user of the store
on this machine share it, and the system releases it when its holder ends, however it ends (a
``kill -9`` included), so it is never left held. A store on a server (PostgreSQL, a tracking
server) has no such file: the lock then lives in ``<models_dir>/registry.lock`` and holds only
between processes of this machine (:func:`store_is_local` says which).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from recommender.paths import models_dir
from recommender.registry._sqlite import sqlite_path
from recommender.registry._store import _store_scheme, tracking_uri

__all__ = ["registry_lock", "store_is_local"]

_THREAD_LOCK = threading.RLock()
_held = {"depth": 0, "file": None}
_log = logging.getLogger("recommender.registry")


def store_is_local(uri: str | None = None) -> bool:
    """True for a store in a file on this machine (SQLite, ``file:``), whose lock every process
    using the store shares; False for a server, where the lock holds on this machine only."""
    return _store_scheme(uri or tracking_uri()) in ("", "file", "sqlite")


def _lock_path(uri: str) -> Path:
    sqlite = sqlite_path(uri)
    if sqlite is not None:
        return sqlite.with_name(sqlite.name + ".lock")
    if store_is_local(uri):
        parsed = urlparse(uri)
        folder = Path(unquote(parsed.path)) if parsed.scheme else Path(uri)
        return folder / ".registry.lock"
    return models_dir() / "registry.lock"


@contextlib.contextmanager
def registry_lock():
    """Hold the store's alias lock for the block (re-entrant in a thread; threads queue).

    Waits as long as it takes (Ctrl-C stops the wait); when another process holds it, logs
    once what it waits for.
    """
    with _THREAD_LOCK:
        if _held["depth"] == 0:
            _held["file"] = _acquire(_lock_path(tracking_uri()))
        _held["depth"] += 1
        try:
            yield
        finally:
            _held["depth"] -= 1
            if _held["depth"] == 0:
                handle, _held["file"] = _held["file"], None
                if handle is not None:
                    handle.close()  # closing the file releases the flock


def _acquire(path: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform: threads only
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log.warning(
                "waiting for another training run, promote or rollback to finish setting up "
                "this store or changing its aliases (lock %s)",
                path,
            )
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    except BaseException:
        handle.close()
        raise
    return handle
