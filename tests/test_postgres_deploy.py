"""The whole path on PostgreSQL (a throwaway cluster, tests/pg_cluster.py): MLflow's tracking
store and the audit store there, artifacts under RECOMMENDER_ARTIFACT_ROOT; train, register,
promote, load; `recommender serve` with two workers answering 16 connections with every answer
audited; a promotion and one /reload reach every worker.

The two versions are trained once for the module; each test works on its own copy of the MLflow
database and of the home they were trained in, so that its promotion is its own.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from service_fixtures import (
    KEYS,
    load_with_16_connections,
    profile,
    running_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.server]

# How long the workers follow a /reload at most: serve.yaml's reload_poll_seconds (1 here) plus
# the time a worker takes to load the new champion from the store.
POLL_SECONDS = 1
FOLLOW_WITHIN = POLL_SECONDS + 60
# The load's length. Its 16 keep-alive connections are taken by the workers when they open, so
# a longer load only sends more requests over the same connections. Here, at load 9 to 10, 5 s
# gave 941 answers (the two workers' shares about even), 20 s 3,365; each is checked against the
# audit rows. 2 s still sends hundreds over both workers' connections, and every second more
# kept both workers and the 16 clients busy. Issue 5's sustained 60-s load test is
# tests/test_service_server.py's.
LOAD_SECONDS = 2
# How often a condition the test waits for is looked at (a read of the server's log).
POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class Trained:
    """Two versions trained on PostgreSQL, as the module's tests start from them."""

    home: Path  # where they were trained; their artifacts stay under it
    tracking_uri: str  # the MLflow database they were registered in (tests use copies)
    first: str
    second: str
    champion_after_first: str  # the champion as the first training left it

    @property
    def artifact_root(self) -> Path:
        return self.home / "artifacts"


def _train(**overrides) -> str:
    """A real training run registered on PostgreSQL. The module claims nothing of the learner,
    so it fits tests/test_pipeline_train.py's QUICK one (a capped booster per arm): the service
    tests' SMALL_TRAINING tries four outcome models per arm, about 3 s of CPU more a run."""
    from pipelines.train import run_training
    from test_pipeline_train import QUICK

    return str(run_training(overrides={**QUICK, **overrides}, reason="postgres test").version)


@pytest.fixture(scope="module")
def trained_on_postgres(postgres, tmp_path_factory) -> Trained:
    """Version 1, then a second version that passes the promotion gate against it, trained and
    registered in a new PostgreSQL MLflow database; then the champion moved back to version 1
    (the second took it on registration), so that each test promotes the second itself.

    Whether a quick model passes the gate against another is the luck of its seed and of the
    simulated cohort (seed 11 did until the simulator's ages changed), so the second is the
    first of a few fixed seeds whose version takes the champion on registration."""
    from recommender import registry

    home = tmp_path_factory.mktemp("postgres-trained")
    tracking_uri = postgres.database("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECOMMENDER_HOME", str(home))
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        patch.setenv("RECOMMENDER_ARTIFACT_ROOT", (home / "artifacts").as_uri())
        patch.setenv("RECOMMENDER_ACTOR", "test-suite")
        first = _train()
        after_first = registry.aliases()["champion"]
        for seed in (11, 12, 13, 14, 15):
            second = _train(seed=seed)
            if registry.aliases()["champion"] == second:
                break
        else:
            pytest.fail("no version trained with seeds 11-15 passed the gate against version 1")
        registry.promote(first, reason="postgres tests start from version 1")
    return Trained(home, tracking_uri, first, second, after_first)


