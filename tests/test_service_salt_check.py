"""One audit store, one salt (red-team finding redpg: two services on one database with
different salts went undetected, so one person's hashes differed between them).

The store keeps a fingerprint of the salt it was first written with and refuses another
(tests/test_service_migrations.py, on SQLite and PostgreSQL). Here: the service follows its
store-failure path (crisis answers given, the rest 503 with the cause, the store opened once
it is given the salt), `recommender serve` says it at start, and `recommender outcomes import`
is refused by name while `recommender audit export` (no salt) still reads.
"""

from __future__ import annotations

import logging

import bentoml
import pytest

from recommender.cli import main
from recommender.service import AuditLog
from recommender.service._audit import salted_hash
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
        # Its service-log line still carries the person's hash (this service's salt).
        assert salted_hash(SALT, "x-1") in caplog.text
        refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert refused.status_code == 503, refused.text
        assert "written with another audit salt" in refused.json()["error"]
        assert "please retry" not in refused.json()["error"]  # no retry opens that store
        batch = client.post(
            "/recommend_batch",
            json={"profiles": [profile(person_id="a"), {"person_id": "c", "crisis_risk": True}]},
            headers=auth("program"),
        )
        assert batch.status_code == 503, batch.text
        assert "written with another audit salt" in batch.json()["error"]
        assert "please retry" not in batch.json()["error"]
        assert linear_model.calls == []  # nothing scored that could not be recorded
        # Follow-up scores and the auditor's export name the same cause, not "please retry".
        outcome = {"person_id": "a", "measured_at": "2026-01-01", "arm_taken": "coaching"}
        outcome.update(ee_followup=20, dp_followup=5, pa_followup=30)
        posted = client.post("/outcomes", json={"outcomes": [outcome]}, headers=auth("program"))
        assert posted.status_code == 503, posted.text
        assert "written with another audit salt" in posted.json()["error"]
        export = client.get("/audit/export", headers=auth("auditor"))
        assert export.status_code == 503
        assert "written with another audit salt" in export.json()["error"]

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
