"""SIGTERM while two workers answer 16 connections (a container stopped, a rolling restart):
every answer given is in the audit store, and the store holds no record of an answer not given.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import httpx
import pytest

from service_fixtures import (  # noqa: F401  (champion_home: a fixture)
    ENV_KEYS,
    SALT,
    auth,
    champion_home,
    profile,
    serving,
)

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _post_until_refused(url: str, answered: list, stop: threading.Event) -> None:
    """Post /recommend on one keep-alive connection until the server stops answering."""
    with httpx.Client(base_url=url, headers=auth("program"), timeout=60) as client:
        for i in range(100_000):
            if stop.is_set():
                return
            try:
                response = client.post(
                    "/recommend", json=profile(person_id=f"t-{id(answered)}-{i}")
                )
            except httpx.HTTPError:
                time.sleep(0.05)  # the server is going: keep trying until it is gone
                continue
            if response.status_code == 200:
                answered.append(response.json()["request_id"])


def test_sigterm_under_load_loses_no_audit_record(champion_home, tmp_path):
    from recommender.service import AuditLog

    store = f"sqlite:///{tmp_path / 'audit.db'}"
    env = {
        **os.environ,
        "RECOMMENDER_HOME": str(champion_home),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "RECOMMENDER_API_KEYS": ENV_KEYS,
        "RECOMMENDER_AUDIT_SALT": SALT,
        "RECOMMENDER_AUDIT_URL": store,
        "RECOMMENDER_SERVE_WORKERS": "2",
    }

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "recommender", "serve", "--port", str(port)]

    log_path = tmp_path / "serve.log"
    with serving(command, env=env, log_path=log_path) as (url, process):
        answered = [[] for _ in range(16)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_post_until_refused, args=(url, answered[k], stop))
            for k in range(16)
        ]
        for thread in threads:
            thread.start()
        while sum(map(len, answered)) < 200 and process.poll() is None:
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGTERM)  # as a container runtime stops it
        process.wait(timeout=120)
        stop.set()
        for thread in threads:
            thread.join(60)
    given = {request_id for answers in answered for request_id in answers}
    assert len(given) >= 200
    audit = AuditLog(store, salt=None)
    recorded = {row["request_id"] for row in audit.export()}
    audit.close()
    assert given == recorded, log_path.read_text()[-3000:]
