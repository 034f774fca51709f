"""An audit store that is down: at start (a container started before its database) the service
gives crisis answers only until the store can be opened, then everything, without a restart;
mid-run (PostgreSQL stopped) /readyz says not ready while /livez and crisis answers go on; crisis
answers given without a store carry the person's salted hash, so they can be linked later.

The watcher's turn (``_follow_once``, run every ``reload_poll_seconds``) is called directly, and
the store check's age is set to nothing: no test waits on a clock.
"""

import hashlib
import hmac
import json
import logging
import time
import uuid

import bentoml
import pytest

from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    SALT,
    _app,
    auth,
    linear_model,
    profile,
    service_home,
)

CRISIS_ONLY = {"person_id": "x-77", "crisis_risk": True}


@pytest.fixture
def serve(service_home, linear_model, monkeypatch):
    """``serve(audit_url)``: the service's app in process on that store, over the stand-in
    model (a context manager giving the client)."""
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "7"))

    def start(url: str) -> TestClient:
        monkeypatch.setenv("RECOMMENDER_AUDIT_URL", url)
        return TestClient(_app(service_module), raise_server_exceptions=False)

    return start


def _salted(person_id: str) -> str:
    return hmac.new(SALT.encode(), person_id.encode(), hashlib.sha256).hexdigest()


def _fallback_lines(caplog) -> list[dict]:
    return [
        json.loads(r.getMessage().split(": ", 1)[1])
        for r in caplog.records
        if "not in the audit log" in r.getMessage()
    ]


def _exported(client) -> list[str]:
    export = client.get("/audit/export", headers=auth("auditor"))
    assert export.status_code == 200, export.text
    return export.text.strip().splitlines()[1:]


# -- a store that cannot be opened at start ---------------------------------------------------
def test_a_store_that_could_not_be_opened_at_start_is_opened_once_it_can_be(
    serve, service_home, linear_model, caplog
):
    caplog.set_level(logging.INFO, logger="recommender.service")
    blocker = service_home / "not-yet"  # a file where the store's folder must be
    blocker.write_text("")
    with serve(f"sqlite:///{blocker}/audit.db") as client:
        assert client.get("/readyz").status_code != 200
        assert client.get("/livez").status_code == 200
        refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert refused.status_code == 503, refused.text
        service = bentoml.get_current_service()
        service._follow_once()  # the watcher's turn: still not openable
        assert client.get("/readyz").status_code != 200

        blocker.unlink()  # the store can be opened now
        service._follow_once()
        assert client.get("/readyz").status_code == 200
        answer = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert answer.status_code == 200, answer.text
        crisis = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
        assert crisis.status_code == 200
        assert crisis.json()["safety"]["recorded_in"] == "audit log"
        batch = client.post(
            "/recommend_batch", json={"profiles": [profile(person_id="b")]}, headers=auth("program")
        )
        assert batch.status_code == 200, batch.text
        assert len(_exported(client)) == 3  # every answer given since, none before
    assert len(linear_model.calls) == 2  # nothing was scored while no store was open
    said = [r.getMessage() for r in caplog.records]
    # One line per change, not one per try: could not be opened (at start), open now.
    assert sum(line.startswith("the audit store could not be opened") for line in said) == 1
    assert sum("is open now" in line for line in said) == 1
    assert "Traceback" not in caplog.text


def test_a_reload_while_the_store_opens_serves_with_the_store(serve, service_home):
    blocker = service_home / "not-yet"
    blocker.write_text("")
    with serve(f"sqlite:///{blocker}/audit.db") as client:
        service = bentoml.get_current_service()
        blocker.unlink()
        service._follow_once()
        assert client.post("/reload", headers=auth("scientist")).status_code == 200
        assert service.engine.audit is service.audit is not None
        assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200


