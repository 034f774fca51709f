"""The service's pages as a wellness-program coordinator meets them in a browser (dec08a review).

The landing page links to ``/model_card``; a coordinator who follows it (no key: a browser's
address bar cannot send one) or opens it with the program's key was shown the service's error
JSON as a raw dump. A browser asks for HTML by name, and now gets a page: the same status and
message, what to do next, a link back. API clients (curl, httpx: ``Accept: */*``) still get
the JSON they parse, and a crisis answer is never rewritten.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from test_card_browser import chromium_driver, require_chromium
from test_pages_accessibility import assert_contrast, assert_reflows, assert_structure, audit

from service_fixtures import (  # noqa: F401  (fixtures)
    KEYS,
    asgi_client,
    auth,
    champion_home,
    linear_model,
    server_url,
    service_home,
)

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# -- in process: what each kind of client is sent -----------------------------------------------


def test_a_browser_asking_for_the_card_without_a_key_gets_a_page_not_json(asgi_client):
    page = asgi_client.get("/model_card", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 401
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["www-authenticate"] == "Bearer"  # the refusal's own headers are kept
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<html lang="en">' in page.text and "<h1>401 Unauthorized" in page.text
    assert "an API key is required" in page.text
    assert 'curl -H "Authorization: Bearer $KEY" -o card.html' in page.text
    assert int(page.headers["content-length"]) == len(page.content)
    assert "{" not in page.text.split("<body>")[1]  # no JSON in what is shown


def test_the_programs_key_gets_a_page_saying_who_may_open_the_card(asgi_client):
    page = asgi_client.get("/model_card", headers={**auth("program"), "Accept": BROWSER_ACCEPT})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "role program may not call /model_card; allowed roles: auditor, scientist" in page.text


def test_no_card_to_show_is_a_page_too(asgi_client):
    page = asgi_client.get("/model_card", headers={**auth("auditor"), "Accept": BROWSER_ACCEPT})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no model card found for version 7" in page.text


def test_a_head_request_is_told_the_pages_length_and_sent_no_body(asgi_client):
    got = asgi_client.get("/model_card", headers={"Accept": BROWSER_ACCEPT})
    head = asgi_client.head("/model_card", headers={"Accept": BROWSER_ACCEPT})
    assert head.status_code == 401 and head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"].startswith("text/html")


def test_a_model_that_could_not_be_loaded_is_said_on_a_page(service_home, monkeypatch):
    from starlette.testclient import TestClient

    from recommender.service import service as service_module
    from service_fixtures import _app

    def load():
        raise OSError("the champion's artifact folder is missing: model.pkl")

    monkeypatch.setattr(service_module, "load_champion_model", load)
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        page = client.get("/model_card", headers={**auth("auditor"), "Accept": BROWSER_ACCEPT})
        answer = client.get("/model_card", headers=auth("auditor"))
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "artifact folder is missing" in page.text and "no model card to show" in page.text
    assert "try again later" in page.text
    assert answer.status_code == 503 and answer.json()["error"].endswith("no model card to show")


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_api_clients_still_get_the_error_json(asgi_client, accept):
    headers = {} if accept is None else {"Accept": accept}
    answer = asgi_client.get("/model_card", headers=headers)
    assert answer.status_code == 401 and answer.headers["content-type"] == "application/json"
    assert answer.json()["error"].startswith("an API key is required")


def test_other_routes_answer_a_browser_as_before(asgi_client):
    # Only the page is rewritten: the JSON card and the API routes answer JSON to anyone.
    for path in ("/model_card.json", "/audit/export"):
        answer = asgi_client.get(path, headers={"Accept": BROWSER_ACCEPT})
        assert answer.status_code == 401 and answer.headers["content-type"] == "application/json"


def test_an_answer_holding_more_than_an_error_is_never_rewritten():
    # A crisis answer (or anything else the error shape does not hold) goes out as it was.
    from recommender.service._error_page import with_html_errors

    sent = []

    async def send(message):
        sent.append(message)

    crisis = json.dumps({"error": "x", "problems": [], "crisis": {"resources": ["988"]}}).encode()
    start = {
        "type": "http.response.start",
        "status": 405,
        "headers": [(b"content-type", b"application/json")],
    }
    wrapped = with_html_errors(send, "http://127.0.0.1:1")

    async def answer():
        await wrapped(start)
        await wrapped({"type": "http.response.body", "body": crisis[:10], "more_body": True})
        await wrapped({"type": "http.response.body", "body": crisis[10:]})

    asyncio.run(answer())
    assert sent[0] == start and b"".join(m.get("body", b"") for m in sent[1:]) == crisis


def test_a_message_with_markup_is_shown_as_text():
    from recommender.service._error_page import error_page

    page = error_page(404, 'no model card found for version <script>alert("x")</script>', "h")
    assert b"<script>" not in page and b"&lt;script&gt;" in page


# -- in a real browser, through `recommender serve` -------------------------------------------


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    require_chromium()
    driver = chromium_driver(tmp_path_factory.mktemp("review-chromium"), window="1280,1000")
    try:
        yield driver
    finally:
        driver.quit()


def _with_key(driver, role: str | None) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    headers = {} if role is None else {"Authorization": f"Bearer {KEYS[role]}"}
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})


@pytest.mark.server
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize(
    ("role", "said"),
    [
        (None, "an API key is required"),
        ("program", "role program may not call /model_card"),
    ],
)
def test_following_the_landing_pages_link_to_the_card_shows_a_readable_page(
    chromium, server_url, role, said
):
    from selenium.webdriver.common.by import By

    _with_key(chromium, role)
    try:
        chromium.get(f"{server_url}/")
        chromium.find_element(By.CSS_SELECTOR, 'a[href="/model_card"]').click()
        assert chromium.execute_script("return document.contentType") == "text/html"
        assert said in chromium.find_element(By.ID, "error-message").text
        back = chromium.find_element(By.CSS_SELECTOR, 'main a[href="/"]')
        assert back.is_displayed()
        page = audit(chromium, f"{server_url}/model_card")
        assert_structure(page)
        assert_contrast(page)
        assert_reflows(audit(chromium, f"{server_url}/model_card", width=320))
    finally:
        _with_key(chromium, None)


@pytest.mark.server
@pytest.mark.browser
@pytest.mark.slow
def test_a_screen_reader_hears_the_route_as_each_rows_header_on_the_landing_page(
    chromium, server_url
):
    # Moving down the "who" or "what" column, a screen reader names the row by its header: the
    # route. The routes were plain cells, so a cell was read ("auditor, scientist") with no
    # route to say which row it was in.
    from collections import Counter

    _with_key(chromium, None)
    chromium.get(f"{server_url}/")
    nodes = chromium.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
    roles = Counter(node.get("role", {}).get("value") for node in nodes)
    rows = chromium.execute_script("return document.querySelectorAll('table tr').length")
    assert roles["columnheader"] == 3 and roles["rowheader"] == rows - 1, roles


@pytest.mark.browser
def test_what_is_amiss_with_the_served_version_looks_like_the_cards_own_warning(
    chromium, champion_home, tmp_path
):
    # A served version trained under another catalog (or whose run was deleted, or that is no
    # longer the champion) was said in a plain paragraph among the "as served now" lines: an
    # auditor skimming the card saw only the simulated-data banner as a warning.
    from recommender.service._config import load_serve_config
    from recommender.service._pages import model_card_page
    from service_fixtures import recommender_home

    with recommender_home(champion_home):
        config = load_serve_config()
        note = "this version was trained under catalog 2026.01-1; the service's is 2026.12-5"
        page = model_card_page(config, "1", None, catalog_note=note).body
    (tmp_path / "card.html").write_bytes(page)
    _with_key(chromium, None)
    chromium.get((tmp_path / "card.html").as_uri())
    looks = chromium.execute_script(
        "const look = e => { const s = getComputedStyle(e);"
        " return [s.backgroundColor, s.borderLeftWidth, s.borderLeftColor]; };"
        "return [look(document.querySelector('p.warning[role=alert]')),"
        " look(document.querySelector('.serving-concern'))];"
    )
    banner, concern = looks
    assert concern == banner and concern[1] != "0px", looks
