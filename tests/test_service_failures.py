"""What the service answers when its own dependencies fail: never a 500, never a lost model."""

from __future__ import annotations

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    service_home,
)

from recommender.catalog import load_catalog
from recommender.errors import InputError


@pytest.mark.parametrize(
    "failure",
    [
        ModuleNotFoundError(
            "No module named 'recommender.uplift._old'"
        ),  # champion pickled by other code
        OSError("artifact folder is gone"),
        RuntimeError("registry unreachable"),
    ],
)
def test_a_champion_that_cannot_be_loaded_leaves_the_old_one_serving(
    asgi_client, monkeypatch, failure
):
    from recommender.service import service as service_module

    def broken():
        raise failure

    monkeypatch.setattr(service_module, "load_champion_model", broken)
    answer = asgi_client.post("/reload", headers=auth("scientist"))
    assert answer.status_code == 503
    assert "still serving version 7" in answer.json()["error"]
    assert type(failure).__name__ in answer.json()["error"]
    after = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert after.status_code == 200 and after.json()["model_version"] == "7"


def test_a_reload_the_store_could_not_record_says_the_other_workers_did_not_follow(
    asgi_client, monkeypatch
):
    # The reload record is how the other workers learn of a /reload; when it could not be
    # written the answer was the same 200 as a reload every worker follows.
    from recommender.service import AuditLog

    def refused(self, version, caller_role):
        raise OSError("database is locked")

    monkeypatch.setattr(AuditLog, "announce_reload", refused)
    answer = asgi_client.post("/reload", headers=auth("scientist"))
    assert answer.status_code == 200
    assert answer.json() == {
        "previous_version": "7",
        "model_version": "7",
        "announced": False,
        "catalog_version": load_catalog().version,
        "catalog_sha256": load_catalog().sha256,
    }


def test_a_worker_follows_the_version_another_reloaded_not_a_champion_moved_since(
    asgi_client, monkeypatch, linear_model
):
    # Found: the other workers loaded "the champion" when they followed, so a promotion (or a
    # training run's) between a /reload and their next poll left the workers serving two
    # versions until the next /reload.
    import bentoml

    from recommender.service import service as service_module

    loaded = []

    def version_model(version):
        loaded.append(version)
        return linear_model, version

    monkeypatch.setattr(service_module, "load_version_model", version_model, raising=False)
    # The champion moved on to version 9 after another worker's /reload served version 8.
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "9"))
    service = bentoml.get_current_service()
    service.audit.announce_reload("8", "scientist")
    service._follow_once()
    assert service.engine.version == "8" and loaded == ["8"]
    after = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert after.json()["model_version"] == "8"


def test_an_unreadable_audit_store_is_a_503_on_export(asgi_client, monkeypatch):
    from recommender.service import AuditLog

    def unreadable(self, since=None, **options):  # the export's rows, read a chunk at a time
        raise OSError("disk I/O error")
        yield

    monkeypatch.setattr(AuditLog, "export_rows", unreadable)
    answer = asgi_client.get("/audit/export", headers=auth("auditor"))
    assert answer.status_code == 503
    assert "audit store could not be read" in answer.json()["error"]


def test_batch_limit_cannot_be_configured_above_what_the_request_model_accepts(
    tmp_path, monkeypatch
):
    from recommender.paths import config_path
    from recommender.service._config import load_serve_config

    text = config_path("serve.yaml").read_text()
    assert "max_batch_rows: 10000" in text
    path = tmp_path / "serve.yaml"
    path.write_text(text.replace("max_batch_rows: 10000", "max_batch_rows: 50000"))
    with pytest.raises(InputError, match="max_batch_rows"):
        load_serve_config(path)


def test_a_worker_started_without_a_champion_loads_it_by_itself_once_it_can(
    service_home, linear_model, monkeypatch
):
    # Found: after a registry outage at start (given up on within seconds since 3563d22) a
    # worker served crisis answers only until someone sent /reload.
    from types import SimpleNamespace

    import bentoml
    from service_fixtures import _app
    from starlette.testclient import TestClient

    from recommender.service import _reload_watcher
    from recommender.service import service as service_module
    from recommender.service._serving import Serving

    tries = []

    def registry_down():
        tries.append("down")
        raise ConnectionError("tracking server unreachable")

    monkeypatch.setattr(service_module, "load_champion_model", registry_down)
    # The test is the watcher: its thread must not try in the background meanwhile.
    monkeypatch.setattr(Serving, "_follow_reloads", lambda self: None)
    # And its clock: on a busy machine the real one passed the first try's 5 s (a worker's start
    # in a fresh test process) before the "not due yet" below.
    clock = [1000.0]
    monkeypatch.setattr(_reload_watcher, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        service = bentoml.get_current_service()
        assert client.get("/readyz").status_code == 503
        assert client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 503
        crisis = {"person_id": "p-1", "crisis_risk": True}
        assert client.post("/recommend", json=crisis, headers=auth("program")).status_code == 200

        # Not due yet: no try. Due: one try, and each failure doubles the wait.
        clock[0] += 4.9
        service._follow_once()
        assert tries == ["down"]
        waits = []
        for _ in range(3):
            clock[0] += service._champion_wait
            service._follow_once()
            waits.append(service._champion_wait)
        assert tries == ["down"] * 4
        assert waits == [10.0, 20.0, 40.0]  # from reload_poll_seconds (5)
        assert "ConnectionError" in service.load_error

        # The registry is back: the next due try serves the champion, no /reload needed.
        monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "7"))
        clock[0] += service._champion_wait
        service._follow_once()
        answer = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert answer.status_code == 200 and answer.json()["model_version"] == "7"
        assert service.load_error is None
