"""A crisis flag gets its resources at the edges the schema cannot see (issue 9, item 4).

Found by running a real ``recommender serve`` against hostile and failing conditions: a body
with a key given twice, a batch or plan with an entry that is not an object or a field of its
own out of range, and a plan naming a flagged person twice. The service's own app in process,
over the stand-in model.
"""

import json

import pytest

from recommender.service._responses import BatchResponse, Recommendation
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)


def audit_rows(client):
    export = client.get("/audit/export", headers=auth("auditor"))
    assert export.status_code == 200
    return export.text.strip().splitlines()[1:]


def post_text(client, route, text):
    return client.post(
        route,
        content=text.encode(),
        headers={**auth("program"), "content-type": "application/json"},
    )


# -- a key given twice ----------------------------------------------------------------------------
def test_a_flagged_body_with_another_key_given_twice_gets_crisis_resources(asgi_client):
    text = json.dumps({"person_id": "c-1", "crisis_risk": True, "age": 40})[:-1] + ', "age": 41}'
    response = post_text(asgi_client, "/recommend", text)
    assert response.status_code == 200, response.text
    answer = response.json()
    Recommendation.model_validate(answer)
    assert answer["safety"]["level"] == "crisis" and answer["safety"]["resources"]
    # the repeated key is named, neither used nor stored
    (ignored,) = answer["ignored"]
    assert ignored["field"] == "age" and ignored["message"] == "duplicate key"
    (row,) = audit_rows(asgi_client)
    assert ",crisis," in row


def test_a_crisis_flag_given_twice_once_true_gets_crisis_resources(asgi_client, linear_model):
    # Neither reading of '"crisis_risk": true, ..., "crisis_risk": false' is safe to rank on;
    # the one that cannot withhold resources is the crisis answer.
    text = json.dumps({**PROFILE, "crisis_risk": True})[:-1] + ', "crisis_risk": false}'
    response = post_text(asgi_client, "/recommend", text)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["safety"]["level"] == "crisis" and answer["ranking"] == []
    assert [p["field"] for p in answer["ignored"]] == ["crisis_risk"]
    assert linear_model.calls == []


def test_a_key_given_twice_without_a_flag_is_still_refused(asgi_client):
    text = json.dumps(PROFILE)[:-1] + ', "age": 50}'
    response = post_text(asgi_client, "/recommend", text)
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "age"
    assert audit_rows(asgi_client) == []


