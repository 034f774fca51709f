"""One audit store, one salt (red-team finding redpg: two services on one database with
different salts went undetected, so one person's hashes differed between them).

The store keeps a fingerprint of the salt it was first written with; opening it with another
salt is refused, naming the cause and the remedy and neither salt; reading (salt ``None``) is
not checked; a store from before the fingerprint adopts the salt it is next opened with. The
service follows its store-failure path (crisis answers given, the rest 503 with the cause) and
`recommender serve` says it at start. On SQLite and on a throwaway PostgreSQL.
"""

from __future__ import annotations

import logging

import bentoml
import pytest
import sqlalchemy as sa

from recommender.cli import main
from recommender.service import AuditLog, AuditSaltMismatch
from recommender.service._migrate import VERSION_TABLE, schema_revision
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    SALT,
    _app,
    auth,
    linear_model,
    profile,
    service_home,
)

FIRST, OTHER = "first-salt-kept-by-the-store", "other-salt-of-a-second-replica"
RECORD = {
    "request_id": "r-1",
    "model_version": "3",
    "caller_role": "program",
    "person_id": "p-1",
    "safety_level": "routine",
    "recommended": "coaching",
    "ranking_meaningful": True,
    "effects": {"coaching": [-4.0, -6.0, -2.0]},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return request.getfixturevalue("postgres").database("audit")


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
    # A store at revision 0003 with a row, as the release before this check left it.
    old = AuditLog(store_url, salt=None)
    old.close()
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE store_facts"))
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0003'"))
    reader = AuditLog(store_url, salt=None)  # migrated; reading adopts nothing
    reader.close()
    adopted = AuditLog(store_url, salt=FIRST)
    adopted.append([RECORD])
    adopted.close()
    assert schema_revision(engine) == "0004"
    engine.dispose()
    with pytest.raises(AuditSaltMismatch):
        AuditLog(store_url, salt=OTHER)


# -- the service --------------------------------------------------------------------------------
@pytest.fixture
def written_with_another_salt(service_home):
    """The service's default store, written by a service with another salt than its own."""
    AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=OTHER).close()
    return service_home


def test_the_service_on_a_store_of_another_salt_gives_crisis_answers_only(
    written_with_another_salt, linear_model, monkeypatch, caplog
):
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    caplog.set_level(logging.INFO, logger="recommender.service")
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "7"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code != 200
        crisis = client.post(
            "/recommend", json={"person_id": "x-1", "crisis_risk": True}, headers=auth("program")
        )
        assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
        assert crisis.json()["safety"]["recorded_in"].startswith("service log (fallback")
        refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert refused.status_code == 503, refused.text
        assert "written with another audit salt" in refused.json()["error"]
        batch = client.post(
            "/recommend_batch",
            json={"profiles": [profile(person_id="a"), {"person_id": "c", "crisis_risk": True}]},
            headers=auth("program"),
        )
        assert batch.status_code == 503, batch.text
        assert "written with another audit salt" in batch.json()["error"]
        assert linear_model.calls == []  # nothing scored that could not be recorded

        # Given the store's salt, the next try of the watcher opens it, without a restart.
        monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", OTHER)
        bentoml.get_current_service()._follow_once()
        assert client.get("/readyz").status_code == 200
        assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    said = caplog.text
    assert "written with another audit salt" in said
    assert SALT not in said and OTHER not in said


def test_recommender_serve_says_at_start_that_the_store_has_another_salt(
    written_with_another_salt, capsys
):
    from recommender.cli import cmd_serve
    from recommender.service import load_serve_config

    cmd_serve._check_audit_store(load_serve_config())
    err = capsys.readouterr().err
    assert err.startswith("warning: the audit store") and "another audit salt" in err
    assert "crisis answers only" in err and SALT not in err and OTHER not in err


def test_importing_outcomes_with_another_salt_is_refused_by_name(
    written_with_another_salt, tmp_path, capsys
):
    path = tmp_path / "followup.csv"
    path.write_text(
        "person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n"
        "p-1,2026-12-01,coaching,20,7,38\n"
    )
    assert main(["outcomes", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "another audit salt" in err and SALT not in err
    assert main(["audit", "export"]) == 0  # reading needs no salt, and is not refused
