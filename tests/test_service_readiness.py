"""``/readyz`` names why the service is not ready: a code per cause and what to do, no secret.

Found: behind a load balancer or in Kubernetes, a replica that was not ready answered BentoML's
"Service is not ready because .__is_ready__() returns False." whatever the cause (no champion,
a model that failed to load, an audit store down, read-only or closed to its role, a salt
missing), so the operator had to go through the service log to learn what to fix.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import bentoml
import jsonschema_rs
import pytest

from recommender.errors import InputError
from recommender.service import AuditLog
from recommender.service._readiness import ADVICE, Reason
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    SALT,
    LinearModel,
    _app,
    asgi_client,
    auth,
    linear_model,
    service_home,
)

ROOT = Path(__file__).resolve().parents[1]
CRISIS_ONLY = {"person_id": "x-1", "crisis_risk": True}


@pytest.fixture
def serve(service_home, monkeypatch):
    """``serve(load=..., audit_url=...)``: the service's app in process (a context manager
    giving the client), its champion from ``load`` (the stand-in model by default)."""
    from starlette.testclient import TestClient

    from recommender.service import service as service_module
    from recommender.service._serving import Serving

    # Each test is its own watcher: nothing retries in the background meanwhile.
    monkeypatch.setattr(Serving, "_follow_reloads", lambda self: None)

    def start(load=None, audit_url: str | None = None) -> TestClient:
        monkeypatch.setattr(
            service_module, "load_champion_model", load or (lambda: (LinearModel(), "7"))
        )
        if audit_url is not None:
            monkeypatch.setenv("RECOMMENDER_AUDIT_URL", audit_url)
        return TestClient(_app(service_module), raise_server_exceptions=False)

    return start


def _not_ready(client, *reasons: str) -> dict:
    response = client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["reasons"] == list(reasons) and body["reason"] == reasons[0], body
    assert body["error"].startswith("not ready: ") and body["problems"] == []
    for reason in reasons:
        assert ADVICE[Reason(reason)] in body["error"]
    return body


def _raises(error: Exception):
    def load():
        raise error

    return load


def test_a_ready_service_answers_200_as_before(asgi_client):
    response = asgi_client.get("/readyz")
    assert response.status_code == 200 and response.text == "\n"


def test_no_champion_is_named_and_the_model_arriving_makes_it_ready(serve):
    state = {"model": None}

    def load():
        if state["model"] is None:
            raise InputError("no registered model version matches 'champion' in the store")
        return state["model"], "3"

    with serve(load) as client:
        _not_ready(client, "no_champion")
        # Crisis answers are given all the same, and the other answers say why they are not.
        assert client.post("/recommend", json=CRISIS_ONLY, headers=auth("program")).status_code == (
            200
        )
        state["model"] = LinearModel()
        assert client.post("/reload", headers=auth("scientist")).status_code == 200
        assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    "error, reason",
    [
        (ConnectionError("tracking server unreachable"), "model_not_loaded"),
        (OSError("the champion's artifact folder is missing"), "model_not_loaded"),
    ],
)
def test_a_champion_that_fails_to_load_is_named(serve, error, reason):
    with serve(_raises(error)) as client:
        body = _not_ready(client, reason)
        assert "unreachable" not in body["error"] and "artifact folder" not in body["error"]


def test_a_champion_in_a_model_format_this_release_cannot_read_is_unservable(serve):
    # Its files are there (an older release's pickle whose classes are gone): nothing to wait
    # for, unlike model_not_loaded's unreachable store; the way on is another version.
    from recommender.errors import ModelUnreadable

    error = ModelUnreadable("version 1 of burnout-recommender ... could not load them")
    with serve(_raises(error)) as client:
        _not_ready(client, "model_unservable")
        answer = client.post("/recommend", json=CRISIS_ONLY, headers=auth("program"))
        assert answer.status_code == 200 and answer.json()["safety"]["resources"]
        refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert refused.status_code == 503 and "could not load them" in refused.json()["error"]


def test_a_champion_this_release_cannot_serve_is_named(serve):
    from recommender.service._serving import Unservable

    with serve(_raises(Unservable("the champion (version 4) cannot be served: x"))) as client:
        _not_ready(client, "model_unservable")


def test_a_broken_catalog_is_named(serve, monkeypatch, tmp_path):
    import shutil

    from recommender.paths import config_dir

    configs = tmp_path / "configs"
    shutil.copytree(config_dir(), configs)
    catalog = configs / "interventions.yaml"
    catalog.write_text(catalog.read_text().replace("version:", "version: [", 1))
    monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", str(configs))
    with serve() as client:
        _not_ready(client, "catalog_unreadable")
        # The watcher's retry keeps the cause while the catalog stays broken.
        service = bentoml.get_current_service()
        service._champion_retry_at = 0.0
        service._follow_once()
        _not_ready(client, "catalog_unreadable")


def test_every_cause_is_named_when_there_are_several(serve, service_home):
    blocker = service_home / "not-a-folder"  # a file where the store's folder must be
    blocker.write_text("")
    with serve(_raises(ConnectionError("down")), f"sqlite:///{blocker}/audit.db") as client:
        _not_ready(client, "model_not_loaded", "audit_store_unreachable")
        blocker.unlink()
        bentoml.get_current_service()._follow_once()  # the store opens; the model is still out
        _not_ready(client, "model_not_loaded")


def test_an_audit_salt_the_store_refuses_is_named_without_either_salt(serve, service_home):
    first = "the-salt-the-store-was-written-with"
    AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=first).close()
    with serve() as client:
        body = _not_ready(client, "audit_salt_mismatch")
    assert first not in json.dumps(body) and SALT not in json.dumps(body)


def test_a_missing_salt_is_named(serve, service_home, monkeypatch):
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT")
    (service_home / "audit.salt").write_text("")  # a start stopped while making it
    with serve() as client:
        _not_ready(client, "audit_salt_missing")


def test_a_file_that_is_no_database_is_named(serve, service_home):
    (service_home / "audit.db").write_bytes(b"not a database, a backup's text " * 100)
    with serve() as client:
        body = _not_ready(client, "audit_store_damaged")
    assert "backup's text" not in json.dumps(body)  # nothing of the file's contents


def test_an_audit_file_replaced_while_serving_is_named(asgi_client, service_home):
    assert asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    for part in service_home.glob("audit.db*"):
        part.unlink()
    _not_ready(asgi_client, "audit_file_replaced")


def test_a_database_that_cannot_be_reached_is_named_without_its_url(serve, postgres):
    # A database that does not exist on a server that answers (a URL with a password: never
    # shown, nor the role, host, port or database).
    url = f"postgresql+psycopg://svc_role:pw-not-shown@127.0.0.1:{postgres.port}/no_such_db"
    with serve(audit_url=url) as client:
        body = json.dumps(_not_ready(client, "audit_store_unreachable"))
    for secret in ("pw-not-shown", "svc_role", "127.0.0.1", str(postgres.port), "no_such_db"):
        assert secret not in body


def test_a_worker_still_starting_says_so():
    from recommender.service._gate import _readiness as gate_answer

    response = asyncio.run(gate_answer(None))
    assert response.status_code == 503
    assert json.loads(response.body)["reasons"] == ["starting"]


def test_every_reason_has_its_advice_and_its_line_in_the_readme():
    assert set(ADVICE) == set(Reason)
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| `([a-z_]+)` \|", readme, flags=re.MULTILINE)
    assert sorted(set(listed) & {str(r) for r in Reason}) == sorted(str(r) for r in Reason)


def test_the_not_ready_answer_is_documented(serve):
    with serve(_raises(ConnectionError("down"))) as client:
        document = client.get("/docs.json").json()
        answer = client.get("/readyz")
    schema = document["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/json"][
        "schema"
    ]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
    assert [e.message for e in validator.iter_errors(answer.json())] == []
    codes = document["components"]["schemas"]["Reason"]["enum"]
    assert sorted(codes) == sorted(str(r) for r in Reason)


class _SilentEngine:
    """An engine whose store does not answer until ``answer`` is set (a server that hangs)."""

    def __init__(self):
        import threading

        self.answer = threading.Event()
        self.entered = threading.Event()

    def connect(self):
        import contextlib
        from types import SimpleNamespace

        @contextlib.contextmanager
        def connection():
            self.entered.set()
            assert self.answer.wait(60), "the test never let the store answer"
            yield SimpleNamespace(
                dialect=SimpleNamespace(name="sqlite"), exec_driver_sql=lambda sql: None
            )

        return connection()


def test_a_store_silent_past_the_wait_is_not_ready_until_its_check_answers(monkeypatch):
    # A probe waits CHECK_WAIT for the store's check and no longer: a store that does not
    # answer reads as unreachable (not as ready, not as a probe hanging), and the check it
    # started decides the probes once it answers.
    from recommender.service import _store_check

    monkeypatch.setattr(_store_check, "CHECK_WAIT", 0.01)
    monkeypatch.setattr(_store_check, "CHECK_EVERY", 3600.0)
    engine = _SilentEngine()
    check = _store_check.StoreCheck(engine, shown="sqlite:///silent.db")
    assert check.problem() == (Reason.AUDIT_STORE_UNREACHABLE, None)
    assert engine.entered.is_set()
    assert check.problem() == (Reason.AUDIT_STORE_UNREACHABLE, None)  # still silent
    running = check._running
    engine.answer.set()
    assert running.wait(60)
    assert check.problem() is None  # answered: ready, without a new check (CHECK_EVERY)
