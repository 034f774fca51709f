"""The audit log: one row per answer, salted person hashes, no raw identifiers, export."""

import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from recommender.errors import InputError
from recommender.service import AuditLog, audit_csv, parse_since, resolve_salt


def record(i, **changes):
    return {
        "request_id": f"r{i}",
        "model_version": "3",
        "caller_role": "program",
        "person_id": f"person-{i}",
        "safety_level": "routine",
        "recommended": "coaching",
        "ranking_meaningful": True,
        "effects": {"coaching": [-4.0, -6.0, -2.0]},
        **changes,
    }


def test_rows_hold_hashes_never_person_ids(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt="pepper")
    assert log.append([record(i) for i in range(5)]) == 5
    # In WAL mode new rows sit in audit.db-wal until a checkpoint: read every file of the store.
    files = sorted(tmp_path.glob("audit.db*"))
    assert tmp_path / "audit.db-wal" in files
    raw = b"".join(path.read_bytes() for path in files)
    assert b"r4" in raw  # the rows are in what was read
    assert b"person-1" not in raw and b"pepper" not in raw
    rows = log.export()
    assert [r["request_id"] for r in rows] == [f"r{i}" for i in range(5)]
    assert rows[2]["person_hash"] == log.person_hash("person-2")
    assert rows[0]["effects"] == {"coaching": [-4.0, -6.0, -2.0]}
    assert "pepper" not in repr(log)


def test_salt_changes_the_hash():
    a, b = AuditLog("sqlite://", salt="one"), AuditLog("sqlite://", salt="two")
    assert a.person_hash("p") != b.person_hash("p")
    assert a.person_hash("p") == AuditLog("sqlite://", salt="one").person_hash("p")


def test_rows_persist_across_reopening(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    AuditLog(url, salt="s").append([record(1)])
    log = AuditLog(url, salt="s")
    log.append([record(2)])
    assert log.count() == 2


def test_export_since_and_csv(tmp_path):
    log = AuditLog("sqlite://", salt="s")
    old = datetime.now(timezone.utc) - timedelta(days=3)
    log.append([record(1, logged_at=old), record(2)])
    recent = log.export(since=datetime.now(timezone.utc) - timedelta(days=1))
    assert [r["request_id"] for r in recent] == ["r2"]
    text = audit_csv(log.export())
    header = text.splitlines()[0].split(",")
    assert "person_hash" in header and "person_id" not in header
    assert len(text.splitlines()) == 3


def test_duplicate_request_ids_are_refused_and_nothing_of_the_batch_is_written():
    log = AuditLog("sqlite://", salt="s")
    log.append([record(1)])
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="request_id"):
        log.append([record(2), record(1)])
    assert log.count() == 1


def test_salt_resolution_env_then_config_then_owner_only_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", "salt-from-the-env")
    assert resolve_salt("salt-from-the-config", tmp_path) == "salt-from-the-env"
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT")
    assert resolve_salt("salt-from-the-config", tmp_path) == "salt-from-the-config"
    first = resolve_salt(None, tmp_path)
    assert first == resolve_salt(None, tmp_path) and len(first) == 64
    mode = stat.S_IMODE(os.stat(tmp_path / "audit.salt").st_mode)
    assert mode == 0o600


def test_since_parsing():
    assert parse_since("2026-11-25").tzinfo == timezone.utc
    with pytest.raises(InputError) as caught:
        parse_since("last tuesday")
    assert "since: 'last tuesday'" in str(caught.value) and "ISO 8601" in str(caught.value)


@pytest.mark.parametrize("durability, level", [("process_crash", 1), ("power_loss", 2)])
def test_durability_sets_sqlite_synchronous_and_a_commit_outlives_a_killed_process(
    tmp_path, durability, level
):
    import subprocess
    import sys

    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url, salt="s", durability=durability)
    with log.engine.connect() as connection:  # 1 = NORMAL, 2 = FULL
        assert connection.execute(sa.text("PRAGMA synchronous")).scalar_one() == level
    log.close()
    # The answer is given once append returns: the record must then outlive the process
    # dying at once (no close, no checkpoint, no atexit).
    script = (
        "import os, sys\n"
        "from recommender.service import AuditLog\n"
        f"log = AuditLog({url!r}, salt='s', durability={durability!r})\n"
        "log.append([{'request_id': 'killed', 'model_version': '1', 'caller_role': 'program',"
        " 'person_id': 'p', 'safety_level': 'routine', 'recommended': 'coaching',"
        " 'ranking_meaningful': True, 'effects': {}}])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    process = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert process.returncode == -9, process.stderr.decode()
    assert [r["request_id"] for r in AuditLog(url, salt=None).export()] == ["killed"]


def test_unknown_durability_is_refused_by_name():
    with pytest.raises(InputError, match="durability 'sometimes'.*process_crash \\| power_loss"):
        AuditLog("sqlite://", salt="s", durability="sometimes")


def test_a_store_whose_file_was_deleted_refuses_to_record_instead_of_losing_rows(tmp_path):
    # SQLite keeps writing to a deleted file through the connections it holds: every later
    # record would be lost while the answers said they were in the audit log.
    path = tmp_path / "audit.db"
    log = AuditLog(f"sqlite:///{path}", salt="s")
    log.append([record(1)])
    assert log.writable()
    for part in tmp_path.glob("audit.db*"):
        part.unlink()
    assert not log.writable()  # known without a query: a readiness probe asks
    with pytest.raises(Exception, match="removed or replaced"):
        log.append([record(2)])
    # A file put in its place (an empty one, a restored copy) is not the store that was opened.
    AuditLog(f"sqlite:///{path}", salt="s").close()
    with pytest.raises(Exception, match="removed or replaced"):
        log.append([record(3)])
