"""``recommender backup --restore``: what it moves aside keeps every committed row, a registry
kept outside the models folder is put back, and the CLI reads the report, not the files."""

from __future__ import annotations

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
