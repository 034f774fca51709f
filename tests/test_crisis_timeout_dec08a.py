"""Crisis resources past the request timeout, and a crisis plan in the crisis lane (2026-12-08).

1. A request past the request timeout got a bare 504 (``Deadline``), even when its body flagged
   crisis risk, and even for a batch whose crisis rows were already answered and recorded (a
   store that hangs after they commit, a model or solver past the timeout). Its 504 now
   carries the crisis answers in ``crisis_results``; those recorded before the timeout as they
   were recorded, the others saying the request timed out and that they may not be recorded.
   A request not flagged still gets the plain 504.
2. A crisis ``/allocate`` went through BentoML's thread pool, not the crisis lane: with every
   one of its threads held by plans waiting for a locked store, its crisis answer waited.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)

TIMED_OUT = "Not able to process the request in 1.0 seconds"


def _crisis_only_plan(i: int = 9) -> dict:
    return {"profiles": [{"person_id": f"c-{i}", "role": "physician", "crisis_risk": True}]}


@pytest.mark.parametrize(
    "crisis_body",
    [
        _crisis_only_plan(),
        {"profiles": [profile(person_id="k-1"), _crisis_only_plan()["profiles"][0]]},
    ],
    ids=["every-profile-flagged", "some-flagged"],
)
def test_a_crisis_plan_is_not_queued_behind_plans_waiting_for_a_locked_store(
    asgi_client, service_home, monkeypatch, crisis_body
):
    """Every thread BentoML's endpoints answer on held by a plan waiting for the store (another
    process holds it locked): a flagged /allocate waited for one of them, where its crisis
    answer is promised within 2 s whatever the store does."""
    from recommender.service import _crisis
    from recommender.service.service import Recommender

    monkeypatch.setattr(_crisis, "CRISIS_RECORD_WAIT", 0.2)
    first = asgi_client.post("/allocate", json={"profiles": [PROFILE]}, headers=auth("program"))
    assert first.status_code == 200, first.text
    locker = sqlite3.connect(service_home / "audit.db", isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")
    ordinary = [
        threading.Thread(
            target=asgi_client.post,
            args=("/allocate",),
            kwargs={
                "json": {"profiles": [profile(person_id=f"o-{i}")]},
                "headers": auth("program"),
            },
        )
        for i in range(Recommender.config["threads"] + 2)
    ]
    crisis = {}

    def ask():
        crisis["answer"] = asgi_client.post("/allocate", json=crisis_body, headers=auth("program"))

    asking = threading.Thread(target=ask)
    try:
        for thread in ordinary:
            thread.start()
        time.sleep(1.5)  # every answering thread now waits for the store
        started = time.monotonic()
        asking.start()
        asking.join(8)
        waited = time.monotonic() - started
        answered = "answer" in crisis  # while the store is still locked
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        asking.join()
        for thread in ordinary:
            thread.join()
    assert answered, f"no crisis answer in {waited:.1f} s while the store was locked"
    answer = crisis["answer"]
    assert answer.status_code == 503, answer.text  # the store did not take the crisis rows
    (entry,) = answer.json()["crisis_results"]
    assert entry["index"] == len(crisis_body["profiles"]) - 1
    assert entry["answer"]["safety"]["resources"]
    assert entry["answer"]["safety"]["recorded_in"].startswith("service log (fallback")


# -- 1. the request timeout's 504 carries the crisis answers ------------------------------------


@pytest.fixture
def one_second(asgi_client, monkeypatch):
    """The service's request timeout, 1 s (the least serve.yaml takes) for this test: the
    app's Deadline layer, built once per run, with its timeout patched."""
    import bentoml

    from recommender.service._deadline import Deadline

    layer = asgi_client.app.app.middleware_stack  # KnownRoutes -> BentoML's Starlette app
    while not isinstance(layer, Deadline):
        layer = layer.app
    monkeypatch.setattr(layer, "timeout", 1.0)
    return bentoml.get_current_service()


@pytest.fixture
def release():
    """An event that hung work waits for (at most 30 s), set when the test ends."""
    event = threading.Event()
    yield event
    event.set()


def _hang(release):
    def hung(*args, **kwargs):
        release.wait(30)
        raise RuntimeError("released by the test")

    return hung


