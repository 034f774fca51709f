"""Request shapes real clients send, and the crisis flag in each: it is never lost.

A flag in the query string (``POST /recommend?crisis_risk=true``) flags the whole request,
whatever the body says: ``/recommend`` gives the crisis answer; a batch, plan or outcome report
(which entry it flags cannot be told) is refused 422 naming the parameter, with one crisis
answer for the request (index null) beside those of its flagged entries. The key written in
another case or with spaces (``"Crisis Risk"``), a form, UTF-16 text, a gzip body and an
outcome flagged for crisis risk each carry crisis resources too, and every answer says where
its flag was read. The service's own app in process, over the stand-in model; the shapes that
only a real server shows (chunked, ``Expect: 100-continue``, compressed and very slow bodies)
are sent to a real ``recommender serve`` at the end.
"""

from __future__ import annotations

import gzip
import json
import select
import socket
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from service_fixtures import KEYS, PROFILE, auth, profile, running_server
from service_fixtures import (  # noqa: F401  (fixtures)
    asgi_client,
    champion_home,
    linear_model,
    service_home,
)
from test_service_crisis_edges import audit_rows
from test_service_openapi import assert_documented, document  # noqa: F401  (fixture)

COHORT_ROUTES = ("/recommend_batch", "/allocate")


def post(client, route, content: bytes, headers=None, content_type="application/json"):
    return client.post(
        route,
        content=content,
        headers={**auth("program"), "content-type": content_type, **(headers or {})},
    )


def outcome(**changes) -> dict:
    return {
        "person_id": PROFILE["person_id"],
        "measured_at": "2030-01-01T00:00:00+00:00",
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 5,
        "pa_followup": 40,
        **changes,
    }


def valid_body(route: str) -> bytes:
    if route == "/recommend":
        return json.dumps(PROFILE).encode()
    if route == "/outcomes":
        return json.dumps({"outcomes": [outcome()]}).encode()
    return json.dumps({"profiles": [PROFILE, profile(person_id="p-0002")]}).encode()


def is_crisis(answer: dict) -> bool:
    return answer["safety"]["level"] == "crisis" and answer["ranking"] == []


# -- the query string --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query, name",
    [
        ("crisis_risk=true", "crisis_risk"),
        ("Crisis_Risk=YES", "Crisis_Risk"),
        ("crisis%5Frisk=1", "crisis_risk"),
        ("crisis+risk=on", "crisis risk"),
        ("person_id=x&crisis_risk", "crisis_risk"),  # a bare name: a flag set
        ("crisis_risk=maybe", "crisis_risk"),  # unreadable counts as set, as in a body
    ],
)
def test_a_query_string_flag_gets_recommend_the_crisis_answer_whatever_the_body_says(
    asgi_client, linear_model, document, query, name
):
    # The valid profile was ranked and the query string's flag ignored; a body flagged false
    # does not switch it off either.
    for body in (PROFILE, profile(crisis_risk=False)):
        response = post(asgi_client, f"/recommend?{query}", json.dumps(body).encode())
        assert response.status_code == 200, response.text
        answer = response.json()
        assert is_crisis(answer) and answer["recommended"] is None
        note = answer["ignored"][0]
        assert note["field"] == f"query string: {name}"
        assert note["message"].startswith("read from the query string as a crisis flag")
        assert_documented(document, "/recommend", response)
    assert linear_model.calls == []
    rows = audit_rows(asgi_client)
    assert len(rows) == 2 and all(",crisis," in row for row in rows)


# A misspelt flag (``crisis_risks=true``) is no longer ignored: a parameter a route does not
# take is refused 422 naming it (tests/test_api_review_dec07h.py).
@pytest.mark.parametrize("query", ["crisis_risk=false", "crisis_risk=", ""])
def test_a_query_string_that_does_not_set_the_flag_changes_nothing(asgi_client, query):
    for route in ("/recommend", *COHORT_ROUTES):
        response = post(asgi_client, f"{route}?{query}", valid_body(route))
        assert response.status_code == 200, response.text
        assert "crisis_results" not in response.json()
    answer = post(asgi_client, f"/recommend?{query}", valid_body("/recommend")).json()
    assert answer["safety"]["level"] != "crisis" and answer["ranking"]


@pytest.mark.parametrize("route", [*COHORT_ROUTES, "/outcomes"])
def test_a_query_string_flag_refuses_a_batch_plan_or_report_with_one_crisis_answer(
    asgi_client, linear_model, document, route
):
    # Which entry the flag is for cannot be told: the request is refused naming the
    # parameter, and its crisis answer is given once for the request.
    response = post(asgi_client, f"{route}?crisis_risk=true", valid_body(route))
    assert response.status_code == 422, response.text
    body = response.json()
    (problem,) = body["problems"]
    assert problem["field"] == "query string: crisis_risk" and problem["value"] == "true"
    assert "each flagged entry" in problem["accepted"]
    (crisis,) = body["crisis_results"]
    assert crisis["index"] is None and is_crisis(crisis["answer"])
    assert crisis["answer"]["ignored"][0]["field"] == "query string: crisis_risk"
    assert "p-0001" not in response.text
    assert linear_model.calls == []
    assert_documented(document, route, response)


