"""The model card page opened in headless Chromium through the running service.

Debian's ``chromium`` and ``chromium-driver`` (``make system-test-deps``); the API key travels as
a request header set through the DevTools protocol, never in the URL.
"""

from __future__ import annotations

import shutil
from io import BytesIO
from pathlib import Path

import pytest

from service_fixtures import KEYS, champion_home, server_url  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
SECTIONS = (
    "Model details and lineage",
    "Intended use and users",
    "Out-of-scope uses",
    "Evaluation",
    "Subgroups",
    "Evidence behind each intervention",
    "Ethical considerations",
    "How to report a problem",
)


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "Debian's chromium and chromium-driver are needed: run `make "
            "system-test-deps` (no browser is downloaded)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    # the console, and the network's answers (performance log) to every request the page made
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def _with_key(driver, role):
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {KEYS[role]}"}}
    )


def _answers(driver) -> list[tuple[int, str]]:
    """(status, URL) of each answer the browser received since the last call."""
    import json

    answers = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            answers.append((response["status"], response["url"]))
    return answers


def test_the_pages_leave_no_failed_request_and_no_console_error(browser, server_url):
    # What an auditor's browser asks of the service opening its pages, /favicon.ico included
    # (the browser asks for it by itself, once per site): every answer is a success, and the
    # console stays clean. The favicon once got 404, an error in every page's console.
    from selenium.webdriver.support.ui import WebDriverWait

    _with_key(browser, "auditor")
    answers = []
    for path in ("/", "/docs.json", "/model_card"):
        browser.get(f"{server_url}{path}")
        answers += _answers(browser)

    def favicon_answered(driver):
        answers.extend(_answers(driver))
        return any(url == f"{server_url}/favicon.ico" for _, url in answers)

    WebDriverWait(browser, 60).until(favicon_answered)
    assert [(s, url) for s, url in answers if s >= 400] == []
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_pages_reflow_at_320_css_pixels(browser, server_url):
    # 320 CSS px is a 1280 px window zoomed to 400 % (WCAG's reflow width) and the narrowest
    # phones: nothing of either page may need a sideways scroll of the whole page (a wide table
    # scrolls in its own box). The landing page's routes table and the card's two-column
    # contents once did, by 49 and 5 px.
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 320, "height": 800, "deviceScaleFactor": 2, "mobile": True},
    )
    _with_key(browser, "auditor")
    widths = {}
    for path in ("/", "/model_card"):
        browser.get(f"{server_url}{path}")
        widths[path] = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
    assert widths == {"/": [320, 320], "/model_card": [320, 320]}


def test_model_card_page_renders_every_section(browser, server_url, tmp_path):
    from PIL import Image, ImageStat
    from selenium.webdriver.common.by import By

    browser.get(f"{server_url}/model_card")
    assert "API key is required" in browser.page_source  # no key, no card

    _with_key(browser, "auditor")
    browser.get(f"{server_url}/model_card")
    assert browser.title.startswith("Model card: burnout-recommender version")
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    for section in SECTIONS:
        assert section in headings, (section, headings)
    images = browser.find_elements(By.TAG_NAME, "img")
    assert images and all(
        browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        for img in images
    )
    shot = Image.open(BytesIO(browser.get_screenshot_as_png())).convert("L")
    shot.save(tmp_path / "model_card.png")
    assert ImageStat.Stat(shot).stddev[0] > 5  # not a blank page


def test_program_role_cannot_open_the_card(browser, server_url):
    _with_key(browser, "program")
    browser.get(f"{server_url}/model_card")
    assert "may not call /model_card" in browser.page_source
