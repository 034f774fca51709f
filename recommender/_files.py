"""Output files: where one may be written is checked before the work, and it is written whole.

A command that spends minutes scoring or planning checks its output path first, so a path in a
folder that cannot be written fails at once, naming the option; the file itself goes to a
temporary sibling renamed into place, so a reader (or a later run) never finds half a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from recommender.errors import InputError

__all__ = ["check_writable", "no_space", "signals_held", "write_atomically", "write_together"]

# A write refused for want of room: the device is full, the user's quota is used up, or the
# file would pass the size this process may write (ulimit -f).
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# How the libraries between us and the disk word it when they keep no errno: SQLite
# (SQLITE_FULL, through SQLAlchemy and MLflow), shutil.copytree's collected errors, pyarrow,
# MLflow's copy of an OSError's text.
_NO_SPACE_WORDS = (
    "database or disk is full",
    *(os.strerror(code).lower() for code in sorted(_NO_SPACE_ERRNOS)),
    *(f"[errno {code}]" for code in sorted(_NO_SPACE_ERRNOS)),
)


def no_space(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is a write refused for want of room.

    >>> no_space(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> no_space(RuntimeError("x")), no_space(OSError(errno.EACCES, "Permission denied"))
    (False, False)
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _NO_SPACE_ERRNOS:
            return True
        if any(words in str(error).lower() for words in _NO_SPACE_WORDS):
            return True
        error = error.__cause__ or error.__context__
    return False


def check_writable(path, *, option: str = "--out", folder: bool = False) -> Path:
    """Raise :class:`InputError` now if ``path`` cannot be written; returns it as a Path.

    Nothing is created: the nearest existing ancestor must be a folder this process can create
    files in (tried with a temporary file, since permission bits do not tell for root or a
    read-only mount), and ``path`` itself must not be a folder (a file when ``folder``).
    """
    path = Path(path)
    accepted = "a folder path" if folder else "a file path"
    if path.exists() and path.is_dir() != folder:
        found = "a file" if folder else "a folder"
        raise InputError(f"{option} {path}: is {found}; accepted: {accepted}")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(
            f"{option} {path}: {ancestor} is a file, not a folder; accepted: {accepted} "
            "whose folders are folders or can be created"
        )
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as error:
        raise InputError(
            f"{option} {path}: cannot write in {ancestor} ({error.strerror}); accepted: "
            f"{accepted} in a folder this user can write"
        ) from None
    return path


def write_atomically(path, write, *, private: bool = False) -> Path:
    """Call ``write(temporary)`` on a sibling of ``path`` with the same name ending, then rename it
    over ``path``; on any failure (or Ctrl-C) the temporary goes and an earlier file stays.
    ``private``: as for :func:`write_together`."""
    return write_together({path: write}, private=private)[0]


def write_together(writes, *, stale=(), private: bool = False) -> list[Path]:
    """Write files that belong together (a plan and its fairness table) whole, or none of them.

    Each ``write(temporary)`` of ``writes`` (path -> write) fills a sibling of its path; only
    once all are written are they renamed into place and the ``stale`` paths (an earlier run's
    file that this run has no counterpart for) removed, with Ctrl-C and ``kill`` held off for
    those few renames. A failure or interruption before then leaves every earlier file as it
    was, so a reader never finds one run's file beside another run's.

    ``private``: the files hold people (ids, hashes, scores), so each is readable by its owner
    only, as the audit store is, whatever the umask: its temporary is made owner-only before
    ``write`` fills it (a writer opening it again truncates it and keeps that mode), so no
    other user can open it at any moment, nor the file it becomes.
    """
    paths = [Path(path) for path in writes]
    temporaries = []
    try:
        for path, write in zip(paths, writes.values()):
            # Same folder (a rename within one file system), same ending (the format follows it);
            # the writer's process id, so that a later run can tell its leftover.
            _remove_abandoned(path)
            temporary = path.parent / f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}"
            temporaries.append(temporary)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if private:
                    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                write(temporary)
            except Exception as error:
                if not no_space(error):
                    raise
                raise InputError(
                    f"{path}: could not be written: no space left on the device holding "
                    f"{path.parent} ({_said(error)}); nothing was left there (an earlier file "
                    "stays as it was): free space there, or write to another folder, and run "
                    "again"
                ) from None
        with signals_held():
            for temporary, path in zip(temporaries, paths):
                os.replace(temporary, path)
            for path in stale:
                Path(path).unlink(missing_ok=True)
    except BaseException:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise
    return paths


def _remove_abandoned(path: Path) -> None:
    """Remove the temporaries of ``path`` that a writer ended by ``kill -9`` (or a crash) left:
    only its rename would have removed them. A live writer's are its own."""
    from recommender._processes import process_alive

    prefix, suffix = ".tmp-", f"-{path.name}"
    with contextlib.suppress(OSError):  # a folder not there yet, or unreadable: nothing to do
        for leftover in path.parent.iterdir():  # not glob: a name may hold [ or *
            name = leftover.name
            if not (name.startswith(prefix) and name.endswith(suffix)):
                continue
            writer, _, rest = name[len(prefix) : -len(suffix)].partition("-")
            if writer.isdigit() and len(rest) == 8 and not process_alive(int(writer)):
                leftover.unlink(missing_ok=True)


