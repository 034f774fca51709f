"""A SQLite URL's database file, plain or a SQLite URI filename (``file:...?uri=true``).

A URI filename was once taken for a relative path: opening a read-only store created an empty
folder named ``file:`` in the working directory.
"""

from pathlib import Path

import pytest

from recommender.service import AuditLog, sqlite_file


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///models/audit.db", Path("models/audit.db")),
        ("sqlite:////srv/audit.db", Path("/srv/audit.db")),
        ("sqlite:///file:/srv/audit.db?mode=ro&uri=true", Path("/srv/audit.db")),
        ("sqlite:///file:/srv/my%20audit.db?uri=true", Path("/srv/my audit.db")),
        ("sqlite:///file:rel/audit.db?uri=true", Path("rel/audit.db")),
        ("sqlite+pysqlite:///file:/srv/a.db?uri=1", Path("/srv/a.db")),
        # without uri=true SQLite opens a file literally named so
        ("sqlite:///file:odd.db", Path("file:odd.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:shared?mode=memory&cache=shared&uri=true", None),
        ("postgresql+psycopg://user@127.0.0.1:5432/audit", None),
    ],
)
def test_the_database_file_of_a_url(url, expected):
    assert sqlite_file(url) == expected


def test_an_audit_store_opened_by_uri_filename_creates_no_folder_named_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "store" / "audit.db"
    AuditLog(f"sqlite:///file:{path}?mode=rwc&uri=true", salt="s").close()
    assert path.is_file()  # its folder made where the URI says
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    # and read-only afterwards, as a program's auditor would open it
    AuditLog(f"sqlite:///file:{path}?mode=ro&uri=true", salt="s").close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
