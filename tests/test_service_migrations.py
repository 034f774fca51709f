"""The audit store's schema is Alembic's, on SQLite and on PostgreSQL (a throwaway cluster).

A new database gets every revision; the migrated schema is exactly the table the code queries;
an audit database made before migrations (by create_all) is upgraded with its rows intact;
several processes opening one new database at once all succeed.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from recommender.service import (
    AuditLog,
    AuditSaltMismatch,
    AuditSaltMissing,
    audit_csv,
    resolve_salt,
)
from recommender.service._audit_tables import SECONDARY_COLUMNS, _metadata
from recommender.service._migrate import BASELINE, VERSION_TABLE, _config, schema_revision
from service_fixtures import AUDIT_RECORD as RECORD

# The DDL today's service (create_all, before migrations) wrote to a new SQLite audit file.
BEFORE_MIGRATIONS = """
CREATE TABLE recommendations (
    id INTEGER NOT NULL, logged_at DATETIME NOT NULL, request_id VARCHAR(64) NOT NULL,
    batch_id VARCHAR(64), model_version VARCHAR(64) NOT NULL, caller_role VARCHAR(16) NOT NULL,
    person_hash VARCHAR(64) NOT NULL, safety_level VARCHAR(16) NOT NULL,
    recommended VARCHAR(64), ranking_meaningful BOOLEAN, effects TEXT NOT NULL,
    PRIMARY KEY (id), UNIQUE (request_id));
CREATE INDEX ix_recommendations_logged_at ON recommendations (logged_at);
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return request.getfixturevalue("postgres").database("audit")


def _head() -> str:
    from alembic.script import ScriptDirectory

    from recommender.service import _migrate

    return ScriptDirectory(str(_migrate._FOLDER)).get_current_head()


def test_a_new_store_is_migrated_to_the_schema_the_code_queries(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    log = AuditLog(store_url, salt="s")
    assert log.append([RECORD]) == 1
    engine = sa.create_engine(store_url)
    assert schema_revision(engine) == _head()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [
            d
            for d in compare_metadata(context, _metadata)
            if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)
        ]
    assert differences == []  # migrations and the tables in _audit_tables.py agree
    engine.dispose()
    log.close()


def test_an_audit_database_made_before_migrations_is_upgraded_with_its_rows(tmp_path):
    path = tmp_path / "audit.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        for statement in filter(str.strip, BEFORE_MIGRATIONS.split(";")):
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql(
            "INSERT INTO recommendations (logged_at, request_id, model_version, caller_role, "
            "person_hash, safety_level, recommended, ranking_meaningful, effects) VALUES "
            "('2026-11-20 10:00:00.000000', 'old-1', '1', 'program', 'abc', 'routine', "
            "'mindfulness', 1, '{\"mindfulness\":[-2.0,-3.5,-0.5]}')"
        )
    assert schema_revision(engine) is None

    log = AuditLog(f"sqlite:///{path}", salt="s")
    assert schema_revision(engine) == _head()
    with engine.connect() as connection:
        stamped = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
        assert stamped.scalar() == _head()
    log.append([RECORD])
    rows = log.export()
    assert [r["request_id"] for r in rows] == ["old-1", "r-1"]
    assert rows[0]["effects"] == {"mindfulness": [-2.0, -3.5, -0.5]}
    assert rows[0]["logged_at"] == datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    log.close()
    # Opening it again is a no-op: still one version row, still two records.
    again = AuditLog(f"sqlite:///{path}", salt=None)
    assert again.count() == 2
    with engine.connect() as connection:
        assert connection.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1
    again.close()
    engine.dispose()
    assert BASELINE <= _head()