def test_a_postgres_database_created_after_the_start_is_opened_then(serve, postgres):
    import psycopg

    from recommender.service import AuditLog

    name = f"later_{uuid.uuid4().hex[:10]}"
    url = postgres.url(name)
    with serve(url) as client:
        crisis = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
        assert crisis.status_code == 200
        assert crisis.json()["safety"]["recorded_in"].startswith("service log (fallback")
        assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 503
        with psycopg.connect(
            f"host=127.0.0.1 port={postgres.port} user=recommender dbname=postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        bentoml.get_current_service()._follow_once()
        assert client.get("/readyz").status_code == 200
        assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    audit = AuditLog(url, salt=None)
    try:
        assert (
            audit.count() == 1
        )  # the answer given once it was open; the crisis one went to the log
    finally:
        audit.close()


# -- crisis answers without a store carry the salted hash --------------------------------------
def test_crisis_answers_given_without_a_store_carry_the_salted_hash(serve, service_home, caplog):
    blocker = service_home / "not-yet"
    blocker.write_text("")
    with serve(f"sqlite:///{blocker}/audit.db") as client:
        crisis = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
        assert crisis.status_code == 200
        batch = client.post(
            "/recommend_batch",
            json={"profiles": [profile(person_id="a"), {"person_id": "b-1", "crisis_risk": True}]},
            headers=auth("program"),
        )
        assert batch.status_code == 503 and batch.json()["crisis_results"]
        first, second = _fallback_lines(caplog)
        assert first["person_hash"] == _salted("x-77")
        assert second["person_hash"] == _salted("b-1")
        assert "x-77" not in caplog.text and "b-1" not in caplog.text  # never the raw id

        # Linked later: the store, once open, hashes the person the same way.
        blocker.unlink()
        bentoml.get_current_service()._follow_once()
        assert client.post("/recommend", json=CRISIS_ONLY, headers=auth("program")).status_code == (
            200
        )
        (row,) = _exported(client)
        assert first["person_hash"] in row


# -- PostgreSQL stopped mid-run ------------------------------------------------------------------
def test_readyz_says_not_ready_while_postgres_is_down_and_ready_once_it_is_back(
    serve, postgres, monkeypatch, linear_model
):
    from recommender.service import _store_check

    # Every probe checks the store, and waits for the check (the postgres fixture's
    # CHECK_WAIT): no clock decides the answer.
    monkeypatch.setattr(_store_check, "CHECK_EVERY", 0.0)
    with serve(postgres.database("audit")) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
        postgres.halt()
        try:
            # A load balancer sends ordinary requests elsewhere; this replica is alive and
            # still gives crisis answers.
            assert client.get("/readyz").status_code != 200
            assert client.get("/livez").status_code == 200
            crisis = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
            assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
            assert crisis.json()["safety"]["recorded_in"].startswith("service log (fallback")
            refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
            assert refused.status_code == 503
            assert client.get("/readyz").status_code != 200
        finally:
            postgres.start()
        assert client.get("/readyz").status_code == 200
        assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
        assert len(_exported(client)) == 2  # the two answers given while it was up


def test_readyz_says_not_ready_while_postgres_takes_no_writes(serve, postgres, monkeypatch):
    # A standby after a failover, or a database set read-only, answers SELECT 1 but refuses
    # every record: /readyz said ready while every ordinary answer was a 503.
    import psycopg

    from recommender.service import _store_check

    monkeypatch.setattr(_store_check, "CHECK_EVERY", 0.0)

    def read_only(on: bool) -> None:
        with psycopg.connect(
            f"host=127.0.0.1 port={postgres.port} user=recommender dbname=postgres",
            autocommit=True,
        ) as connection:
            value = "on" if on else "off"
            connection.execute(f"ALTER SYSTEM SET default_transaction_read_only = {value}")
            connection.execute("SELECT pg_reload_conf()")

    def soon(status, call) -> int:
        # pg_reload_conf() only signals the server's processes: the service's pooled connection
        # takes the setting at a command after its signal arrives, so wait for it (bounded).
        deadline = time.monotonic() + 30
        while (got := call().status_code) != status and time.monotonic() < deadline:
            time.sleep(0.05)
        return got

    def recommend():
        return client.post("/recommend", json=PROFILE, headers=auth("program"))

    with serve(postgres.database("audit")) as client:
        assert client.get("/readyz").status_code == 200
        read_only(True)
        try:
            assert soon(503, recommend) == 503
            assert client.get("/readyz").status_code != 200
            assert client.get("/livez").status_code == 200
            crisis = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
            assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]
        finally:
            read_only(False)
        assert soon(200, lambda: client.get("/readyz")) == 200
        assert recommend().status_code == 200
