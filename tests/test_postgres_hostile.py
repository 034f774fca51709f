"""The PostgreSQL deployment path attacked: migrations run down and up again, a downgrade that
would lose corrections, a SQLite migration failing half-way, passwords in every message, a
`serve --check` against a store it cannot use, and a real two-worker `recommender serve` whose
database is stopped under it and started again; the learning loop's commands with a role that
may only read and append.

One cluster (the suite's, tests/pg_cluster.py, trust authentication: a password in a URL is
accepted and ignored, so it can be looked for in every message) and one server for the module.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError

from recommender.service import AuditLog, logged_cohort, outcome_history, record_outcomes
from recommender.service._migrate import _config, head_revision, schema_revision, upgrade_schema
from recommender.service._store_errors import shown_store
from service_fixtures import KEYS, SALT, profile, running_server
from service_fixtures import champion_home, service_home  # noqa: F401 - fixtures
from test_loop_outcomes import ARMS, _served
from test_service_cli import serve_on_a_free_port

PASSWORD = "Never-Shown-4f9c2e"
# Indexes revision 0007 makes; a downgrade refused must leave them where they were.
CORRECTION_INDEXES = {"uq_outcomes_first_per_request", "uq_outcomes_corrects"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return request.getfixturevalue("postgres").database("audit")


def _with_password(url: str) -> str:
    return url.replace("recommender@", f"recommender:{PASSWORD}@")


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            (command.downgrade if down else command.upgrade)(_config(connection), revision)
    finally:
        engine.dispose()


def _schema(url: str) -> tuple:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        tables = sorted(inspector.get_table_names())
        indexes = {
            index["name"]
            for table in tables
            for index in inspector.get_indexes(table)
            if index["name"]
        }
        return schema_revision(engine), tables, indexes
    finally:
        engine.dispose()


# -- migrations ---------------------------------------------------------------------------------
def test_every_revision_goes_down_to_base_and_up_again(store_url):
    _migrate(store_url, "head")
    at_head = _schema(store_url)
    _migrate(store_url, "base", down=True)
    revision, tables, _ = _schema(store_url)
    assert revision is None and tables == ["recommender_schema_version"]
    _migrate(store_url, "head")
    assert _schema(store_url) == at_head
    log = AuditLog(store_url, salt=SALT)  # and the service writes to it
    _served(log, n=1)
    assert log.count() == 1
    log.close()


@pytest.fixture
def corrected_store(store_url):
    """A store at head holding two outcomes, one of them corrected."""
    log = AuditLog(store_url, salt=SALT)
    _served(log, n=2)
    measured = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=30)

    def outcome(i, ee):
        scores = {"ee_followup": ee, "dp_followup": 7, "pa_followup": 38}
        return {"person_id": f"p-{i}", "measured_at": measured.isoformat(), **scores}

    def record(rows, **options):
        now = measured + timedelta(seconds=5)
        rows = [{**row, "arm_taken": "coaching"} for row in rows]
        record_outcomes(log, rows, arms=ARMS, source="api", now=now, **options)

    record([outcome(0, 20), outcome(1, 20)])
    record([outcome(0, 25)], correct=True)
    assert len(outcome_history(log)) == 3
    log.close()
    return store_url


def test_downgrading_0007_with_a_correction_stored_is_refused_and_changes_nothing(
    corrected_store,
):
    # It failed half-way on a unique constraint: PostgreSQL rolled back with an IntegrityError
    # that said neither why nor what to do; SQLite had already dropped the two indexes (its
    # DDL committed one statement at a time) and left Alembic's copy of the table behind.
    before = _schema(corrected_store)
    with pytest.raises(CommandError) as refused:
        _migrate(corrected_store, "0006", down=True)
    message = str(refused.value)
    assert "1 correction(s)" in message and "nothing was changed" in message
    assert "recommender audit export --table outcomes" in message
    assert _schema(corrected_store) == before
    assert CORRECTION_INDEXES <= before[2]
    assert "_alembic_tmp_outcomes" not in before[1]
    log = AuditLog(corrected_store, salt=None)
    assert [row["ee_followup"] for row in outcome_history(log)] == [20, 20, 25]
    log.close()


def test_a_sqlite_migration_failing_half_way_leaves_the_store_as_it_was(tmp_path):
    # Revision 0006 creates an index, then 0007 fails on its first statement (a table left in
    # the way). The index used to be committed under revision 0005, and every later opening of
    # the store failed on "index already exists".
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _migrate(url, "0005")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE _alembic_tmp_outcomes (id INTEGER)")
    with pytest.raises(sa.exc.OperationalError, match="_alembic_tmp_outcomes"):
        upgrade_schema(engine)
    revision, _, indexes = _schema(url)
    assert revision == "0005"
    assert "ix_recommendations_unlinkable_person" not in indexes
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE _alembic_tmp_outcomes")
    assert upgrade_schema(engine) == head_revision()
    engine.dispose()


# -- passwords and serve --check ----------------------------------------------------------------
def test_a_password_given_as_a_query_parameter_is_hidden_too():
    url = "postgresql+psycopg://svc@db/audit?password=" + PASSWORD + "&sslpassword=" + PASSWORD
    assert PASSWORD not in shown_store(url)
    assert shown_store(url).startswith("postgresql+psycopg://svc@db/audit?password=***")


def test_opening_a_store_that_is_not_there_names_the_database_never_the_password(postgres):
    from recommender.service._store_errors import AuditStoreUnreachable

    missing = _with_password(postgres.url("no_such_database"))
    for url in (missing, missing.replace(f":{PASSWORD}@", "@") + f"?password={PASSWORD}"):
        with pytest.raises(AuditStoreUnreachable) as refused:
            AuditLog(url, salt=SALT)
        message = str(refused.value)
        assert 'database "no_such_database" does not exist' in message
        assert PASSWORD not in message and "database server must be reachable" in message
        assert "SQLite" not in message  # the remedy is the server's, not a file's


def test_a_server_that_takes_the_connection_and_never_answers_is_given_up_on(monkeypatch):
    # A hung server, or a port forwarded to nothing that answers: the connection was waited for
    # without end, so `recommender serve` never started (no crisis answers either) and a
    # worker's every reconnection would have hung the same way.
    import socket
    import threading

    from recommender.service import reach_audit_store
    from recommender.service import _store_check
    from recommender.service._store_errors import AuditStoreUnreachable

    monkeypatch.setattr(_store_check, "CONNECT_SECONDS", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes each handshake; nothing is ever said
    url = f"postgresql+psycopg://svc:{PASSWORD}@127.0.0.1:{silent.getsockname()[1]}/audit"
    said = {}

    def open_with(name, opening):
        try:
            opening()
        except AuditStoreUnreachable as refused:
            said[name] = str(refused)

    # Both at once: psycopg, as libpq, waits at least 2 s for a connection (a connect_timeout of 1
    # counts as 2), and one after the other they waited 4 s.
    openers = [
        threading.Thread(target=open_with, args=item, daemon=True)
        for item in (
            ("open", lambda: AuditLog(url, salt=SALT)),
            ("check", lambda: reach_audit_store(url)),
        )
    ]
    for opener in openers:
        opener.start()
    deadline = time.monotonic() + 120  # a guard against hanging the suite, not a measured claim
    for opener in openers:
        opener.join(timeout=max(0.0, deadline - time.monotonic()))
    silent.close()
    assert not any(o.is_alive() for o in openers), "opening a silent server still waits without end"
    assert set(said) == {"open", "check"}
    for message in said.values():
        assert "timeout expired" in message and PASSWORD not in message


def _check(capsys, url, monkeypatch) -> tuple[int, str]:
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", url)
    _, code = serve_on_a_free_port(capsys, "--check")
    said = capsys.readouterr()
    return code, said.out + said.err


def test_serve_check_reaches_a_server_store_and_changes_nothing(
    postgres,
    capsys,
    monkeypatch,
    service_home,  # noqa: F811
):
    # `--check` said "ready to serve" with a wrong password, host or database.
    code, said = _check(capsys, _with_password(postgres.url("no_such_database")), monkeypatch)
    assert code == 1
    assert 'database "no_such_database" does not exist' in said and PASSWORD not in said
    assert "crisis answers only" in said

    empty = postgres.database("check")
    code, said = _check(capsys, _with_password(empty), monkeypatch)
    assert code == 0 and "not migrated yet" in said and PASSWORD not in said
    assert schema_revision(sa.create_engine(empty)) is None  # a check migrates nothing

    _migrate(empty, "head")
    code, said = _check(capsys, empty, monkeypatch)
    assert code == 0 and f"schema revision {head_revision()}, this release's" in said


def test_serve_check_says_a_role_that_may_not_migrate_needs_the_owner(
    postgres,
    capsys,
    monkeypatch,
    service_home,  # noqa: F811
):
    import psycopg

    url = postgres.database("nocreate")
    database = sa.engine.make_url(url).database
    with psycopg.connect(
        f"host=127.0.0.1 port={postgres.port} user=recommender dbname={database}",
        autocommit=True,
    ) as connection:
        connection.execute("CREATE ROLE hostile_reader LOGIN")
        connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    reader = url.replace("recommender@", "hostile_reader@")
    code, said = _check(capsys, reader, monkeypatch)
    assert code == 1
    assert "may not create" in said and "alembic -c alembic.ini upgrade head" in said
    assert "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO hostile_reader" in said

    # Migrated by the owner, the role given SELECT alone: every answer would be refused.
    _migrate(url, "head")
    with psycopg.connect(
        f"host=127.0.0.1 port={postgres.port} user=recommender dbname={database}",
        autocommit=True,
    ) as connection:
        connection.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO hostile_reader")
    code, said = _check(capsys, reader, monkeypatch)
    assert code == 1 and "INSERT on recommendations" in said
    assert "GRANT INSERT ON TABLE" in said and "recommendations" in said


# -- a real two-worker service whose database is stopped and started ------------------------------
@pytest.fixture(scope="module")
def two_workers(postgres, champion_home, tmp_path_factory):  # noqa: F811
    """``recommender serve`` with two workers on a PostgreSQL audit store whose URL holds a
    password; yields ``(url, audit_url, log_path)``."""
    folder = tmp_path_factory.mktemp("hostile")
    audit_url = _with_password(postgres.database("hostile"))
    env = {"RECOMMENDER_AUDIT_URL": audit_url, "RECOMMENDER_SERVE_WORKERS": "2"}
    log_path = folder / "serve.log"
    with running_server(champion_home, env=env, log_path=log_path) as url:
        yield url, audit_url, log_path


def _post(url, route, body, role="program"):
    headers = {"Authorization": f"Bearer {KEYS[role]}"}
    return httpx.post(f"{url}/{route}", json=body, headers=headers, timeout=120)


def _until(call, status, seconds=60):
    deadline = time.monotonic() + seconds
    while (answer := call()).status_code != status and time.monotonic() < deadline:
        time.sleep(0.2)
    return answer


@contextlib.contextmanager
def _halted(postgres):
    postgres.halt()
    try:
        yield
    finally:
        postgres.start()


def test_a_database_stopped_under_two_workers_refuses_clearly_and_recovers_by_itself(
    two_workers, postgres
):
    url, audit_url, log_path = two_workers
    crisis = profile(person_id="h-crisis", crisis_risk=True)
    answered = set()  # request ids of the answers given while the store took records

    def recommend(person):
        return _post(url, "recommend", profile(person_id=person))

    first = recommend("h-0")
    assert first.status_code == 200, first.text
    answered.add(first.json()["request_id"])
    measured = datetime.now(timezone.utc) + timedelta(seconds=1)
    outcome = {
        "outcomes": [
            {
                "person_id": "h-0",
                "measured_at": measured.isoformat(),
                "arm_taken": first.json()["recommended"],
                "ee_followup": 20,
                "dp_followup": 7,
                "pa_followup": 38,
            }
        ]
    }
    two = [profile(person_id="h-1"), crisis]
    with _halted(postgres):
        readyz = _until(lambda: httpx.get(f"{url}/readyz", timeout=30), 503)
        assert readyz.json()["reason"] == "audit_store_unreachable"
        assert PASSWORD not in readyz.text and "127.0.0.1" not in readyz.text
        for _ in range(4):  # new connections: either worker may answer
            refused = recommend("h-2")
            assert refused.status_code == 503
            assert "audit log could not be written" in refused.json()["error"]
            given = _post(url, "recommend", crisis)
            assert given.status_code == 200 and given.json()["safety"]["resources"]
        batch = _post(url, "recommend_batch", {"profiles": two})
        plan = _post(url, "allocate", {"budget": 100000, "profiles": two})
        for refused in (batch, plan):
            assert refused.status_code == 503
            (saved,) = refused.json()["crisis_results"]
            assert saved["answer"]["safety"]["resources"]
        assert "no plan was given" in plan.json()["error"]
        late = _post(url, "outcomes", outcome)
        assert late.status_code == 503 and "nothing was recorded" in late.json()["error"]

    # Back without a restart: both workers take records again.
    assert _until(lambda: httpx.get(f"{url}/readyz", timeout=30), 200).status_code == 200
    for i in range(6):
        again = _until(lambda: recommend(f"h-back-{i}"), 200)  # noqa: B023
        assert again.status_code == 200, again.text
        answered.add(again.json()["request_id"])
    recorded = _post(url, "outcomes", outcome)
    assert recorded.status_code == 200 and recorded.json()["recorded"] == 1

    # Every answer given is in the store and nothing refused is: rows == answers.
    export = httpx.get(
        f"{url}/audit/export", headers={"Authorization": f"Bearer {KEYS['auditor']}"}, timeout=60
    )
    stored = [row["request_id"] for row in csv.DictReader(io.StringIO(export.text))]
    assert sorted(stored) == sorted(answered)
    said = Path(log_path).read_text(errors="replace")
    assert "not in the audit log" in said  # the crisis answers given meanwhile, in its log
    assert PASSWORD in audit_url and PASSWORD not in said


# -- the learning loop's commands, with a role that may only read and append -----------------------
def test_the_loops_commands_on_postgres_need_only_select_and_insert(
    postgres,
    capsys,
    monkeypatch,
    service_home,  # noqa: F811
):
    import uuid

    import psycopg

    from recommender.cli import main

    owner_url = postgres.database("loop")
    log = AuditLog(owner_url, salt=SALT)  # migrated by the owner; three people served
    _served(log, n=3)
    log.close()
    role = f"loop_{uuid.uuid4().hex[:8]}"
    database = sa.engine.make_url(owner_url).database
    admin = f"host=127.0.0.1 port={postgres.port} user=recommender dbname={database}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN")
        connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        connection.execute(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}")
        connection.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    monkeypatch.setenv(
        "RECOMMENDER_AUDIT_URL", _with_password(owner_url).replace("recommender:", f"{role}:")
    )

    measured = (datetime.now(timezone.utc) + timedelta(minutes=1)).replace(microsecond=0)
    header = "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"

    def outcomes(name, first_ee):
        path = service_home / name
        lines = [f"p-{i},{measured.isoformat()},coaching,{first_ee + i},7,38\n" for i in range(3)]
        path.write_text(header + "".join(lines))
        return str(path)

    assert main(["outcomes", "import", outcomes("first.csv", 20)]) == 0
    assert "recorded 3 outcome(s)" in capsys.readouterr().out
    assert main(["outcomes", "import", "--correct", outcomes("fixed.csv", 25)]) == 0
    assert "corrected 3 outcome(s)" in capsys.readouterr().out
    exported = service_home / "outcomes.csv"
    assert main(["audit", "export", "--table", "outcomes", "--out", str(exported)]) == 0
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert [row["ee_followup"] for row in rows] == ["20", "21", "22", "25", "26", "27"]
    assert [bool(row["corrects"]) for row in rows] == [False] * 3 + [True] * 3
    # Training reads the log from PostgreSQL: the three people, each with their correction
    # (the stand-in served no one usual care, which training then asks for, after reading).
    reader = AuditLog(os.environ["RECOMMENDER_AUDIT_URL"], salt=SALT)
    cohort = logged_cohort(reader)
    reader.close()
    assert sorted(cohort["ee_followup"]) == [25, 26, 27]
    assert main(["train", "--from-log", "--reason", "postgres loop"]) == 2
    said = capsys.readouterr()
    assert "no logged row was served usual care" in said.err, said.err
    assert PASSWORD not in said.out + said.err
