"""The model card's HTML in a real browser: Debian's headless Chromium through its chromedriver.

Nothing is downloaded: selenium is given ``/usr/bin/chromedriver`` explicitly (no Selenium
Manager). The page must show every section, load every embedded plot, and not be blank.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

# Wherever the system has them (Debian: /usr/bin); the driver is still given explicitly.
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")


def require_chromium() -> None:
    """Skip without a browser, except on CI (CI=true), where `make test` installs it: fail."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    reason = (
        "Debian's chromium and chromium-driver are not installed (`make test` installs "
        "them: apt-get install chromium chromium-driver)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must have them")
    pytest.skip(reason)


@pytest.fixture
def chromium_installed():
    require_chromium()


browser = pytest.mark.usefixtures("chromium_installed")


def chromium_driver(profile_dir: Path, *, window: str = "1280,2000"):
    """Debian's headless Chromium through its chromedriver, nothing downloaded; quit it after."""
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
        f"--window-size={window}",
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_AVOID_STATS", "true")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def open_in_chromium(html_path: Path, profile_dir: Path):
    """Open ``html_path``; returns (section ids found, image widths, screenshot PIL image)."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    from recommender.card import section_ids

    driver = chromium_driver(profile_dir)
    try:
        driver.set_page_load_timeout(60)
        driver.get(html_path.resolve().as_uri())
        found = {
            sid: driver.find_element(By.ID, sid).is_displayed()
            for sid in section_ids()
            if driver.find_elements(By.ID, sid)
        }
        widths = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0);"
        )
        title = driver.title
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    return found, widths, Image.open(io.BytesIO(png)).convert("L"), title


def assert_card_renders(html_path: Path, profile_dir: Path, *, min_images: int = 1) -> None:
    """Every section present and displayed, every image decoded, the screenshot not blank."""
    from PIL import ImageStat

    from recommender.card import section_ids

    found, widths, shot, title = open_in_chromium(html_path, profile_dir)
    assert sorted(found) == sorted(section_ids()), "sections missing from the page"
    assert all(found.values()), f"hidden sections: {[k for k, v in found.items() if not v]}"
    assert len(widths) >= min_images and all(w > 0 for w in widths), widths
    assert title.startswith("Model card")
    stat = ImageStat.Stat(shot)
    # A blank page is one flat colour: variance near 0. Text, tables and plots give far more.
    assert stat.var[0] > 100, f"screenshot looks blank (pixel variance {stat.var[0]:.1f})"
    dark = sum(shot.histogram()[:128]) / (shot.width * shot.height)
    assert dark > 0.005, f"screenshot has almost no dark (text) pixels: {dark:.4f}"


@browser
@pytest.mark.browser
def test_card_from_facts_renders_in_chromium(tmp_path):
    from test_card_render import report_and_profiles

    from recommender.card import evaluation_facts, subgroup_facts, write_card

    report, rows, _ = report_and_profiles(n=800)
    plots = {p.stem: p.read_bytes() for p in report.save_plots(tmp_path / "plots")}
    facts = {
        "model": {"name": "burnout-recommender", "version": "1"},
        "evaluation": evaluation_facts(report),
        "subgroups": subgroup_facts(report),
    }
    paths = write_card(facts, tmp_path / "card", plots=plots)
    assert_card_renders(paths["html"], tmp_path / "chromium-profile", min_images=len(plots))


@browser
@pytest.mark.browser
def test_a_blank_page_fails_the_check(tmp_path):
    # The check itself must be able to fail: an empty page has no sections and no contrast.
    page = tmp_path / "blank.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>Model card</title></head><body></body></html>"
    )
    with pytest.raises(AssertionError):
        assert_card_renders(page, tmp_path / "chromium-profile")


@browser
@pytest.mark.browser
def test_every_kind_of_card_renders_in_chromium(tmp_path):
    # The evidence-only model (no data, no plots) and a model retrained from a log with
    # carried arms, as their training writes them: every section shown, none saying it is
    # missing for a reason that is not the card's.
    from test_card_kinds import evidence_card_facts, log_card_facts

    from recommender.card import write_card

    facts, evaluation = log_card_facts()
    plots = {p.stem: p.read_bytes() for p in evaluation.report.save_plots(tmp_path / "plots")}
    kinds = {"evidence": (evidence_card_facts(), {}), "log": (facts, plots)}
    for kind, (card, images) in kinds.items():
        paths = write_card(card, tmp_path / kind, plots=images)
        assert_card_renders(paths["html"], tmp_path / f"profile-{kind}", min_images=len(images))
        page = paths["html"].read_text(encoding="utf-8")
        assert "before the fairness section existed" not in page, kind
