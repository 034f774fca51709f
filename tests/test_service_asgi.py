"""The service's ASGI app in process (BentoML's ``to_asgi``) over a stand-in model."""

import json
import threading

import pytest

from recommender.catalog import load_catalog
from recommender.service._responses import BatchResponse, Recommendation
from service_fixtures import (  # noqa: F401  (fixtures)
    KEYS,
    PROFILE,
    LinearModel,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)


def test_recommend_answers_with_the_documented_shape(asgi_client):
    response = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert response.status_code == 200
    body = response.json()
    Recommendation.model_validate(body)  # the OpenAPI document describes what is sent
    assert body["model_version"] == "7" and body["recommended"] == "coaching"
    assert body["ranking"][0]["evidence"][0]["citation"]
    assert "not a diagnosis" in body["disclaimer"]
    assert body["safety"]["level"] == "routine"
    # The id is never echoed back as a field, at any depth (a JSON key is followed by a colon).
    assert '"person_id":' not in json.dumps(body)
    assert PROFILE["person_id"] not in response.text


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"x-api-key": KEYS["auditor"]}, 403),
        ({"x-api-key": KEYS["program"]}, 200),
        ({"Authorization": f"Bearer {KEYS['scientist']}"}, 200),
    ],
)
def test_keys_and_roles(asgi_client, headers, status):
    response = asgi_client.post("/recommend", json=PROFILE, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


# /metrics needs the Prometheus set-up of a real `bentoml serve`: see test_service_server.py
@pytest.mark.parametrize("path", ["/livez", "/readyz", "/docs.json"])
def test_probes_and_openapi_are_open(asgi_client, path):
    assert asgi_client.get(path).status_code == 200


@pytest.mark.parametrize(
    "body, field, value, accepted",
    [
        (profile(age=7), "age", 7, "an integer from 18 to 90"),
        (profile(role="surgeon"), "role", "surgeon", "one of physician, resident, nurse, app"),
        (profile(ee=54.5), "ee", 54.5, "an integer from 0 to 54"),
        (profile(weekly_hours=-1), "weekly_hours", -1, "a number from 0 to 120"),
        # A person id and an unknown field's text are never repeated (tests/test_service_problem_echo.py).
        (profile(person_id=""), "person_id", "(hidden)", "a string of 1 to 64 characters"),
        ({**PROFILE, "email": "x@y.org"}, "email", "(not shown)", "no such field"),
        (profile(offered=["yoga"]), "offered[0]", "yoga", "an arm of catalog"),
        (profile(offered=[]), "offered", [], "a list of 1 to 64 arm ids"),
        ([PROFILE], "body", None, "a JSON object"),
    ],
)
def test_validation_errors_name_field_value_and_accepted(asgi_client, body, field, value, accepted):
    response = asgi_client.post("/recommend", json=body, headers=auth("program"))
    assert response.status_code == 422, response.text
    problems = {p["field"]: p for p in response.json()["problems"]}
    assert field in problems, problems
    if value is not None:
        assert problems[field]["value"] == value
    assert accepted in problems[field]["accepted"]


def test_missing_field_and_broken_json(asgi_client):
    body = dict(PROFILE)
    del body["ee"]
    response = asgi_client.post("/recommend", json=body, headers=auth("program"))
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "ee"
    response = asgi_client.post("/recommend", content=b'{"age": 4', headers=auth("program"))
    assert response.status_code == 400 and "Invalid JSON" in response.json()["error"]


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "application/vnd.bentoml+pickle",
        "text/plain",
        "application/x-www-form-urlencoded",
    ],
)
def test_any_content_type_is_read_as_json_and_never_500(asgi_client, content_type):
    response = asgi_client.post(
        "/recommend",
        content=json.dumps(PROFILE).encode(),
        headers={**auth("program"), "content-type": content_type},
    )
    assert response.status_code == 200


def test_crisis_over_http_returns_resources_only(asgi_client, linear_model):
    response = asgi_client.post(
        "/recommend", json=profile(crisis_risk=True), headers=auth("program")
    )
    body = response.json()
    assert response.status_code == 200 and body["safety"]["level"] == "crisis"
    assert body["ranking"] == [] and body["recommended"] is None
    assert "988" in json.dumps(body["safety"]["resources"])
    assert linear_model.calls == []


def test_batch_answers_valid_rows_in_one_model_call_and_reports_the_others(
    asgi_client, linear_model
):
    rows = [profile(person_id=f"p{i}") for i in range(6)]
    rows[1]["age"] = 5
    rows[4] = {"hello": "world"}
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    )
    assert response.status_code == 200
    body = response.json()
    BatchResponse.model_validate(body)
    assert (body["answered"], body["rejected"]) == (4, 2)
    assert body["result_index"] == [0, 2, 3, 5]
    assert [e["index"] for e in body["errors"]] == [1, 4]
    assert body["errors"][0]["problems"][0]["field"] == "profiles[1].age"
    assert linear_model.calls == [4]
    assert body["arms"]["coaching"]["evidence"][0]["citation"]
    first = body["results"][0]
    assert "evidence" not in first["ranking"][0] and first["disclaimer"] is None
    assert "not a diagnosis" in body["disclaimer"]


def test_batch_limit_comes_from_the_config(asgi_client, service_home, monkeypatch):
    response = asgi_client.post("/recommend_batch", json={"profiles": []}, headers=auth("program"))
    assert response.status_code == 422


