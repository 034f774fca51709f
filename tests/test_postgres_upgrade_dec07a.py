"""Upgrading a PostgreSQL audit store made by an older release (a throwaway cluster: the shared
`postgres` fixture, tests/pg_cluster.py).

A store at revision 0005 holding rows in every table, upgraded by hand with docs/migrations.md's
command, keeps every row, ends at the newest revision with the schema the code queries, and the
service then answers and audits on it. A store at the first revision is upgraded by the service
opening it; one made before migrations by the documented stamp-then-upgrade. A migration that
fails part-way (a table another session holds, past the lock wait; a table that exists already;
a role that does not own the tables) leaves the store at the revision it had, unchanged, and
says which revision failed and what to do, on the command line and in the service (which no
longer waits for the lock for good). docs/migrations.md gives the code's lock wait.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import main as alembic_main

from recommender.errors import InputError
from recommender.service import AuditLog
from recommender.service._audit_tables import _metadata
from recommender.service._migrate import (
    LOCK_WAIT_SECONDS,
    VERSION_TABLE,
    _config,
    head_revision,
    schema_revision,
)
from recommender.service._audit import salted_hash
from recommender.service._store_salt import salt_fingerprint
from service_fixtures import SALT, LinearModel, _app, auth, profile
from service_fixtures import service_home  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]
ALEMBIC_INI = str(ROOT / "alembic.ini")
OLD = "0005"


def _store_at(postgres, revision: str) -> str:
    """A new database migrated to ``revision`` only, as an older release left it."""
    url = postgres.database("audit")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)
    return url


def _fill_at_0005(url: str) -> None:
    """One or two rows in each table a store at revision 0005 has, as the service wrote them."""
    person = salted_hash(SALT, "p-old")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        run = lambda sql, **values: connection.execute(sa.text(sql), values)  # noqa: E731
        run(
            "INSERT INTO recommendations (logged_at, request_id, model_version, caller_role, "
            "person_hash, safety_level, recommended, ranking_meaningful, effects, dp_effect, "
            "dp_lower, dp_upper, pa_effect, pa_lower, pa_upper) VALUES "
            "('2026-11-30 09:00:00+00', 'old-ranked', '1', 'program', :p, 'routine', "
            "'coaching', TRUE, '{\"coaching\": [-2.0, -3.5, -0.5]}', -1.0, -1.5, -0.5, 0.25, "
            "0.0, 0.5), ('2026-11-30 09:05:00+00', 'old-crisis', '1', 'program', :p, 'crisis', "
            "NULL, NULL, '{}', NULL, NULL, NULL, NULL, NULL, NULL)",
            p=person,
        )
        run(
            "INSERT INTO assignments (logged_at, request_id, person_hash, model_version, "
            "safety_level, cycle, policy, arm, probability, probabilities, profile) VALUES "
            "('2026-11-30 09:00:00+00', 'old-ranked', :p, '1', 'routine', 0, 'greedy', "
            "'coaching', 1.0, '{\"coaching\": 1.0}', '{}')",
            p=person,
        )
        run(
            "INSERT INTO outcomes (recorded_at, request_id, person_hash, measured_at, arm_taken, "
            "ee_followup, dp_followup, pa_followup, source) VALUES ('2026-12-01 09:00:00+00', "
            "'old-ranked', :p, '2026-12-01 08:00:00+00', 'coaching', 20, 7, 38, 'api')",
            p=person,
        )
        run(
            "INSERT INTO service_reloads (requested_at, model_version, caller_role) VALUES "
            "('2026-11-30 08:00:00+00', '1', 'scientist')"
        )
        run(
            "INSERT INTO store_facts (name, value) VALUES ('salt_fingerprint', :f)",
            f=salt_fingerprint(SALT.encode("utf-8")),
        )


def _snapshot(url: str) -> dict:
    """Every table's columns, indexes, unique constraints and rows, and the revision."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    inspector = sa.inspect(engine)
    shape, rows = {}, {}
    with engine.connect() as connection:
        for table in sorted(inspector.get_table_names()):
            shape[table] = (
                [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                sorted(str(sorted(i.items())) for i in inspector.get_indexes(table)),
                sorted(str(sorted(u.items())) for u in inspector.get_unique_constraints(table)),
            )
            rows[table] = _rows(connection, table)
    return {"revision": schema_revision(engine), "shape": shape, "rows": rows}


def _rows(connection, table: str) -> list[dict]:
    found = connection.execute(sa.text(f'SELECT * FROM "{table}"')).mappings()
    return sorted((dict(row) for row in found), key=repr)


def _alembic(*args: str) -> None:
    """docs/migrations.md's command, `alembic -c alembic.ini ...` (the URL from the
    environment), through the same entry point as the installed script."""
    alembic_main(["-c", ALEMBIC_INI, *args])


@pytest.fixture
def old_store(postgres, monkeypatch) -> tuple[str, dict]:
    """A store at revision 0005 with rows in every table, named by RECOMMENDER_AUDIT_URL (as
    the documented command and the service read it), and its snapshot."""
    url = _store_at(postgres, OLD)
    _fill_at_0005(url)
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", url)
    return url, _snapshot(url)


@contextlib.contextmanager
def _service(monkeypatch):
    """The service's own app in process (as tests/service_fixtures.py's asgi_client) over the
    stand-in model, started now, on the store RECOMMENDER_AUDIT_URL names (the test asks for
    the service_home fixture: keys and salt)."""
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    monkeypatch.setattr(service_module, "load_champion_model", lambda: (LinearModel(), "7"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield client


def _answers_and_audits(client, url: str) -> None:
    before = _snapshot(url)["rows"]
    answer = client.post("/recommend", json=profile(person_id="p-new"), headers=auth("program"))
    assert answer.status_code == 200, answer.text
    after = _snapshot(url)["rows"]
    assert len(after["recommendations"]) == len(before["recommendations"]) + 1
    assert len(after["assignments"]) == len(before["assignments"]) + 1
    export = client.get("/audit/export", headers=auth("auditor"))
    assert export.status_code == 200
    for row in after["recommendations"]:
        assert row["request_id"] in export.text


def test_a_store_at_0005_upgraded_by_hand_keeps_every_row_and_is_served(
    old_store,
    service_home,  # noqa: F811
    monkeypatch,
):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    url, before = old_store
    assert before["revision"] == OLD and all(before["rows"][t] for t in before["rows"])
    _alembic("upgrade", "head")

    after = _snapshot(url)
    assert after["revision"] == head_revision()
    for table, rows in before["rows"].items():
        if table == VERSION_TABLE:
            continue
        kept = [{k: row[k] for k in rows[0]} for row in after["rows"][table]]
        assert kept == rows, table  # every row, every value, as it was
    # The columns added since are empty for old rows (erasures: none were made at 0005).
    assert [row["corrects"] for row in after["rows"]["outcomes"]] == [None]
    assert after["rows"]["erasures"] == []
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, _metadata)
    # The schema the code queries, types included; the version table is Alembic's own.
    assert [d for d in differences if d[0] != "remove_table" or d[1].name != VERSION_TABLE] == []

    with _service(monkeypatch) as client:
        _answers_and_audits(client, url)


def test_a_store_at_the_first_revision_is_upgraded_by_the_service_opening_it(
    postgres,
    service_home,  # noqa: F811
    monkeypatch,
):
    url = _store_at(postgres, "0001")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO recommendations (logged_at, request_id, model_version, caller_role, "
                "person_hash, safety_level, recommended, ranking_meaningful, effects) VALUES "
                "('2026-11-20 10:00:00+00', 'oldest-1', '1', 'program', :p, 'routine', "
                "'mindfulness', TRUE, '{\"mindfulness\": [-2.0, -3.5, -0.5]}')"
            ),
            {"p": salted_hash(SALT, "p-oldest")},
        )
    (old,) = _snapshot(url)["rows"]["recommendations"]

    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", url)
    with _service(monkeypatch) as client:
        assert schema_revision(engine) == head_revision()
        _answers_and_audits(client, url)
    first = _snapshot(url)["rows"]["recommendations"][0]
    assert {k: first[k] for k in old} == old


def test_a_store_made_before_migrations_is_stamped_then_upgraded_as_the_docs_say(
    postgres, monkeypatch
):
    url = _store_at(postgres, "0001")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:  # what create_all made: the table, no version table
        connection.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
        connection.execute(
            sa.text(
                "INSERT INTO recommendations (logged_at, request_id, model_version, caller_role, "
                "person_hash, safety_level, effects) VALUES ('2026-11-20 10:00:00+00', 'pre-1', "
                "'1', 'program', 'abc', 'crisis', '{}')"
            )
        )
    before = _snapshot(url)
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", url)

    # Upgraded at once, the command cannot tell it from a new store: it stops, saying what to do.
    with pytest.raises(SystemExit) as stopped:
        _alembic("upgrade", "head")
    said = str(stopped.value)
    assert "revision 0001's upgrade failed" in said and "already exists" in said
    assert "stamp it at the first revision (`alembic -c alembic.ini stamp 0001`)" in said
    assert "nothing was changed, the store is still without a revision, as before" in said
    assert _snapshot(url) == before

    _alembic("stamp", "0001")
    _alembic("upgrade", "head")
    assert schema_revision(engine) == head_revision()
    (row,) = _snapshot(url)["rows"]["recommendations"]
    assert {k: row[k] for k in before["rows"]["recommendations"][0]} == (
        before["rows"]["recommendations"][0]
    )


@contextlib.contextmanager
def _held(url: str, table: str):
    """Another session's open transaction that has read ``table`` (an export, a psql session,
    a service of the older release): it holds a lock every ALTER of the table waits for."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection, connection.begin():
        connection.execute(sa.text(f"SELECT count(*) FROM {table}"))
        yield


def test_an_upgrade_past_the_lock_wait_leaves_the_store_as_it_was_and_says_what_to_do(
    old_store,
    service_home,  # noqa: F811
    monkeypatch,
):
    url, before = old_store
    # Revision 0006 indexes recommendations; 0007 alters outcomes, which is held.
    with _held(url, "outcomes"):
        # By hand, with the operator's own wait (PGOPTIONS), which the migration keeps.
        monkeypatch.setattr("recommender.service._migrate.LOCK_WAIT_SECONDS", 600)
        monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=300ms")
        started = time.monotonic()
        with pytest.raises(SystemExit) as stopped:
            _alembic("upgrade", "head")
        assert time.monotonic() - started < 20
        said = str(stopped.value)
        assert said.startswith("error: the audit store postgresql+psycopg://")
        assert "revision 0007's upgrade failed (SQLSTATE 55P03: canceling statement due to " in said
        assert "lock timeout; in: ALTER TABLE outcomes" in said
        assert "nothing was changed, the store is still at revision 0005" in said
        assert "another session holds a lock on a table this revision changes" in said
        assert "alembic -c alembic.ini upgrade head" in said
        assert _snapshot(url) == before  # 0006's index rolled back with the rest

        # The service opening it waits LOCK_WAIT_SECONDS at most, then says the same and gives
        # crisis answers only; it used to wait for the lock for good (crisis answers included).
        monkeypatch.delenv("PGOPTIONS")
        monkeypatch.setattr("recommender.service._migrate.LOCK_WAIT_SECONDS", 1)
        started = time.monotonic()
        with pytest.raises(InputError) as refused:
            AuditLog(url, salt=SALT)
        assert time.monotonic() - started < 20
        assert "revision 0007's upgrade failed" in str(refused.value)
        assert "the store is still at revision 0005" in str(refused.value)
        with _service(monkeypatch) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["reason"] == "audit_store_unavailable"
            crisis = client.post(
                "/recommend",
                json=profile(person_id="p-c", crisis_risk=True),
                headers=auth("program"),
            )
            assert crisis.status_code == 200, crisis.text
        assert _snapshot(url) == before

    # The lock released, the next opening migrates.
    AuditLog(url, salt=SALT).close()
    assert schema_revision(sa.create_engine(url, poolclass=sa.pool.NullPool)) == head_revision()


def test_an_upgrade_meeting_a_table_that_exists_already_leaves_the_store_as_it_was(old_store):
    url, _ = old_store
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:  # made by hand, by another tool
        connection.execute(sa.text("CREATE TABLE erasures (id integer, note text)"))
    before = _snapshot(url)

    with pytest.raises(SystemExit) as stopped:
        _alembic("upgrade", "head")
    said = str(stopped.value)
    assert (
        'revision 0008\'s upgrade failed (SQLSTATE 42P07: relation "erasures" already exists'
        in (said)
    )
    assert "the store is still at revision 0005" in said
    assert "an object this revision creates already exists" in said
    assert _snapshot(url) == before  # 0006 and 0007 rolled back with it

    with pytest.raises(InputError) as refused:
        AuditLog(url, salt=SALT)
    assert "revision 0008's upgrade failed" in str(refused.value)
    assert _snapshot(url) == before


def test_an_upgrade_by_a_role_that_does_not_own_the_tables_says_to_use_the_owners_url(
    postgres, old_store, monkeypatch
):
    import psycopg

    url, before = old_store
    database = sa.engine.make_url(url).database
    admin = f"host=127.0.0.1 port={postgres.port} user=recommender dbname={database}"
    with psycopg.connect(admin, autocommit=True) as connection:  # all but owning the tables
        connection.execute("CREATE ROLE not_owner LOGIN")
        connection.execute("GRANT ALL ON SCHEMA public TO not_owner")
        connection.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO not_owner")
    other = f"postgresql+psycopg://not_owner@127.0.0.1:{postgres.port}/{database}"
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", other)

    with pytest.raises(SystemExit) as stopped:
        _alembic("upgrade", "head")
    said = str(stopped.value)
    assert "revision 0006's upgrade failed (SQLSTATE 42501: must be owner of table" in said
    assert "run it with the tables' owner's URL" in said
    assert _snapshot(url) == before


def test_the_migrations_doc_gives_the_lock_wait_the_code_sets():
    doc = " ".join((ROOT / "docs" / "migrations.md").read_text(encoding="utf-8").split())
    assert doc.count(f"waits {LOCK_WAIT_SECONDS} seconds at most") == 2