def _audit_ids(client) -> set[str]:
    import csv
    import io

    export = client.get("/audit/export", headers=auth("auditor"))
    assert export.status_code == 200, export.text
    return {row["request_id"] for row in csv.DictReader(io.StringIO(export.text))}


def _timed_out_entry(response) -> dict:
    """The one entry of a 504's ``crisis_results``, its ``error`` checked unchanged."""
    assert response.status_code == 504, response.text
    said = response.json()
    assert said["error"] == TIMED_OUT
    (entry,) = said["crisis_results"]
    return entry


def _names(answer) -> list[str]:
    return [r["name"] for r in answer["safety"]["resources"]]


def test_a_flagged_profile_past_the_timeout_gets_its_crisis_answer_in_the_504(
    asgi_client, one_second, service_home
):
    """The store locked by another process: the crisis answer waits up to 2 s for its record,
    past the 1 s timeout, whose 504 was bare."""
    locker = sqlite3.connect(service_home / "audit.db", isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        body = {"person_id": "c-1", "role": "physician", "crisis_risk": True}
        response = asgi_client.post("/recommend", json=body, headers=auth("program"))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    entry = _timed_out_entry(response)
    answer = entry["answer"]
    assert entry["index"] == 0 and answer["safety"]["level"] == "crisis"
    assert answer["recommended"] is None and answer["ranking"] == []
    assert "Physician Support Line (US)" in _names(answer)  # the profile's role's resources
    recorded_in = answer["safety"]["recorded_in"]
    assert recorded_in.startswith("not confirmed: the request timed out (504)")
    assert "may not be recorded" in recorded_in and "refused" not in recorded_in


def test_a_batch_past_the_timeout_carries_its_recorded_crisis_rows(
    asgi_client, one_second, release
):
    """The crisis row answered and recorded, then the model hangs past the timeout: the 504
    carries that very answer, by its index, as it was recorded; the other rows none."""
    one_second.engine.recommend = _hang(release)
    body = {
        "profiles": [
            profile(person_id="b-0"),
            {"person_id": "b-1", "role": "nurse", "crisis_risk": "yes"},
            profile(person_id="b-2"),
        ]
    }
    response = asgi_client.post("/recommend_batch", json=body, headers=auth("program"))
    entry = _timed_out_entry(response)
    answer = entry["answer"]
    assert entry["index"] == 1 and answer["safety"]["level"] == "crisis"
    assert answer["safety"]["recorded_in"] == "audit log"
    assert "Physician Support Line (US)" not in _names(answer)  # a nurse's
    release.set()
    assert answer["request_id"] in _audit_ids(asgi_client)  # the answer recorded is this one


def test_a_plan_past_the_timeout_carries_its_recorded_crisis_rows(
    asgi_client, one_second, release, monkeypatch
):
    import scipy.optimize

    monkeypatch.setattr(scipy.optimize, "milp", _hang(release))
    body = {
        "profiles": [
            profile(person_id="a-0"),
            profile(person_id="a-1", crisis_risk=True),
            profile(person_id="a-2", ee=20),
        ],
        "budget": 5000,
    }
    response = asgi_client.post("/allocate", json=body, headers=auth("program"))
    entry = _timed_out_entry(response)
    assert entry["index"] == 1 and entry["answer"]["safety"]["recorded_in"] == "audit log"
    assert "Physician Support Line (US)" in _names(entry["answer"])
    release.set()
    assert entry["answer"]["request_id"] in _audit_ids(asgi_client)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/recommend", profile(person_id="n-1")),
        ("/recommend", profile(person_id="n-1", crisis_risk=False)),
        ("/recommend_batch", {"profiles": [profile(person_id="n-2", crisis_risk=False)]}),
        ("/allocate", {"profiles": [profile(person_id="n-3")]}),
    ],
    ids=["profile", "flag-false", "batch", "plan"],
)
def test_a_request_not_flagged_gets_the_plain_504(
    asgi_client, one_second, release, monkeypatch, route, body
):
    import scipy.optimize

    one_second.engine.recommend = _hang(release)
    monkeypatch.setattr(scipy.optimize, "milp", _hang(release))
    response = asgi_client.post(route, json=body, headers=auth("program"))
    assert response.status_code == 504, response.text
    assert response.json() == {"error": TIMED_OUT}


