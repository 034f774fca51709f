"""A new SQLite store is built without a sync per migration, and is MLflow's store all the same."""

from __future__ import annotations

import contextlib
import sqlite3

from recommender.registry._sqlite import set_up_sqlite_store, sqlite_state, sqlite_uri


def _schema(path) -> list:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()


def _rows(path, sql) -> list:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def test_a_store_set_up_unsynced_is_the_store_mlflow_makes_and_keeps_sqlites_defaults(tmp_path):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    ours, theirs = tmp_path / "ours" / "mlflow.db", tmp_path / "theirs" / "mlflow.db"
    ours.parent.mkdir()
    theirs.parent.mkdir()
    set_up_sqlite_store(sqlite_uri(ours), artifact_root=(tmp_path / "ours-art").as_uri())
    SqlAlchemyStore(sqlite_uri(theirs), (tmp_path / "theirs-art").as_uri()).engine.dispose()

    assert sqlite_state(ours) == "ready"
    assert _schema(ours) == _schema(theirs)
    version = "SELECT version_num FROM alembic_version"
    assert _rows(ours, version) == _rows(theirs, version)
    default = "SELECT experiment_id, name, lifecycle_stage FROM experiments"
    assert _rows(ours, default) == _rows(theirs, default) == [(0, "Default", "active")]
    # Nothing of the staging file is left, and the store in place journals as SQLite does.
    assert sorted(p.name for p in ours.parent.iterdir()) == ["mlflow.db"]
    assert _rows(ours, "PRAGMA journal_mode") == [("delete",)]


def test_only_the_staging_file_goes_unsynced_and_only_while_it_is_set_up(tmp_path):
    from sqlalchemy import create_engine, text

    import recommender.registry._sqlite as sqlite_module

    other = create_engine(sqlite_uri(tmp_path / "other.db"))
    seen = {}
    real = sqlite_module._open_mlflow_store

    def opening(uri, artifact_root):
        with other.connect() as connection:
            seen["during"] = connection.execute(text("PRAGMA synchronous")).scalar()
        staging = create_engine(uri)
        with staging.connect() as connection:
            seen["staging"] = connection.execute(text("PRAGMA synchronous")).scalar()
        staging.dispose()
        real(uri, artifact_root)

    sqlite_module._open_mlflow_store = opening
    try:
        set_up_sqlite_store(
            sqlite_uri(tmp_path / "mlflow.db"), artifact_root=(tmp_path / "art").as_uri()
        )
    finally:
        sqlite_module._open_mlflow_store = real
    other.dispose()
    with other.connect() as connection:
        seen["after"] = connection.execute(text("PRAGMA synchronous")).scalar()
    assert seen == {"staging": 0, "during": 2, "after": 2}  # OFF; FULL, SQLite's default
