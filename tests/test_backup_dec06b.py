"""``recommender backup``: a consistent copy taken while the service answers, a restore under
another path that serves the same champion, and erasures done after the backup."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from recommender._backup import copy_sqlite, processes_holding
from recommender.cli import main
from recommender.service import AuditLog

from service_fixtures import (
    AUDIT_RECORD,
    SALT,
    auth,
    load_with_16_connections,
    profile,
    running_server_process,
)
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
# How long each burst of the backup test's load lasts: the load ends at most this long after
# the backup and the refused restore.
LOAD_BURST = 0.5


@pytest.fixture
def salted(monkeypatch):
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _rows(database, up_to=None):
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        query = "SELECT * FROM recommendations" + ("" if up_to is None else " WHERE id <= ?")
        return connection.execute(
            query + " ORDER BY id", () if up_to is None else (up_to,)
        ).fetchall()
    finally:
        connection.close()


def _integrity(database):
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def test_the_database_file_alone_loses_what_its_log_holds_and_the_backup_api_does_not(tmp_path):
    live = tmp_path / "live.db"
    writer = sqlite3.connect(live)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # as between a service's checkpoints
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    writer.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 100,)] * 500)
    writer.commit()
    shutil.copy(live, tmp_path / "file-alone.db")  # a cp of *.db, or a tool skipping -wal
    copy_sqlite(live, tmp_path / "backup.db")
    writer.close()

    def count(name):
        return sqlite3.connect(tmp_path / name).execute("SELECT count(*) FROM t").fetchone()[0]

    with pytest.raises(sqlite3.OperationalError):  # the table itself was only in the log
        count("file-alone.db")
    assert count("backup.db") == 500
    assert not (tmp_path / "backup.db-wal").exists()


def _file_alone_ids(database, scratch):
    """Ids of the rows the database file holds without its write-ahead log (a copy of the file
    alone, as a ``cp`` that skips ``-wal`` takes); empty when the table is only in the log. A
    copy torn by a checkpoint writing the file meanwhile is taken again."""
    for _ in range(5):
        shutil.copy(database, scratch)
        connection = sqlite3.connect(scratch)
        try:
            return {row[0] for row in connection.execute("SELECT id FROM recommendations")}
        except sqlite3.OperationalError:  # the table itself is only in the log
            return set()
        except sqlite3.DatabaseError:  # torn: copied while a checkpoint wrote the file
            continue
        finally:
            connection.close()
    raise AssertionError(f"no untorn copy of {database} in 5 tries")


def test_backup_under_load_restores_under_another_path_and_serves_the_same_champion(
    copy_champion, tmp_path, monkeypatch, salted, capsys
):
    from recommender.registry import aliases, load_champion
    from recommender.service import service as service_module
    from starlette.testclient import TestClient

    from service_fixtures import ENV_KEYS, _app

    home = copy_champion(tmp_path / "home")
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    backup = tmp_path / "backup"
    loaded = []
    # One server start: the backup is taken from it under load; the restored copy is then
    # checked without a server (the registry, the audit export, the service's own ASGI app).
    with running_server_process(home) as (url, server):
        # 16 connections, from before the first row until the backup and the refused restore
        # are done (in bursts of LOAD_BURST seconds): the backup starts with the first rows,
        # which are then in the log (SQLite checkpoints every 1,000 pages). A fixed 3 s of load
        # fit neither machine: where the backup takes a second it went on after it, spending
        # CPU; at load 20 the backup and the refusal took 18 s, and most of the backup was
        # taken with no load at all.
        done = threading.Event()

        def keep_loading():
            burst = 0
            while not done.is_set():
                loaded.append(load_with_16_connections(url, LOAD_BURST, tag=f"bk{burst}"))
                burst += 1

        load = threading.Thread(target=keep_loading)
        load.start()
        try:
            while not (home / "audit.db").is_file() or not _rows(home / "audit.db"):
                load.join(0.2)
            committed = {row[0] for row in _rows(home / "audit.db")}
            # Not vacuous: as the backup begins, rows just committed are in the log alone (the
            # first checkpoint comes after 1,000 pages). Checked before the backup, not after:
            # on a loaded machine a slow backup lets a checkpoint move them into the file.
            in_log_only = committed - _file_alone_ids(home / "audit.db", tmp_path / "alone.db")
            assert in_log_only
            assert main(["backup", "--to", str(backup)]) == 0
            # restoring over the store the service holds open is refused, naming the process
            assert processes_holding((home / "audit.db").resolve())
            assert main(["backup", "--restore", str(backup)]) == 2
            assert "stop the service" in capsys.readouterr().err
        finally:
            done.set()
            load.join()
        # Still served, the load over: the rows the live store holds now.
        rows = _rows(backup / "models" / "audit.db")
        live = _rows(home / "audit.db")
    answered = sum(burst[0] for burst in loaded)
    failures = [failure for burst in loaded for failure in burst[1]]
    assert answered and not failures
    assert not list(home.glob("*.before-restore-*"))  # the refusal changed nothing

    manifest = json.loads((backup / "manifest.json").read_text())
    assert committed <= {row[0] for row in rows}  # every row committed before the backup
    # the copy is the source as it was: the same rows, byte for byte (the log only appends)
    assert rows == [row for row in live if row[0] <= rows[-1][0]]
    copied = backup / "models"
    assert _integrity(copied / "audit.db") == "ok" and _integrity(copied / "mlflow.db") == "ok"
    assert manifest["registry"]["champion"] == "1"
    assert manifest["audit_store"]["schema_revision"]
    assert {"models/mlflow.db", "models/audit.db", "models/promotions.jsonl"} <= {
        f["path"] for f in manifest["files"]
    }
    assert not any(f["path"].endswith(("-wal", "-shm")) for f in manifest["files"])

    # The original home goes away: whatever the restored copy serves, it reads from itself.
    home.rename(tmp_path / "home-gone")
    restored = tmp_path / "elsewhere" / "models"
    monkeypatch.setenv("RECOMMENDER_HOME", str(restored))
    assert main(["backup", "--restore", str(backup)]) == 0
    assert _rows(restored / "audit.db") == rows
    assert main(["audit", "export", "--out", str(tmp_path / "restored.csv")]) == 0
    exported = (tmp_path / "restored.csv").read_text().splitlines()
    assert len(exported) == len(rows) + 1
    assert aliases()["champion"] == "1"
    assert load_champion()[1] == "1"

    # The service itself, in process, over the restored folder: it loads the champion from
    # there and writes its audit row into the restored store (a second `recommender serve`
    # would add only BentoML's start, not what the restore left).
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    monkeypatch.setenv("RECOMMENDER_API_KEYS", ENV_KEYS)
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        answer = client.post(
            "/recommend", json=profile(person_id="after-restore"), headers=auth("program")
        )
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    assert len(_rows(restored / "audit.db")) == len(rows) + 1
    assert _integrity(restored / "audit.db") == "ok"


def _store_with(home, people):
    audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
    audit.append([{**AUDIT_RECORD, "request_id": f"r-{p}", "person_id": p} for p in people])
    audit.close()


def _hashes(database):
    return {
        r[0] for r in sqlite3.connect(database).execute("SELECT person_hash FROM recommendations")
    }


def test_restore_says_how_many_erasures_to_redo_and_redoing_them_erases_again(
    tmp_path, monkeypatch, salted, capsys
):
    home = tmp_path / "models"
    home.mkdir()
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    _store_with(home, ["p-1", "p-2"])
    hash_of = AuditLog("sqlite://", salt=SALT).person_hash
    assert main(["backup", "--to", str(tmp_path / "backup")]) == 0
    leavers = tmp_path / "leavers.txt"
    leavers.write_text("person_id\np-1\n")
    assert main(["audit", "erase", "--ids-file", str(leavers)]) == 0
    assert hash_of("p-1") not in _hashes(home / "audit.db")
    capsys.readouterr()

    assert main(["backup", "--restore", str(tmp_path / "backup")]) == 0
    said = capsys.readouterr()
    assert "1 erasure(s) after this backup" in said.err
    assert "audit erase --ids-file" in said.err
    assert hash_of("p-1") in _hashes(home / "audit.db")  # the restore brought p-1 back
    # the store it replaced is kept aside, not deleted
    assert any(p.name.startswith("audit.db.before-restore-") for p in home.glob("audit.db.*"))
    assert main(["audit", "erase", "--ids-file", str(leavers)]) == 0
    assert _hashes(home / "audit.db") == {hash_of("p-2"), "erased"}


def test_backup_refuses_a_used_folder_and_restore_a_changed_backup(
    tmp_path, monkeypatch, salted, capsys
):
    home = tmp_path / "models"
    home.mkdir()
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    _store_with(home, ["p-1"])
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("kept")
    assert main(["backup", "--to", str(used)]) == 2
    assert "not empty" in capsys.readouterr().err and (used / "x").read_text() == "kept"
    assert main(["backup", "--restore", str(used)]) == 2
    assert "manifest.json" in capsys.readouterr().err

    backup = tmp_path / "backup"
    assert main(["backup", "--to", str(backup)]) == 0
    before = (home / "audit.db").read_bytes()
    with sqlite3.connect(backup / "models" / "audit.db") as changed:
        changed.execute("DELETE FROM recommendations")
    assert main(["backup", "--restore", str(backup)]) == 2
    assert "sha256" in capsys.readouterr().err
    assert (home / "audit.db").read_bytes() == before
    assert not list(home.glob("*.before-restore-*"))


def test_a_postgresql_audit_store_is_named_for_pg_dump_not_copied(tmp_path, monkeypatch, salted):
    from recommender._backup import back_up
    from recommender.service import AUDIT_TABLE_NAMES, load_serve_config

    home = tmp_path / "models"
    home.mkdir()
    (home / "audit.salt").write_text(SALT)
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    settings = tmp_path / "serve.yaml"
    shipped = (ROOT / "configs" / "serve.yaml").read_text()
    settings.write_text(
        shipped.replace("  url: null", "  url: postgresql+psycopg://svc@db.invalid/audit", 1)
    )
    config = load_serve_config(settings)
    report = back_up(
        config, tmp_path / "backup", tracking_uri="http://mlflow.invalid", configs=None
    )
    said = " ".join(report.notes)
    assert "pg_dump" in said and all(f"--table {name}" in said for name in AUDIT_TABLE_NAMES)
    assert "tracking server" in said
    assert report.manifest["audit_store"]["copy"] is None
    assert report.manifest["salt"] == "models/audit.salt"
    assert (tmp_path / "backup" / "models" / "audit.salt").read_text() == SALT


def test_restore_names_the_databases_it_moves_aside_and_counts_the_other_files(
    tmp_path, monkeypatch, salted, capsys
):
    home = tmp_path / "models"
    (home / "cards").mkdir(parents=True)
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    _store_with(home, ["p-1"])
    for name in ("cards/v1.md", "cards/v2.md", "promotions.jsonl"):
        (home / name).write_text(name)
    assert main(["backup", "--to", str(tmp_path / "backup")]) == 0
    capsys.readouterr()

    assert main(["backup", "--restore", str(tmp_path / "backup")]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "moved aside" in line]
    assert len(said) == 2
    assert said[0].startswith(f"moved aside: {home / 'audit.db.before-restore-'}")
    assert f"3 other replaced file(s) under {home}" in said[1]
    for name in ("cards/v1.md", "cards/v2.md", "promotions.jsonl"):
        assert len(list(home.glob(f"{name}.before-restore-*"))) == 1
