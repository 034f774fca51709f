"""Where the registry points MLflow: which artifact root a store gets, and one store per session
even when threads overlap."""

from __future__ import annotations

import os
import threading

import pytest

from recommender import registry
from recommender.errors import InputError
from recommender.registry import _sqlite, _store

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


_DATABASES = [
    "postgresql://mlflow:secret@db.example:5432/mlflow",
    "postgresql+psycopg2://mlflow@db.example/mlflow",
    "mysql+pymysql://mlflow@db.example/mlflow",
    "mssql+pyodbc://mlflow@db.example/mlflow",
]


@pytest.mark.parametrize(
    "uri",
    [
        "http://tracking.example:5000",
        "https://tracking.example",
        "databricks",
        "databricks://workspace-profile",
    ],
)
def test_a_tracking_server_keeps_its_own_artifact_root(home, monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RECOMMENDER_ARTIFACT_ROOT", "s3://ignored/for-a-server")
    assert registry.artifact_location() is None


@pytest.mark.parametrize("uri", _DATABASES)
def test_a_database_reached_directly_needs_an_explicit_artifact_root(home, monkeypatch, uri):
    # MLflow's fallback would be ./mlruns in the trainer's current folder: refuse instead.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("RECOMMENDER_ARTIFACT_ROOT", raising=False)
    with pytest.raises(InputError, match="RECOMMENDER_ARTIFACT_ROOT") as caught:
        registry.artifact_location()
    assert "--artifacts-destination" in str(caught.value)
    monkeypatch.setenv("RECOMMENDER_ARTIFACT_ROOT", "s3://team-bucket/mlflow")
    assert registry.artifact_location() == "s3://team-bucket/mlflow"


@pytest.mark.parametrize(
    "uri", [None, "sqlite:///{home}/other.db", "file://{home}/mlruns", "{home}/mlruns"]
)
def test_a_local_store_ignores_the_shared_artifact_root(home, monkeypatch, uri):
    if uri is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(home=home.as_posix()))
    monkeypatch.setenv("RECOMMENDER_ARTIFACT_ROOT", "s3://team-bucket/mlflow")
    assert registry.artifact_location() == (home / "mlartifacts").resolve().as_uri()


@pytest.mark.parametrize(
    "uri", [None, "sqlite:///{home}/other.db", "file://{home}/mlruns", "{home}/mlruns"]
)
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


