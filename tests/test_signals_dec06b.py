"""Ctrl-C and kill during a few writes that must not be split: they wait briefly, and the
signal that stops the process is the one an operator expects."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from recommender._files import signals_held


class _Store:
    """An MLflow client stand-in: a registered version 2, no aliases; its alias write notes how
    often MLflow would retry a request meanwhile."""

    tracking_uri = "http://mlflow.invalid"

    def __init__(self):
        self.retries_during_write = []

    def get_model_version(self, name, version):
        return SimpleNamespace(version=version, run_id="run-2")

    def get_registered_model(self, name):
        return SimpleNamespace(aliases={})

    def set_registered_model_alias(self, name, alias, version):
        self.retries_during_write.append(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES"))


def test_the_writes_that_hold_signals_off_are_retried_briefly(tmp_path, monkeypatch):
    from recommender.registry import CHALLENGER, move_alias

    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    store = _Store()
    move_alias(CHALLENGER, "2", kind="promote", reason="test", mlflow_client=store, record=False)
    assert store.retries_during_write == ["1"]
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


class _Terminated(Exception):
    pass


@pytest.fixture
def sigterm_raises():
    def terminated(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_kill_after_a_ctrl_c_is_the_signal_delivered(sigterm_raises):
    with pytest.raises(_Terminated):  # a kill: exit 143, not Ctrl-C's 130
        with signals_held():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)
    with pytest.raises(_Terminated):
        with signals_held():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with signals_held():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