@pytest.mark.parametrize("route", COHORT_ROUTES)
def test_a_query_string_flag_keeps_the_crisis_answers_of_flagged_entries(asgi_client, route):
    entries = {"profiles": [PROFILE, {"person_id": "u-2", "crisis_risk": True}]}
    response = post(asgi_client, f"{route}?crisis_risk=1", json.dumps(entries).encode())
    assert response.status_code == 422, response.text
    first, last = response.json()["crisis_results"]
    assert first["index"] == 1 and last["index"] is None
    assert is_crisis(first["answer"]) and is_crisis(last["answer"])


@pytest.mark.parametrize("route", ["/recommend", *COHORT_ROUTES, "/outcomes"])
def test_a_query_string_flag_is_answered_for_a_refused_caller_and_an_unreadable_body(
    asgi_client, route
):
    no_key = asgi_client.post(
        f"{route}?crisis_risk=true",
        content=valid_body(route),
        headers={"content-type": "application/json"},
    )
    assert no_key.status_code == 401, no_key.text
    (crisis,) = no_key.json()["crisis_results"]
    assert crisis["answer"]["safety"]["recorded_in"].startswith("not recorded")
    cut = post(asgi_client, f"{route}?Crisis_Risk=y", valid_body(route)[:-1])
    assert cut.status_code == 400, cut.text
    (crisis,) = cut.json()["crisis_results"]
    assert crisis["index"] == (0 if route == "/recommend" else None)
    assert crisis["answer"]["ignored"][0]["field"] == "query string: Crisis_Risk"
    (row,) = audit_rows(asgi_client)  # the refused caller's answer is recorded nowhere
    assert ",crisis," in row


# -- the key as people write it ----------------------------------------------------------------
SPELLINGS = [
    "Crisis_Risk",
    " crisis_risk",
    "crisis risk",
    "crisis-risk",
    "crisisRisk",
    "CRISIS RISK",
]


@pytest.mark.parametrize("key", SPELLINGS)
def test_the_flag_written_in_another_case_or_with_spaces_gets_the_crisis_answer(
    asgi_client, linear_model, document, key
):
    # Refused 422 as an unknown field, without the resources; now the person gets them and the
    # key is named in 'ignored' (the request model still takes crisis_risk alone).
    response = post(asgi_client, "/recommend", json.dumps({**PROFILE, key: True}).encode())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert is_crisis(answer)
    assert [p["field"] for p in answer["ignored"]] == [key]
    assert_documented(document, "/recommend", response)
    disagree = {**PROFILE, "crisis_risk": False, key: "yes"}
    assert is_crisis(post(asgi_client, "/recommend", json.dumps(disagree).encode()).json())
    for route in COHORT_ROUTES:
        entries = {"profiles": [PROFILE, {"person_id": "u-2", key: 1}]}
        answered = post(asgi_client, route, json.dumps(entries).encode())
        assert answered.status_code == 200, answered.text
        results = answered.json().get("results") or answered.json()["assignments"]
        assert [r["safety"]["level"] == "crisis" for r in results] == [False, True]
    assert all(calls == 1 for calls in linear_model.calls)  # the flagged entry never reaches it


def test_the_key_written_otherwise_and_false_is_still_refused_by_name(asgi_client):
    response = post(
        asgi_client, "/recommend", json.dumps({**PROFILE, "Crisis_Risk": False}).encode()
    )
    assert response.status_code == 422 and "crisis_results" not in response.json()
    assert response.json()["problems"][0]["field"] == "Crisis_Risk"


def test_a_flag_given_twice_under_another_spelling_stays_set(asgi_client):
    text = json.dumps(PROFILE)[:-1] + ', "Crisis_Risk": true, "Crisis_Risk": false}'
    response = post(asgi_client, "/recommend", text.encode())
    assert response.status_code == 200, response.text
    assert is_crisis(response.json())


