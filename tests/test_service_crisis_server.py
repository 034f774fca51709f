"""A real ``recommender serve`` (``bentoml serve``) without a loadable champion: it starts, gives
crisis answers, says not ready, answers everything else 503 with the cause, and /reload brings
the model once one is registered. Then the audit store is made unwritable (a read-only
database) and crisis answers go on, recorded in the service log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

from service_fixtures import (  # noqa: F401  (fixtures)
    KEYS,
    PROFILE,
    champion_home,
    copy_champion,
    running_server,
    server_url,
)

from recommender.catalog import load_catalog

pytestmark = [pytest.mark.server, pytest.mark.slow]


def headers(role):
    return {"Authorization": f"Bearer {KEYS[role]}"}


def _serve_config(path: Path, **changes) -> str:
    """configs/serve.yaml with ``changes`` (a mapping's keys merged into its section), written
    to ``path``; returns the path for RECOMMENDER_SERVE_CONFIG."""
    from recommender.paths import config_path

    settings = yaml.safe_load(config_path("serve.yaml").read_text())
    for key, value in changes.items():
        settings[key] = {**settings[key], **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def test_serve_without_a_champion_gives_crisis_answers_then_reloads(copy_champion, tmp_path):
    home = tmp_path / "empty-home"
    home.mkdir()
    log = home / "serve.log"
    # The watcher's own retries of the champion (after 5, 15, 35, 75 s...) are put off past the
    # test: one falling between the training's registration and the /reload loaded the model
    # first, and /reload answered previous_version "1".
    env = {
        "RECOMMENDER_SERVE_CONFIG": _serve_config(tmp_path / "serve.yaml", reload_poll_seconds=3600)
    }
    # Wait for /livez instead of /readyz: without a model the service is alive, not ready.
    with running_server(home, env=env, log_path=log, ready_path="/livez") as url:
        not_ready = httpx.get(f"{url}/readyz", timeout=60)
        # A real server names the cause too (the front door answers before BentoML's probe).
        assert not_ready.status_code == 503 and not_ready.json()["reason"] == "no_champion"
        # Only the training run below creates the store: a service that created (and migrated)
        # it raced that run's own creation of it.
        assert not (home / "mlflow.db").exists()
        crisis = httpx.post(
            f"{url}/recommend",
            json={"person_id": "s-1", "crisis_risk": True},
            headers=headers("program"),
            timeout=60,
        )
        assert crisis.status_code == 200, crisis.text
        answer = crisis.json()
        assert answer["safety"]["level"] == "crisis" and answer["model_version"] is None
        assert any("988" in r["contact"] for r in answer["safety"]["resources"])
        refused = httpx.post(
            f"{url}/recommend", json=PROFILE, headers=headers("program"), timeout=60
        )
        assert refused.status_code == 503 and "no model is loaded" in refused.json()["error"]

        # A champion registered in this store: what a training run leaves (version 1, its
        # alias and card), the session's copied (copy_champion) rather than trained again,
        # then moved in entry by entry (each rename whole, mlflow.db last).
        staged = copy_champion(tmp_path / "trained")
        for entry in sorted(staged.iterdir(), key=lambda e: e.name == "mlflow.db"):
            entry.rename(home / entry.name)
        version = "1"
        reloaded = httpx.post(f"{url}/reload", headers=headers("scientist"), timeout=300)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json() == {
            "previous_version": None,
            "model_version": version,
            "announced": True,
            "catalog_version": load_catalog().version,
            "catalog_sha256": load_catalog().sha256,
        }
        assert httpx.get(f"{url}/readyz", timeout=60).status_code == 200
        scored = httpx.post(
            f"{url}/recommend", json=PROFILE, headers=headers("program"), timeout=60
        ).json()
        assert scored["model_version"] == version and scored["ranking"]
        assert scored["context"]["training_data"]["source"] == "simulated"
    assert "s-1" not in log.read_text()  # the raw id is never logged


def test_a_read_only_audit_database_over_http(champion_home, tmp_path):
    from recommender.service import AuditLog

    database = tmp_path / "audit-ro.db"
    AuditLog(f"sqlite:///{database}", salt=None).close()
    config = _serve_config(
        tmp_path / "serve-ro.yaml", audit={"url": f"sqlite:///file:{database}?mode=ro&uri=true"}
    )
    log = tmp_path / "serve-ro.log"
    with running_server(
        champion_home, env={"RECOMMENDER_SERVE_CONFIG": config}, log_path=log
    ) as url:
        crisis = httpx.post(
            f"{url}/recommend",
            json={"person_id": "ro-1", "crisis_risk": True, "role": "resident"},
            headers=headers("program"),
            timeout=60,
        )
        assert crisis.status_code == 200, crisis.text
        safety = crisis.json()["safety"]
        assert safety["recorded_in"].startswith("service log")
        assert any(r["name"].startswith("Physician Support Line") for r in safety["resources"])
        assert (
            httpx.post(
                f"{url}/recommend", json=PROFILE, headers=headers("program"), timeout=60
            ).status_code
            == 503
        )
    text = log.read_text()
    assert crisis.json()["request_id"] in text and "ro-1" not in text


@pytest.mark.parametrize("route", ["/recommend", "/recommend_batch", "/allocate"])
def test_bodies_the_server_cannot_read_still_carry_crisis_resources(server_url, route):
    # Not JSON (cut short), a form, and more than the 32 MiB the server reads: each keeps its
    # refusal, and its text's crisis flag gets the resources once for the request.
    flagged = json.dumps({"person_id": "s-9", "crisis_risk": True})
    if route != "/recommend":
        flagged = '{"profiles": [' + flagged
    bodies = [
        (flagged[:-1].encode(), "application/json", 400),
        (b"person_id=s-9&crisis_risk=on", "application/x-www-form-urlencoded", 400),
        (
            flagged.encode()[:-1] + b', "pad": "' + b"x" * (33 * 2**20) + b'"}',
            "application/json",
            413,
        ),
    ]
    for body, content_type, status in bodies:
        response = httpx.post(
            f"{server_url}{route}",
            content=body,
            headers={**headers("program"), "content-type": content_type},
            timeout=120,
        )
        assert response.status_code == status, response.text[:500]
        refusal = response.json()
        assert refusal["problems"][0]["field"] == "body"
        (crisis,) = refusal["crisis_results"]
        assert crisis["index"] == (0 if route == "/recommend" else None)
        assert crisis["answer"]["safety"]["level"] == "crisis"
        assert any("988" in r["contact"] for r in crisis["answer"]["safety"]["resources"])
        assert "s-9" not in response.text


def test_a_method_the_route_does_not_take_still_carries_crisis_resources(server_url):
    # The 405 is decided in front of BentoML's layers and answered by the front door behind
    # them: through the real stack, a flag in the address bar's query still gets resources.
    response = httpx.get(f"{server_url}/recommend?crisis_risk=true&person_id=s-8", timeout=60)
    assert response.status_code == 405 and response.headers["allow"] == "POST", response.text
    (crisis,) = response.json()["crisis_results"]
    assert crisis["answer"]["safety"]["level"] == "crisis" and "s-8" not in response.text
    plain = httpx.put(f"{server_url}/recommend_batch", json={"profiles": []}, timeout=60)
    assert plain.status_code == 405 and "crisis_results" not in plain.json()