@pytest.fixture
def on_postgres(postgres, trained_on_postgres, tmp_path, monkeypatch):
    """This test's environment: MLflow in a copy of the module's trained database, a copy of
    the home they were trained in (the artifacts are read where they were written), and the
    audit log in a new PostgreSQL database."""
    trained = trained_on_postgres
    home = tmp_path / "home"
    shutil.copytree(trained.home, home, ignore=shutil.ignore_patterns("artifacts"))
    env = {
        "RECOMMENDER_HOME": str(home),
        "MLFLOW_TRACKING_URI": postgres.database("mlflow", copy_of=trained.tracking_uri),
        "RECOMMENDER_ARTIFACT_ROOT": trained.artifact_root.as_uri(),
        "RECOMMENDER_AUDIT_URL": postgres.database("audit"),
        "RECOMMENDER_ACTOR": "test-suite",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_train_register_promote_and_load_on_postgres(trained_on_postgres, on_postgres):
    from recommender import registry

    trained = trained_on_postgres
    first, second = trained.first, trained.second
    assert trained.champion_after_first == first  # registered as the first champion
    assert registry.aliases()["champion"] == first  # the copy is the module's store
    registry.promote(second, reason="postgres promotion test")
    assert registry.aliases()["champion"] == second
    model, version = registry.load_champion()
    assert version == second and model.arms
    # The artifacts went to the given root, the runs and versions to PostgreSQL.
    assert any(trained.artifact_root.rglob("MLmodel"))
    assert registry.tracking_uri().startswith("postgresql+psycopg://")
    assert registry.tracking_uri() != trained.tracking_uri
    for home in (trained.home, Path(on_postgres["RECOMMENDER_HOME"])):
        assert not Path(home, "mlflow.db").exists()


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


def _workers_serving(log_path: Path, version: str) -> set[str]:
    """The workers whose log says they loaded ``version`` at start (BentoML begins each of a
    worker's lines with its number)."""
    said = log_path.read_text(errors="replace")
    return set(re.findall(rf":(\d+)\] serving model version {version} from ", said))


def _within_follow_time(holds, failure: str) -> None:
    """Poll ``holds()`` until it is true, for at most FOLLOW_WITHIN seconds."""
    deadline = time.monotonic() + FOLLOW_WITHIN
    while not holds():
        assert time.monotonic() < deadline, failure
        time.sleep(POLL_INTERVAL)


def test_two_workers_on_postgres_audit_every_answer_and_follow_one_reload(
    trained_on_postgres, on_postgres, tmp_path
):
    from recommender import registry
    from recommender.service import AuditLog

    first, second = trained_on_postgres.first, trained_on_postgres.second
    env = {**on_postgres, "RECOMMENDER_SERVE_CONFIG": str(_serve_config(tmp_path))}
    audit = AuditLog(on_postgres["RECOMMENDER_AUDIT_URL"], salt=None)
    log_path = tmp_path / "serve.log"
    with running_server(Path(on_postgres["RECOMMENDER_HOME"]), env=env, log_path=log_path) as url:
        # Ready means one worker is: the load's connections, opened at once, would all go to
        # it while the other still loads the model (seen here: 2 s apart).
        _within_follow_time(
            lambda: len(_workers_serving(log_path, first)) == 2,
            "the second worker never loaded the champion",
        )
        seconds = float(os.environ.get("RECOMMENDER_LOAD_SECONDS", LOAD_SECONDS))
        answered, failures = load_with_16_connections(url, seconds, tag="pg")
        assert failures == []
        assert answered > 0
        assert audit.count() == answered  # every answer audited, in PostgreSQL
        export = httpx.get(f"{url}/audit/export", headers=_headers("auditor"), timeout=60)
        assert export.status_code == 200
        assert len(export.text.strip().splitlines()) - 1 == answered
        assert _versions_answering(url, 10) == {first}

        registry.promote(second, reason="postgres reload test")
        reloaded = httpx.post(f"{url}/reload", headers=_headers("scientist"), timeout=300)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["model_version"] == second
        # The other worker says when it has followed. Answers alone cannot tell: while it loads,
        # the worker that answered /reload may take every new connection, so ten answers from
        # version 2 do not show that both workers serve it.
        followed = f"followed a /reload: version {first} -> {second}"
        _within_follow_time(
            lambda: followed in log_path.read_text(errors="replace"),
            f"a worker still serves {first}",
        )
        # Forty answers on fresh connections: with a worker left behind, about half would come
        # from it.
        assert _versions_answering(url, 40) == {second}
    assert audit.latest_reload()[1] == second
    audit.close()