def test_workers_opening_one_new_store_at_once_all_succeed(store_url):
    # Four processes race to migrate the same empty database; each then writes one row.
    code = (
        "import sys; from recommender.service import AuditLog; "
        "log = AuditLog(sys.argv[1], salt='s'); "
        "log.append([{**dict(request_id=sys.argv[2], model_version='1', caller_role='program', "
        "person_id='p', safety_level='routine', recommended=None, ranking_meaningful=None, "
        "effects={})}]); print('ok')"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_url, f"w{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, [err[-2000:] for _, err in results]
    log = AuditLog(store_url, salt=None)
    assert log.count() == 4
    log.close()


def test_a_store_a_newer_release_upgraded_is_named_not_alembics_error(store_url):
    """Serving an older release on a store a newer one migrated (a rollback) gave Alembic's
    "Can't locate revision identified by '0099'" from inside the worker."""
    from recommender.errors import InputError

    AuditLog(store_url, salt=None).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    with pytest.raises(InputError) as caught:
        AuditLog(store_url, salt=None)
    message = str(caught.value)
    assert "schema revision '0099', which this release does not know" in message
    assert f"it knows {BASELINE}, " in message and _head() in message
    assert schema_revision(engine) == "0099"  # left as it was
    engine.dispose()


def test_a_store_at_revision_0004_is_upgraded_keeping_its_rows_readable(store_url):
    # Revision 0005 gave the audit log the recommended arm's DP and PA figures; a record from
    # before keeps null there and reads, exports and sits beside new records as before.
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        command.upgrade(_config(connection), "0004")
        connection.execute(
            sa.text(
                "INSERT INTO recommendations (logged_at, request_id, model_version, caller_role, "
                "person_hash, safety_level, recommended, ranking_meaningful, effects) VALUES "
                "('2026-11-20 10:00:00.000000', 'old-1', '1', 'program', 'abc', 'routine', "
                "'mindfulness', TRUE, '{\"mindfulness\":[-2.0,-3.5,-0.5]}')"
            )
        )
    assert schema_revision(engine) == "0004"

    log = AuditLog(store_url, salt="s")
    assert schema_revision(engine) == _head()
    log.append([{**RECORD, "dp_pa": (-1.0, -1.5, -0.5, 0.25, 0.0, 0.5)}])
    old, new = log.export()
    assert old["request_id"] == "old-1"
    assert old["effects"] == {"mindfulness": [-2.0, -3.5, -0.5]}
    assert [old[name] for name in SECONDARY_COLUMNS] == [None] * 6
    assert [new[name] for name in SECONDARY_COLUMNS] == [-1.0, -1.5, -0.5, 0.25, 0.0, 0.5]
    log.close()

    # The CLI's export reads it as the service's does: the new columns, empty for the old row.
    reader = AuditLog(store_url, salt=None)
    lines = list(csv.DictReader(io.StringIO(audit_csv(reader.export()))))
    reader.close()
    assert [line["dp_effect"] for line in lines] == ["", "-1.0"]
    assert list(lines[0])[-6:] == list(SECONDARY_COLUMNS)
    engine.dispose()


# -- one store, one salt ------------------------------------------------------------------------
# Two services (replicas, an old and a new deployment) on one store with different salts hashed
# one person two ways: outcomes did not link, exploration draws and training split people.
FIRST, OTHER = "first-salt-kept-by-the-store", "other-salt-of-a-second-replica"


def _stored_text(url: str) -> str:
    """Every value of every table of the store, as text."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = [
            str(row)
            for table in sa.inspect(connection).get_table_names()
            for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
        ]
    engine.dispose()
    return "\n".join(found)


def test_a_store_refuses_a_salt_other_than_the_one_it_was_written_with(store_url):
    first = AuditLog(store_url, salt=FIRST)
    first.append([RECORD])
    first.close()
    with pytest.raises(AuditSaltMismatch) as refused:
        AuditLog(store_url, salt=OTHER)
    message = str(refused.value)
    assert "written with another audit salt" in message
    assert "RECOMMENDER_AUDIT_SALT" in message and "audit.salt in serve.yaml" in message
    assert FIRST not in message and OTHER not in message
    # The salt it was written with, and reading without one, still open it.
    AuditLog(store_url, salt=FIRST).close()
    reader = AuditLog(store_url, salt=None)
    assert [row["request_id"] for row in reader.export()] == ["r-1"]
    reader.close()
    assert FIRST not in _stored_text(store_url)  # a fingerprint, never the salt


def test_a_store_from_before_the_fingerprint_adopts_the_salt_it_is_next_opened_with(store_url):
    # A store at revision 0003, as the release before this check left it.
    old = AuditLog(store_url, salt=None)
    old.close()
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:  # Alembic's own way back, through every later revision
        command.downgrade(_config(connection), "0003")
    reader = AuditLog(store_url, salt=None)  # migrated; reading adopts nothing
    reader.close()
    adopted = AuditLog(store_url, salt=FIRST)
    adopted.append([RECORD])
    adopted.close()
    assert schema_revision(engine) == _head()
    engine.dispose()
    with pytest.raises(AuditSaltMismatch):
        AuditLog(store_url, salt=OTHER)


def test_no_salt_is_made_for_a_store_that_holds_records(store_url, tmp_path, monkeypatch):
    # A service given no salt makes one only while the store holds no record (see
    # tests/test_service_salt_file.py): a new salt cannot be the one the records were hashed with.
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    monkeypatch.delenv("RECOMMENDER_SECRETS_DIR", raising=False)
    AuditLog(store_url, salt=None).close()
    assert len(resolve_salt(None, tmp_path / "empty", store=store_url)) == 64
    written = AuditLog(store_url, salt=FIRST)
    written.append([RECORD])
    written.close()
    with pytest.raises(AuditSaltMissing, match="holds records"):
        resolve_salt(None, tmp_path / "models", store=store_url)
    assert not (tmp_path / "models" / "audit.salt").exists()


def test_of_two_services_adopting_a_new_store_at_once_only_one_salt_wins(store_url):
    # Each of four processes opens the same new store, two with each salt: the first salt to
    # be written is kept, so exactly the two processes with that salt open it.
    code = (
        "import sys; from recommender.service import AuditLog, AuditSaltMismatch\n"
        "try: AuditLog(sys.argv[1], salt=sys.argv[2]).close()\n"
        "except AuditSaltMismatch: print('refused ' + sys.argv[2])\n"
        "else: print('opened ' + sys.argv[2])"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_url, salt],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for salt in (FIRST, OTHER, FIRST, OTHER)
    ]
    results = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, [err[-2000:] for _, err in results]
    said = sorted(out.strip() for out, _ in results)
    opened = {line.split()[1] for line in said if line.startswith("opened")}
    refused = {line.split()[1] for line in said if line.startswith("refused")}
    assert len(opened) == 1 and len(refused) == 1 and opened != refused, said
    assert said.count(f"opened {opened.pop()}") == 2


# -- found by red-teaming the deployment (reddeploy) ---------------------------------------------
def test_a_role_that_may_not_create_the_tables_is_told_what_to_grant(postgres, tmp_path, capsys):
    """A least-privilege service role on a new PostgreSQL database (since PostgreSQL 15 only
    the database owner may create in schema public): opening the store raised SQLAlchemy's
    ProgrammingError, so `recommender serve` stopped with a traceback and the workers logged one.
    """
    import psycopg

    from recommender.cli.cmd_serve import _check_audit_store
    from recommender.errors import InputError
    from recommender.service import load_serve_config

    owner_url = postgres.database("audit")
    database = sa.engine.make_url(owner_url).database
    admin = f"host=127.0.0.1 port={postgres.port} user=recommender dbname={database}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("DROP ROLE IF EXISTS dml_only")
        connection.execute("CREATE ROLE dml_only LOGIN")
        connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    service_url = f"postgresql+psycopg://dml_only@127.0.0.1:{postgres.port}/{database}"
    with pytest.raises(InputError) as caught:
        AuditLog(service_url, salt="s")
    message = str(caught.value)
    assert "may not create or read the audit tables" in message
    assert "permission denied for schema public" in message
    assert "alembic -c alembic.ini upgrade head" in message
    assert not sa.inspect(sa.create_engine(owner_url)).get_table_names()  # nothing half-made

    # `recommender serve` says it in one line and starts for crisis answers.
    config = load_serve_config()
    config = type(config)(**{**config.__dict__, "audit_url": service_url})
    _check_audit_store(config)
    assert "may not create or read the audit tables" in capsys.readouterr().err

    # Migrated once by the owner, with the tables granted: the service role opens it.
    AuditLog(owner_url, salt="s").close()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO dml_only")
        connection.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO dml_only")
    log = AuditLog(service_url, salt="s")
    assert log.append([RECORD]) == 1
    assert log.writable() and [row["request_id"] for row in log.export()] == ["r-1"]
    assert log.latest_reload() is None and log.announce_reload("3", "scientist") > 0
    log.close()


def test_the_documented_alembic_command_runs_where_the_project_is_not_installed(tmp_path):
    """docs/migrations.md's `alembic -c alembic.ini upgrade head`, as a container of the bento
    runs it: the code is a folder (the bento's src/), not an installed package, and the command
    may be given from another folder. It said "Path doesn't exist: recommender/service/migrations"
    outside the folder of alembic.ini, and "No module named 'recommender'" inside it, and also
    from a folder named with a space (Alembic split prepend_sys_path at spaces unless
    alembic.ini sets path_separator)."""
    import shutil
    import sysconfig
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "my bento" / "src"  # what bentofile.yaml ships of the migrations
    shutil.copytree(
        root / "recommender", src / "recommender", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(root / "alembic.ini", src / "alembic.ini")
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    # -S: no site-packages' .pth files, so the checkout's editable install is not importable;
    # the libraries come from site-packages as a plain folder, as in the bento's environment.
    code = (
        f"import sys; sys.path.append({sysconfig.get_paths()['purelib']!r}); "
        "from alembic.config import main; "
        f"main(['-c', {str(src / 'alembic.ini')!r}, '-x', 'url={url}', 'upgrade', 'head'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert schema_revision(sa.create_engine(url)) == _head()