@pytest.mark.parametrize("route", ["/recommend_batch", "/allocate"])
def test_a_batch_refused_for_a_key_given_twice_still_answers_its_crisis_rows(asgi_client, route):
    text = (
        '{"profiles": ['
        + json.dumps(profile(person_id="ok"))
        + ", "
        + json.dumps({"person_id": "c-2", "crisis_risk": True, "role": "nurse"})
        + ", "
        + json.dumps(profile(person_id="twice"))[:-1]
        + ', "age": 50}]}'
    )
    response = post_text(asgi_client, route, text)
    assert response.status_code == 422, response.text
    body = response.json()
    # named where it is (tests/test_api_review_dec07h.py), not "age" alone
    assert body["problems"][0]["field"] == "profiles[2].age" and "more than once" in body["error"]
    (crisis,) = body["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["level"] == "crisis"
    (row,) = audit_rows(asgi_client)  # the crisis answer is recorded, nothing else
    assert ",crisis," in row


# -- an entry that is not an object ---------------------------------------------------------------
@pytest.mark.parametrize("entry", [5, None, "p-9", [1]])
def test_a_batch_entry_that_is_not_an_object_gets_its_own_error(asgi_client, entry):
    rows = [profile(person_id="ok"), {"person_id": "c-3", "crisis_risk": True}, entry]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    BatchResponse.model_validate(body)
    assert body["result_index"] == [0, 1] and body["answered"] == 2 and body["rejected"] == 1
    (error,) = body["errors"]
    assert error["index"] == 2 and error["problems"][0]["field"] == "profiles[2]"
    assert "object" in error["problems"][0]["accepted"]
    assert body["results"][1]["safety"]["level"] == "crisis"
    assert len(audit_rows(asgi_client)) == 2  # both answers, nothing of the bad entry


def test_a_plan_with_an_entry_that_is_not_an_object_names_it_and_answers_crisis_rows(
    asgi_client, linear_model
):
    rows = [profile(person_id="ok"), {"person_id": "c-4", "crisis_risk": True}, 7]
    response = asgi_client.post("/allocate", json={"profiles": rows}, headers=auth("program"))
    assert response.status_code == 422, response.text
    body = response.json()
    assert [p["field"] for p in body["problems"]] == ["profiles[2]"]
    (crisis,) = body["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["level"] == "crisis"
    assert linear_model.calls == []


# -- a flagged person named again in the same plan -------------------------------------------------
def test_a_plan_does_not_allocate_an_arm_to_a_person_it_was_told_is_in_crisis(
    asgi_client, linear_model
):
    rows = [
        profile(person_id="a"),
        {"person_id": "c-5", "crisis_risk": True},
        profile(person_id="c-5"),
    ]
    response = asgi_client.post("/allocate", json={"profiles": rows}, headers=auth("program"))
    assert response.status_code == 422, response.text
    body = response.json()
    (problem,) = body["problems"]
    assert problem["field"] == "profiles[2].person_id" and "profiles[1]" in problem["accepted"]
    (crisis,) = body["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["resources"]
    assert linear_model.calls == []


# -- a batch or plan refused for a field of its own ------------------------------------------------
@pytest.mark.parametrize(
    ("route", "fields", "field"),
    [
        ("/allocate", {"budget": -5}, "budget"),
        ("/allocate", {"capacity": {"coaching": 2.5}}, "capacity.coaching"),
        ("/allocate", {"floors": {"nurse": 2}}, "floors.nurse"),
        ("/allocate", {"budgett": 5}, "budgett"),
        ("/recommend_batch", {"extra": 1}, "extra"),
    ],
)
def test_a_batch_or_plan_refused_for_its_own_fields_still_answers_its_crisis_rows(
    asgi_client, linear_model, route, fields, field
):
    rows = [profile(person_id="ok"), {"person_id": "c-7", "crisis_risk": True, "role": "app"}]
    response = asgi_client.post(route, json={"profiles": rows, **fields}, headers=auth("program"))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["problems"][0]["field"] == field
    (crisis,) = body["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["level"] == "crisis"
    assert not any("Physician" in r["name"] for r in crisis["answer"]["safety"]["resources"])
    assert linear_model.calls == []
    (row,) = audit_rows(asgi_client)
    assert ",crisis," in row


# -- a flag with spaces around it -----------------------------------------------------------------
@pytest.mark.parametrize("flag", ["true ", " yes", "TRUE\n", "\tY"])
def test_a_flag_that_reads_as_true_once_spaces_are_trimmed_gets_crisis_resources(asgi_client, flag):
    # A flag copied from a form or a spreadsheet cell keeps its spaces; it still says yes.
    for route in ("/recommend", "/recommend_batch"):
        body = {"person_id": "c-9", "crisis_risk": flag}
        sent = body if route == "/recommend" else {"profiles": [body]}
        response = asgi_client.post(route, json=sent, headers=auth("program"))
        assert response.status_code == 200, response.text
        answer = response.json() if route == "/recommend" else response.json()["results"][0]
        assert answer["safety"]["level"] == "crisis", route


def test_a_flag_that_reads_as_false_with_spaces_is_still_refused(asgi_client):
    response = asgi_client.post(
        "/recommend", json={**PROFILE, "crisis_risk": "false "}, headers=auth("program")
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "crisis_risk"


# -- a flag that cannot be read either way ---------------------------------------------------------
@pytest.mark.parametrize("flag", ["maybe", 2, "unknown", {"set": True}])
def test_a_flag_that_cannot_be_read_gets_crisis_resources_and_is_named(
    asgi_client, linear_model, flag
):
    # It was refused 422 with nothing for the person; a file's unreadable flag is refused but
    # its person listed with the resources. A request is answered as flagged (nothing ranked),
    # and the value is named among the fields sent but not accepted.
    for route in ("/recommend", "/recommend_batch", "/allocate"):
        body = {**PROFILE, "person_id": "c-12", "crisis_risk": flag}
        sent = body if route == "/recommend" else {"profiles": [body]}
        response = asgi_client.post(route, json=sent, headers=auth("program"))
        assert response.status_code == 200, (route, response.text)
        if route == "/recommend":
            answer = response.json()
        elif route == "/recommend_batch":
            answer = response.json()["results"][0]
        else:
            answer = response.json()["assignments"][0]
        assert answer["safety"]["level"] == "crisis", route
        assert any(p["field"].endswith("crisis_risk") for p in answer["ignored"]), answer
    assert linear_model.calls == []


# -- a batch naming a flagged person again ----------------------------------------------------------
def test_a_batch_entry_of_a_person_flagged_in_another_entry_gets_crisis_resources(
    asgi_client, linear_model
):
    flagged = {"person_id": "c-5", "crisis_risk": True, "role": "resident"}
    again = profile(person_id="c-5", ee=20)  # valid, unflagged: would be ranked on its own
    other = profile(person_id="ok-5")
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": [again, flagged, other]}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    BatchResponse.model_validate(body)
    assert body["result_index"] == [0, 1, 2] and body["answered"] == 3
    first, second, third = body["results"]
    for answer in (first, second):
        assert answer["safety"]["level"] == "crisis" and answer["ranking"] == []
        assert answer["safety"]["resources"]
    assert first["ignored"][0]["field"] == "profiles[0].crisis_risk"
    assert "profiles[1] flags the same person_id" in first["ignored"][0]["message"]
    assert third["ranking"] and third["safety"]["level"] != "crisis"
    assert linear_model.calls == [1]  # only ok-5 was scored
    assert len(audit_rows(asgi_client)) == 3


# -- a caller without a valid key -----------------------------------------------------------------
WITHOUT_KEY = [({}, 401), ({"Authorization": "Bearer nope"}, 401), (auth("auditor"), 403)]


@pytest.mark.parametrize("headers, status", WITHOUT_KEY)
def test_a_flagged_profile_from_a_caller_without_a_valid_key_still_gets_crisis_resources(
    asgi_client, linear_model, headers, status
):
    # A program whose key was rotated or mistyped is refused, but the person it asks about is
    # still given the resources: they are public, and the answer names no model and no figure.
    flagged = {"person_id": "c-11", "crisis_risk": "yes", "role": "resident"}
    response = asgi_client.post("/recommend", json=flagged, headers=headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["error"] and body["problems"] == []
    (crisis,) = body["crisis_results"]
    answer = crisis["answer"]
    Recommendation.model_validate(answer)
    assert crisis["index"] == 0 and answer["safety"]["level"] == "crisis"
    assert any("Physician" in r["name"] for r in answer["safety"]["resources"])
    assert answer["ranking"] == [] and answer["safety"]["recorded_in"].startswith("not recorded")
    assert "c-11" not in response.text
    assert linear_model.calls == []
    assert audit_rows(asgi_client) == []  # a refused caller writes nothing to the audit log


@pytest.mark.parametrize("route", ["/recommend_batch", "/allocate"])
@pytest.mark.parametrize("headers, status", WITHOUT_KEY)
def test_a_batch_or_plan_from_a_caller_without_a_valid_key_answers_its_crisis_rows(
    asgi_client, linear_model, route, headers, status
):
    rows = [profile(person_id="ok"), {"person_id": "c-12", "crisis_risk": True, "role": "nurse"}]
    response = asgi_client.post(route, json={"profiles": rows}, headers=headers)
    assert response.status_code == status, response.text
    (crisis,) = response.json()["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["level"] == "crisis"
    assert not any("Physician" in r["name"] for r in crisis["answer"]["safety"]["resources"])
    assert linear_model.calls == [] and audit_rows(asgi_client) == []


@pytest.mark.parametrize(
    "route, text",
    [
        ("/recommend", json.dumps(PROFILE)),  # not flagged
        ("/recommend", '{"person_id": "c-13", "crisis_risk": false'),  # not JSON, not flagged
        ("/recommend", "[" * 40 + "]" * 40),  # nested too deep to read
        ("/recommend", ""),
        ("/recommend_batch", '{"profiles": {"person_id": "c-13", "crisis_risk": false}}'),
        ("/model_card", json.dumps({"person_id": "c-13", "crisis_risk": True})),
    ],
)
def test_a_refused_caller_without_a_crisis_flag_gets_the_plain_refusal(asgi_client, route, text):
    response = asgi_client.post(
        route, content=text.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code in (401, 405), response.text
    if response.status_code == 401:
        assert set(response.json()) == {"error", "problems"}
