"""/recommend answered by the front door itself: the same answers as BentoML's endpoint.

Once the front door (``recommender.service._gate.Gate``) has checked a ``/recommend`` body, it
answers it on a worker thread (``Recommender.direct_routes``) instead of handing it on to
BentoML's endpoint. Each test sends the same request both ways, the second time with the
direct route switched off, and compares status, body and headers.
"""

import csv
import dataclasses
import io

import bentoml
import pytest

from recommender.service._config import SERVICE_NAME
from recommender.service import AuditUnavailable
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)

# Differ from one answer to the next whichever way it is given.
_PER_ANSWER = ("request_id", "batch_id")


@pytest.fixture
def both_ways(asgi_client, monkeypatch):
    """``send(body) -> (direct response, BentoML endpoint's response)``."""
    asgi_client.get("/readyz")
    service = bentoml.get_current_service()

    def send(body, path="/recommend"):
        direct = asgi_client.post(path, json=body, headers=auth("program"))
        with monkeypatch.context() as patch:
            patch.setattr(type(service), "direct_routes", property(lambda self: {}))
            endpoint = asgi_client.post(path, json=body, headers=auth("program"))
        return direct, endpoint

    return service, send


def _without_ids(value):
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in _PER_ANSWER}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _same(direct, endpoint):
    assert direct.status_code == endpoint.status_code
    assert _without_ids(direct.json()) == _without_ids(endpoint.json())
    for response in (direct, endpoint):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["server"] == f"BentoML Service/{SERVICE_NAME}"
        assert int(response.headers["x-bentoml-request-id"], 16) > 0
    assert direct.headers["x-bentoml-request-id"] != endpoint.headers["x-bentoml-request-id"]


def test_the_route_is_answered_directly(asgi_client):
    service = bentoml.get_current_service()
    assert set(service.direct_routes) == {"/recommend", "/recommend_batch"}


def test_an_answer_and_its_audit_record_are_the_endpoints(both_ways, asgi_client):
    service, send = both_ways
    direct, endpoint = send(profile(person_id="p-direct", offered=["coaching", "peer_group"]))
    _same(direct, endpoint)
    assert direct.status_code == 200 and direct.json()["recommended"]
    export = asgi_client.get("/audit/export", headers=auth("auditor"))
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 2
    varying = {"request_id", "logged_at", "id"}
    first, second = ({k: v for k, v in row.items() if k not in varying} for row in rows)
    assert first == second and first["caller_role"] == "program"


@pytest.mark.parametrize(
    "body",
    [
        {**PROFILE, "crisis_risk": True},  # a valid profile flagged
        {"person_id": "p-9", "role": "nurse", "crisis_risk": True},  # the flag alone
    ],
)
def test_crisis_answers_are_the_endpoints(both_ways, body):
    _, send = both_ways
    direct, endpoint = send(body)
    _same(direct, endpoint)
    answer = direct.json()
    assert direct.status_code == 200 and answer["safety"]["level"] == "crisis"
    assert answer["ranking"] == [] and answer["recommended"] is None


def test_a_row_the_model_refuses_is_the_same_422(both_ways, linear_model, monkeypatch):
    from recommender.errors import InputError

    def refuse(profiles, **kwargs):
        raise InputError(
            "category not seen at fit time",
            problems=[{"row": 0, "column": "specialty", "value": "x", "rule": "one of [...]"}],
        )

    _, send = both_ways
    monkeypatch.setattr(linear_model, "score", refuse)
    direct, endpoint = send(PROFILE)
    _same(direct, endpoint)
    assert direct.status_code == 422 and direct.json()["problems"][0]["field"] == "row 0, specialty"


def _raising(error):
    def recommend(*args, **kwargs):
        raise error

    return recommend


def test_no_model_and_no_audit_store_are_the_same_503s(both_ways, monkeypatch):
    service, send = both_ways
    store_down = AuditUnavailable("the audit store could not be written")
    monkeypatch.setattr(service.engine, "recommend", _raising(store_down))
    direct, endpoint = send(PROFILE)
    _same(direct, endpoint)
    assert direct.status_code == 503 and "nothing was answered" in direct.json()["error"]

    monkeypatch.setattr(service, "engine", None)
    monkeypatch.setattr(service, "load_error", "no model is loaded (test)")
    direct, endpoint = send(PROFILE)
    _same(direct, endpoint)
    assert direct.status_code == 503 and "only crisis answers" in direct.json()["error"]


def test_an_unexpected_failure_is_the_same_500(both_ways, monkeypatch):
    service, send = both_ways
    monkeypatch.setattr(service.engine, "recommend", _raising(RuntimeError("a bug")))
    direct, endpoint = send(PROFILE)
    assert direct.status_code == endpoint.status_code == 500
    assert direct.json() == endpoint.json()
    assert "a bug" not in direct.text


def test_refusals_before_the_answer_are_unchanged(asgi_client):
    # Keys, roles and the body's checks stay the front door's, before any answer.
    assert asgi_client.post("/recommend", json=PROFILE).status_code == 401
    assert asgi_client.post("/recommend", json=PROFILE, headers=auth("auditor")).status_code == 403
    bad = asgi_client.post("/recommend", json={**PROFILE, "ee": 99}, headers=auth("program"))
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "ee"


def test_a_batch_is_the_endpoints(both_ways):
    _, send = both_ways
    profiles = [
        profile(person_id="b-1"),
        {**PROFILE, "person_id": "b-2", "crisis_risk": True},
        {**PROFILE, "person_id": "b-3", "ee": 99},  # its own error entry
        profile(person_id="b-4", role="nurse", offered=["coaching"]),
    ]
    direct, endpoint = send({"profiles": profiles}, "/recommend_batch")
    _same(direct, endpoint)
    batch = direct.json()
    assert direct.status_code == 200 and (batch["answered"], batch["rejected"]) == (3, 1)


def test_batch_refusals_are_the_endpoints(both_ways, monkeypatch):
    service, send = both_ways
    with monkeypatch.context() as patch:
        patch.setattr(service, "config", dataclasses.replace(service.config, max_batch_rows=2))
        direct, endpoint = send({"profiles": [PROFILE] * 3}, "/recommend_batch")
    _same(direct, endpoint)
    assert direct.status_code == 413

    monkeypatch.setattr(service, "engine", None)
    monkeypatch.setattr(service, "load_error", "no model is loaded (test)")
    flagged = {"person_id": "c-1", "role": "nurse", "crisis_risk": True}
    direct, endpoint = send({"profiles": [PROFILE, flagged]}, "/recommend_batch")
    _same(direct, endpoint)
    assert direct.status_code == 503 and direct.json()["crisis_results"][0]["index"] == 1
