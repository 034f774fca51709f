"""What a service left running for weeks meets.

A SQLite store's write-ahead log, grown by one long read or write, does not keep that size on
disk.
"""

from __future__ import annotations

from service_fixtures import AUDIT_RECORD

# What the store's write-ahead log keeps on disk once a checkpoint has restarted it.
WAL_KEPT = 16 << 20


def test_a_grown_write_ahead_log_is_cut_back_at_the_next_record(tmp_path):
    import sqlite3

    from recommender.service import AuditLog

    database = tmp_path / "audit.db"
    wal = tmp_path / "audit.db-wal"
    audit = AuditLog(f"sqlite:///{database}", salt="s")
    try:
        audit.append([AUDIT_RECORD])
        # 40 MiB written at once (as while a long read held checkpoints back): the log grows
        with sqlite3.connect(database) as other:
            other.execute("CREATE TABLE ballast (b BLOB)")
            other.execute("INSERT INTO ballast VALUES (zeroblob(40 << 20))")
        other.close()
        assert wal.stat().st_size > 40 << 20
        audit.append([{**AUDIT_RECORD, "request_id": "r-2"}])
        assert wal.stat().st_size <= WAL_KEPT
        assert {row["request_id"] for row in audit.export()} == {"r-1", "r-2"}
    finally:
        audit.close()
