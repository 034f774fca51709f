"""A restore's files on disk: how they are named and moved, and its journal.

Each file of the backup is copied beside its place (``.restoring-<stamp>-<name>``), and what
it replaces is moved aside (``<name>.before-restore-<stamp>``) with its SQLite side files, so
that the moved-aside database keeps the rows only its log held, and put back from there. The
journal (``.restore-journal.json`` in the models folder) is written whole and durably, read
back, and names the process that wrote it (with its start time, which tells it from a later
process given the same id). How a restore uses them, all or nothing even when killed, is
:mod:`recommender._restore_swap`, which imports these names back for its callers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


JOURNAL = ".restore-journal.json"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SIDE_FILES = ("-wal", "-shm")


def is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


def make_durable(path: Path) -> None:
    """Make ``path`` (a file, or a folder: the names in it) durable on disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _aside(target: Path, stamp: str) -> Path:
    return target.with_name(f"{target.name}.before-restore-{stamp}")


def _moved_aside(target: Path, stamp: str) -> Path:
    """Rename ``target`` to ``<name>.before-restore-<stamp>``, a SQLite database with its
    side files renamed ``<that>-wal`` and ``<that>-shm``: SQLite pairs a database only with the
    log named after it, so the moved-aside copy keeps the rows only its log held. Run again
    after a kill between those renames, it finishes them."""
    aside = _aside(target, stamp)
    for suffix in _SIDE_FILES:
        side = Path(f"{target}{suffix}")
        if side.exists():
            side.rename(Path(f"{aside}{suffix}"))
    target.rename(aside)
    return aside


def _put_back(target: Path, stamp: str) -> None:
    """Undo :func:`_moved_aside` (also when it stopped midway), dropping the restored copy."""
    aside = _aside(target, stamp)
    if aside.exists():
        target.unlink(missing_ok=True)
        aside.rename(target)
    for suffix in _SIDE_FILES:
        side = Path(f"{aside}{suffix}")
        if side.exists():
            side.rename(Path(f"{target}{suffix}"))


def _write_journal(models: Path, journal: dict) -> None:
    """Replace the journal whole and durably: a reader finds the old one or the new one."""
    models.mkdir(parents=True, exist_ok=True)
    path = models / JOURNAL
    temporary = models / f"{JOURNAL}.tmp"
    with open(temporary, "w") as handle:
        json.dump(journal, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.rename(path)  # replaces an earlier journal at once (POSIX)
    make_durable(models)


def _drop_journal(models: Path, copies=()) -> None:
    """Remove the journal, once the removal or renaming of ``copies`` is durable: a copy is
    never left on disk without the journal that names it."""
    for folder in {Path(copy).parent for copy in copies}:
        if folder.is_dir():
            make_durable(folder)
    (models / JOURNAL).unlink(missing_ok=True)
    (models / f"{JOURNAL}.tmp").unlink(missing_ok=True)


def _copy_of(target: Path, stamp: str) -> Path:
    return target.with_name(f".restoring-{stamp}-{target.name}")


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), which tells it from a later
    process given the same id; None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (name) state ppid ...": the name may hold spaces and parentheses
            return stat.read().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return None


def _still_running(journal: dict) -> int | None:
    """The id of the process writing ``journal`` if it still runs, else None."""
    from recommender._processes import process_alive

    writer = journal.get("process") or {}
    pid = writer.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or not process_alive(pid):
        return None
    started = writer.get("started")
    if started is not None and _started(pid) not in (None, started):
        return None  # the id now names another process
    return pid


def _read_journal(models: Path) -> dict | None:
    from recommender.errors import InputError

    path = models / JOURNAL
    try:
        journal = json.loads(path.read_text())
        journal["steps"] = [
            {**step, **{key: Path(step[key]) for key in ("target", "copy", "aside")}}
            for step in journal["steps"]
        ]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        # Written whole by a rename: unreadable means changed by hand, not stopped midway.
        raise InputError(
            f"{path}: not the journal a restore writes ({error}); nothing was finished or "
            "undone: compare the models folder with the backup by hand, then remove that file"
        ) from None
    return journal
