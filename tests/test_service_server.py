"""A real ``recommender serve`` (``bentoml serve``) over a trained champion, on a loopback port.

Driven by BentoML's own client, plain HTTP, Schemathesis against the service's OpenAPI document,
and a bounded load test. The duration of the load test is ``RECOMMENDER_LOAD_SECONDS`` (60 by
default, as the issue asks; shorter for a quick local run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from recommender.service._requests import example_profile
from recommender.service._responses import Recommendation
from service_fixtures import (  # noqa: F401  (fixtures)
    KEYS,
    PROFILE,
    champion_home,
    load_with_16_connections,
    profile,
    server_url,
    train_version,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]


def headers(role):
    return {"Authorization": f"Bearer {KEYS[role]}"}


def audit_rows(url) -> int:
    export = httpx.get(f"{url}/audit/export", headers=headers("auditor"), timeout=60)
    assert export.status_code == 200
    return len(export.text.strip().splitlines()) - 1


def test_bentoml_client_recommends(server_url):
    import bentoml

    with bentoml.SyncHTTPClient(server_url, token=KEYS["program"], timeout=60) as client:
        answer = client.recommend(example_profile())
        Recommendation.model_validate(answer)
        assert answer["recommended"] in {"none", *example_profile()["offered"]}
        assert {a["arm"] for a in answer["ranking"]} <= {"none", *example_profile()["offered"]}
        assert answer["explanation"]["sentence"]
        batch = client.recommend_batch({"profiles": [PROFILE, {"age": 5}, profile(person_id="b")]})
        assert (batch["answered"], batch["rejected"]) == (2, 1)
        with pytest.raises(bentoml.exceptions.BentoMLException) as caught:
            client.recommend(profile(ee=80))
        assert caught.value.error_code == 422 and "an integer from 0 to 54" in str(caught.value)


def test_plain_http_probes_auth_and_pages(server_url):
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(server_url + path, timeout=30).status_code == 200, path
    assert httpx.post(f"{server_url}/recommend", json=PROFILE, timeout=30).status_code == 401
    assert (
        httpx.post(
            f"{server_url}/recommend", json=PROFILE, headers=headers("auditor"), timeout=30
        ).status_code
        == 403
    )
    answer = httpx.post(
        f"{server_url}/recommend", json=PROFILE, headers={"x-api-key": KEYS["program"]}, timeout=60
    )
    assert answer.status_code == 200 and answer.json()["model_version"]
    card = httpx.get(f"{server_url}/model_card", headers=headers("auditor"), timeout=60)
    assert card.status_code == 200 and "Model card: burnout-recommender" in card.text
    card_json = httpx.get(f"{server_url}/model_card.json", headers=headers("auditor"), timeout=60)
    assert card_json.status_code == 200 and card_json.json()
    assert "bentoml_service_request" in httpx.get(f"{server_url}/metrics", timeout=30).text


# From tests/test_disk_full_dec06.py: it needs the session's server, which the other tests
# here start anyway (alone in its module, it started one more on its xdist worker).
def test_serve_keeps_bentoml_metrics_off_the_models_disk(champion_home, server_url):
    # The workers' metrics are files they map into memory and write as they count: under the
    # models folder, a full disk killed each worker (SIGBUS) at its first new count, and every
    # worker restarted after it at start, so not even a crisis request was answered.
    import urllib.request

    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm on this system: the models folder is used, as before")
    with urllib.request.urlopen(f"{server_url}/metrics", timeout=30) as answer:
        assert answer.status == 200 and b"bentoml_service_request" in answer.read()
    assert not (champion_home / "bentoml" / "prometheus_multiproc_dir").exists()


def test_crisis_and_referral_over_http(server_url):
    crisis = httpx.post(
        f"{server_url}/recommend",
        json=profile(crisis_risk=True),
        headers=headers("program"),
        timeout=60,
    ).json()
    assert crisis["ranking"] == [] and crisis["safety"]["level"] == "crisis"
    severe = httpx.post(
        f"{server_url}/recommend",
        json=profile(ee=50, dp=25),
        headers=headers("program"),
        timeout=60,
    ).json()
    assert severe["safety"]["level"] == "referral" and severe["ranking"]


def test_allocate_over_http(server_url):
    cohort = [
        profile(person_id="a1", ee=35),
        profile(person_id="a2", crisis_risk=True),
        profile(person_id="a3", ee=50, dp=25, role="nurse"),
    ]
    before = audit_rows(server_url)
    answer = httpx.post(
        f"{server_url}/allocate",
        headers=headers("program"),
        timeout=120,
        json={"profiles": cohort, "budget": 3000, "capacity": {"coaching": 1}},
    )
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["status"] == "optimal" and plan["total_cost"] <= 3000
    first, crisis, severe = plan["assignments"]
    assert crisis["allocated"] is None and crisis["safety"]["level"] == "crisis"
    # A referral comes besides the plan, not instead of it (a crisis flag gets no arm): the
    # severe nurse is planned for, with an arm she may have. Coaching is not for nurses and
    # peer groups need 6 people, so mindfulness or usual care; `recommended` ignores group
    # sizes, so it may also be peer_group, but never coaching.
    assert severe["safety"]["level"] == "referral" and "confidential" in severe["safety"]["notice"]
    assert severe["allocated"] in {"mindfulness", "none"}, severe
    assert severe["recommended"] in {"mindfulness", "peer_group", "none"}, severe
    assert audit_rows(server_url) - before == 3
    refused = httpx.post(
        f"{server_url}/allocate",
        headers=headers("program"),
        timeout=60,
        json={"profiles": cohort, "capacity": {"yoga": 2}},
    )
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["field"] == "capacity.yoga"


def _schemathesis(url, role, *extra, tmp_path):
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/docs.json",
        # No 500, and every answer as documented: its status, content type and schema (the
        # document is what a program generates its client from).
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--seed",
        "7",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        "-H",
        f"Authorization: Bearer {KEYS[role]}",
        *extra,
    ]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(
    "role, extra",
    [
        ("scientist", ("--exclude-path", "/reload", "--max-examples", "30")),
        ("program", ("--include-path-regex", "^/(outcomes|recommend)", "--max-examples", "20")),
        ("auditor", ("--include-path-regex", "^/(audit|model_card)", "--max-examples", "10")),
        ("scientist", ("--include-path", "/reload", "--max-examples", "3")),
    ],
)
def test_schemathesis_finds_no_server_error(server_url, role, extra, tmp_path):
    result = _schemathesis(server_url, role, *extra, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


def test_load_16_connections_no_errors_and_every_answer_audited(server_url):
    seconds = float(os.environ.get("RECOMMENDER_LOAD_SECONDS", "60"))
    before = audit_rows(server_url)
    answered, failures = load_with_16_connections(server_url, seconds)
    assert failures == []
    assert answered > 0
    assert audit_rows(server_url) - before == answered


def test_pairwise_contributions_are_differences_against_usual_care(champion_home):
    # The service explains "recommended vs runner-up" as the difference of both arms'
    # contributions against usual care (one model call per arm); the real model must agree.
    import numpy as np
    import pandas as pd

    from recommender.registry import load_champion
    from service_fixtures import recommender_home

    with recommender_home(champion_home):
        model, _ = load_champion()
    frame = pd.DataFrame(
        [
            profile(person_id=f"c{i}", ee=5 + 7 * i, role=role)
            for i, role in enumerate(("physician", "nurse", "resident", "app"))
        ]
    )
    arms = model.treatment_arms
    for a in arms:
        for b in arms:
            pairwise = model.contributions(frame, a, b).to_numpy()
            difference = (
                model.contributions(frame, a, "none").to_numpy()
                - model.contributions(frame, b, "none").to_numpy()
            )
            assert np.allclose(pairwise, difference, atol=1e-9), (a, b)


def test_card_comes_from_the_mlflow_run_when_the_local_copy_is_missing(server_url, champion_home):
    version = httpx.post(
        f"{server_url}/recommend", json=PROFILE, headers=headers("program"), timeout=60
    ).json()["model_version"]
    local = champion_home / "cards" / version
    moved = local.with_name(f"{version}-elsewhere")
    local.rename(moved)
    try:
        card = httpx.get(f"{server_url}/model_card", headers=headers("scientist"), timeout=120)
    finally:
        moved.rename(local)
    assert card.status_code == 200 and f"version {version}" in card.text


def test_reload_serves_a_new_champion_without_restart(server_url, champion_home):
    from recommender.registry import promote
    from service_fixtures import recommender_home

    version = train_version(champion_home, seed=11)
    try:
        with recommender_home(champion_home):
            promote(version, reason="service reload test", force=True)  # whatever its gate said
        assert (
            httpx.post(f"{server_url}/reload", headers=headers("program"), timeout=60).status_code
            == 403
        )
        reloaded = httpx.post(f"{server_url}/reload", headers=headers("scientist"), timeout=300)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["model_version"] == version
        answer = httpx.post(
            f"{server_url}/recommend", json=PROFILE, headers=headers("program"), timeout=60
        ).json()
        assert answer["model_version"] == version
    finally:
        # The session's champion is version 1 (champion_home): a server any later test starts
        # over it, on this xdist worker, in any order, must serve that.
        with recommender_home(champion_home):
            promote("1", reason="service reload test: back to the session's champion", force=True)
        back = httpx.post(f"{server_url}/reload", headers=headers("scientist"), timeout=300)
        assert back.status_code == 200 and back.json()["model_version"] == "1", back.text
