"""A single Ctrl-C (or ``kill``) stops ``recommender promote`` within seconds against an MLflow
tracking server that accepts and never answers, saying what it changed: the first stop waits a
second for the steps under way (they take milliseconds when the server answers), not MLflow's
timeout. Found: one Ctrl-C while the champion's alias moved waited the request out (120 s a
try here, more with retries) and then said "whole or not at all".

The command runs in a subprocess with its registry reads answered in the process itself
(tests/test_promote_hung_server_dec06d.py), so its first request to the server is the held
write declaring the change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from recommender._files import signals_held
from test_promote_hung_server_dec06d import _PROMOTE, ROOT, HungServer, _wait_for

# MLflow would wait this long for the answer: the command must end well before.
_MLFLOW_WAITS = 120


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raising KeyboardInterrupt here, as in a terminal (a background run ignores it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def hung():
    server = HungServer(ports=range(3160, 3170))
    yield server
    server.close()


@pytest.mark.parametrize(
    ("stop", "status", "said"),
    [(signal.SIGINT, 130, "interrupted (SIGINT)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "kill"],
)
def test_one_stop_ends_promote_on_a_hung_server_saying_nothing_changed(
    hung, tmp_path, stop, status, said
):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{hung.port}",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(_MLFLOW_WAITS),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "RECOMMENDER_HOME": str(tmp_path / "models"),
        "RECOMMENDER_AUDIT_SALT": "a-salt-for-the-tests-only",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("RECOMMENDER_SERVE_CONFIG", None)
    (tmp_path / "models").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", _PROMOTE],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's
    )
    try:
        _wait_for(lambda: hung.received, hung.request, 300)  # the held write is under way
        sent = time.monotonic()
        process.send_signal(stop)
        try:
            process.wait(timeout=_MLFLOW_WAITS / 2)
        except subprocess.TimeoutExpired:
            pytest.fail(f"one stop did not end promote in {_MLFLOW_WAITS / 2} s")
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = process.stderr.read()
    assert process.returncode == status, err
    # a second's wait and the interpreter's exit; generous for a busy machine, far from 120 s
    assert took < 20, (took, err)
    assert "stopping once the steps under way are done (at most 1 s)" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{said}: recommender promote stopped; nothing was changed: "), err
    assert "stopped before the champion alias moved (it names version 1)" in last
    assert b"registered-models/alias" not in hung.received  # the move was never sent


def test_a_first_stop_not_done_within_the_wait_is_delivered_saying_what_it_leaves(
    ctrl_c_raises,
):
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as stopped:
        with signals_held(second_stops=lambda: "what it leaves now"):
            signal.raise_signal(signal.SIGINT)
            time.sleep(_MLFLOW_WAITS)  # a request that is never answered
    assert time.monotonic() - started < 20
    assert stopped.value.left == "what it leaves now"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_steps_done_within_the_wait_are_whole_and_the_stop_comes_after(ctrl_c_raises):
    done = []
    with pytest.raises(KeyboardInterrupt) as stopped:
        with signals_held(second_stops="what it leaves"):
            signal.raise_signal(signal.SIGINT)
            done.append("the rest of the steps")
    time.sleep(1.5)  # past the wait: its timer was cancelled, nothing more comes
    assert done == ["the rest of the steps"]
    assert getattr(stopped.value, "left", None) is None
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _Registry:
    """An MLflow client stand-in whose alias move never answers; version 1 is the champion."""

    tracking_uri = "http://mlflow.invalid"

    def __init__(self):
        self.tags = {}

    def get_model_version(self, name, version):
        return SimpleNamespace(version=version, run_id=f"run-{version}", tags={})

    def get_registered_model(self, name):
        return SimpleNamespace(aliases={"challenger": "1"}, tags=self.tags)

    def set_registered_model_tag(self, name, key, value):
        self.tags[key] = value

    def set_registered_model_alias(self, name, alias, version):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C as the move waits on the server
        time.sleep(_MLFLOW_WAITS)


def test_a_stop_during_the_move_says_the_server_may_yet_make_it(
    ctrl_c_raises, tmp_path, monkeypatch
):
    from recommender.registry import CHALLENGER, move_alias
    from recommender.registry._intent import INTENT_TAG

    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry = _Registry()
    with pytest.raises(KeyboardInterrupt) as stopped:
        move_alias(CHALLENGER, "2", kind="promote", reason="test", mlflow_client=registry)
    assert "as the challenger alias was moving from version 1 to 2" in stopped.value.left
    assert "records it if the alias moved, or drops it if not" in stopped.value.left
    assert INTENT_TAG in registry.tags  # declared first: what the next command completes


@pytest.mark.parametrize(
    "argv", [["promote", "2", "--reason", "r"], ["rollback", "--reason", "r"]], ids=lambda a: a[0]
)
def test_a_stop_before_the_move_says_nothing_was_changed(
    ctrl_c_raises, tmp_path, monkeypatch, capsys, argv
):
    import recommender.registry
    from recommender.cli import main

    def stopped_while_reading(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # as the reads before the move wait on the server
        raise AssertionError("the signal did not stop the command")

    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path))
    monkeypatch.setattr(recommender.registry, argv[0], stopped_while_reading)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err == (
        f"interrupted (SIGINT): recommender {argv[0]} stopped; nothing was changed: stopped "
        "before the champion's alias moved; `recommender champions` says which version is the "
        "champion\n"
    )
