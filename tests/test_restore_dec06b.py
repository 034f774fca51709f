"""``recommender backup --restore``: what it moves aside keeps every committed row, a registry
kept outside the models folder is put back, and the CLI reads the report, not the files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.cli import main
from recommender.service import AuditLog

from service_fixtures import AUDIT_RECORD, SALT


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "models"
    home.mkdir()
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
    audit.append([{**AUDIT_RECORD, "request_id": "r-1", "person_id": "p-1"}])
    audit.close()
    return home


# A writer killed between checkpoints: its 100 committed rows are only in the log.
_KILLED_WRITER = """
import os, sqlite3, sys
writer = sqlite3.connect(sys.argv[1])
writer.execute("PRAGMA journal_mode=WAL")
writer.execute("PRAGMA wal_autocheckpoint=0")
writer.execute("CREATE TABLE late (id INTEGER PRIMARY KEY)")
writer.executemany("INSERT INTO late (id) VALUES (?)", [(i,) for i in range(100)])
writer.commit()
os._exit(0)  # no close: nothing checkpoints the log into the file
"""


def test_the_moved_aside_store_keeps_the_rows_only_its_log_held(home, tmp_path, capsys):
    assert main(["backup", "--to", str(tmp_path / "backup")]) == 0
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(home / "audit.db")], check=True)
    assert Path(f"{home / 'audit.db'}-wal").stat().st_size > 0  # not vacuous: rows in the log
    capsys.readouterr()

    assert main(["backup", "--restore", str(tmp_path / "backup")]) == 0
    (aside,) = home.glob("audit.db.before-restore-*[0-9TZ]")
    connection = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
    try:
        assert connection.execute("SELECT count(*) FROM late").fetchone()[0] == 100
    finally:
        connection.close()
    # no log left behind under a name SQLite would not pair with the moved-aside file
    assert not list(home.glob("audit.db-wal*")) and not list(home.glob("audit.db-shm*"))
    assert f"moved aside: {aside}" in capsys.readouterr().out


def _marks(database):
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [row[0] for row in connection.execute("SELECT v FROM marks ORDER BY v")]
    finally:
        connection.close()


def _mark(database, value):
    connection = sqlite3.connect(database)
    try:
        with connection:
            connection.execute("CREATE TABLE IF NOT EXISTS marks (v TEXT)")
            connection.execute("INSERT INTO marks VALUES (?)", (value,))
    finally:
        connection.close()


def test_a_registry_kept_outside_the_models_folder_is_restored_too(
    home, tmp_path, monkeypatch, capsys
):
    registry = tmp_path / "registry" / "mlflow.db"
    registry.parent.mkdir()
    _mark(registry, "at backup")  # a stand-in: restore copies the file, whatever it holds
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{registry}")
    assert main(["backup", "--to", str(tmp_path / "backup")]) == 0
    _mark(registry, "after backup")
    capsys.readouterr()

    assert main(["backup", "--restore", str(tmp_path / "backup")]) == 0
    assert _marks(registry) == ["at backup"]
    (aside,) = registry.parent.glob("mlflow.db.before-restore-*")
    assert _marks(aside) == ["after backup", "at backup"]
    assert f"moved aside: {aside}" in capsys.readouterr().out


def test_a_registry_copy_with_nowhere_to_go_is_named_to_restore_by_hand(
    home, tmp_path, monkeypatch
):
    from recommender._backup import restore
    from recommender.service import load_serve_config

    registry = tmp_path / "registry" / "mlflow.db"
    registry.parent.mkdir()
    _mark(registry, "at backup")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{registry}")
    assert main(["backup", "--to", str(tmp_path / "backup")]) == 0
    report = restore(
        tmp_path / "backup", load_serve_config(None), tracking_uri="http://mlflow.invalid"
    )
    (said,) = [note for note in report.notes if "MLflow store" in note]
    assert str(tmp_path / "backup" / "registry" / "mlflow.db") in said
    assert "by hand" in said and "http://mlflow.invalid" in said


def test_the_manifest_names_the_champion_of_the_registrys_own_model(home, tmp_path, monkeypatch):
    import recommender.registry

    connection = sqlite3.connect(home / "mlflow.db")
    with connection:
        connection.execute("CREATE TABLE registered_model_aliases (alias, version, name)")
        connection.executemany(
            "INSERT INTO registered_model_aliases VALUES (?, ?, ?)",
            [("champion", 4, "burnout-recommender"), ("champion", 7, "another-model")],
        )
    connection.close()
    assert main(["backup", "--to", str(tmp_path / "one")]) == 0
    manifest = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert manifest["registry"]["champion"] == "4"
    monkeypatch.setattr(recommender.registry, "MODEL_NAME", "another-model")
    assert main(["backup", "--to", str(tmp_path / "two")]) == 0
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["registry"]["champion"] == "7"


def _state(home):
    """Every file under ``home`` with its bytes, but for the live store's side files (which a
    read-only look at it may create, empty): its rows are compared by :func:`_marks`."""
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and p.name not in ("audit.db-wal", "audit.db-shm")
    }


@pytest.fixture
def changed_since_backup(home, tmp_path, capsys):
    """A home backed up, then changed (a card replaced, one added, a row in the store)."""
    (home / "cards").mkdir()
    (home / "cards" / "v1.md").write_text("at backup")
    assert main(["backup", "--to", str(tmp_path / "backup")]) == 0
    (home / "cards" / "v1.md").write_text("after backup")
    (home / "promotions.jsonl").write_text("after backup\n")
    _mark(home / "audit.db", "after backup")
    capsys.readouterr()
    return _state(home)


def _failing_on_call(number, real, error):
    calls = []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == number:
            raise error
        return real(*args, **kwargs)

    return failing


def test_a_restore_that_cannot_copy_everything_replaces_nothing(
    home, tmp_path, monkeypatch, capsys, changed_since_backup
):
    import errno
    import shutil

    full = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(shutil, "copy2", _failing_on_call(2, shutil.copy2, full))
    assert main(["backup", "--restore", str(tmp_path / "backup")]) == 2
    said = capsys.readouterr().err
    assert "No space left on device" in said and "nothing was restored" in said
    assert _state(home) == changed_since_backup  # no file moved aside, no copy left
    assert _marks(home / "audit.db") == ["after backup"]


def test_a_restore_stopped_among_its_renames_puts_every_replaced_file_back(
    home, tmp_path, monkeypatch, changed_since_backup
):
    import os

    from recommender._backup import restore
    from recommender.service import load_serve_config

    monkeypatch.setattr(os, "replace", _failing_on_call(2, os.replace, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        restore(tmp_path / "backup", load_serve_config(None))
    assert _state(home) == changed_since_backup
    assert _marks(home / "audit.db") == ["after backup"]
