"""A test run killed midway (kill -9 of pytest or of an xdist worker) leaves nothing running.

Each test starts a child Python process that starts a server or a PostgreSQL cluster with the
suite's own helpers (service_fixtures.serving, pg_cluster.Cluster), kills that child with
SIGKILL, so that no clean-up of it runs, and waits a bounded time for what it started to end.
The records and clusters are kept in a temporary folder of each test (the child's TMPDIR), so
that a sweep here never settles another run's records.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import tether
from pg_cluster import server_binaries

TESTS = Path(__file__).resolve().parent
# Bounds, not expected times: a watchdog looks every half second; pg_ctl stop takes a second.
_GONE_WITHIN = 60.0

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's"
)


@pytest.fixture
def temporary():
    """The children's temporary folder. Not pytest's tmp_path: as root, PostgreSQL runs as the
    `postgres` user, who must reach its cluster's folder inside this one."""
    folder = Path(tempfile.mkdtemp(prefix="killed-run-"))
    folder.chmod(0o755)
    yield folder
    tether.sweep_ended_runs(folder / tether.records_folder().name)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def binaries():
    """PostgreSQL's server binaries; skipped without them, except on CI (as the `postgres`
    fixture of conftest.py)."""
    found = server_binaries()
    if found is None:
        reason = "PostgreSQL's server binaries (Debian package postgresql) are not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must have it (`make test` installs it)", pytrace=False)
        pytest.skip(reason)
    return found


_SERVING = """
import os, sys, time
from pathlib import Path
from service_fixtures import serving

folder = Path(sys.argv[1])

def command(port):
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]

with serving(command, env=dict(os.environ), log_path=folder / "server.log", cwd=folder,
             ready_path="/") as (url, process):
    print(process.pid, flush=True)
    time.sleep(600)
"""

_CLUSTER = """
import sys, time
from pathlib import Path
from pg_cluster import Cluster

cluster = Cluster(Path(sys.argv[1]))
postmaster = (cluster.data / "postmaster.pid").read_text().split()[0]
print(cluster.folder, postmaster, cluster._watchdog.pid, flush=True)
time.sleep(600)
"""

# A server the kernel's signal cannot reach (a platform without it, say): recorded only.
_RECORDED_ONLY = """
import subprocess, time
import tether

server = subprocess.Popen(["sleep", "600"], start_new_session=True)
tether.record(process=server)
print(server.pid, flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def _child(script: str, temporary: Path, *args: str):
    """The child Python process running ``script``; yields ``(process, first line it printed)``
    and kills it afterwards if it still runs."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]),
        "TMPDIR": str(temporary),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(temporary / "child.err", "wb"),
        text=True,
    )
    try:
        line = child.stdout.readline().split()
        assert line, f"the child printed nothing:\n{(temporary / 'child.err').read_text()}"
        yield child, line
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def _kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()


def _ended(pid: int, started_at: int) -> bool:
    """Whether ``pid`` ended within the bound (a zombie no one collected has ended)."""
    deadline = time.monotonic() + _GONE_WITHIN
    while tether.runs(pid, started_at):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _gone(folder: Path) -> bool:
    deadline = time.monotonic() + _GONE_WITHIN
    while folder.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _settled(records: Path) -> bool:
    """Whether the watchdog removed its record within the bound: it removes the record last,
    after the cluster's folder (so that a watchdog killed midway leaves it to the next sweep)."""
    deadline = time.monotonic() + _GONE_WITHIN
    while list(records.glob("*.json")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _end(pid: int, started_at: int) -> None:
    """Kill what a failed test left (only the very process it started)."""
    if tether.runs(pid, started_at):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_a_server_ends_with_the_test_process_killed_by_sigkill(temporary):
    with _child(_SERVING, temporary, str(temporary)) as (child, line):
        server = int(line[0])
        started_at = tether.started(server)
        assert tether.runs(server, started_at)
        _kill(child)
        try:
            assert _ended(server, started_at), "the server outlived the killed test process"
        finally:
            _end(server, started_at)


def test_a_cluster_ends_and_its_folder_goes_with_the_test_process_killed(temporary, binaries):
    with _child(_CLUSTER, temporary, str(binaries)) as (child, line):
        folder, postmaster = Path(line[0]), int(line[1])
        started_at = tether.started(postmaster)
        assert folder.parent == temporary and tether.runs(postmaster, started_at)
        _kill(child)
        try:
            assert _ended(postmaster, started_at), "the postmaster outlived the test process"
            assert _gone(folder), "the cluster's folder outlived the test process"
            records = temporary / tether.records_folder().name
            assert _settled(records), "the watchdog left its record of the ended cluster"
        finally:
            _end(postmaster, started_at)


def test_a_cluster_whose_watchdog_was_killed_too_is_removed_by_the_next_sweep(temporary, binaries):
    records = temporary / tether.records_folder().name
    with _child(_CLUSTER, temporary, str(binaries)) as (child, line):
        folder, postmaster, watchdog = Path(line[0]), int(line[1]), int(line[2])
        started_at = tether.started(postmaster)
        os.kill(watchdog, signal.SIGKILL)
        _kill(child)
        try:
            assert tether.runs(postmaster, started_at) and folder.exists()  # left running
            assert len(tether.sweep_ended_runs(records)) == 1
            assert not tether.runs(postmaster, started_at) and not folder.exists()
            assert not list(records.glob("*.json"))
        finally:
            _end(postmaster, started_at)


def test_the_sweep_stops_only_what_ended_runs_recorded(temporary):
    """A recorded server whose run was killed is stopped; one of a run still going, and a pid
    used again by another process since it was recorded, are left alone."""
    records = temporary / tether.records_folder().name
    ours = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        with _child(_RECORDED_ONLY, temporary) as (child, line):
            orphan = int(line[0])
            orphan_started = tether.started(orphan)
            _kill(child)
            assert tether.runs(orphan, orphan_started)  # no signal reached it
            # A record of this (running) test process, and one of an ended run naming a pid
            # that another process has now (its start time differs).
            going = tether.record(process=ours, records=records)
            reused = records / "reused.json"
            reused.write_text(
                json.dumps(
                    {
                        "owner": child.pid,
                        "owner_started": None,
                        "process": ours.pid,
                        "process_started": tether.started(ours.pid) + 1,
                        "folder": None,
                        "stop": None,
                    }
                )
            )
            try:
                settled = tether.sweep_ended_runs(records)
                assert _ended(orphan, orphan_started)
            finally:
                _end(orphan, orphan_started)
        assert len(settled) == 2 and reused in settled
        assert set(records.glob("*.json")) == {going}
        assert ours.poll() is None, "a process the sweep did not start was stopped"
    finally:
        ours.kill()
        ours.wait()