def test_audit_rows_equal_answers(asgi_client):
    answered = 0
    bodies = [PROFILE, profile(age=3), profile(crisis_risk=True), {"x": 1}, profile(ee=50, dp=20)]
    for body in bodies:
        response = asgi_client.post("/recommend", json=body, headers=auth("program"))
        answered += response.status_code == 200
    batch = asgi_client.post(
        "/recommend_batch", json={"profiles": bodies}, headers=auth("scientist")
    ).json()
    answered += batch["answered"]
    export = asgi_client.get("/audit/export", headers=auth("auditor"))
    assert export.status_code == 200
    lines = export.text.strip().splitlines()
    # singles: 3 answered; the batch: 4, since its entries share one person_id and one of
    # them flags that person for crisis risk, so every entry of theirs gets crisis resources
    assert len(lines) - 1 == answered == 7
    assert PROFILE["person_id"] not in export.text
    assert "scientist" in export.text and "crisis" in export.text


def test_audit_export_since_is_checked(asgi_client):
    response = asgi_client.get("/audit/export?since=yesterday", headers=auth("auditor"))
    assert response.status_code == 422 and response.json()["problems"][0]["field"] == "since"
    assert asgi_client.get("/audit/export", headers=auth("program")).status_code == 403


def test_model_card_pages(asgi_client, service_home):
    assert asgi_client.get("/model_card", headers=auth("auditor")).status_code == 404
    folder = service_home / "cards" / "7"
    folder.mkdir(parents=True)
    (folder / "card.html").write_text("<html><body><h1>Model card v7</h1></body></html>")
    (folder / "card.json").write_text('{"version": "7"}')
    page = asgi_client.get("/model_card", headers=auth("auditor"))
    assert page.status_code == 200 and "Model card v7" in page.text
    assert page.headers["content-type"].startswith("text/html")
    card = asgi_client.get("/model_card.json", headers=auth("scientist")).json()
    # The card as written at training, plus the exploration policy the service uses now.
    assert card["version"] == "7" and card["serving"]["exploration"]["policy"] == "thompson"
    assert "As served now:</strong> Exploration policy thompson" in page.text
    assert asgi_client.get("/model_card", headers=auth("program")).status_code == 403
    assert asgi_client.get("/model_card").status_code == 401


def test_reload_swaps_the_model_and_in_flight_requests_finish_on_the_old_one(
    asgi_client, linear_model, monkeypatch
):
    from recommender.service import service as service_module

    entered, release = threading.Event(), threading.Event()
    original_score = linear_model.score

    def slow_score(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return original_score(*args, **kwargs)

    monkeypatch.setattr(linear_model, "score", slow_score)
    newer = LinearModel(base={"coaching": -9.0, "mindfulness": -1.0}, weights={})
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (newer, "8"))

    results = {}
    in_flight = threading.Thread(
        target=lambda: results.update(
            old=asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
        )
    )
    in_flight.start()
    assert entered.wait(30)
    reloader = threading.Thread(
        target=lambda: results.update(reload=asgi_client.post("/reload", headers=auth("scientist")))
    )
    reloader.start()
    release.set()
    in_flight.join(60)
    reloader.join(60)
    assert results["old"].json()["model_version"] == "7"
    assert results["reload"].json() == {
        "previous_version": "7",
        "model_version": "8",
        "announced": True,
        "catalog_version": load_catalog().version,
        "catalog_sha256": load_catalog().sha256,
    }
    after = asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).json()
    assert after["model_version"] == "8"
    assert after["ranking"][0]["ee_effect"] == -9.0


def test_reload_is_for_scientists_and_rejects_a_body(asgi_client):
    assert asgi_client.post("/reload", headers=auth("program")).status_code == 403
    assert (
        asgi_client.post("/reload", json={"force": True}, headers=auth("scientist")).status_code
        == 422
    )


def test_openapi_document_describes_every_field(asgi_client):
    spec = asgi_client.get("/docs.json").json()
    for path in ("/recommend", "/recommend_batch", "/reload", "/model_card", "/model_card.json"):
        assert path in spec["paths"]
    text = json.dumps(spec)
    assert "MBI-HSS Emotional Exhaustion subscale score" in text
    assert "crisis resources only" in text


def test_a_profile_the_model_cannot_represent_is_a_422_not_a_500(
    asgi_client, linear_model, monkeypatch
):
    from recommender.errors import InputError

    def refuse(profiles, **kwargs):
        raise InputError(
            "category not seen at fit time",
            problems=[
                {"row": 0, "column": "specialty", "value": "oncology", "rule": "one of [...]"}
            ],
        )

    monkeypatch.setattr(linear_model, "score", refuse)
    single = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    batch = asgi_client.post(
        "/recommend_batch", json={"profiles": [PROFILE]}, headers=auth("program")
    )
    for response in (single, batch):
        assert response.status_code == 422
        assert response.json()["problems"][0]["field"] == "row 0, specialty"
    export = asgi_client.get("/audit/export", headers=auth("auditor"))
    assert len(export.text.strip().splitlines()) == 1  # nothing answered, nothing logged


def test_batch_takes_10000_profiles_and_refuses_more(asgi_client, linear_model):
    rows = [profile(person_id=f"p{i}", ee=i % 55) for i in range(10_000)]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    )
    assert response.status_code == 200
    assert response.json()["answered"] == 10_000 and linear_model.calls == [10_000]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows + [PROFILE]}, headers=auth("program")
    )
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert problem["field"] == "profiles" and "10,000" in problem["accepted"]
