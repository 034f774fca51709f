"""An empty MLflow SQLite store made once per test process and copied into each new one.

MLflow creates a SQLite store by running every migration of its schema from the first (about
60 revisions): 3-6 s of CPU on this machine for each new store, and the suite makes hundreds
(every test with a fresh models folder). Here MLflow's own ``_initialize_tables`` makes one
empty store per test process, and a store MLflow would create from nothing afterwards gets a
copy of it (SQLite's backup API, the same pages); MLflow then goes on as it would (its default
experiment, its checks). A store holding any table already (one whose creation was cut short)
is left to MLflow's own migrations, and so is every store that is not a SQLite file.

The suite's subprocesses (``recommender train`` and the like) do the same through
``tests/site/sitecustomize.py``, which the session puts first on ``PYTHONPATH`` with the
template's path in ``RECOMMENDER_TEST_MLFLOW_TEMPLATE``. Tests about MLflow's first creation
of a store opt out with the marker ``mlflow_migrations``.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

TEMPLATE_ENV = "RECOMMENDER_TEST_MLFLOW_TEMPLATE"
SITE = Path(__file__).resolve().parent / "site"

_LOCK = threading.Lock()


def make_template(path: Path, initialize_tables) -> None:
    """MLflow's own migrations, once, into ``path`` (made beside and renamed into place)."""
    import sqlalchemy as sa

    with _LOCK:
        if path.exists():
            return
        staging = path.with_name(path.name + ".new")
        made = sa.create_engine(f"sqlite:///{staging}")
        try:
            initialize_tables(made)
        finally:
            made.dispose()
        staging.replace(path)


def from_template(template: Path, engine) -> bool:
    """Copy ``template`` into the store ``engine`` opens if it is an empty SQLite file; whether
    it did."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return False
    if not template.exists():
        return False
    with engine.connect() as connection:
        if connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
            return False
    source = sqlite3.connect(template)
    raw = engine.raw_connection()
    try:
        source.backup(raw.driver_connection)
    finally:
        raw.close()
        source.close()
    return True


def patch_module(db_utils, template: Path, *, enabled=lambda: True) -> None:
    """Make ``db_utils._initialize_tables`` (``mlflow.store.db.utils``) copy ``template``."""
    original = db_utils._initialize_tables

    def _initialize_tables(engine):
        if not (enabled() and from_template(template, engine)):
            original(engine)

    _initialize_tables.original = original
    db_utils._initialize_tables = _initialize_tables


class Template:
    """The template of this test process, at ``folder/template.db``."""

    def __init__(self, folder: Path):
        self.path = folder / "template.db"
        self.enabled = True

    def install(self, monkeypatch) -> None:
        import mlflow.store.db.utils as db_utils
        import mlflow.store.model_registry.sqlalchemy_store as registry_store

        make_template(self.path, db_utils._initialize_tables)
        original = db_utils._initialize_tables
        patch_module(db_utils, self.path, enabled=lambda: self.enabled)
        patched = db_utils._initialize_tables
        db_utils._initialize_tables = original
        monkeypatch.setattr(db_utils, "_initialize_tables", patched)
        # The registry's store imported the function by name.
        monkeypatch.setattr(registry_store, "_initialize_tables", patched)
