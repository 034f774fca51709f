"""What an attacker, a careless config and a new user found (issue 10), checked in process.

The same probes against a real server, with time and memory bounds, are in
tests/test_service_hostile.py.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone

import pytest

from recommender.cli import main
from recommender.service import AuditLog, parse_since
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    SALT,
    asgi_client,
    auth,
    linear_model,
    service_home,
)

# -- the landing page and BentoML's own pages ---------------------------------------------------


def test_the_landing_page_is_ours_and_loads_nothing_from_elsewhere(asgi_client):
    response = asgi_client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script" not in page.lower() and "googletagmanager" not in page
    assert 'href="/docs.json"' in page and 'href="/model_card"' in page
    assert "never diagnoses" in page
    # Every protected route says what it does (/outcomes once had an empty cell).
    from recommender.service._auth import PERMISSIONS

    for path in PERMISSIONS:
        assert f'<th scope="row"><code>{path}</code></th>' in page
        assert "<td></td>" not in page.split(f"<code>{path}</code>")[1].split("</tr>")[0]
    # Every address on the page is one of the service's own.
    assert all(link.startswith("/") for link in _links(page))
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_the_landing_page_says_how_to_open_the_card_with_a_key():
    # Its /model_card link, followed in a browser, could only answer "an API key is required":
    # an address bar cannot send the header, and a key must never go in a URL.
    from recommender.service._landing import landing_page

    page = landing_page().decode()
    assert "cannot send" in page and "-o card.html" in page and "?key=" not in page
    # a screen reader announces each cell with its column: the header cells say they head one
    assert page.count('<th scope="col">') == 3 and "<th>" not in page


def test_the_landing_pages_curl_names_the_address_it_was_asked_for(asgi_client):
    # It said http://HOST/model_card, to be edited before it ran.
    page = asgi_client.get("/", headers={"host": "recommender.example.org:8443"}).text
    assert "-o card.html http://recommender.example.org:8443/model_card</code>" in page
    assert "HOST" not in page
    ipv6 = asgi_client.get("/", headers={"host": "[::1]:3000"}).text
    assert "http://[::1]:3000/model_card" in ipv6


@pytest.mark.parametrize(
    "host",
    ['x"><script>alert(1)</script>', "evil.example\r\nSet-Cookie: a=b", "a b", "x/../y", ""],
)
def test_a_host_header_that_is_no_plain_address_never_reaches_the_landing_page(asgi_client, host):
    response = asgi_client.get("/", headers={"host": host})
    assert response.status_code == 200
    page = response.text
    assert "<script" not in page.lower() and "Set-Cookie" not in page and "evil" not in page
    # the address the connection reached instead (the test client's)
    assert "-o card.html http://testserver:80/model_card</code>" in page


def _links(page: str) -> list[str]:
    import re

    return re.findall(r'(?:href|src)="([^"]*)"', page)


@pytest.mark.parametrize(
    "path",
    [
        "/static_content/swagger-ui.css",
        "/static_content/swagger-initializer.js",
        "/static_content/index.css",
        "/assets/index.js",
        "/docs",
        "/ui",
        "/index.html",
    ],
)
def test_bentoml_ui_pages_are_not_served(asgi_client, path):
    assert asgi_client.get(path).status_code == 404


def test_a_method_a_route_does_not_take_is_405_naming_those_it_takes(asgi_client):
    # GET /recommend (a browser's address bar) was BentoML's plain "Method Not Allowed", POST
    # /model_card FastAPI's {"detail": ...} and POST / "no such route": three bodies, none the
    # service's error body. Every route the document lists, and the two pages it does not.
    document = asgi_client.get("/docs.json").json()
    taken = {
        path: ", ".join(sorted(m.upper() for m in ops)) for path, ops in document["paths"].items()
    }
    taken.update({"/": "GET", "/docs.json": "GET"})
    assert taken["/recommend"] == "POST" and taken["/model_card"] == "GET"
    for path, allowed in taken.items():
        method = "GET" if allowed == "POST" else "POST"
        response = asgi_client.request(method, path, headers=auth("scientist"))
        assert response.status_code == 405, (path, response.text)
        assert response.headers["allow"] == allowed
        body = response.json()
        assert set(body) == {"error", "problems"}
        assert body["problems"] == [
            {"field": "method", "value": method, "message": "not taken here", "accepted": allowed}
        ]
        assert f"{method} {path}" in body["error"] and allowed in body["error"]


def test_head_is_answered_wherever_get_is(asgi_client):
    # The card, its JSON and the audit export (FastAPI's routes) answered HEAD 405 while
    # BentoML's and the landing page answered it: `curl -I` of the card said it did not exist.
    document = asgi_client.get("/docs.json").json()
    # (/metrics needs the server's Prometheus directory: not in process)
    paths = [p for p, ops in document["paths"].items() if "get" in ops and p != "/metrics"]
    assert "/model_card" in paths and "/livez" in paths
    for path in [*paths, "/", "/docs.json"]:
        got = asgi_client.get(path, headers=auth("auditor"))
        head = asgi_client.head(path, headers=auth("auditor"))
        assert head.status_code == got.status_code, (path, head.text)
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]


def test_an_unknown_path_is_404_without_echoing_it(asgi_client):
    response = asgi_client.get("/recommend/p-000777-secret")
    assert response.status_code == 404
    assert "p-000777" not in response.text and "/docs.json" in response.json()["error"]
    assert asgi_client.post("/x/y", json={}).status_code == 404
    assert asgi_client.get("/livez").status_code == 200  # the known ones still answer


# -- the body: depth, duplicate keys, strict types ----------------------------------------------


def test_json_depth_ignores_brackets_in_strings():
    from recommender.service._body_checks import json_depth

    assert json_depth(b'{"person_id": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == 1
    assert json_depth(b'"\\"[[[["') == 0 and json_depth(b"") == 0
    assert json_depth(b'{"profiles": [{"offered": ["a"]}]}') == 4


@pytest.mark.parametrize("depth", [33, 1_100, 100_000])  # 33: one past MAX_JSON_DEPTH
def test_deeply_nested_json_is_400_naming_the_body(asgi_client, depth):
    for route in ("/recommend", "/recommend_batch", "/allocate", "/reload"):
        response = asgi_client.post(
            route, content=b"[" * depth + b"]" * depth, headers=auth("scientist")
        )
        assert response.status_code == 400, (route, response.text[:200])
        assert response.json()["problems"][0]["field"] == "body"


def test_a_profile_with_brackets_in_its_id_is_not_nested(asgi_client):
    response = asgi_client.post(
        "/recommend", json={**PROFILE, "person_id": "[" * 40}, headers=auth("program")
    )
    assert response.status_code == 200, response.text


def test_a_duplicated_crisis_flag_is_not_read_as_the_last_value(asgi_client):
    # Never ranked on: the reading that cannot withhold resources is the crisis answer, with
    # the repeated key named (tests/test_service_crisis_edges.py).
    text = json.dumps({**PROFILE, "crisis_risk": True})[:-1] + ', "crisis_risk": false}'
    response = asgi_client.post("/recommend", content=text.encode(), headers=auth("program"))
    assert response.status_code == 200 and response.json()["safety"]["level"] == "crisis"
    assert response.json()["ignored"][0]["field"] == "crisis_risk"
    # flagged false first and true last alike
    text = json.dumps({**PROFILE, "crisis_risk": False})[:-1] + ', "crisis_risk": true}'
    response = asgi_client.post("/recommend", content=text.encode(), headers=auth("program"))
    assert response.status_code == 200 and response.json()["safety"]["level"] == "crisis"
    # two falses: refused, naming the key
    text = json.dumps({**PROFILE, "crisis_risk": False})[:-1] + ', "crisis_risk": false}'
    response = asgi_client.post("/recommend", content=text.encode(), headers=auth("program"))
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "crisis_risk"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("crisis_risk", "false"),
        ("crisis_risk", 0),
        ("age", "41"),
        ("weekly_hours", "58"),
        ("ee", True),
        ("years_in_practice", "11.0"),
    ],
)
def test_loose_booleans_and_numbers_are_refused_naming_the_field(asgi_client, field, value):
    response = asgi_client.post(
        "/recommend", json={**PROFILE, field: value}, headers=auth("program")
    )
    assert response.status_code == 422, response.text
    problem = response.json()["problems"][0]
    assert problem["field"] == field and problem["value"] == value


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_a_loose_crisis_flag_that_says_yes_gets_resources_and_says_it_was_not_a_boolean(
    asgi_client, value
):
    # Never coerced silently, and never a reason to withhold crisis resources (issue 9): the
    # answer is the crisis answer, and `ignored` names the value that was not a JSON boolean.
    response = asgi_client.post(
        "/recommend", json={**PROFILE, "crisis_risk": value}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["safety"]["level"] == "crisis" and body["ranking"] == []
    assert body["ignored"][0]["field"] == "crisis_risk" and body["ignored"][0]["value"] == value


def test_loose_values_in_a_batch_entry_are_refused_for_that_entry(asgi_client):
    response = asgi_client.post(
        "/recommend_batch",
        headers=auth("program"),
        json={"profiles": [PROFILE, {**PROFILE, "crisis_risk": "false"}]},
    )
    body = response.json()
    assert response.status_code == 200 and body["answered"] == 1
    assert body["errors"][0]["index"] == 1
    assert body["errors"][0]["problems"][0]["field"] == "profiles[1].crisis_risk"


def test_json_numbers_are_numbers_whatever_their_spelling(asgi_client):
    response = asgi_client.post(
        "/recommend", json={**PROFILE, "weekly_hours": 41, "age": 41.0}, headers=auth("program")
    )
    assert response.status_code == 200, response.text


def test_reload_names_what_it_accepts_when_sent_a_field(asgi_client):
    response = asgi_client.post("/reload", json={"force": True}, headers=auth("scientist"))
    assert response.status_code == 422
    accepted = response.json()["problems"][0]["accepted"]
    assert not accepted.rstrip().endswith(":") and "empty body" in accepted


# -- the audit export's `since` -----------------------------------------------------------------

_STAMPS = [
    datetime(2026, 12, 3, 3, 59, tzinfo=timezone.utc),
    datetime(2026, 12, 3, 4, 1, tzinfo=timezone.utc),
]
_SINCE = "2026-12-03T09:00:00+05:00"  # 04:00 UTC: only the second row is at or after it


def _audit_rows(home):
    log = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)  # the service's
    log.append(
        [
            {
                "request_id": f"r{i}",
                "model_version": "1",
                "caller_role": "program",
                "person_id": f"p-{i}",
                "safety_level": "routine",
                "recommended": "coaching",
                "ranking_meaningful": True,
                "effects": {},
                "logged_at": stamp,
            }
            for i, stamp in enumerate(_STAMPS)
        ]
    )
    return log


def test_since_honours_its_offset_and_reads_none_as_utc(service_home):
    log = _audit_rows(service_home)
    assert parse_since(_SINCE) == datetime(2026, 12, 3, 4, 0, tzinfo=timezone.utc)
    assert [r["request_id"] for r in log.export(since=parse_since(_SINCE))] == ["r1"]
    assert [r["request_id"] for r in log.export(since=parse_since("2026-12-03T04:00"))] == ["r1"]
    assert [r["request_id"] for r in log.export(since=parse_since("2026-12-03T03:00Z"))] == [
        "r0",
        "r1",
    ]


def test_since_with_an_offset_over_http(service_home, asgi_client):
    _audit_rows(service_home)
    response = asgi_client.get("/audit/export", params={"since": _SINCE}, headers=auth("auditor"))
    assert response.status_code == 200
    assert [row["request_id"] for row in csv.DictReader(response.text.splitlines())] == ["r1"]


def test_since_with_an_offset_on_the_command_line(service_home, tmp_path):
    _audit_rows(service_home)
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", "--since", _SINCE, "--out", str(out)]) == 0
    assert [row["request_id"] for row in csv.DictReader(out.open())] == ["r1"]


# -- `recommender serve` checks its keys before any worker starts -------------------------------


def test_serve_refuses_a_mistyped_role_in_one_line_before_starting(
    service_home, monkeypatch, capsys
):
    monkeypatch.setenv(
        "RECOMMENDER_API_KEYS", "program=secret-key-number-one,admin=secret-key-number-two"
    )
    assert main(["serve", "--port", "3999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "RECOMMENDER_API_KEYS entry 2: role 'admin' is not accepted" in err
    assert "program, scientist, auditor" in err and "secret" not in err  # keys never shown


def test_serve_refuses_a_mistyped_role_in_the_secrets_folder_in_one_line(
    service_home, tmp_path, monkeypatch, capsys
):
    # Found walking the README's container table: keys given as the secrets folder's api_keys
    # file were not checked by `recommender serve`, which said "serving on ..." while every
    # worker failed at start with a traceback naming RECOMMENDER_API_KEYS.
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_keys").write_text("progam=secret-key-number-one\n")
    monkeypatch.delenv("RECOMMENDER_API_KEYS", raising=False)
    monkeypatch.setenv("RECOMMENDER_SECRETS_DIR", str(secrets))
    assert main(["serve", "--port", "3999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{secrets / 'api_keys'} entry 1: role 'progam' is not accepted" in err
    assert "secret-key-number-one" not in err
    # A good file gives its keys, and the variable still wins over it.
    from recommender.service import hash_key, secret_api_keys

    (secrets / "api_keys").write_text("program=secret-key-number-one\n")
    assert secret_api_keys() == [("program", hash_key("secret-key-number-one"))]
    monkeypatch.setenv("RECOMMENDER_API_KEYS", "auditor=secret-key-number-two")
    assert secret_api_keys() == [("auditor", hash_key("secret-key-number-two"))]