# -- outcomes ----------------------------------------------------------------------------------
def test_an_outcome_flagged_for_crisis_risk_gets_its_person_the_resources(asgi_client, document):
    # crisis_risk is no outcome's field: the report was refused 422 and the person flagged in
    # it got nothing.
    sent = {"outcomes": [outcome(), outcome(person_id="u-9", **{"Crisis Risk": True})]}
    response = post(asgi_client, "/outcomes", json.dumps(sent).encode())
    assert response.status_code == 422, response.text
    (crisis,) = response.json()["crisis_results"]
    assert crisis["index"] == 1 and is_crisis(crisis["answer"])
    assert crisis["answer"]["ignored"][0]["field"] == "outcomes[1].crisis_risk"
    assert "u-9" not in json.dumps(crisis)
    assert_documented(document, "/outcomes", response)
    beside = {"crisis_risk": True, "outcomes": [outcome()]}
    refused = post(asgi_client, "/outcomes", json.dumps(beside).encode())
    assert refused.status_code == 422
    assert [c["index"] for c in refused.json()["crisis_results"]] == [None]


# -- bodies that are not JSON as the service reads it ------------------------------------------
FORMS = [
    (b"person_id=u-1&Crisis_Risk=true", "application/x-www-form-urlencoded"),
    (b"person_id=u-1&crisis_risk=%20TRUE", "application/x-www-form-urlencoded"),
    (b"person_id=u-1&crisis+risk=yes", "application/x-www-form-urlencoded"),
    (
        b'--b\r\nContent-Disposition: form-data; name="Crisis Risk"\r\n\r\nYes\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
]


@pytest.mark.parametrize("route", ["/recommend", *COHORT_ROUTES])
@pytest.mark.parametrize("text, content_type", FORMS)
def test_a_form_however_it_writes_the_flag_is_refused_naming_the_form_with_resources(
    asgi_client, route, text, content_type
):
    response = post(asgi_client, route, text, content_type=content_type)
    assert response.status_code == 400, response.text
    body = response.json()
    assert "sent as a form" in body["error"] and body["problems"][0]["field"] == "body"
    (crisis,) = body["crisis_results"]
    assert is_crisis(crisis["answer"]) and "u-1" not in response.text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_flagged_body_not_in_plain_utf8_is_refused_with_resources_not_a_500(
    asgi_client, encoding
):
    # Python's parser reads UTF-16, UTF-32 and a byte-order mark, the request models do not:
    # the front door let the flagged profile through and its handler failed with a 500.
    text = json.dumps({"crisis_risk": True, "person_id": "u-1"}).encode(encoding)
    response = post(asgi_client, "/recommend", text)
    assert response.status_code == 400, response.text
    (crisis,) = response.json()["crisis_results"]
    assert is_crisis(crisis["answer"]) and "u-1" not in response.text
    if encoding != "utf-8-sig":
        assert f"{encoding.upper()}" in response.json()["error"]


# -- compressed bodies -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "coding, compress",
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),  # raw deflate, as some send it
        ("identity, gzip", gzip.compress),
        ("gzip", lambda b: gzip.compress(b[:5]) + gzip.compress(b[5:])),  # two members
    ],
)
def test_a_compressed_body_is_read_as_its_content_encoding_says(
    asgi_client, document, coding, compress
):
    # Read as it came, it was refused as not JSON, a flagged one without its resources.
    headers = {"content-encoding": coding}
    flagged = post(asgi_client, "/recommend", compress(b'{"crisis_risk": true}'), headers)
    assert flagged.status_code == 200, flagged.text
    assert is_crisis(flagged.json())
    for route in ("/recommend", *COHORT_ROUTES):
        answered = post(asgi_client, route, compress(valid_body(route)), headers)
        assert answered.status_code == 200, answered.text
        assert_documented(document, route, answered)


def test_a_compressed_body_over_the_limit_is_inflated_no_further(asgi_client, monkeypatch):
    from recommender.service import _gate

    monkeypatch.setattr(_gate, "MAX_BODY_BYTES", 4096)
    bomb = gzip.compress(b'{"crisis_risk": true, "pad": "' + b"x" * 3_000_000 + b'"}')
    assert len(bomb) < 4096
    response = post(asgi_client, "/recommend", bomb, {"content-encoding": "gzip"})
    assert response.status_code == 413, response.text
    (crisis,) = response.json()["crisis_results"]
    assert is_crisis(crisis["answer"])


def test_a_coding_the_service_does_not_read_is_refused_naming_it(asgi_client, document):
    response = post(asgi_client, "/recommend", b"\x1b\x00\x00", {"content-encoding": "br"})
    assert response.status_code == 415, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "Content-Encoding" and problem["value"] == "br"
    assert "gzip" in problem["accepted"]
    assert_documented(document, "/recommend", response)
    flagged = post(
        asgi_client, "/recommend?crisis_risk=true", b"\x1b\x00", {"content-encoding": "br"}
    )
    assert flagged.status_code == 415 and is_crisis(flagged.json()["crisis_results"][0]["answer"])
    broken = post(asgi_client, "/recommend", b"not gzip", {"content-encoding": "gzip"})
    assert broken.status_code == 400, broken.text
    assert broken.json()["problems"][0]["field"] == "Content-Encoding"


