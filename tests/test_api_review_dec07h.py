"""A program's-eye review of the HTTP API (session dec07h): what a program sends by mistake.

A route's fields are read from its JSON body alone (the crisis flag aside), yet a field put in
the query string instead was silently ignored, and the request went ahead without it:
``POST /erasures?dry_run=true`` erased the people for good, ``/allocate?budget=100`` planned
with no budget, ``/recommend?offered=mindfulness`` ranked arms the program had not offered.
A query parameter a route does not take is now refused 422 naming it (its value never shown),
as an unknown field of the body is; a crisis flag is still answered.
"""

from __future__ import annotations

import json

import pytest

from service_fixtures import auth, outcome, profile
from service_fixtures import (  # noqa: F401  (fixtures)
    asgi_client,
    linear_model,
    service_home,
)
from test_service_crisis_edges import audit_rows


def test_a_dry_run_asked_in_the_query_string_erases_no_one(asgi_client):
    served = asgi_client.post("/recommend", json=profile(), headers=auth("program"))
    assert served.status_code == 200, served.text
    answer = asgi_client.post(
        "/erasures?dry_run=true",
        json={"person_ids": [profile()["person_id"]]},
        headers=auth("program"),
    )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["field"] == "query string: dry_run"
    assert problem["value"] == "(not shown)" and "JSON body" in problem["accepted"]
    assert "dry_run" in answer.json()["error"]
    rows = audit_rows(asgi_client)
    assert len(rows) == 1 and ",erased," not in rows[0]  # the person's answer is still there


@pytest.mark.parametrize(
    ("route", "query", "body"),
    [
        ("/recommend", "offered=mindfulness", profile()),
        ("/recommend_batch", "alpha=0.2", {"profiles": [profile()]}),
        ("/allocate", "budget=100", {"profiles": [profile()]}),
        ("/outcomes", "correct=true", {"outcomes": [outcome("p-0001")]}),
        ("/reload", "version=3", {}),
    ],
)
def test_a_field_sent_in_the_query_string_is_refused_naming_it(asgi_client, route, query, body):
    role = "scientist" if route == "/reload" else "program"
    before = len(audit_rows(asgi_client))
    answer = asgi_client.post(f"{route}?{query}", json=body, headers=auth(role))
    assert answer.status_code == 422, answer.text
    name = query.split("=")[0]
    assert [p["field"] for p in answer.json()["problems"]] == [f"query string: {name}"]
    assert query.split("=")[1] not in json.dumps(answer.json()["problems"])
    assert len(audit_rows(asgi_client)) == before  # nothing answered, nothing recorded


def test_a_key_or_id_in_the_query_string_is_never_echoed(asgi_client):
    secret = "a-secret-key-0123456789"
    answer = asgi_client.post(
        f"/recommend?api_key={secret}&p-000123", json=profile(), headers=auth("program")
    )
    assert answer.status_code == 422, answer.text
    assert secret not in answer.text and "p-000123" not in answer.text
    fields = [p["field"] for p in answer.json()["problems"]]
    assert fields == ["query string: api_key", "query string: (a parameter; name not shown)"]


def test_the_crisis_flag_in_the_query_string_is_still_taken(asgi_client):
    for query in ("crisis_risk=false", "Crisis%20Risk=no", "", "&"):
        answer = asgi_client.post(f"/recommend?{query}", json=profile(), headers=auth("program"))
        assert answer.status_code == 200 and answer.json()["ranking"], (query, answer.text)
    flagged = asgi_client.post(
        "/recommend?crisis_risk=true", json=profile(), headers=auth("program")
    )
    assert flagged.status_code == 200 and flagged.json()["safety"]["level"] == "crisis"


