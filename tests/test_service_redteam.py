"""What red-teaming a served API found: keys sent twice or unreadable, objects of a million
keys, answers a cache could keep. Checked in process (the ASGI app over the stand-in model).

The hostile bodies and floods measured against a real server are in
tests/test_service_hostile.py; the key ring itself in tests/test_service_auth.py.
"""

from __future__ import annotations

import json

import pytest

from recommender.errors import InputError
from recommender.service import parse_env_keys
from recommender.service._body_checks import MAX_OBJECT_KEYS
from recommender.service._problems import MAX_UNKNOWN_FIELDS
from service_fixtures import (  # noqa: F401  (fixtures)
    KEYS,
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)

FLAGGED = {"person_id": "c-31", "crisis_risk": True, "role": "nurse"}


# -- a key sent twice ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "first, second",
    [
        ("Bearer not-a-key-at-all-000", f"Bearer {KEYS['program']}"),
        (f"Bearer {KEYS['program']}", "Bearer not-a-key-at-all-000"),
        (f"Bearer {KEYS['auditor']}", f"Bearer {KEYS['program']}"),
    ],
)
def test_authorization_given_twice_is_refused_whichever_line_holds_the_key(
    asgi_client, linear_model, first, second
):
    # Only the last line counted, so a proxy that checked the first let a second key through.
    headers = [("authorization", first), ("authorization", second)]
    response = asgi_client.post("/recommend", json=PROFILE, headers=headers)
    assert response.status_code == 401, response.text
    assert "given more than once" in response.json()["error"]
    assert KEYS["program"] not in response.text and linear_model.calls == []


def test_an_api_key_header_given_twice_is_refused(asgi_client):
    key = KEYS["program"]
    response = asgi_client.post(
        "/recommend", json=PROFILE, headers=[("x-api-key", key), ("x-api-key", key)]
    )
    assert response.status_code == 401 and "more than once" in response.json()["error"]