# -- a real server: chunked, Expect: 100-continue, gzip and very slow bodies -------------------
# The request timeout of the server below: a body still arriving after three quarters of it
# is refused (408) with its crisis flags answered, before a bare 504 could be.
TIMEOUT = 4


@pytest.fixture(scope="module")
def short_timeout_server(champion_home):
    with running_server(champion_home, env={"RECOMMENDER_SERVE_TIMEOUT": str(TIMEOUT)}) as url:
        yield url


def raw_post(url: str, path: str, headers: dict, parts, *, pause: float = 0.0):
    """Send a POST by hand (parts of its body one by one, ``pause`` seconds apart; None waits
    for an interim answer) and return what came back, as bytes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        received = b""
        for part in parts:
            if part is None:  # wait for the server's interim answer
                received += sock.recv(64)
                continue
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):  # answered: no longer reading
                break
            # the next part after ``pause``, unless the answer came meanwhile: a body the
            # server no longer reads is not sent on (it was, a second or two a request)
            if pause and select.select([sock], [], [], pause)[0]:
                break
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:  # closed on a body it no longer reads: the answer came
            pass
    return received


def answer_of(received: bytes) -> tuple[int, dict]:
    final = received[received.rindex(b"HTTP/1.1 ") :]  # after a 100 Continue
    head, _, body = final.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def chunked(body: bytes, size: int = 16):
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]


@pytest.mark.server
@pytest.mark.slow
def test_a_real_server_reads_the_flag_of_every_transfer_shape(short_timeout_server):
    url = short_timeout_server
    auth_json = {"Authorization": f"Bearer {KEYS['program']}", "Content-Type": "application/json"}
    flagged = json.dumps({"crisis_risk": True, "person_id": "s-1"}).encode()
    squeezed = gzip.compress(flagged)
    shapes = {
        "chunked": ({"Transfer-Encoding": "chunked"}, chunked(flagged)),
        "expect 100-continue": (
            {"Content-Length": len(flagged), "Expect": "100-continue"},
            [None, flagged],
        ),
        "gzip": ({"Content-Length": len(squeezed), "Content-Encoding": "gzip"}, [squeezed]),
        "gzip, chunked": (
            {"Transfer-Encoding": "chunked", "Content-Encoding": "gzip"},
            chunked(squeezed, 5),
        ),
    }
    for shape, (headers, parts) in shapes.items():
        received = raw_post(url, "/recommend", {**auth_json, **headers}, parts)
        status, answer = answer_of(received)
        assert status == 200 and is_crisis(answer), (shape, received[:500])
        if shape == "expect 100-continue":
            assert received.startswith(b"HTTP/1.1 100 Continue")
    plain = json.dumps(PROFILE).encode()
    response = httpx.post(
        f"{url}/recommend?crisis_risk=true", content=plain, headers=auth_json, timeout=60
    )
    assert response.status_code == 200 and is_crisis(response.json()), response.text


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize(
    "path, first",
    [
        ("/recommend", b'{"crisis_risk": true, "person_id": "s-2", '),
        ("/recommend_batch?crisis_risk=true", b'{"profiles": ['),
        ("/allocate", b'{"profiles": [{"crisis_risk": "yes", "person_id": "s-2"}, '),
    ],
)
def test_a_very_slow_body_is_refused_in_time_with_its_crisis_answer(
    short_timeout_server, path, first
):
    # A body still arriving at the request timeout was answered 504 by BentoML's timeout, a
    # flag already received (or in the query string) without its resources.
    headers = {
        "Authorization": f"Bearer {KEYS['program']}",
        "Content-Type": "application/json",
        "Content-Length": "100000",
    }
    # The flagged body and a plain one, sent side by side: each waits out the server's read
    # limit for its body on a connection of its own, and the two waits need not follow each
    # other.
    with ThreadPoolExecutor(2) as pool:
        sent = [
            pool.submit(raw_post, short_timeout_server, route, headers, parts, pause=1)
            for route, parts in (
                (path, [first, *[b" "] * 20]),
                ("/recommend", [b"{", *[b" "] * 20]),
            )
        ]
        received, plain = (each.result() for each in sent)
    status, body = answer_of(received)
    assert status == 408, received[:500]
    (problem,) = body["problems"]
    assert problem["field"] == "body" and f"within {0.75 * TIMEOUT:g} s" in problem["accepted"]
    (crisis,) = body["crisis_results"]
    assert is_crisis(crisis["answer"]) and "s-2" not in received.decode()
    status, body = answer_of(plain)
    assert status == 408 and "crisis_results" not in body