def test_a_crisis_flag_is_answered_beside_a_parameter_the_route_does_not_take(asgi_client):
    # /recommend: the crisis answer, the parameter listed in `ignored` (a crisis flag never
    # turns into a 422); a batch: its 422 carries the flagged entry's crisis answer.
    flagged = {"person_id": "p-crisis", "crisis_risk": True}
    one = asgi_client.post("/recommend?offered=coaching", json=flagged, headers=auth("program"))
    assert one.status_code == 200, one.text
    assert one.json()["safety"]["level"] == "crisis" and one.json()["safety"]["resources"]
    assert [p["field"] for p in one.json()["ignored"]] == ["query string: offered"]
    by_query = asgi_client.post(
        "/recommend?crisis_risk=true&offered=coaching", json=profile(), headers=auth("program")
    )
    assert by_query.status_code == 200 and by_query.json()["safety"]["level"] == "crisis"
    batch = asgi_client.post(
        "/recommend_batch?dry_run=1",
        json={"profiles": [profile(), flagged]},
        headers=auth("program"),
    )
    assert batch.status_code == 422, batch.text
    (crisis,) = batch.json()["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["level"] == "crisis"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("since=2026-01-01&since=2099-01-01", "since", "given more than once"),
        ("from=2026-12-01", "from", "not a parameter of this route"),
        ("table=outcomes&table=recommendations", "table", "given more than once"),
    ],
)
def test_the_export_refuses_a_parameter_it_does_not_take_or_one_given_twice(
    asgi_client, query, field, message
):
    # ``since`` given twice exported from the last one alone (here: nothing, silently), and a
    # misnamed parameter (``from``) exported the whole log as if none had been given.
    asgi_client.post("/recommend", json=profile(), headers=auth("program"))
    answer = asgi_client.get(f"/audit/export?{query}", headers=auth("auditor"))
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["field"] == f"query string: {field}" and problem["message"] == message
    assert "since" in problem["accepted"] and "table" in problem["accepted"]
    fine = asgi_client.get(
        "/audit/export?since=2026-01-01&table=recommendations", headers=auth("auditor")
    )
    assert fine.status_code == 200 and len(fine.text.strip().splitlines()) == 2, fine.text
    assert asgi_client.get(f"/audit/export?{query}").status_code == 401  # the key comes first


def test_a_crisis_answer_names_an_offered_arm_the_catalog_does_not_have(asgi_client):
    # Without the flag such a profile is refused 422 (offered[0]: unknown arm); with it, the
    # crisis answer listed no problem in `ignored`, so the program never learnt that its
    # `offered` list was wrong until a later, unflagged request was refused.
    flagged = profile(offered=["yoga", "coaching"], crisis_risk=True)
    refused = asgi_client.post(
        "/recommend", json={**flagged, "crisis_risk": False}, headers=auth("program")
    )
    assert refused.status_code == 422 and refused.json()["problems"][0]["field"] == "offered[0]"
    one = asgi_client.post("/recommend", json=flagged, headers=auth("program"))
    assert one.status_code == 200 and one.json()["safety"]["level"] == "crisis", one.text
    (problem,) = one.json()["ignored"]
    assert problem["field"] == "offered[0]" and problem["value"] == "yoga"
    batch = asgi_client.post(
        "/recommend_batch",
        json={"profiles": [profile(person_id="p-2"), flagged]},
        headers=auth("program"),
    )
    assert batch.status_code == 200, batch.text
    crisis = batch.json()["results"][batch.json()["result_index"].index(1)]
    assert crisis["safety"]["level"] == "crisis"
    assert [p["field"] for p in crisis["ignored"]] == ["profiles[1].offered[0]"]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"\xef\xbb\xbf" + json.dumps(profile()).encode(), "UTF-8 byte-order mark"),
        (
            json.dumps(profile(person_id="Jos\u00e9"), ensure_ascii=False).encode("latin-1"),
            "not UTF-8 text",
        ),
    ],
)
def test_a_body_refused_for_its_encoding_says_why(asgi_client, body, said):
    # The byte-order mark was refused as "Invalid JSON: expected value at line 1 column 1",
    # which names nothing the sender can find in what it sent.
    headers = {**auth("program"), "Content-Type": "application/json; charset=latin-1"}
    for route, sent in (("/recommend", body), ("/recommend_batch", body)):
        answer = asgi_client.post(route, content=sent, headers=headers)
        assert answer.status_code == 400, answer.text
        (problem,) = answer.json()["problems"]
        assert problem["field"] == "body" and said in problem["message"], problem
        assert said in answer.json()["error"] and "send it" in answer.json()["error"]
        assert "Jos" not in answer.text


def test_what_a_person_id_accepts_is_what_is_accepted(asgi_client):
    # The refusal's `accepted` said "single spaces between them", but an id with two spaces
    # in a row is accepted (and always was: ids stored so must still hash as they did).
    spaced = asgi_client.post("/recommend", json=profile(person_id="a  b"), headers=auth("program"))
    assert spaced.status_code == 200, spaced.text
    refused = asgi_client.post("/recommend", json=profile(person_id=" a"), headers=auth("program"))
    (problem,) = refused.json()["problems"]
    assert problem["field"] == "person_id" and "single spaces" not in problem["accepted"]
    assert "spaces between them" in problem["accepted"]