# How long a first Ctrl-C or kill waits for steps that wait on a network (``second_stops``)
# before it stops them: they take milliseconds when the server answers.
_FIRST_STOP_WAITS = 1.0


@contextlib.contextmanager
def signals_held(*, second_stops: str | Callable[[], str] | None = None):
    """Hold off Ctrl-C (SIGINT) and ``kill`` (SIGTERM) for a few quick steps that must not be
    split (renames, a commit and what records it); one that comes meanwhile is delivered as the
    block ends, to the handler it had: SIGTERM if it came at all (a ``kill`` after a Ctrl-C
    means stop, exit 143), else SIGINT. Python runs handlers in the main thread only, so
    elsewhere nothing is held.

    ``second_stops``, for steps that wait on a network (an MLflow tracking server's requests,
    up to its 120 s timeout each when it hangs) and that a stop anywhere leaves completable
    later (an intent, a journal): what such a stop leaves, a string or a function returning it
    at the time. The first stop then waits at most ``_FIRST_STOP_WAITS`` seconds for the steps,
    saying so on stderr; steps still under way then, or a second stop meanwhile, are stopped at
    once (SIGTERM's handler if either was a ``kill``), the KeyboardInterrupt's ``left`` saying
    what ``second_stops`` says. Without it a user's Ctrl-C on a hung server did nothing for
    minutes.

    The handlers are swapped rather than the signals blocked: a process's signal goes to any
    thread that does not block it (MLflow and SQLAlchemy start threads), and Python then raises
    KeyboardInterrupt in the main thread all the same.

    >>> with signals_held():
    ...     pass
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came = []
    previous = {}
    # The wait of a first stop: its timer wakes the main thread (blocked in a request) with the
    # same signal, unless the steps ended first ("ended", under "guard": re-entrant, since
    # `held` takes it in the main thread, which may be holding it).
    state = {"ended": False, "woken": False, "taken": False, "delivered": False}
    guard = threading.RLock()
    main = threading.main_thread().ident

    def wake():
        with guard:
            if not (state["ended"] or state["delivered"]):
                state["woken"] = True
                signal.pthread_kill(main, came[0])

    timer = threading.Timer(_FIRST_STOP_WAITS, wake)
    timer.daemon = True

    def restore():
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def said():
        return second_stops() if callable(second_stops) else second_stops

    def held(signum, frame):
        came.append(signum)
        if second_stops is None:
            return
        if state["ended"]:  # the steps are done: held to the end like any other
            state["taken"] = True
            return
        if len(came) == 1:
            # os.write: a handler may run while the main thread is inside sys.stderr's write
            os.write(
                2,
                f"stopping once the steps under way are done (at most {_FIRST_STOP_WAITS:g} s); "
                f"stop again to stop now ({said()})\n".encode(),
            )
            timer.start()
            return
        with guard:  # the timer sends nothing once the handlers are put back
            state["delivered"] = True
            timer.cancel()
            restore()
        stop = signal.SIGTERM if signal.SIGTERM in came else signum
        came.clear()  # delivered here, not again as the block ends
        handler = previous[stop]
        if not callable(handler):  # SIG_DFL ends the process now, SIG_IGN goes on
            signal.raise_signal(stop)
            return
        try:
            handler(stop, frame)
        except KeyboardInterrupt as interrupt:
            interrupt.left = said()
            raise

    # A handler installed from outside Python reads None and could not be put back: left as is.
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not None:
            previous[signum] = signal.signal(signum, held)
    try:
        yield
    finally:
        with guard:
            state["ended"] = True
        timer.cancel()
        if state["woken"] and not state["delivered"]:
            # The timer's signal, sent as the steps ended, is pending here: taken while `held`
            # is still the handler (a sleep is a system call: the signal interrupts it).
            for _ in range(1000):
                if state["taken"]:
                    break
                time.sleep(0.001)
        restore()
        if came:
            signal.raise_signal(signal.SIGTERM if signal.SIGTERM in came else came[0])


def _said(error: BaseException) -> str:
    """The error's own words, without the path it may repeat (said once by the caller)."""
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)