def test_a_new_experiment_on_a_tracking_server_gets_no_local_artifact_folder(home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    recording = _RecordingClient()
    monkeypatch.setattr(_store, "client", lambda: recording)
    assert registry.ensure_experiment("cohort-2026") == "7"
    assert recording.created == [("cohort-2026", None)]
    assert not (home / "mlartifacts").exists()


def test_a_new_experiment_on_a_database_gets_the_explicit_artifact_root(home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://mlflow@db.example/mlflow")
    monkeypatch.delenv("RECOMMENDER_ARTIFACT_ROOT", raising=False)
    recording = _RecordingClient()
    monkeypatch.setattr(_store, "client", lambda: recording)
    with pytest.raises(InputError, match="RECOMMENDER_ARTIFACT_ROOT"):
        registry.ensure_experiment("cohort-2026")
    assert recording.created == []  # no experiment with artifacts in ./mlruns
    monkeypatch.setenv("RECOMMENDER_ARTIFACT_ROOT", "s3://team-bucket/mlflow")
    assert registry.ensure_experiment("cohort-2026") == "7"
    assert recording.created == [("cohort-2026", "s3://team-bucket/mlflow")]
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

    threads = [
        threading.Thread(target=work, args=(store, other, i), daemon=True)
        for i in range(_THREADS_PER_STORE)
        for store, other in (("a", "b"), ("b", "a"))
    ]
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


@pytest.fixture
def held_session():
    """The session lock held by another thread until the test ends."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _store._SESSION_LOCK:
            taken.set()
            release.wait(60)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(60)
    yield
    release.set()
    holder.join(60)


def test_a_session_gives_up_with_store_busy_when_another_thread_holds_it(home, held_session):
    import mlflow

    before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    with pytest.raises(registry.StoreBusy, match="another thread"):
        with registry.mlflow_session(timeout=0.01):
            pytest.fail("entered a session another thread holds")
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == before


def test_a_session_with_a_timeout_enters_a_free_store(home):
    with registry.mlflow_session(timeout=0.01) as mlflow:
        assert mlflow.get_tracking_uri() == registry.tracking_uri()


def _lock_is_free() -> bool:
    free = []

    def probe() -> None:  # from another thread: the lock is re-entrant in its owner
        if _store._SESSION_LOCK.acquire(blocking=False):
            _store._SESSION_LOCK.release()
            free.append(True)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(60)
    return free == [True]


def test_a_session_whose_uri_cannot_be_set_restores_the_previous_one(home, monkeypatch):
    import mlflow

    before = (
        mlflow.get_tracking_uri(),
        mlflow.get_registry_uri(),
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_REGISTRY_URI"),
    )

    def refuse(uri):
        raise RuntimeError("injected: registry URI refused")

    monkeypatch.setattr(mlflow, "set_registry_uri", refuse)  # after set_tracking_uri ran
    with pytest.raises(RuntimeError, match="injected"):
        with registry.mlflow_session():
            pytest.fail("entered a session whose URI was not set")
    monkeypatch.undo()
    after = (
        mlflow.get_tracking_uri(),
        mlflow.get_registry_uri(),
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_REGISTRY_URI"),
    )
    assert after == before
    assert _lock_is_free()


@pytest.mark.parametrize("name", ["my home #1 100%41", "what? #2", "plain home"])
def test_a_home_with_spaces_hash_and_percent_holds_its_own_store(tmp_path, monkeypatch, name):
    # SQLAlchemy percent-decodes the URL and cuts it at "?": unquoted, "%41" would name a
    # folder "A" and "what?" a folder "what".
    home = tmp_path / name
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with registry.TrainingRun(run_name="odd-home") as run:
        run_id = run.run_id
        registry.client().log_text(run_id, "hello", "notes/hello.txt")
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("mlflow.db")] == [
        (home / "mlflow.db").relative_to(tmp_path)
    ]
    if "%" not in name and "?" not in name:  # MLflow makes the quoted path's folder too
        assert [p.name for p in tmp_path.iterdir()] == [name]
    experiment = registry.client().get_experiment_by_name(registry.EXPERIMENT_NAME)
    assert registry.client().get_run(run_id).info.experiment_id == experiment.experiment_id
    assert [p.read_text() for p in (home / "mlartifacts").rglob("hello.txt")] == ["hello"]


@pytest.mark.parametrize("header", [b"", b"SQLite format 3\x00"])
def test_a_damaged_store_is_named_and_left_alone(home, header):
    from recommender.cli import main

    damaged = header + bytes(range(256)) * 40
    (home / "mlflow.db").write_bytes(damaged)
    with pytest.raises(InputError, match=r"mlflow.db is not a readable SQLite database.*backup"):
        registry.client()
    with pytest.raises(InputError, match="not a readable SQLite database"):
        with registry.mlflow_session():
            pass
    assert main(["rollback", "--reason", "after the disk failed"]) == 2
    assert (home / "mlflow.db").read_bytes() == damaged


def test_a_locked_store_is_not_called_damaged(home):
    import sqlite3

    registry.client().search_experiments()  # a real store
    holder = sqlite3.connect(home / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        _sqlite._READY_STORES.clear()
        _sqlite.check_sqlite_store(registry.tracking_uri())  # no error: busy is not damage
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize(
    "act",
    [
        lambda: registry.resolve_model("champion"),
        lambda: registry.resolve_model("3"),
        lambda: registry.promote("3", reason="r"),
        lambda: registry.rollback(reason="r"),
    ],
    ids=["alias", "version", "promote", "rollback"],
)
def test_reading_a_store_that_does_not_exist_names_it_and_creates_nothing(
    tmp_path, monkeypatch, act
):
    # A mistyped RECOMMENDER_HOME used to get an empty mlflow.db (and folders) made there, and
    # 'no version 3' read like a wrong number rather than a wrong store.
    home = tmp_path / "typo" / "models"
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(InputError, match="there is no MLflow store at .*mlflow.db"):
        act()
    assert not (tmp_path / "typo").exists()