def test_two_different_keys_in_the_two_headers_are_refused(asgi_client):
    headers = {**auth("auditor"), "x-api-key": KEYS["program"]}
    response = asgi_client.post("/recommend", json=PROFILE, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == (
        "two different API keys were sent (Authorization and x-api-key); send one"
    )
    # the same key in both is one key
    same = {**auth("program"), "x-api-key": KEYS["program"]}
    assert asgi_client.post("/recommend", json=PROFILE, headers=same).status_code == 200


def test_a_flagged_profile_sent_with_a_key_given_twice_still_gets_crisis_resources(asgi_client):
    headers = [("authorization", f"Bearer {KEYS['program']}")] * 2
    response = asgi_client.post("/recommend", json=FLAGGED, headers=headers)
    assert response.status_code == 401
    (crisis,) = response.json()["crisis_results"]
    assert crisis["answer"]["safety"]["level"] == "crisis"
    assert crisis["answer"]["safety"]["resources"]


def test_a_key_sent_in_the_query_string_is_not_read(asgi_client):
    # A key in a URL ends in access logs, proxies and browser histories: it is never taken.
    response = asgi_client.post(
        f"/recommend?key={KEYS['program']}&api_key={KEYS['program']}", json=PROFILE
    )
    assert response.status_code == 401 and KEYS["program"] not in response.text


@pytest.mark.parametrize(
    "key", ["clé-du-programme-0001", "program-key-0001\u00a0x", "tab\tkey-0123456789"]
)
def test_a_key_a_header_cannot_carry_is_refused_when_serving_starts_unechoed(key):
    # A header's bytes are read as latin-1: such a key was accepted, then never matched.
    with pytest.raises(InputError) as caught:
        parse_env_keys(f"scientist=sixteen-chars-ok,program={key}")
    message = str(caught.value)
    assert "entry 2 (program)" in message and "printable ASCII" in message
    assert key not in message


def test_a_refused_key_and_a_person_id_are_written_nowhere(asgi_client, service_home, caplog):
    wrong = "a-wrong-key-that-must-not-show-0001"
    flagged = {**FLAGGED, "person_id": "person-who-must-not-show"}
    for body in (flagged, profile(person_id="person-who-must-not-show")):
        response = asgi_client.post("/recommend", json=body, headers={"x-api-key": wrong})
        assert response.status_code == 401
        assert wrong not in response.text and "person-who-must-not-show" not in response.text
    served = asgi_client.post(
        "/recommend", json=profile(person_id="person-who-must-not-show"), headers=auth("program")
    )
    assert served.status_code == 200
    stored = b"".join(path.read_bytes() for path in service_home.glob("audit.db*"))
    assert stored, "no audit store was written"
    for secret in (wrong, "person-who-must-not-show", KEYS["program"]):
        assert secret.encode() not in stored
        assert secret not in caplog.text


# -- objects of very many keys ------------------------------------------------------------------
def _object_of(keys: int, **fields) -> bytes:
    members = [f'"k{i}": 1' for i in range(keys - len(fields))]
    members += [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in fields.items()]
    return ("{" + ", ".join(members) + "}").encode()


@pytest.mark.parametrize("route", ["/recommend", "/recommend_batch", "/allocate", "/outcomes"])
def test_an_object_of_more_keys_than_any_the_api_holds_is_refused_naming_the_limit(
    asgi_client, linear_model, route
):
    # An object of a million unknown keys (10 MB) took the worker half a minute and 3 GB, and
    # its 422 listed each key (250 MB).
    role = "program"
    response = asgi_client.post(
        route,
        content=_object_of(100_000),
        headers={**auth(role), "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text[:300]
    (problem,) = response.json()["problems"]
    assert problem["field"] == "body" and problem["message"] == "too many keys in one object"
    assert f"at most {MAX_OBJECT_KEYS} keys" in problem["accepted"]
    assert linear_model.calls == []


def test_an_object_of_as_many_keys_as_allowed_is_read_and_each_unknown_key_named(asgi_client):
    body = json.loads(_object_of(MAX_OBJECT_KEYS, **PROFILE))
    assert len(body) == MAX_OBJECT_KEYS
    response = asgi_client.post("/recommend", json=body, headers=auth("program"))
    assert response.status_code == 422
    assert len(response.json()["problems"]) == MAX_OBJECT_KEYS - len(PROFILE)


def test_a_flagged_profile_of_too_many_keys_still_gets_crisis_resources(asgi_client):
    body = _object_of(MAX_OBJECT_KEYS + 1, person_id="c-32", crisis_risk=True)
    response = asgi_client.post(
        "/recommend", content=body, headers={**auth("program"), "content-type": "application/json"}
    )
    assert response.status_code == 400
    (crisis,) = response.json()["crisis_results"]
    assert crisis["answer"]["safety"]["level"] == "crisis"


@pytest.mark.parametrize("route", ["/recommend_batch", "/allocate"])
def test_an_entry_of_many_unknown_fields_gets_one_problem_and_a_batch_answers_the_others(
    asgi_client, route
):
    crowded = {**profile(person_id="p-2"), **{f"note_{i}": i for i in range(40)}}
    few = {**profile(person_id="p-3"), **{f"note_{i}": i for i in range(MAX_UNKNOWN_FIELDS)}}
    rows = [profile(person_id="p-1"), crowded, few]
    response = asgi_client.post(route, json={"profiles": rows}, headers=auth("program"))
    body = response.json()
    if route == "/recommend_batch":
        assert response.status_code == 200, response.text
        assert body["result_index"] == [0]
        errors = {error["index"]: error["problems"] for error in body["errors"]}
    else:  # a plan is made for every entry or none
        assert response.status_code == 422, response.text
        errors = {}
        for problem in body["problems"]:
            index = int(problem["field"].split("[")[1].split("]")[0])
            errors.setdefault(index, []).append(problem)
    (one,) = errors[1]
    assert one["field"] == "profiles[1]" and one["value"] == "(not shown)"
    assert one["message"].startswith("40 fields this row does not take")
    assert one["accepted"].startswith("no such field; known fields: person_id, age")
    # up to MAX_UNKNOWN_FIELDS more fields than a profile has, each is still named
    assert {p["field"] for p in errors[2]} == {
        f"profiles[2].note_{i}" for i in range(MAX_UNKNOWN_FIELDS)
    }


def test_an_outcome_row_of_many_unknown_fields_gets_one_problem(asgi_client):
    row = {"person_id": "p-1", **{f"note_{i}": i for i in range(40)}}
    response = asgi_client.post("/outcomes", json={"outcomes": [row]}, headers=auth("program"))
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "outcomes[0]" and "41 fields" not in problem["message"]
    assert problem["message"].startswith("40 fields this row does not take")


# -- what a browser, a proxy or a cache may do with an answer -------------------------------------
@pytest.mark.parametrize(
    "method, path, role, body",
    [
        ("POST", "/recommend", "program", PROFILE),
        ("POST", "/recommend", "program", FLAGGED),
        ("POST", "/recommend", None, FLAGGED),
        ("POST", "/recommend_batch", "program", {"profiles": [PROFILE]}),
        ("POST", "/allocate", "program", {"profiles": [PROFILE]}),
        ("GET", "/model_card", "auditor", None),
        ("GET", "/model_card.json", "auditor", None),
        ("GET", "/audit/export", "auditor", None),
        ("GET", "/", None, None),
        ("GET", "/no/such/route", None, None),
    ],
)
def test_no_answer_may_be_cached_sniffed_framed_or_run_scripts(
    asgi_client, method, path, role, body
):
    headers = auth(role) if role else {}
    response = asgi_client.request(method, path, json=body, headers=headers)
    assert response.status_code < 500, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy


def test_the_favicon_keeps_its_own_cache_time(asgi_client):
    response = asgi_client.get("/favicon.ico")
    assert response.status_code == 204
    assert response.headers["cache-control"] == "max-age=86400"


def test_a_page_of_another_site_is_not_let_in_by_cors(asgi_client):
    # No Access-Control-Allow-Origin: a browser showing another site's page may not read an
    # answer, and its preflight for a key header is refused.
    origin = {"origin": "https://elsewhere.example"}
    preflight = asgi_client.options(
        "/recommend",
        headers={
            **origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 405 and preflight.headers["allow"] == "POST"
    answer = asgi_client.post("/recommend", json=PROFILE, headers={**origin, **auth("program")})
    assert answer.status_code == 200
    for response in (preflight, answer):
        assert not any(name.startswith("access-control-") for name in response.headers)


@pytest.mark.parametrize(
    "path", ["/model_card/../audit/export", "/model_card/..%2Faudit", "/%2e%2e/audit/export"]
)
def test_dot_dot_never_leads_from_one_route_to_another(asgi_client, path):
    # Sent as it is: an HTTP client (the test client's too) would resolve the dots itself.
    status, text = _get_as_sent(asgi_client, path, auth("auditor"))
    assert status == 404, text
    assert "person_hash" not in text
    # the route itself, asked the same way, answers
    assert _get_as_sent(asgi_client, "/audit/export", auth("auditor"))[0] == 200


def _get_as_sent(client, raw_path: str, headers: dict) -> tuple[int, str]:
    """GET ``raw_path`` from the client's app as it is, on the client's event loop."""
    from urllib.parse import unquote

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []

    asked = []

    async def receive():
        # The request once; then, as a server does, nothing until the client goes (a streamed
        # answer listens for that: returning the request again and again never let it send).
        if asked:
            import anyio

            await anyio.sleep_forever()
        asked.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    client.portal.call(client.app, scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, text.decode()


# -- numbers ------------------------------------------------------------------------------------
def test_a_number_of_thousands_of_digits_is_refused_without_the_servers_own_advice(asgi_client):
    text = json.dumps(PROFILE).replace('"age": 44', '"age": 1' + "0" * 5000)
    response = asgi_client.post(
        "/recommend",
        content=text.encode(),
        headers={**auth("program"), "content-type": "application/json"},
    )
    assert response.status_code == 400
    (problem,) = response.json()["problems"]
    assert problem["field"] == "body" and "value has 5001 digits" in problem["message"]
    assert "4300 digits" in problem["message"] and "sys." not in response.text


# -- long lists and large profiles ----------------------------------------------------------------
def test_a_profile_body_over_64_kib_is_refused_and_a_flagged_one_still_gets_resources(
    asgi_client, linear_model
):
    # A 32 MiB profile of four million numbers missing its fields cost 16 s and 2.3 GB: each of
    # the validator's errors converted the whole object anew.
    big = {**PROFILE, "offered": [0] * 40_000}
    response = asgi_client.post("/recommend", json=big, headers=auth("program"))
    assert response.status_code == 413, response.text[:300]
    (problem,) = response.json()["problems"]
    assert problem["field"] == "body" and problem["accepted"] == "at most 65,536 bytes"
    assert linear_model.calls == []
    flagged = asgi_client.post(
        "/recommend", json={**big, "crisis_risk": True}, headers=auth("program")
    )
    assert flagged.status_code == 413
    (crisis,) = flagged.json()["crisis_results"]
    assert crisis["answer"]["safety"]["level"] == "crisis"
    # a batch takes as many bytes as its profiles need
    rows = {"profiles": [profile(person_id=f"p-{i}") for i in range(400)]}
    assert (
        asgi_client.post("/recommend_batch", json=rows, headers=auth("program")).status_code == 200
    )


def test_an_offered_list_far_too_long_is_one_problem_and_the_batch_answers_the_others(
    asgi_client,
):
    # Its length was checked after each item: 100,000 numbers were 100,000 errors first.
    rows = [profile(person_id="p-1"), profile(person_id="p-2", offered=[0] * 100_000)]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["result_index"] == [0]
    (error,) = response.json()["errors"]
    (problem,) = error["problems"]
    assert problem["field"] == "profiles[1].offered"
    assert problem["message"] == "List should have at most 64 items, not 100000"
    assert problem["value"].startswith("[0, 0, 0") and problem["value"].endswith("...")
    assert len(problem["value"]) == 123
