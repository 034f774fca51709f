"""Putting a restore's files in place all or nothing, even when the restore is killed.

A restore copies each file of the backup beside its place (``.restoring-<stamp>-<name>``),
then swaps the copies in, moving what they replace aside (``<name>.before-restore-<stamp>``).
Ctrl-C and ``kill`` are held off during the swaps (and while a killed restore is finished,
below), then delivered, the command saying that the restore finished; a failure among them
puts everything back. But ``kill -9`` (or a crash, or a power cut) cannot be held off: it could
stop the restore between the swap of the audit store and that of the MLflow store, leaving one
restored and the other not, or leave its copies behind.

So the restore keeps a journal, ``.restore-journal.json`` in the models folder, naming every
copy, where it goes and where what it replaces is moved. It is written (and fsynced) before
the first copy, saying ``copying``, and again once every copy is whole and fsynced, saying
``swapping``: that second write is the point after which the restore is finished rather than
undone. :func:`finish_interrupted_restore`, which ``recommender backup`` (both ``--to`` and
``--restore``) runs first, reads a journal left behind: ``copying``, it removes the copies
(nothing had been replaced); ``swapping``, it does the swaps not yet done, or, when a copy it
needs is gone, puts back everything moved aside.

Every other command that opens the models folder meets a journal left there before it reads
anything: ``serve`` refuses (:func:`refuse_interrupted_restore`), the others finish it; which
does which, and why, is said where the CLI does it (:mod:`recommender.cli._restore_first`).
Finishing is refused, with nothing done, in two cases, and guarded in a third:

* A restore still running (its process alive).
* A process holding one of the restore's SQLite stores open (a service started on the folder
  anyhow): files are not renamed under a live store.
* Two commands finishing at once: the second waits on ``.restore.lock`` (there only meanwhile)
  and then finds the journal gone.

A restore also copies outside the models folder: an audit store that ``audit.url`` puts
elsewhere, and a SQLite MLflow store kept elsewhere (``MLFLOW_TRACKING_URI``, or a
``RECOMMENDER_HOME`` that is not serve.yaml's ``models_dir``). Those copies are never
searched for without a journal, because none can be left without one: the journal, naming them,
is made durable before the first copy is written, and is removed only once every copy has been
renamed in or removed and the folders holding them made durable (so not even a power cut leaves
a copy whose journal is gone). The search of the models folder (``backup`` only) is for copies
a restore from before the journal left; a journal removed by hand is the one way to strand an
outside copy, named ``.restoring-<stamp>-<name>`` beside its store.

The names of those files, how one is moved aside and put back, and the journal's writing and
reading are in :mod:`recommender._restore_files`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
from pathlib import Path

from recommender._restore_files import (
    JOURNAL,
    _aside,
    _copy_of,
    _drop_journal,
    _moved_aside,
    _put_back,
    _read_journal,
    _started,
    _still_running,
    _write_journal,
    is_sqlite,
    make_durable,
)

__all__ = [
    "JOURNAL",
    "finish_interrupted_restore",
    "is_sqlite",
    "make_durable",
    "put_in_place",
    "refuse_interrupted_restore",
    "restored_left",
]

# Held while a journal is finished, so that two commands never finish it at once.
_FINISH_LOCK = ".restore.lock"
# The copies a restore makes: .restoring-<stamp>-<name>, stamp as restore() writes it.
_COPY_NAME = re.compile(r"^\.restoring-\d{8}T\d{6}Z-.")


def _checkpointed(database: Path) -> None:
    """Write the committed rows the write-ahead log of ``database`` holds into the file itself
    and empty the log, so that the file alone holds them (nothing else may hold it open)."""
    try:
        connection = sqlite3.connect(database, timeout=5)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        pass  # unreadable: its side files are moved with it, still paired, for a later look


def put_in_place(
    plan: list[tuple[Path, Path]], stamp: str, *, models: Path, backup: Path
) -> tuple[list[Path], list[Path]]:
    """Copy each ``(source, target)`` of ``plan`` into place, moving what it replaces aside;
    returns what was moved aside and the databases among it.

    All or nothing: every source is first copied beside its target (a full disk, an unreadable
    file or Ctrl-C stops the restore there, its copies removed, nothing replaced); then, signals
    held, each target is moved aside and its copy renamed in, and a failure among those renames
    puts every moved-aside file back; a stop held meanwhile is delivered once they are done, its
    KeyboardInterrupt's ``left`` saying the restore finished. The journal in ``models`` lets the next ``recommender
    backup`` finish or undo a restore that ``kill -9`` stopped (see the module's docstring)."""
    from recommender._files import signals_held
    from recommender.errors import InputError

    steps = [
        {
            "target": str(target),
            "copy": str(_copy_of(target, stamp)),
            "aside": str(_aside(target, stamp)),
            "existed": target.exists(),
        }
        for _, target in plan
    ]
    journal = {
        "stamp": stamp,
        "backup": str(backup),
        "phase": "copying",
        "steps": steps,
        # who writes it: a journal of a restore still running is not a stopped one's
        "process": {"pid": os.getpid(), "started": _started(os.getpid())},
    }
    copies = [Path(step["copy"]) for step in steps]
    written = 0
    try:
        _write_journal(models, journal)
        for (source, target), copy in zip(plan, copies):
            written += 1
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
            make_durable(copy)  # whole on disk before the journal says it may be swapped in
        for folder in {copy.parent for copy in copies}:
            make_durable(folder)
    except BaseException as error:
        _copies_removed(models, copies, error)
        if not isinstance(error, OSError):
            raise
        failed = copies[written - 1] if written else models / f".restoring-{stamp}-{JOURNAL}"
        raise InputError(
            f"{failed.parent}: could not write {failed.name[len(f'.restoring-{stamp}-') :]} "
            f"there ({error.strerror or error}); nothing was restored or replaced: free space "
            "there (or make it writable) and run again"
        ) from None
    try:
        for _, target in plan:
            if target.is_file() and is_sqlite(target):
                _checkpointed(target)  # before it is moved: see _moved_aside
    except BaseException as error:
        _copies_removed(models, copies, error)
        raise
    finished = False
    try:
        with signals_held():
            moved, databases = _swap_in(plan, copies, journal, models)
            finished = True
    except KeyboardInterrupt as interrupt:
        # A stop held during the swaps, delivered now: say what they came to, not "run again".
        interrupt.left = (
            restored_left(models, backup, stamp)
            if finished
            else "the restore was undone: every file it had replaced is put back and its "
            "copies removed; run it again"
        )
        raise
    return moved, databases


def _copies_removed(models: Path, copies: list[Path], error: BaseException) -> None:
    """A restore stopped before its swaps: its copies and journal go; a stop says so."""
    for copy in copies:
        copy.unlink(missing_ok=True)
    _drop_journal(models, copies)
    if isinstance(error, KeyboardInterrupt):
        error.left = (
            "nothing was restored or replaced (the copies it had made are removed); run it again"
        )


def _swap_in(plan, copies, journal: dict, models: Path) -> tuple[list[Path], list[Path]]:
    """The swaps of :func:`put_in_place` (signals held there): the journal saying so, then each
    target moved aside and its copy renamed in; returns what was moved aside and the databases
    among it. A failure puts back every moved-aside file, removes the copies and the journal,
    and is raised."""
    stamp = journal["stamp"]
    moved, databases, done = [], [], []
    try:
        # From here on a killed restore is finished, not undone.
        _write_journal(models, {**journal, "phase": "swapping"})
        for copy, (_, target) in zip(copies, plan):
            existed = target.exists()
            done.append((target, existed))
            if existed:
                database = is_sqlite(target)
                moved.append(_moved_aside(target, stamp))
                if database:
                    databases.append(moved[-1])
            os.replace(copy, target)
    except BaseException:
        for target, existed in reversed(done):
            if existed:
                _put_back(target, stamp)
            else:
                target.unlink(missing_ok=True)
        for copy in copies:
            copy.unlink(missing_ok=True)
        _drop_journal(models, copies)
        raise
    for folder in {target.parent for _, target in plan}:
        make_durable(folder)
    _drop_journal(models)
    return moved, databases


def restored_left(models: Path, backup: Path, stamp: str) -> str:
    """What a restore stopped once its files are swapped in leaves: said after ``stopped;``."""
    return (
        f"the restore had finished: {models} holds the backup {backup} whole, what it replaced "
        f"moved aside as <name>.before-restore-{stamp}; nothing to run again"
    )


def _described(paths: list[Path], models: Path) -> str:
    """The databases by name, the other files (often hundreds of artifacts) counted."""
    databases = [str(p) for p in paths if is_sqlite(p)]
    others = len(paths) - len(databases)
    named = ", ".join(databases)
    if others:
        named += f"{' and ' if named else ''}{others} other file(s) under {models}"
    return named or "no file"


def finish_interrupted_restore(models_dir, *, sweep: bool = True) -> list[str]:
    """Finish or undo a restore into ``models_dir`` that was killed, and remove copies such a
    restore left; returns one line for each thing done, naming the files (none: nothing to do).

    A journal saying ``copying``: nothing had been replaced; its copies are removed. Saying
    ``swapping``: every copy was whole, so the swaps not yet done are done (the restore is
    finished); if a copy still to be swapped in is gone, every file moved aside is put back
    instead (the restore is undone). Either way the models folder ends wholly as before the
    restore or wholly restored, and the journal is removed last, so that a kill meanwhile is
    finished by the next run; Ctrl-C and ``kill`` are held off meanwhile, then delivered with
    what was done. Refused, doing nothing, while the restore still runs or while a process
    holds open a store it would rename. ``sweep``: also search the whole folder for
    copies a restore from before the journal left (``recommender backup`` does)."""
    models = Path(models_dir).resolve()
    said = []
    if (models / JOURNAL).exists():
        with _finishing(models):
            # read under the lock: a command finishing it meanwhile has removed it
            journal = _read_journal(models)
            if journal is not None:
                running = _still_running(journal)
                if running is not None:
                    from recommender.errors import InputError

                    raise InputError(
                        f"{models / JOURNAL}: a restore of {journal.get('backup')} into "
                        f"{models} is running (process {running}); nothing was done: wait for "
                        "it to end, then run again"
                    )
                if journal["phase"] == "swapping":
                    _refuse_held(journal)
                said.append(_finished_whole(journal, models))
    leftovers = []
    if sweep and models.is_dir():
        for folder, _, names in os.walk(models):
            leftovers += [Path(folder) / n for n in names if _COPY_NAME.match(n)]
    for leftover in sorted(leftovers):
        leftover.unlink(missing_ok=True)
    if leftovers:
        said.append(
            f"removed {len(leftovers)} copy(ies) that a stopped restore left and never swapped "
            f"in: {', '.join(map(str, sorted(leftovers)))}"
        )
    return said


@contextlib.contextmanager
def _finishing(models: Path):
    """Held while a journal in ``models`` is finished: a second command waits, then finds it
    gone. The lock is the open file's (released when the process ends, however it ends); the
    file is removed when done, so a waiter that locked a removed file takes the new one."""
    import fcntl

    path = models / _FINISH_LOCK
    while True:
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            if path.exists() and os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except BaseException:
            handle.close()
            raise
        handle.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


def _refuse_held(journal: dict) -> None:
    """Refuse to rename a SQLite store of the restore that a process holds open (a service)."""
    from recommender._backup import held_open
    from recommender.errors import InputError

    busy = held_open([step[key] for step in journal["steps"] for key in ("target", "aside")])
    if busy:
        raise InputError(
            f"a restore of {journal.get('backup')} was stopped midway, and a running process "
            f"holds open {'; '.join(busy)}: nothing was finished or undone, so as not to rename "
            "a store under it; stop the service (and any command using the store), then run "
            "again"
        )


def _finished_whole(journal: dict, models: Path) -> str:
    """:func:`_finish` and the journal's removal, Ctrl-C and ``kill`` held off: a stop meanwhile
    leaves the folder settled, and is delivered after, saying so (not part swapped until the
    next command)."""
    from recommender._files import signals_held

    said = None
    try:
        with signals_held():
            said = _finish(journal, models)
            _drop_journal(models, [step["copy"] for step in journal["steps"]])
    except KeyboardInterrupt as interrupt:
        if said is not None:
            interrupt.left = (
                f"before it stopped it settled a restore killed earlier: {said}; it did "
                "nothing else: run it again"
            )
        raise
    return said


def _finish(journal: dict, models: Path) -> str:
    stamp, steps = journal["stamp"], journal["steps"]
    which = f"the restore of {journal['backup']} started {stamp} was stopped"
    if journal["phase"] == "copying":
        copies = [step["copy"] for step in steps if step["copy"].exists()]
        for copy in copies:
            copy.unlink()
        return (
            f"{which} while copying, before it replaced anything: removed its {len(copies)} "
            f"unfinished copy(ies) (.restoring-{stamp}-<name>); the models folder is as it "
            "was before it"
        )
    # A step is done when its copy has been renamed in: the copy gone, the target there, and
    # what it replaced (if anything) moved aside. A copy gone otherwise cannot be swapped in.
    done = [s for s in steps if not s["copy"].exists() and _swapped_in(s)]
    missing = [s["copy"] for s in steps if not s["copy"].exists() and not _swapped_in(s)]
    swapped = len(done)
    if not missing:
        finished = []
        for step in steps:
            if not step["copy"].exists():
                continue
            if step["existed"] and step["target"].exists():
                _moved_aside(step["target"], stamp)
            os.replace(step["copy"], step["target"])
            finished.append(step["target"])
        for folder in {step["target"].parent for step in steps}:
            make_durable(folder)
        aside = [s["aside"] for s in steps if s["existed"]]
        return (
            f"{which} after {swapped} of {len(steps)} file(s) were swapped in: finished it "
            f"from its journal {models / JOURNAL}: put in place "
            f"{_described(finished, models)}; what they replace is moved aside, each named "
            f"<name>.before-restore-{stamp} ({_described(aside, models)}); the models folder "
            "is now wholly the restored backup"
        )
    put_back = []
    for step in reversed(steps):
        if step["existed"]:
            if step["aside"].exists():
                put_back.append(step["target"])
            _put_back(step["target"], stamp)
        elif not step["copy"].exists():
            step["target"].unlink(missing_ok=True)
        step["copy"].unlink(missing_ok=True)
    return (
        f"{which} after {swapped} of {len(steps)} file(s) were swapped in, and it cannot be "
        f"finished: {', '.join(map(str, missing))} is gone; undone from its journal "
        f"{models / JOURNAL}: put back {_described(put_back, models)} and removed the restored "
        "copies; the models folder is as it was before the restore"
    )


def _swapped_in(step: dict) -> bool:
    return step["target"].exists() and (not step["existed"] or step["aside"].exists())


def refuse_interrupted_restore(models_dir) -> None:
    """Refuse to start the service over a models folder that a killed restore left half
    swapped (or that a restore is swapping)."""
    from recommender.errors import InputError

    path = Path(models_dir).resolve() / JOURNAL
    if path.exists():
        raise InputError(
            f"{path}: a restore into this models folder is running, or was stopped midway "
            "(killed) and the folder may be part restored; once no restore runs, run "
            "`recommender backup --restore DIR` again (or any `recommender backup`, or any "
            "other command that opens the folder: `recommender champions`, say), which "
            "finishes or undoes it first, then start the service"
        )
