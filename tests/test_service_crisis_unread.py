"""A body the service cannot read still gets crisis resources when its text sets crisis_risk.

A body that is not JSON (truncated, a Python dict's repr, a form, a multipart upload), nested
too deep, or too large is refused as before (400, 413, same error and problems); when its text
sets ``crisis_risk``, the refusal carries one crisis answer for the request in
``crisis_results`` (index 0 on /recommend, null on a batch or plan: which entry set it cannot
be told), for every role, recorded like every crisis answer, never echoing the body. The text
is read only on the refusal path, and in entries of a batch or plan that are no object; a
batch over the service's row limit still answers its flagged entries. The service's own app in process, over the stand-in model;
``tests/test_service_crisis_server.py`` sends the same bodies to a real ``recommender serve``.
"""

from __future__ import annotations

import json

import pytest

from recommender.service._crisis import crisis_in_text
from recommender.service._responses import Recommendation
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)
from test_service_allocate import two_row_limit  # noqa: F401  (fixture)
from test_service_crisis_edges import audit_rows
from test_service_openapi import assert_documented, document  # noqa: F401  (fixture)

FLAGGED = {"person_id": "u-1", "crisis_risk": True, "role": "nurse"}


@pytest.mark.parametrize(
    "text",
    [
        b'{"person_id": "a", "crisis_risk": true,',
        b'{"crisis_risk":"yes"',
        b"{'crisis_risk': True, 'person_id': 'a'}",
        b"person_id=a&crisis_risk=on",
        b'name="crisis_risk"\r\n\r\ntrue\r\n--boundary',
        b'"{\\"crisis_risk\\": \\"TRUE \\"}"',
        b'{"profiles": [{"crisis_risk": 1}, {"crisis_risk": false}',
        b'{"crisis_risk": false, "crisis_risk": true',
    ],
)
def test_a_crisis_flag_is_seen_in_text_no_parser_reads(text):
    assert crisis_in_text(text)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b'{"person_id": "a", "crisis_risk": false,',
        b'{"crisis_risk": "no"}',
        b'{"crisis_risk": 10}',
        b'{"crisis_risk": "yesterday"}',
        b'{"crisis_risk": null}',
        b'{"prior_crisis_risk": true}',
        b'{"crisis": true}',
        b"crisis_risk" * 1000,
    ],
)
def test_text_that_does_not_set_the_flag_is_not_read_as_flagged(text):
    assert not crisis_in_text(text)


def post(client, route, content: bytes, headers=None, content_type="application/json"):
    return client.post(
        route,
        content=content,
        headers={**auth("program"), "content-type": content_type, **(headers or {})},
    )


def cohort(entry: bytes) -> bytes:
    return b'{"profiles": [' + json.dumps(profile(person_id="u-0")).encode() + b", " + entry + b"]}"


