"""A PostgreSQL role that may read the audit tables but not insert into them is refused when the
store is opened (and found by /readyz when a privilege is revoked later), naming each missing
privilege, its table and the GRANT to run; crisis answers are given all the same.

Found: such a role opened the store, /readyz said ready, and every /recommend answered 503.
The check asks PostgreSQL (has_table_privilege, has_sequence_privilege) and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
import pytest
import sqlalchemy as sa

from recommender.service import AuditLog
from recommender.service._store_check import GRANTS
from recommender.service._store_errors import AuditPrivilegeMissing
from service_fixtures import (  # noqa: F401  (fixtures)
    AUDIT_RECORD,
    PROFILE,
    _app,
    auth,
    linear_model,
    service_home,
)

ROOT = Path(__file__).resolve().parents[1]
ROLE = "reader_svc"
CRISIS_ONLY = {"person_id": "x-9", "crisis_risk": True}


@pytest.fixture
def store(postgres):
    """A store migrated by its owner, and ``(run, url)``: SQL run as the owner, and the URL of a
    role granted SELECT on every table and USAGE on the sequences, but no INSERT."""
    import psycopg

    owner_url = postgres.database("audit")
    AuditLog(owner_url, salt=None).close()  # migrated; the first service's salt is adopted
    database = sa.engine.make_url(owner_url).database

    def run(*statements: str) -> None:
        with psycopg.connect(
            f"host=127.0.0.1 port={postgres.port} user=recommender dbname={database}",
            autocommit=True,
        ) as connection:
            for statement in statements:
                connection.execute(statement)

    run(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
        f"CREATE ROLE {ROLE} LOGIN; END IF; END $$",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {ROLE}",
    )
    url = f"postgresql+psycopg://{ROLE}:pw-not-shown@127.0.0.1:{postgres.port}/{database}"
    return run, url, owner_url


def _rows(owner_url: str) -> dict:
    engine = sa.create_engine(owner_url)
    with engine.connect() as connection:
        counts = {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("recommendations", "assignments", "outcomes", "service_reloads")
        }
    engine.dispose()
    return counts


def test_a_role_that_may_read_but_not_insert_is_refused_naming_what_to_grant(store):
    run, url, owner_url = store
    before = _rows(owner_url)
    with pytest.raises(AuditPrivilegeMissing) as caught:
        AuditLog(url, salt="s")
    message = str(caught.value)
    tables = "assignments, outcomes, recommendations, service_reloads, store_facts"
    for table in tables.split(", "):
        assert f"INSERT on {table}" in message
    assert f"GRANT INSERT ON TABLE {tables} TO {ROLE};" in message
    assert "SELECT on" not in message.split("(missing:")[1].split(")")[0]  # it may read
    assert "pw-not-shown" not in message
    assert caught.value.missing.startswith("INSERT on ")
    assert _rows(owner_url) == before  # the check wrote nothing

    # Reading (an auditor's export) needs SELECT alone: not refused.
    reader = AuditLog(url, salt=None)
    assert reader.export() == []
    reader.close()

    # Granted as the message says: opened, and records are taken.
    run(f"GRANT INSERT ON ALL TABLES IN SCHEMA public TO {ROLE}")
    log = AuditLog(url, salt="s")
    assert log.append([AUDIT_RECORD]) == 1 and log.writable()
    log.close()


def test_a_missing_sequence_privilege_is_named_too(store):
    run, url, _ = store
    run(
        f"GRANT INSERT ON ALL TABLES IN SCHEMA public TO {ROLE}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE}",
    )
    with pytest.raises(AuditPrivilegeMissing) as caught:
        AuditLog(url, salt="s")
    message = str(caught.value)
    assert "USAGE on sequence public.recommendations_id_seq" in message
    sequences = ", ".join(
        f"public.{table}_id_seq"
        for table in ("assignments", "outcomes", "recommendations", "service_reloads")
    )
    assert f"GRANT USAGE ON SEQUENCE {sequences} TO {ROLE};" in message
    assert "INSERT on" not in message


@pytest.fixture
def serve(service_home, linear_model, monkeypatch):
    from starlette.testclient import TestClient

    from recommender.service import _store_check
    from recommender.service import service as service_module
    from recommender.service._serving import Serving

    monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "7"))
    monkeypatch.setattr(Serving, "_follow_reloads", lambda self: None)  # the test is the watcher
    # Every probe checks the store, and waits for the check (the postgres fixture's
    # CHECK_WAIT): no clock decides the answer.
    monkeypatch.setattr(_store_check, "CHECK_EVERY", 0.0)

    def start(url: str) -> TestClient:
        monkeypatch.setenv("RECOMMENDER_AUDIT_URL", url)
        return TestClient(_app(service_module), raise_server_exceptions=False)

    return start


def test_the_service_is_not_ready_says_why_and_still_gives_crisis_answers(store, serve):
    run, url, owner_url = store
    with serve(url) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["reason"] == "audit_privilege_missing"
        assert "INSERT on recommendations" in body["error"]
        text = json.dumps(body)
        assert "pw-not-shown" not in text and ROLE not in text and "127.0.0.1" not in text

        crisis = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
        assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
        assert crisis.json()["safety"]["recorded_in"].startswith("service log (fallback")
        refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert refused.status_code == 503
        # Retrying alone will not help: the caller is told what the operator must grant.
        assert (
            "GRANT INSERT ON TABLE assignments, outcomes, recommendations"
            in (refused.json()["error"])
        )

        run(f"GRANT INSERT ON ALL TABLES IN SCHEMA public TO {ROLE}")
        bentoml.get_current_service()._follow_once()  # the watcher's turn: opened now
        assert client.get("/readyz").status_code == 200
        assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200

        # Revoked while serving: the next probe finds it, and ready again once granted.
        run(f"REVOKE INSERT ON recommendations FROM {ROLE}")
        revoked = client.get("/readyz")
        assert revoked.status_code == 503, revoked.text
        assert revoked.json()["reason"] == "audit_privilege_missing"
        assert "INSERT on recommendations" in revoked.json()["error"]
        crisis = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
        assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
        run(f"GRANT INSERT ON recommendations TO {ROLE}")
        assert client.get("/readyz").status_code == 200
    # The one answer given while the role could insert; the crisis answers went to the log.
    assert _rows(owner_url)["recommendations"] == 1


def test_recommender_serve_says_it_in_one_line_at_start(store, capsys):
    from recommender.cli.cmd_serve import _check_audit_store
    from recommender.service import load_serve_config

    _, url, _ = store
    config = load_serve_config()
    config = type(config)(
        **{**config.__dict__, "audit_url": url, "audit_salt": "a-salt-of-16-or-more"}
    )
    _check_audit_store(config)
    said = capsys.readouterr().err
    assert "INSERT on recommendations" in said and "GRANT INSERT ON TABLE" in said
    assert "crisis answers only" in said and "pw-not-shown" not in said


def test_the_grants_the_code_names_are_the_ones_docs_migrations_shows():
    text = (ROOT / "docs" / "migrations.md").read_text()
    for grant in GRANTS:
        assert grant.format(role="recommender_svc") in text
