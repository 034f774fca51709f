"""Who sets up the embedded SQLite store, and that readers never do.

Found: `recommender serve` on a home without a champion retries loading it; a retry that
opened the mlflow.db a first `recommender train` had just begun to create ran MLflow's schema
creation itself, at the same time as the training run did, and one of them failed ("table ...
already exists", "database is locked"). Readers now leave a store that is missing or not set
up alone and say there is no champion yet; writers set it up holding the store's lock.
"""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest
from test_registry_store import home  # noqa: F401 - a fixture used below

from recommender import registry
from recommender.errors import InputError, ModelUnavailable

# About MLflow's own creation of a store: no copy of a made one (tests/mlflow_template.py).
pytestmark = pytest.mark.mlflow_migrations

_PROCESSES = 2


# A store whose creation was under way: the empty file SQLite makes on the first connection,
# and one holding the first of MLflow's tables but no schema revision yet.
_HALF_MADE = {
    "empty": [],
    # MLflow 3.17's first statement when it creates a store.
    "first table only": [
        "CREATE TABLE experiments (experiment_id INTEGER NOT NULL, name VARCHAR(256) NOT NULL, "
        "artifact_location VARCHAR(256), lifecycle_stage VARCHAR(32), "
        "CONSTRAINT experiment_pk PRIMARY KEY (experiment_id), "
        "CONSTRAINT experiments_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted')), "
        "UNIQUE (name))"
    ],
}

_READERS = {
    "resolve champion": lambda: registry.resolve_model("champion"),
    "resolve version": lambda: registry.resolve_model("1"),
    "service load": lambda: _service_load(),
    "card": lambda: registry.fetch_card("champion", "card-out"),
    "promote": lambda: registry.promote("1", reason="r"),
    "rollback": lambda: registry.rollback(reason="r"),
}


def _service_load():
    # Imported here: the processes this module's last test starts import it without BentoML.
    from recommender.service import service as service_module

    return service_module.load_champion_model()


def _half_made(path, statements) -> bytes:
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    db.close()
    return path.read_bytes()


@pytest.mark.parametrize("read", _READERS.values(), ids=_READERS.keys())
def test_a_reader_on_an_empty_home_creates_no_store_and_finds_no_champion(home, read):
    with pytest.raises(InputError, match="there is no MLflow store at .*mlflow.db"):
        read()
    assert sorted(p.name for p in home.iterdir()) == []


@pytest.mark.parametrize("statements", _HALF_MADE.values(), ids=_HALF_MADE.keys())
@pytest.mark.parametrize("read", _READERS.values(), ids=_READERS.keys())
def test_a_reader_on_a_store_still_being_created_finds_no_champion_and_leaves_it(
    home, read, statements
):
    store = home / "mlflow.db"
    before = _half_made(store, statements)
    with pytest.raises(InputError, match=r"mlflow.db is not set up yet.*nothing is registered"):
        read()
    assert store.read_bytes() == before
    assert sorted(p.name for p in home.iterdir()) == ["mlflow.db"]


def test_the_service_on_a_store_still_being_created_says_no_champion(home):
    from recommender.service._readiness import Reason
    from recommender.service._serving import _no_model_reason

    (home / "mlflow.db").touch()
    with pytest.raises(InputError) as caught:
        _service_load()
    assert _no_model_reason(caught.value) is Reason.NO_CHAMPION
    assert (home / "mlflow.db").stat().st_size == 0


@pytest.mark.parametrize("statements", _HALF_MADE.values(), ids=_HALF_MADE.keys())
def test_a_writer_finishes_a_store_whose_creation_was_cut_short(home, statements):
    _half_made(home / "mlflow.db", statements)
    experiment_id = registry.ensure_experiment()
    assert registry.client().get_experiment(experiment_id).name == registry.EXPERIMENT_NAME
    with pytest.raises(InputError, match="no registered model version matches 'champion'"):
        registry.resolve_model("champion")  # set up now, and nothing registered yet


def test_a_reader_on_a_store_older_than_mlflow_leaves_its_upgrade_to_a_training_run(home):
    store = home / "mlflow.db"
    registry.ensure_experiment()
    with sqlite3.connect(store) as db:  # as a store of an MLflow before model aliases
        db.execute("DROP TABLE registered_model_aliases")
    db.close()
    before = store.read_bytes()
    for read in _READERS.values():
        with pytest.raises(ModelUnavailable, match=r"lacks tables this MLflow .* older MLflow"):
            read()
    assert store.read_bytes() == before


def test_a_reader_waiting_on_a_locked_store_says_so_and_changes_nothing(home):
    store = home / "mlflow.db"
    before = _half_made(store, _HALF_MADE["first table only"])
    holder = sqlite3.connect(store, isolation_level=None, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ModelUnavailable, match=r"could not be read.*database is locked"):
            registry.resolve_model("champion")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.read_bytes() == before


def _first_experiment(home: str, barrier, results) -> None:
    import os

    os.environ["RECOMMENDER_HOME"] = home
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from recommender import registry

    barrier.wait()
    try:
        results.put(("ok", registry.ensure_experiment()))
    except Exception as error:  # noqa: BLE001 - the parent names what went wrong
        results.put(("error", f"{type(error).__name__}: {error}"))


def test_first_trainings_started_together_all_get_one_store_and_one_experiment(home):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(_PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_first_experiment, args=(str(home), barrier, results))
        for _ in range(_PROCESSES)
    ]
    for process in processes:
        process.start()
    answers = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [kind for kind, _ in answers] == ["ok"] * _PROCESSES, answers
    assert len({experiment for _, experiment in answers}) == 1
    experiment = registry.client().get_experiment_by_name(registry.EXPERIMENT_NAME)
    assert experiment.experiment_id == answers[0][1]
    assert not [p.name for p in home.iterdir() if p.name.startswith(".mlflow.db")]
