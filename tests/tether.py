"""What a test run starts ends with it, even when the run itself is killed.

A run stopped by ``kill -9`` (a CI stopped by hand, a timeout, an xdist worker that died) runs no
fixture's clean-up: its PostgreSQL clusters and servers went on running for good, taking CPU and
ports on a shared machine. Three pieces stop that:

- :func:`tethered`, a ``preexec_fn`` for servers the tests start: on Linux the server gets SIGTERM
  when the test process ends, however it ends (``PR_SET_PDEATHSIG``), and stops as on Ctrl-C.
- :func:`watch`, a small watchdog process for what no signal of the kernel reaches: a PostgreSQL
  cluster (``pg_ctl`` daemonizes the postmaster). Once the test process is gone, it runs the
  cluster's stop command and removes its folder.
- Records: each such server or cluster is written down (:func:`record`) with the test process
  that owns it. At the start of a session, :func:`sweep_ended_runs` stops and removes what the
  records of owners that have ended still name (the watchdog killed too, say). Nothing is
  guessed: only what a record names is touched, a process only while it is the very process
  recorded (same start time), never one of another run that is still going.

Only the standard library: the watchdog runs this file as a script.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Linux's prctl option: a signal for this process when its parent ends.
_PR_SET_PDEATHSIG = 1
# How often the watchdog looks whether its owner has ended.
_WATCH_EVERY = 0.5
# How long a recorded server is given to stop on SIGTERM before SIGKILL, and a stop command.
_STOP_WAIT = 20.0
_STOP_COMMAND_WAIT = 60.0


def tethered():
    """A ``preexec_fn`` that makes the child end (SIGTERM) when this process ends, even by
    ``kill -9``; ``None`` where the platform has no such thing (not Linux).

    The kernel ties it to the thread that starts the child: start servers from the test's
    thread (fixtures run there), never from a thread that ends before the server should.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    # Loaded here, not in the child: loading a library between fork and exec can deadlock.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def end_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent ended before the line above: no signal comes
            os._exit(1)

    return end_with_parent


def records_folder() -> Path:
    """Where this user's records are: one per machine's temporary folder and user."""
    return Path(tempfile.gettempdir()) / f"recommender-test-owned-{os.getuid()}"


def record(
    *,
    process: subprocess.Popen | None = None,
    folder: Path | None = None,
    stop: list[str] | None = None,
    records: Path | None = None,
) -> Path:
    """Write down what this process owns: a server ``process`` (stopped with its process group
    when it leads one), a ``folder`` to remove, the ``stop`` command to run first (as it is,
    in ``folder``). Returns the record's path, for :func:`forget` and :func:`watch`."""
    records = records_folder() if records is None else records
    records.mkdir(mode=0o700, exist_ok=True)
    fields = {
        "owner": os.getpid(),
        "owner_started": started(os.getpid()),
        "process": None if process is None else process.pid,
        "process_started": None if process is None else started(process.pid),
        "folder": None if folder is None else str(folder),
        "stop": stop,
    }
    path = records / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.json"
    written = path.with_suffix(".part")  # renamed whole: a sweep never reads half a record
    written.write_text(json.dumps(fields))
    written.replace(path)
    return path


def forget(path: Path) -> None:
    """The owner has stopped and removed what ``path`` names itself."""
    path.unlink(missing_ok=True)


def watch(path: Path) -> subprocess.Popen:
    """A watchdog that settles the record ``path`` (see :func:`settle`) once this process has
    ended, however it ended. Stop it (``kill``) after :func:`forget`: it then does nothing.

    In a session of its own, so that a Ctrl-C or a kill of the test's process group, after
    which the test may still clean up itself, does not end it first.
    """
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # no pipe of the run's held open past its end
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def sweep_ended_runs(records: Path | None = None) -> list[Path]:
    """Settle every record of this user whose owner has ended; returns the records settled.

    Also removes the BentoML homes in /dev/shm of `recommender serve` runs that ended without
    removing theirs (as the next `recommender serve` would).
    """
    records = records_folder() if records is None else records
    settled = []
    for path in sorted(records.glob("*.json")) if records.is_dir() else ():
        try:
            fields = json.loads(path.read_text())
        except (OSError, ValueError):  # settled meanwhile by a watchdog, say
            continue
        if not runs(fields["owner"], fields["owner_started"]):
            settle(path)
            settled.append(path)
    memory = Path("/dev/shm")
    if memory.is_dir() and os.access(memory, os.W_OK | os.X_OK):
        from recommender.cli.cmd_serve import _remove_ended_runs_homes

        _remove_ended_runs_homes(memory)
    return settled


def settle(path: Path) -> None:
    """Stop and remove what the record ``path`` names, then the record.

    A server is stopped only while it is the process recorded (same pid, same start time):
    a pid used again since is another program's.
    """
    try:
        fields = json.loads(path.read_text())
    except FileNotFoundError:  # settled already
        return
    pid = fields["process"]
    if pid is not None and fields["process_started"] is not None:
        _stop_recorded(pid, fields["process_started"])
    folder = fields["folder"]
    if folder is not None and Path(folder).exists():
        if fields["stop"]:
            try:
                subprocess.run(
                    fields["stop"], cwd=folder, capture_output=True, timeout=_STOP_COMMAND_WAIT
                )
            except (OSError, subprocess.TimeoutExpired):
                pass  # the folder is removed all the same
        shutil.rmtree(folder, ignore_errors=True)
    path.unlink(missing_ok=True)


def _stop_recorded(pid: int, started_at: int) -> None:
    for signal_number, wait in ((signal.SIGTERM, _STOP_WAIT), (signal.SIGKILL, _STOP_WAIT)):
        if not runs(pid, started_at):
            return
        try:
            # A server started in a session of its own leads its process group: its workers
            # go with it.
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal_number)
            else:
                os.kill(pid, signal_number)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while runs(pid, started_at) and time.monotonic() < deadline:
            time.sleep(0.1)


def started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None: no such process, or no
    /proc to say (not Linux)."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def runs(pid: int, started_at: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started_at`` (any process of that
    pid where no start time is known). A zombie has ended."""
    stat = _stat(pid)
    if stat is not None:
        state, start = stat
        return state != "Z" and (started_at is None or start == started_at)
    if Path("/proc/self/stat").exists():  # Linux: no such process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: it exists
        return True
    return True


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (name) state ppid ...": the name may hold spaces and parentheses; the start
            # time is the 22nd field, the 20th after the name.
            fields = stat.read().rpartition(b")")[2].split()
        return fields[0].decode(), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _watchdog(path: Path) -> None:
    owner = json.loads(path.read_text())["owner"]
    # Adopted by another process once the owner has ended: no pid that could be used again.
    while os.getppid() == owner:
        time.sleep(_WATCH_EVERY)
    settle(path)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner's Ctrl-C is the owner's to handle
    _watchdog(Path(sys.argv[1]))