UNREADABLE = {
    "truncated JSON": (json.dumps(FLAGGED)[:-1].encode(), "application/json"),
    "a Python dict's repr": (repr(FLAGGED).encode(), "application/json"),
    "nested too deep": (
        json.dumps({**FLAGGED, "notes": [[[]]]}).replace("[[[]]]", "[" * 40 + "]" * 40).encode(),
        "application/json",
    ),
    "a form": (b"person_id=u-1&crisis_risk=on&role=nurse", "application/x-www-form-urlencoded"),
    "a multipart upload": (
        b'--b\r\nContent-Disposition: form-data; name="person_id"\r\n\r\nu-1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="crisis_risk"\r\n\r\ntrue\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
}


def unflagged(text: bytes) -> bytes:
    return text.replace(b"crisis_risk", b"crisis_riks")


@pytest.mark.parametrize("route", ["/recommend", "/recommend_batch", "/allocate"])
@pytest.mark.parametrize("kind", sorted(UNREADABLE))
def test_an_unreadable_body_whose_text_sets_the_flag_keeps_its_refusal_and_gets_resources(
    asgi_client, linear_model, document, route, kind
):
    text, content_type = UNREADABLE[kind]
    if route != "/recommend" and content_type == "application/json":
        text = cohort(text)
    response = post(asgi_client, route, text, content_type=content_type)
    plain = post(asgi_client, route, unflagged(text), content_type=content_type)
    assert response.status_code == plain.status_code == 400, response.text
    body = response.json()
    # the refusal as it was: same error, same problems naming the body
    assert body["error"] == plain.json()["error"] and body["problems"] == plain.json()["problems"]
    assert body["problems"][0]["field"] == "body"
    (crisis,) = body["crisis_results"]
    assert crisis["index"] == (0 if route == "/recommend" else None)
    answer = crisis["answer"]
    Recommendation.model_validate(answer)
    assert answer["safety"]["level"] == "crisis" and answer["ranking"] == []
    # the role could not be read: the resources of every role, the physicians' line included
    assert any("Physician" in r["name"] for r in answer["safety"]["resources"])
    (ignored,) = answer["ignored"]
    assert ignored["field"] == "body" and "once for the request" in ignored["message"]
    assert answer["safety"]["recorded_in"] == "audit log"
    assert "u-1" not in response.text and "u-0" not in response.text  # nothing echoed
    (row,) = audit_rows(asgi_client)
    assert ",crisis," in row and "u-1" not in row
    assert linear_model.calls == []
    assert_documented(document, route, response)


@pytest.mark.parametrize("route", ["/recommend", "/recommend_batch", "/allocate"])
def test_a_body_too_large_is_scanned_up_to_the_bytes_read(asgi_client, monkeypatch, route):
    # The front door reads at most MAX_BODY_BYTES of a body and looks for the flag there only:
    # a flag beyond them is never received.
    from recommender.service import _gate

    monkeypatch.setattr(_gate, "MAX_BODY_BYTES", 4096)
    padding = b'"' + b"x" * 8192 + b'"'
    early = b'{"crisis_risk": true, "notes": ' + padding + b"}"
    late = b'{"notes": ' + padding + b', "crisis_risk": true}'
    if route != "/recommend":
        early, late = cohort(early), cohort(late)
    response = post(asgi_client, route, early)
    assert response.status_code == 413, response.text
    assert response.json()["problems"][0]["message"] == "too large"
    (crisis,) = response.json()["crisis_results"]
    assert crisis["answer"]["safety"]["level"] == "crisis"
    beyond = post(asgi_client, route, late)
    assert beyond.status_code == 413 and "crisis_results" not in beyond.json()


@pytest.mark.parametrize("route", ["/recommend", "/recommend_batch", "/allocate"])
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_a_refused_caller_with_an_unreadable_flagged_body_gets_resources_recorded_nowhere(
    asgi_client, route, key
):
    headers = {"content-type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    text = json.dumps(FLAGGED)[:-1].encode()
    response = asgi_client.post(route, content=text, headers=headers)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["problems"] == []
    (crisis,) = body["crisis_results"]
    assert crisis["answer"]["safety"]["recorded_in"].startswith("not recorded")
    assert audit_rows(asgi_client) == []


NOT_AN_ENTRY = [
    b'{"profiles": {"person_id": "u-1", "crisis_risk": true}}',  # not a list
    b'{"crisis_risk": true, "profiles": []}',  # flagged beside the entries
]


@pytest.mark.parametrize("route", ["/recommend_batch", "/allocate"])
@pytest.mark.parametrize("text", NOT_AN_ENTRY)
def test_a_readable_batch_whose_flag_is_in_no_entry_gets_resources_once(
    asgi_client, document, route, text
):
    response = post(asgi_client, route, text)
    assert response.status_code == 422, response.text
    (crisis,) = response.json()["crisis_results"]
    assert crisis["index"] is None and crisis["answer"]["safety"]["level"] == "crisis"
    assert "u-1" not in json.dumps(crisis)  # (the refusal's problems echo what they name)
    assert_documented(document, route, response)


def test_a_body_read_as_a_string_holding_a_flagged_profile_gets_resources(asgi_client):
    text = json.dumps(json.dumps(FLAGGED)).encode()  # JSON encoded twice: a string
    response = post(asgi_client, "/recommend", text)
    assert response.status_code == 422, response.text
    (crisis,) = response.json()["crisis_results"]
    assert crisis["index"] == 0 and crisis["answer"]["safety"]["level"] == "crisis"


def test_the_text_is_read_only_when_a_body_is_refused(asgi_client, monkeypatch):
    from recommender.service import _refused

    def never(body):
        raise AssertionError("the text of an accepted body was scanned")

    monkeypatch.setattr(_refused, "crisis_in_text", never)
    assert post(asgi_client, "/recommend", json.dumps(PROFILE).encode()).status_code == 200
    batch = {"profiles": [profile(person_id="a"), {"person_id": "b", "crisis_risk": True}]}
    for route in ("/recommend_batch", "/allocate"):
        assert post(asgi_client, route, json.dumps(batch).encode()).status_code == 200
    flagged = post(asgi_client, "/recommend", json.dumps(FLAGGED).encode())
    assert flagged.status_code == 200 and flagged.json()["safety"]["level"] == "crisis"


# -- entries that are no profile, and too many entries ----------------------------------------
def test_a_batch_entry_sent_as_a_json_string_whose_text_sets_the_flag_gets_resources(
    asgi_client, linear_model, document
):
    entries = [profile(person_id="u-0"), json.dumps(FLAGGED), "not a profile"]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": entries}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result_index"] == [0, 1] and [e["index"] for e in body["errors"]] == [2]
    crisis = body["results"][1]
    assert crisis["safety"]["level"] == "crisis" and crisis["ranking"] == []
    (ignored,) = crisis["ignored"]
    assert ignored["field"] == "profiles[1]" and "not an object" in ignored["message"]
    assert "u-1" not in json.dumps(crisis)
    assert_documented(document, "/recommend_batch", response)


def test_a_plan_entry_sent_as_a_json_string_whose_text_sets_the_flag_gets_resources(
    asgi_client, document
):
    entries = [profile(person_id="u-0"), json.dumps(FLAGGED)]
    response = asgi_client.post("/allocate", json={"profiles": entries}, headers=auth("program"))
    assert response.status_code == 200, response.text
    first, flagged = response.json()["assignments"]
    assert first["allocated"] is not None
    assert flagged["allocated"] is None and flagged["safety"]["level"] == "crisis"
    assert flagged["ignored"][0]["field"] == "profiles[1]"
    assert_documented(document, "/allocate", response)


@pytest.mark.parametrize("route", ["/recommend_batch", "/allocate"])
def test_a_batch_over_the_services_row_limit_still_answers_its_crisis_rows(
    two_row_limit, asgi_client, linear_model, document, route
):
    entries = [profile(person_id="u-0"), profile(person_id="u-2"), FLAGGED]
    response = asgi_client.post(route, json={"profiles": entries}, headers=auth("program"))
    assert response.status_code == 413, response.text
    assert response.json()["problems"][0]["accepted"] == "at most 2 entries"
    (crisis,) = response.json()["crisis_results"]
    assert crisis["index"] == 2 and crisis["answer"]["safety"]["level"] == "crisis"
    assert linear_model.calls == []
    assert_documented(document, route, response)


@pytest.mark.parametrize("route", ["/recommend", "/recommend_batch", "/allocate"])
@pytest.mark.parametrize(
    "method, query, text",
    [
        ("GET", "crisis_risk=true&person_id=u-1", b""),  # a browser's address bar
        ("PUT", "", json.dumps(FLAGGED).encode()),
        ("DELETE", "", b'{"profiles": [{"person_id": "u-1", "crisis_risk": "yes"}]}'),
    ],
)
def test_a_method_the_route_does_not_take_keeps_its_405_and_gets_resources(
    asgi_client, route, method, query, text
):
    # The 405 named the methods the route takes and withheld the resources of the flag sent
    # with it; now the flag in the query string or the body is answered once for the request,
    # recorded nowhere (no key was asked for), and nothing sent is echoed.
    url = f"{route}?{query}" if query else route
    response = asgi_client.request(method, url, content=text)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    body = response.json()
    assert body["problems"][0] == {
        "field": "method",
        "value": method,
        "message": "not taken here",
        "accepted": "POST",
    }
    (crisis,) = body["crisis_results"]
    assert crisis["index"] == (0 if route == "/recommend" else None)
    answer = crisis["answer"]
    assert answer["safety"]["level"] == "crisis" and answer["safety"]["resources"]
    assert answer["safety"]["recorded_in"].startswith("not recorded")
    assert "u-1" not in response.text
    assert audit_rows(asgi_client) == []
    # unflagged (or flagged false), the same 405 without a crisis answer
    plain = asgi_client.request(method, unflagged(url.encode()).decode(), content=unflagged(text))
    off = asgi_client.request("GET", f"{route}?crisis_risk=false")
    for refused in (plain, off):
        assert refused.status_code == 405 and refused.headers["allow"] == "POST"
        assert "crisis_results" not in refused.json()
    assert plain.json() == {k: v for k, v in body.items() if k != "crisis_results"}