@pytest.mark.parametrize(
    ("path", "body", "index"),
    [
        ("/recommend/", {"person_id": "p-crisis", "role": "nurse", "crisis_risk": True}, 0),
        ("/api/v1/Recommend", {"person_id": "p-crisis", "crisis_risk": "yes"}, 0),
        (
            "/recommend_batch/",
            {"profiles": [profile(), {"person_id": "p-c", "crisis_risk": 1}]},
            None,
        ),
        ("/Allocate//", {"profiles": [{"person_id": "p-c", "crisis_risk": True}]}, None),
    ],
)
def test_a_crisis_flag_sent_to_a_near_miss_of_a_route_still_gets_resources(
    asgi_client, path, body, index
):
    # A base URL configured with a trailing slash (`/recommend/`) or behind a proxy's prefix
    # (`/api/v1/recommend`) was answered a bare 404: the flagged person got no resources, where
    # a wrong method (405), a wrong key (401) or a bad body (400) still carries them.
    answer = asgi_client.post(path, json=body, headers=auth("program"))
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"].startswith("no such route")
    (crisis,) = answer.json()["crisis_results"]
    assert (
        crisis["answer"]["safety"]["level"] == "crisis" and crisis["answer"]["safety"]["resources"]
    )
    assert crisis["index"] == index
    assert crisis["answer"]["safety"]["recorded_in"].startswith("not recorded")
    assert "p-crisis" not in answer.text and audit_rows(asgi_client) == []


def test_a_near_miss_without_a_flag_is_a_plain_404(asgi_client):
    for path in ("/recommend/", "/api/recommend", "/recommend/p-0001", "/erasures/"):
        answer = asgi_client.post(path, json=profile(), headers=auth("program"))
        assert answer.status_code == 404 and "crisis_results" not in answer.json(), answer.text
        assert "p-0001" not in answer.text
    flagged_elsewhere = asgi_client.post(
        "/recommend/p-0001", json={"person_id": "p", "crisis_risk": True}
    )
    assert flagged_elsewhere.status_code == 404  # not a near miss: its last part is an id


def test_the_card_is_not_asked_for_another_version_in_vain(asgi_client):
    # GET /model_card?version=3 answered the served version's card, as if it were version 3's.
    for path in ("/model_card", "/model_card.json"):
        answer = asgi_client.get(f"{path}?version=3", headers=auth("auditor"))
        assert answer.status_code == 422, answer.text
        (problem,) = answer.json()["problems"]
        assert problem["field"] == "query string: version"
        assert "recommender card --model" in problem["accepted"]


def test_a_key_given_twice_in_a_batch_is_named_with_its_row(asgi_client):
    # The 422 named the key alone ("age"): in a batch of thousands of profiles the sender
    # could not tell which row to fix.
    rows = [json.dumps(profile(person_id=f"p-{i}")) for i in range(5)]
    rows[3] = rows[3][:-1] + ', "age": 50}'
    rows[4] = rows[4][:-1] + ', "ee": 3, "ee": 4}'
    text = '{"profiles": [' + ", ".join(rows) + "]}"
    headers = {**auth("program"), "content-type": "application/json"}
    answer = asgi_client.post("/recommend_batch", content=text.encode(), headers=headers)
    assert answer.status_code == 422, answer.text
    fields = [p["field"] for p in answer.json()["problems"]]
    assert fields == ["profiles[3].age", "profiles[4].ee"]
    assert answer.json()["error"].startswith("profiles[3].age: the key appears more than once")
    one = json.dumps(profile())[:-1] + ', "age": 50}'
    answer = asgi_client.post("/recommend", content=one.encode(), headers=headers)
    assert answer.status_code == 422 and answer.json()["problems"][0]["field"] == "age"
    report = '{"outcomes": [' + json.dumps(outcome("p-0"))[:-1] + ', "arm_taken": "none"}]}'
    answer = asgi_client.post("/outcomes", content=report.encode(), headers=headers)
    assert answer.status_code == 422 and answer.json()["problems"][0]["field"] == (
        "outcomes[0].arm_taken"
    )