def test_crisis_answers_that_cannot_be_made_in_time_are_the_built_in_fallback(
    asgi_client, one_second, release, monkeypatch
):
    """Making the request's own crisis answers fails (a catalog, an engine that cannot): the
    504 carries one answer for the request, every role's resources from serve.yaml."""
    one_second.engine.recommend = _hang(release)

    def fails(*args, **kwargs):
        raise RuntimeError("no crisis answers here")

    monkeypatch.setattr(type(one_second), "_unrecorded_crisis", fails)
    monkeypatch.setattr(type(one_second), "_crisis_rows", _hang(release))  # never given
    body = {"profiles": [profile(person_id="f-0"), {"person_id": "f-1", "crisis_risk": True}]}
    response = asgi_client.post("/recommend_batch", json=body, headers=auth("program"))
    entry = _timed_out_entry(response)
    answer = entry["answer"]
    assert entry["index"] is None and answer["recommended"] is None
    assert "Physician Support Line (US)" in _names(answer) and len(_names(answer)) > 1
    assert answer["safety"]["recorded_in"].startswith("not confirmed")
    assert answer["ignored"][0]["field"] == "body"


@pytest.mark.parametrize(
    "profiles",
    [
        [{"person_id": "e-0", "crisis_risk": True}],
        [profile(person_id="e-1"), profile(person_id="e-2", crisis_risk="yes", role="nurse")],
        [profile(person_id="e-3", ee=20), {"person_id": "e-4", "crisis_risk": 1, "age": "x"}],
    ],
    ids=["crisis-only", "some-flagged", "flagged-with-a-field-ignored"],
)
def test_a_flagged_plan_answered_on_the_crisis_lane_is_the_endpoint_s_answer(
    asgi_client, monkeypatch, profiles
):
    """The front door's answer to a flagged /allocate is BentoML's endpoint's, byte for byte
    but for the ids every answer makes afresh, status and headers included."""
    import bentoml

    from recommender.service._config import SERVICE_NAME

    asgi_client.get("/readyz")
    service = bentoml.get_current_service()
    body = {"profiles": profiles, "budget": 5000}
    direct = asgi_client.post("/allocate", json=body, headers=auth("program"))
    monkeypatch.setattr(type(service), "crisis_lane_routes", property(lambda self: {}))
    endpoint = asgi_client.post("/allocate", json=body, headers=auth("program"))

    def without_ids(text: str) -> str:
        import re

        return re.sub(r'"(request_id|plan_id|batch_id)":"[^"]*"', r'"\1":""', text)

    assert direct.status_code == endpoint.status_code == 200, direct.text
    assert without_ids(direct.text) == without_ids(endpoint.text)
    for response in (direct, endpoint):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["server"] == f"BentoML Service/{SERVICE_NAME}"


@pytest.mark.server
@pytest.mark.slow
def test_a_real_server_s_504_carries_the_crisis_answers(tmp_path):
    """``recommender serve`` with a 1 s request timeout and no champion, its audit store locked
    by another process: a flagged profile's crisis answer, and a flagged batch row's, wait up
    to 2 s for their records, past the timeout (uvicorn's tasks and threads, not a test
    client's)."""
    import httpx

    from service_fixtures import KEYS, running_server

    def key(role):
        return {"Authorization": f"Bearer {KEYS[role]}"}

    home = tmp_path / "home"
    home.mkdir()
    env = {"RECOMMENDER_SERVE_TIMEOUT": "1"}
    with (
        running_server(home, env=env, ready_path="/livez") as url,
        httpx.Client(base_url=url, timeout=60) as http,
    ):
        post = http.post
        locker = sqlite3.connect(home / "audit.db", isolation_level=None, timeout=5)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            flagged = {"person_id": "r-1", "role": "resident", "crisis_risk": True}
            one = post("/recommend", json=flagged, headers=key("program"))
            batch = {"profiles": [profile(person_id="r-2"), flagged]}
            rows = post("/recommend_batch", json=batch, headers=key("program"))
        finally:
            locker.execute("ROLLBACK")
            locker.close()
    for response, index in ((one, 0), (rows, 1)):
        entry = _timed_out_entry(response)
        assert entry["index"] == index, response.text
        assert "Physician Support Line (US)" in _names(entry["answer"])  # a resident's
        assert entry["answer"]["safety"]["recorded_in"].startswith("not confirmed")
