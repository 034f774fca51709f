"""Where the registry points MLflow: which artifact root a store gets, and one store per session
even when threads overlap."""

from __future__ import annotations

import os
import threading

import pytest

from recommender import registry
from recommender.registry import _store

# How long a thread inside a session waits for a thread of the other store to get in too. On
# code that lets sessions overlap, the other thread gets in well within it; on code that makes
# sessions wait for each other, it never does, and the wait only costs this once or twice.
_OVERLAP_WAIT = 1.0
_THREADS_PER_STORE = 3


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.mark.parametrize("uri", [
    "postgresql://mlflow:secret@db.example:5432/mlflow",
    "postgresql+psycopg2://mlflow@db.example/mlflow",
    "mysql+pymysql://mlflow@db.example/mlflow",
    "mssql+pyodbc://mlflow@db.example/mlflow",
    "http://tracking.example:5000",
    "https://tracking.example",
    "databricks",
    "databricks://workspace-profile",
])
def test_a_shared_store_keeps_its_own_artifact_root(home, monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert registry.artifact_location() is None


@pytest.mark.parametrize("uri", [None, "sqlite:///{home}/other.db", "file://{home}/mlruns",
                                 "{home}/mlruns"])
def test_a_store_in_a_local_file_keeps_artifacts_under_models_dir(home, monkeypatch, uri):
    if uri is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(home=home.as_posix()))
    assert registry.artifact_location() == (home / "mlartifacts").resolve().as_uri()


class _RecordingClient:
    """Stands in for a client of a PostgreSQL-backed store that has no experiment yet."""

    def __init__(self):
        self.created = []

    def get_experiment_by_name(self, name):
        return None

    def create_experiment(self, name, artifact_location=None, tags=None):
        self.created.append((name, artifact_location))
        return "7"


def test_a_new_experiment_on_a_shared_store_gets_no_local_artifact_folder(home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://mlflow@db.example/mlflow")
    recording = _RecordingClient()
    monkeypatch.setattr(_store, "client", lambda: recording)
    assert registry.ensure_experiment("cohort-2026") == "7"
    assert recording.created == [("cohort-2026", None)]
    assert not (home / "mlartifacts").exists()


def test_a_new_experiment_on_the_embedded_store_keeps_artifacts_under_models_dir(home):
    experiment = registry.client().get_experiment(registry.ensure_experiment("cohort-2026"))
    assert experiment.artifact_location == registry.artifact_location()
    assert (home / "mlartifacts").is_dir()


@pytest.fixture
def two_stores(tmp_path):
    from mlflow.tracking import MlflowClient

    uris = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        uris[name] = f"sqlite:///{(tmp_path / name / 'mlflow.db').as_posix()}"
        # Create the schema up front: two threads migrating one new database would race.
        MlflowClient(tracking_uri=uris[name]).search_experiments()
    return uris


def test_overlapping_sessions_on_two_stores_each_see_their_own(two_stores, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    # Each worker thread names its own store; the session resolves it as it resolves the real one.
    own = threading.local()
    monkeypatch.setattr(_store, "tracking_uri", lambda: own.uri)
    before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    inside = {name: threading.Event() for name in two_stores}
    problems = []

    def work(store: str, other: str, index: int) -> None:
        own.uri = two_stores[store]
        try:
            with registry.mlflow_session() as session:
                inside[store].set()
                inside[other].wait(_OVERLAP_WAIT)
                seen = session.get_tracking_uri(), session.get_registry_uri()
                session.create_experiment(f"{store}-{index}")
            if seen != (two_stores[store], two_stores[store]):
                problems.append(f"a session on store {store} saw {seen}")
        except Exception as error:  # noqa: BLE001 - reported by the test thread below
            problems.append(f"store {store}, thread {index}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=work, args=(store, other, i), daemon=True)
               for i in range(_THREADS_PER_STORE) for store, other in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "sessions deadlocked"
    assert problems == []
    for store, uri in two_stores.items():
        names = {e.name for e in MlflowClient(tracking_uri=uri).search_experiments()}
        assert names - {"Default"} == {f"{store}-{i}" for i in range(_THREADS_PER_STORE)}
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == before


def test_a_session_nested_in_the_same_thread_gives_the_outer_one_back(two_stores, monkeypatch):
    # A training run loads the champion inside its own session (the gate), in the same thread.
    uri = iter([two_stores["a"], two_stores["b"]])
    monkeypatch.setattr(_store, "tracking_uri", lambda: next(uri))
    seen = []

    def nested() -> None:
        with registry.mlflow_session() as outer:
            with registry.mlflow_session() as inner:
                seen.append(inner.get_tracking_uri())
            seen.append(outer.get_tracking_uri())

    thread = threading.Thread(target=nested, daemon=True)  # a deadlock fails instead of hanging
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "a nested session waited for its own thread"
    assert seen == [two_stores["b"], two_stores["a"]]
