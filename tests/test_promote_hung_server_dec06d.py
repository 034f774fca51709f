"""``recommender promote`` against an MLflow tracking server that accepts and never answers:
a stop while the champion's alias moves (Ctrl-C and ``kill`` held off) is still held once,
saying so, and a second stop ends the process at once, not after MLflow's 120 s timeout; what
it leaves is said, and is what the declared intent lets the next command complete.

The hung server is a listening socket in this process; the command runs in a subprocess whose
registry reads are answered in the subprocess itself (only the writes, in the held section,
reach the server).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from recommender._files import signals_held
from recommender.cli import main

PORTS = range(3180, 3190)
ROOT = Path(__file__).resolve().parents[1]

# promote, with the reads it makes before its writes answered here: a registered version 2,
# the champion version 1, its run live and its files loadable, no intent left over.
_PROMOTE = """
import sys
from types import SimpleNamespace

from recommender.registry import _aliases

version = SimpleNamespace(version="2", run_id="run-2", tags={})
_aliases._version = lambda mlflow_client, name, number: version
_aliases._moved = lambda name, mlflow_client: {"champion": "1"}
_aliases._require_live_run = lambda *args: None
_aliases._require_loadable = lambda *args: None
_aliases.misfits = lambda *args, **kwargs: []
_aliases.complete_interrupted = lambda *args, **kwargs: None
_aliases.is_pending = lambda version: False

import recommender._files

if len(sys.argv) > 1:  # how long a first stop waits for the steps under way (default 1 s)
    recommender._files._FIRST_STOP_WAITS = float(sys.argv[1])

from recommender.cli import main

sys.exit(main(["promote", "2", "--reason", "a test"]))
"""


class HungServer:
    """Accepts connections on a port of ours and never answers; keeps what each request
    sent."""

    def __init__(self, ports=PORTS):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for port in ports:
            with contextlib.suppress(OSError):
                self.listener.bind(("127.0.0.1", port))
                break
        else:
            pytest.skip(f"no free port in {ports}")
        self.port = self.listener.getsockname()[1]
        self.listener.listen(16)
        self.connections = []
        self.received = b""
        self.lock = threading.Lock()
        self.request = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection):
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.received += data
            self.request.set()

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def hung():
    server = HungServer()
    yield server
    server.close()


def _stderr_lines(process):
    """Lines of the process's stderr as they come, read by a thread; an event set per line."""
    lines, came = [], threading.Event()

    def read():
        for line in process.stderr:
            lines.append(line)
            came.set()

    threading.Thread(target=read, daemon=True).start()
    return lines, came


def _wait_for(condition, event, timeout):
    while not condition():
        event.clear()
        if condition():
            return
        assert event.wait(timeout), "nothing came in time"


@pytest.mark.parametrize(
    ("stops", "status", "said"),
    [
        ([signal.SIGINT, signal.SIGINT], 130, "interrupted (SIGINT)"),
        ([signal.SIGINT, signal.SIGTERM], 143, "terminated (SIGTERM)"),
        ([signal.SIGTERM, signal.SIGINT], 143, "terminated (SIGTERM)"),
    ],
    ids=["ctrl-c twice", "ctrl-c then kill", "kill then ctrl-c"],
)
def test_a_second_stop_ends_promote_at_once_on_a_hung_server(hung, tmp_path, stops, status, said):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{hung.port}",
        "RECOMMENDER_HOME": str(tmp_path / "models"),
        "RECOMMENDER_AUDIT_SALT": "a-salt-for-the-tests-only",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("RECOMMENDER_SERVE_CONFIG", None)
    (tmp_path / "models").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", _PROMOTE, "600"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        # the first request: its reads answered in the process, the held section's (MLflow
        # reads the registered model before it sets the tag declaring the intent)
        _wait_for(lambda: hung.received, hung.request, 300)
        lines, came = _stderr_lines(process)
        process.send_signal(stops[0])
        _wait_for(lambda: any("stop again to stop now" in line for line in lines), came, 60)
        assert process.poll() is None  # the first stop is held: the write may yet be answered
        process.send_signal(stops[1])
        # MLflow would wait 120 s for the answer (twice): well within that, not by luck
        assert process.wait(timeout=30) == status
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(lines)
    # stopped as the intent was declared: the alias move was never sent
    assert f"{said}: recommender promote stopped; nothing was changed: stopped before the " in text
    assert "`recommender champions`, `promote` or `rollback` drops the change declared" in text
    # nothing past the intent was asked of the store: the alias never moved
    assert b"registered-models/alias" not in hung.received


def test_without_a_second_stop_the_steps_are_held_whole():
    done = []
    with pytest.raises(KeyboardInterrupt) as stopped:
        with signals_held(second_stops="what it leaves"):
            signal.raise_signal(signal.SIGINT)
            done.append("the rest of the steps")
    assert done == ["the rest of the steps"]
    assert getattr(stopped.value, "left", None) is None  # whole: the command says what


def test_a_second_stop_is_delivered_at_once_saying_what_it_leaves(capfd):
    done = []
    with pytest.raises(KeyboardInterrupt) as stopped:
        with signals_held(second_stops="what it leaves"):
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
            done.append("the rest of the steps")
    assert done == []
    assert stopped.value.left == "what it leaves"
    assert "stop again to stop now (what it leaves)" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_stop_after_the_alias_moved_is_recorded_by_the_next_command(
    trained_copy, monkeypatch, capsys
):
    # what a stop midway leaves is what a kill -9 leaves: the intent, which champions completes
    from mlflow.tracking import MlflowClient

    from recommender.registry import client, promote, read_promotion_log
    from recommender.registry._intent import INTENT_TAG
    from test_pipeline_train import use_home

    use_home(monkeypatch, trained_copy)
    moved = MlflowClient.set_registered_model_alias

    def moved_then_stopped_twice(self, *args, **kwargs):
        moved(self, *args, **kwargs)
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", moved_then_stopped_twice)
    before = len(read_promotion_log())
    with pytest.raises(KeyboardInterrupt) as stopped:
        promote("1", reason="stopped midway", actor="tester")
    monkeypatch.undo()
    use_home(monkeypatch, trained_copy)
    assert "records it if the alias moved" in stopped.value.left
    assert len(read_promotion_log()) == before  # not vacuous: stopped before the record
    assert INTENT_TAG in (client().get_registered_model("burnout-recommender").tags or {})

    assert main(["champions"]) == 0
    events = read_promotion_log()
    assert len(events) == before + 1 and events[-1].reason == "stopped midway"
    assert "by `recommender champions`" in events[-1].to_dict()["recorded_late"]
    registered = client().get_registered_model("burnout-recommender")
    assert INTENT_TAG not in (registered.tags or {})
    assert str(registered.aliases["champion"]) == "1"
