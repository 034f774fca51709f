"""A flagged POST /outcomes and the crisis lane (2026-12-08).

An outcome entry carrying ``crisis_risk`` true gets its person the crisis resources (the report
itself is refused: no outcome has that field). With every thread BentoML's endpoints answer on
held by requests waiting for a store another process holds locked, that crisis answer must not
wait for one of them. Reproduced: with threads+2 /allocate or /outcomes requests waiting for the
locked store, a flagged report got no answer in 8 s; it now takes the crisis lane (the handler
BentoML's endpoint calls, the same bytes), and is refused at once when the store did not take its
crisis rows, as a flagged /allocate is, rather than waiting for that store to read the report.
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
    outcome,
    profile,
    service_home,
)


def _held_by_locked_store(asgi_client, service_home, monkeypatch, route, ordinary, flagged):
    """The answer to ``flagged`` (or ``None``: none in 8 s) sent while threads+2 ``ordinary``
    bodies on ``route`` wait for the audit store another connection holds locked."""
    from recommender.service import _crisis
    from recommender.service.service import Recommender

    monkeypatch.setattr(_crisis, "CRISIS_RECORD_WAIT", 0.2)
    first = asgi_client.post("/allocate", json={"profiles": [PROFILE]}, headers=auth("program"))
    assert first.status_code == 200, first.text
    served = [
        asgi_client.post("/recommend", json=profile(person_id=f"o-{i}"), headers=auth("program"))
        for i in range(Recommender.config["threads"] + 2)
    ]
    assert all(answer.status_code == 200 for answer in served)
    time.sleep(1.1)  # an outcome is measured after its recommendation, to the second
    locker = sqlite3.connect(service_home / "audit.db", isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")
    waiting = [
        threading.Thread(
            target=asgi_client.post,
            args=(route,),
            kwargs={"json": ordinary(i), "headers": auth("program")},
        )
        for i in range(Recommender.config["threads"] + 2)
    ]
    answers = {}

    def ask():
        answers["flagged"] = asgi_client.post("/outcomes", json=flagged, headers=auth("program"))

    asking = threading.Thread(target=ask)
    try:
        for thread in waiting:
            thread.start()
        time.sleep(1.5)  # every answering thread now waits for the store
        asking.start()
        asking.join(8)
        answer = answers.get("flagged")  # while the store is still locked
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        asking.join()
        for thread in waiting:
            thread.join()
    return answer


FLAGGED = [
    {"outcomes": [outcome("c-1", crisis_risk=True)]},
    {"outcomes": [outcome("k-1"), outcome("c-2", crisis_risk=True)]},
]


@pytest.mark.parametrize("flagged", FLAGGED, ids=["every-entry-flagged", "some-flagged"])
@pytest.mark.parametrize("route", ["/outcomes", "/allocate"])
def test_a_flagged_report_is_not_queued_behind_requests_waiting_for_a_locked_store(
    asgi_client, service_home, monkeypatch, route, flagged
):
    def ordinary(i: int) -> dict:
        if route == "/outcomes":
            # A report that links to a recommendation, so it waits to write (one that links to
            # none is refused on a read, which the locked store lets through).
            return {"outcomes": [outcome(f"o-{i}")]}
        return {"profiles": [profile(person_id=f"o-{i}")]}

    answer = _held_by_locked_store(asgi_client, service_home, monkeypatch, route, ordinary, flagged)
    assert answer is not None, "no crisis answer in 8 s while the store was locked"
    # The store did not take the crisis rows: the report is refused at once (nothing recorded),
    # not after waiting for the store the crisis rows could not be written to.
    assert answer.status_code == 503, answer.text
    assert "no outcome was recorded" in answer.json()["error"], answer.text
    crisis = answer.json()["crisis_results"]
    assert [entry["index"] for entry in crisis] == [len(flagged["outcomes"]) - 1]
    safety = crisis[0]["answer"]["safety"]
    assert safety["resources"] and safety["recorded_in"].startswith("service log (fallback")


def _without_ids(text: str) -> str:
    import re

    return re.sub(r'"(request_id|plan_id|batch_id)":"[^"]*"', r'"\1":""', text)


@pytest.mark.parametrize(
    "entries, keys",
    [
        ([outcome("e-0", crisis_risk=True)], ()),
        ([outcome("e-1"), outcome("e-2", crisis_risk="yes")], ("k-0001",)),
        ([outcome("e-3", crisis_risk=1, ee_followup="x")], ()),
        ([outcome("e-4", crisis_risk=True)], ("k-0002", "k-0003")),  # two keys: refused, 400
        ([{"person_id": "e-5", "crisis_risk": True}], ()),
    ],
    ids=["flagged", "some-flagged-keyed", "with-a-bad-field", "two-keys", "flag-only"],
)
def test_a_flagged_report_answered_on_the_crisis_lane_is_the_endpoint_s_answer(
    asgi_client, monkeypatch, entries, keys
):
    """The front door's answer to a flagged /outcomes is BentoML's endpoint's, byte for byte
    but for the ids every answer makes afresh, status and headers included; the Idempotency-Key
    lines reach the handler as they reach the endpoint."""
    import bentoml

    from recommender.service._config import SERVICE_NAME

    from recommender.service._answering import Answering

    asgi_client.get("/readyz")
    service = bentoml.get_current_service()
    laned, handler = [], Answering._outcomes_body

    def spied(self, body, role, key_lines, caller):
        laned.append(list(key_lines))
        return handler(self, body, role, key_lines, caller)

    monkeypatch.setattr(Answering, "_outcomes_body", spied)
    headers = [*auth("program").items(), *(("Idempotency-Key", key) for key in keys)]
    body = {"outcomes": entries}
    direct = asgi_client.post("/outcomes", json=body, headers=headers)
    assert laned == [list(keys)]  # on the crisis lane, with its key lines
    monkeypatch.setattr(type(service), "crisis_lane_routes", property(lambda self: {}))
    endpoint = asgi_client.post("/outcomes", json=body, headers=headers)

    assert direct.status_code == endpoint.status_code, direct.text
    assert direct.status_code == (400 if len(keys) > 1 else 422), direct.text
    assert _without_ids(direct.text) == _without_ids(endpoint.text)
    assert direct.json()["crisis_results"]
    for response in (direct, endpoint):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["server"] == f"BentoML Service/{SERVICE_NAME}"


@pytest.mark.parametrize(
    "entries",
    [[outcome("n-1")], [outcome("n-2", crisis_risk=False)], [outcome("n-3", crisis_risk="no")]],
    ids=["no-flag", "false", "refused-not-flagged"],
)
def test_a_report_not_flagged_stays_on_bentoml_s_endpoint(asgi_client, monkeypatch, entries):
    from recommender.service._answering import Answering

    def not_here(self, *args):
        raise AssertionError("a report not flagged was answered on the crisis lane")

    monkeypatch.setattr(Answering, "_outcomes_body", not_here)
    asgi_client.get("/readyz")
    answer = asgi_client.post("/outcomes", json={"outcomes": entries}, headers=auth("program"))
    assert answer.status_code != 500, answer.text
