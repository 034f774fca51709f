"""A models home that was moved or copied: its store names the original's artifact folder.

MLflow records every experiment's, run's and model version's artifact location as an absolute
path. A home copied elsewhere (a backup restored to another folder, ``cp -r models
/tmp/try-upgrade``) or moved (a project folder renamed) kept naming the original's
``mlartifacts/``: the copy read the original's files, its new versions were written there,
and once the original was gone its versions were refused as files that cannot be read.

So a location inside another folder's ``mlartifacts/`` is taken to be this home's own file
when the same relative path exists in this home's ``mlartifacts/``:

* readers (serve, score, promote, rollback, cards) read that file, without writing the store
  (:func:`local_location`);
* a writer (a training run) rewrites the store under the registry lock, in one SQLite
  transaction, so that every location with a copy here, and every experiment's artifact root
  (where new runs write), names this home (:func:`adopt_moved_home`), and says so in one line.

Only the embedded store of a home (its ``mlflow.db`` in the same folder as its
``mlartifacts/``) is concerned; a tracking server, a database, a ``file:`` store, or an
artifact root outside a ``mlartifacts/`` folder are left as they are. A location whose files
are not in this home stays as recorded: they may still be read where they are.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from recommender.errors import ModelUnavailable
from recommender.registry._lock import registry_lock
from recommender.registry._sqlite import sqlite_path
from recommender.registry._store import _artifact_folder, tracking_uri

__all__ = ["local_location", "local_folder", "moved_location", "adopt_moved_home"]

ARTIFACT_FOLDER = "mlartifacts"
# (table, column) of every artifact location MLflow 3 records in its store. Experiments' roots
# are where new runs write, so they are rewritten whether or not anything is in them yet.
_EXPERIMENT_ROOTS = (("experiments", "artifact_location"),)
_RECORDED_FILES = (
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)
_log = logging.getLogger("recommender.registry")


def moved_location(location: str | None, *, artifacts: Path | None = None) -> str | None:
    """``location`` moved into this home's artifact folder, when it names a place in another
    home's ``mlartifacts/``; ``None`` for anything else (already here, remote, not a folder of
    that name, or a store that is not a home's).

    Parameters
    ----------
    location : str
        A ``file:`` URI or an absolute path, as MLflow recorded it; the answer keeps its form.
    artifacts : Path, optional
        This home's artifact folder; by default the one of :func:`tracking_uri`'s home.
    """
    if artifacts is None:
        artifacts = _home_artifacts(tracking_uri())
        if artifacts is None:
            return None
    recorded = _local_path(location or "")
    if recorded is None:
        return None
    parts = recorded.parts
    if ARTIFACT_FOLDER not in parts:
        return None
    # The last one: a home may itself lie under a folder of that name; what a run or a model
    # keeps inside its artifact folder never holds one.
    index = len(parts) - 1 - parts[::-1].index(ARTIFACT_FOLDER)
    root = Path(*parts[: index + 1])
    with contextlib.suppress(OSError):
        if root == artifacts or root.resolve() == artifacts:
            return None
    here = artifacts.joinpath(*parts[index + 1 :])
    return here.as_uri() if location.startswith("file:") else str(here)


def local_location(location: str) -> str:
    """Where a reader finds ``location``'s files: this home's copy of another home's artifact
    folder when the copy exists, else ``location`` as recorded."""
    here = moved_location(location)
    if here is not None and _exists(here):
        return here
    return location


def local_folder(location: str) -> Path | None:
    """The folder of this machine that ``location`` (a ``file:`` URI or an absolute path, as
    MLflow records it) names; ``None`` for a location elsewhere (``s3://``, a server)."""
    path = _local_path(location or "")
    return None if path is None else Path(path)


def adopt_moved_home(uri: str) -> None:
    """Make the store of the home at ``uri`` name this home's artifact folder, wherever it was
    copied from; a writer calls it before it writes (see the module's docstring).

    Checked once per store file and process: a store found naming only its own home is not
    read again.

    Raises
    ------
    ModelUnavailable
        When the store could not be changed (locked by another program for longer than the
        wait, or not writable by this user); nothing was changed then.
    """
    path = sqlite_path(uri)
    artifacts = _home_artifacts(uri)
    if path is None or artifacts is None:
        return
    try:
        key = (str(path), path.stat().st_ino, str(artifacts))
    except OSError:
        return  # no store yet: nothing recorded anywhere
    if key in _ADOPTED:
        return
    try:
        with contextlib.closing(_connect(path, read_only=True)) as db:
            found = _changes(db, artifacts)
        if found:
            with registry_lock(), contextlib.closing(_connect(path, read_only=False)) as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    found = _changes(db, artifacts)  # again: another writer may have done it
                    for table, column, rowid, old, new in found:
                        db.execute(
                            f"UPDATE {table} SET {column} = ? WHERE rowid = ? AND {column} = ?",
                            (new, rowid, old),
                        )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
    except sqlite3.Error as error:
        raise ModelUnavailable(
            f"the MLflow store {path} names artifact folders of another home (this home was "
            f"moved or copied), and could not be changed to name {artifacts} ({error}): "
            "another program may hold it locked, or this user may not write it; nothing was "
            "changed, try again"
        ) from None
    if found:
        origins = sorted({_origin(old) for _, _, _, old, _ in found})
        _log.warning(
            "this home was moved or copied from %s: its MLflow store now names %s instead, for "
            "the %d recorded artifact locations found here (nothing was changed there)",
            " and ".join(origins),
            artifacts,
            len(found),
        )
    _ADOPTED.add(key)


_ADOPTED: set = set()


def _changes(db, artifacts: Path) -> list[tuple]:
    """``(table, column, rowid, recorded, rewritten)`` for every location to rewrite."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    changes = []
    for columns, needs_copy in ((_EXPERIMENT_ROOTS, False), (_RECORDED_FILES, True)):
        for table, column in columns:
            if table not in tables:
                continue
            if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                continue
            for rowid, old in db.execute(f"SELECT rowid, {column} FROM {table}"):
                new = moved_location(old, artifacts=artifacts) if isinstance(old, str) else None
                if new is not None and (not needs_copy or _exists(new)):
                    changes.append((table, column, rowid, old, new))
    return changes


def _home_artifacts(uri: str) -> Path | None:
    """This home's artifact folder when ``uri`` is a home's embedded store (its ``mlflow.db``
    beside its ``mlartifacts/``); ``None`` for any other store."""
    path = sqlite_path(uri)
    if path is None:
        return None
    artifacts = _artifact_folder()
    with contextlib.suppress(OSError):
        if path.parent.resolve() == artifacts.parent:
            return artifacts
    return None


def _local_path(location: str) -> PurePosixPath | None:
    if location.startswith("file:"):
        parsed = urlparse(location)
        if parsed.netloc not in ("", "localhost"):
            return None
        location = unquote(parsed.path)
    if not location.startswith("/"):
        return None
    return PurePosixPath(location)


def _origin(location: str) -> str:
    """The other home's artifact folder ``location`` lies in."""
    parts = _local_path(location).parts
    index = len(parts) - 1 - parts[::-1].index(ARTIFACT_FOLDER)
    return str(PurePosixPath(*parts[: index + 1]))


def _exists(location: str) -> bool:
    return local_folder(location).exists()


def _connect(path: Path, *, read_only: bool):
    if read_only:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    return sqlite3.connect(path, timeout=30, isolation_level=None)
