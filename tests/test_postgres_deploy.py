"""The whole path on PostgreSQL (a throwaway cluster, tests/pg_cluster.py): MLflow's tracking
store and the audit store there, artifacts under RECOMMENDER_ARTIFACT_ROOT; train, register,
promote, load; `recommender serve` with two workers answering 16 connections with every answer
audited; a promotion and one /reload reach every worker.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import yaml

from service_fixtures import (
    KEYS,
    SMALL_TRAINING,
    load_with_16_connections,
    profile,
    running_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.server]

# How long the workers follow a /reload at most: serve.yaml's reload_poll_seconds (1 here) plus
# the time a worker takes to load the new champion from the store.
POLL_SECONDS = 1
FOLLOW_WITHIN = POLL_SECONDS + 60


@pytest.fixture
def on_postgres(postgres, tmp_path, monkeypatch):
    """This test's environment: MLflow and the audit log in new PostgreSQL databases."""
    env = {
        "RECOMMENDER_HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": postgres.database("mlflow"),
        "RECOMMENDER_ARTIFACT_ROOT": (tmp_path / "artifacts").as_uri(),
        "RECOMMENDER_AUDIT_URL": postgres.database("audit"),
        "RECOMMENDER_ACTOR": "test-suite",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _train(**overrides) -> str:
    from pipelines.train import run_training

    return str(
        run_training(overrides={**SMALL_TRAINING, **overrides}, reason="postgres test").version
    )


def test_train_register_promote_and_load_on_postgres(on_postgres):
    from recommender import registry

    first = _train()
    assert registry.aliases()["champion"] == first
    second = _train(seed=11)
    registry.promote(second, reason="postgres promotion test")
    assert registry.aliases()["champion"] == second
    model, version = registry.load_champion()
    assert version == second and model.arms
    # The artifacts went to the given root, the runs and versions to PostgreSQL.
    assert any(Path(on_postgres["RECOMMENDER_HOME"], "artifacts").rglob("MLmodel"))
    assert registry.tracking_uri().startswith("postgresql+psycopg://")
    assert not Path(on_postgres["RECOMMENDER_HOME"], "mlflow.db").exists()


def _serve_config(folder: Path) -> Path:
    from recommender.paths import config_path

    raw = yaml.safe_load(config_path("serve.yaml").read_text())
    raw.update(workers=2, reload_poll_seconds=POLL_SECONDS)
    path = folder / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _headers(role):
    return {"Authorization": f"Bearer {KEYS[role]}"}


def _versions_answering(url: str, requests: int) -> set[str]:
    seen = set()
    for i in range(requests):  # a new connection each: any worker may take it
        answer = httpx.post(
            f"{url}/recommend",
            json=profile(person_id=f"v-{i}"),
            headers=_headers("program"),
            timeout=60,
        )
        assert answer.status_code == 200, answer.text[:500]
        seen.add(answer.json()["model_version"])
    return seen


def test_two_workers_on_postgres_audit_every_answer_and_follow_one_reload(on_postgres, tmp_path):
    from recommender import registry
    from recommender.service import AuditLog

    first = _train()
    env = {**on_postgres, "RECOMMENDER_SERVE_CONFIG": str(_serve_config(tmp_path))}
    audit = AuditLog(on_postgres["RECOMMENDER_AUDIT_URL"], salt=None)
    log_path = tmp_path / "serve.log"
    with running_server(Path(on_postgres["RECOMMENDER_HOME"]), env=env, log_path=log_path) as url:
        seconds = float(os.environ.get("RECOMMENDER_LOAD_SECONDS", "20"))
        answered, failures = load_with_16_connections(url, seconds, tag="pg")
        assert failures == []
        assert answered > 0
        assert audit.count() == answered  # every answer audited, in PostgreSQL
        export = httpx.get(f"{url}/audit/export", headers=_headers("auditor"), timeout=60)
        assert export.status_code == 200
        assert len(export.text.strip().splitlines()) - 1 == answered
        assert _versions_answering(url, 10) == {first}

        second = _train(seed=11)
        registry.promote(second, reason="postgres reload test")
        reloaded = httpx.post(f"{url}/reload", headers=_headers("scientist"), timeout=300)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["model_version"] == second
        # The other worker says when it has followed. Answers alone cannot tell: while it loads,
        # the worker that answered /reload may take every new connection, so ten answers from
        # version 2 do not show that both workers serve it.
        followed = f"followed a /reload: version {first} -> {second}"
        deadline = time.monotonic() + FOLLOW_WITHIN
        while followed not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"a worker still serves {first}"
            time.sleep(0.5)
        # Forty answers on fresh connections: with a worker left behind, about half would come
        # from it.
        assert _versions_answering(url, 40) == {second}
    assert audit.latest_reload()[1] == second
    audit.close()
