"""The service's HTML pages against WCAG 2.1 AA basics, measured in headless Chromium.

The landing page and the served model card through a running service (the card with the
auditor's key, set as a header through the DevTools protocol), and the card of a version whose
promotion gate failed (its warning banner first), written by ``write_card`` and opened as a
file. Every figure is computed in the browser from the rendered page: computed colours, the
element the Tab key focuses, the page's width at 200 % zoom and at 320 CSS px, the print media.
A page built to fail each check is checked too, so the checks can fail.

Cards written before this file keep the markup they were written with (no skip link, plots
described by their caption only); the service serves them as they are.
"""

from __future__ import annotations

import pytest
from test_card_browser import chromium_driver, require_chromium

from service_fixtures import KEYS, champion_home, server_url  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.slow]

PAGES = ("landing", "card", "failed-gate card")

# Everything each check needs, gathered in the page in one call: structure, images, tables,
# colour contrast of every visible text node, links, overflow and motion.
AUDIT = r"""
const parse = c => {
  const m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3]));
const luminance = rgb => {
  const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
};
const backdrop = el => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let bg = [255, 255, 255];
  for (const layer of layers.reverse()) bg = over(layer, [...bg, 1]);
  return bg;
};
const contrast = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const el = node.parentElement;
  if (!node.textContent.trim() || !el.checkVisibility({opacityProperty: true})) continue;
  if (el.closest('.skip') && !el.matches(':focus')) continue;  // shown only when focused
  const bg = backdrop(el);
  const fg = over(parse(getComputedStyle(el).color), [...bg, 1]);
  const [a, b] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
  contrast.push({text: node.textContent.trim().slice(0, 60), ratio: (a + 0.05) / (b + 0.05),
                 banner: !!el.closest('.warning, .note')});
}
const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => +h.tagName[1]);
const focusable = [...document.querySelectorAll('a[href], button, input, select, textarea, '
  + '[tabindex]:not([tabindex="-1"])')].filter(e => e.checkVisibility() || e.matches('.skip'));
const first = focusable[0];
const skipTarget = first && first.hash ? document.getElementById(first.hash.slice(1)) : null;
const scrollers = [...document.querySelectorAll('body *')].filter(e =>
  ['auto', 'scroll'].includes(getComputedStyle(e).overflowX));
const label = e => {
  const by = e.getAttribute('aria-labelledby');
  return (e.getAttribute('aria-label') || (by && document.getElementById(by)?.textContent) || '')
    .trim();
};
const outside = [];
const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = texts.nextNode(); node; node = texts.nextNode()) {
  const el = node.parentElement;
  if (!node.textContent.trim() || !el.checkVisibility() || el.closest('[role=region], .skip'))
    continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  if (range.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    outside.push(node.textContent.trim().slice(0, 60));
}
return {
  lang: document.documentElement.lang,
  title: document.title,
  h1: document.querySelectorAll('h1').length,
  jumps: headings.filter((level, i) => i > 0 && level > headings[i - 1] + 1).length,
  main: document.querySelectorAll('main').length,
  nav: document.querySelectorAll('nav').length,
  skip: !!skipTarget && !!skipTarget.closest('main'),
  images: [...document.images].map(i => i.alt),
  tables: [...document.querySelectorAll('table')].map(t => ({
    caption: (t.caption?.textContent || '').trim(),
    unscoped: t.querySelectorAll('th:not([scope])').length,
    empty: [...t.querySelectorAll('td')].filter(td => !td.textContent.trim()).length,
  })),
  contrast: contrast,
  plainLinks: [...document.querySelectorAll('a[href]')].filter(a => a.checkVisibility()
    && !getComputedStyle(a).textDecorationLine.includes('underline')).map(a => a.textContent),
  focusable: focusable.length,
  scrollers: scrollers.map(e => ({
    scrolls: e.scrollWidth > e.clientWidth + 1, tabindex: e.tabIndex, role: e.getAttribute('role'),
    label: label(e)})),
  width: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
  outside: outside,
  moving: [...document.querySelectorAll('*')].filter(e => {
    const s = getComputedStyle(e);
    return s.animationName !== 'none'
      || s.transitionDuration.split(',').some(d => parseFloat(d) > 0)
      || s.scrollBehavior === 'smooth';
  }).length,
  printed: ['.skip', 'nav'].map(s => [...document.querySelectorAll(s)])
    .flat().filter(e => getComputedStyle(e).display !== 'none').length,
};
"""

# What the element Tab focused is, and whether it shows a focus indicator.
FOCUSED = r"""
const e = document.activeElement;
if (!e || e === document.body) return null;
const s = getComputedStyle(e);
const ring = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
const index = [...document.querySelectorAll('*')].indexOf(e);
return {index: index, visible: e.matches(':focus-visible') && (ring || s.boxShadow !== 'none'),
        what: e.tagName + ' ' + (e.textContent || '').trim().slice(0, 40)};
"""


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One headless Chromium for the module, sending the auditor's key with every request."""
    require_chromium()
    driver = chromium_driver(tmp_path_factory.mktemp("a11y-chromium"), window="1280,1000")
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {KEYS['auditor']}"}}
    )
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def addresses(server_url, champion_home, tmp_path_factory):  # noqa: F811
    """Each page's address: the two served pages and a failed-gate card written as a file."""
    from recommender.card import read_card, write_card

    facts, plots = read_card(champion_home / "cards" / "1")
    facts["model"]["gate"] = {"passed": False, "reason": "policy value 1.2 below the champion's"}
    folder = tmp_path_factory.mktemp("failed-gate-card")
    card = write_card(facts, folder, plots=plots)["html"]
    return {
        "landing": f"{server_url}/",
        "card": f"{server_url}/model_card",
        "failed-gate card": card.resolve().as_uri(),
    }


def audit(driver, address: str, *, width: int | None = None, media: dict | None = None) -> dict:
    """The AUDIT figures of the page at ``address``, seen ``width`` CSS px wide (a window of
    1280 px zoomed to 1280 / width) and with ``media`` emulated (print, dark, reduced motion)."""
    if width:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 800, "deviceScaleFactor": 1280 / width, "mobile": False},
        )
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", media or {"media": "", "features": []})
    try:
        driver.get(address)
        return driver.execute_script(AUDIT)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})


def assert_structure(page: dict) -> None:
    """WCAG 1.3.1, 2.4.1, 2.4.2, 3.1.1: language, title, headings, landmarks, skip link."""
    assert page["lang"] == "en"
    assert page["title"].startswith(("Model card: ", "burnout-recommender: ")), page["title"]
    assert page["h1"] == 1 and page["jumps"] == 0 and page["main"] == 1, page
    if page["nav"]:
        assert page["skip"], "a page with navigation needs a skip link into its main content"


def assert_text_alternatives(page: dict) -> None:
    """WCAG 1.1.1 and 1.3.1: plots described with their numbers, tables captioned and scoped,
    no cell left empty (a suppressed cell says so in words)."""
    for alt in page["images"]:
        assert len(alt) > 80 and sum(c.isdigit() for c in alt) >= 10, alt
    for table in page["tables"]:
        assert table["caption"] and table["unscoped"] == 0 and table["empty"] == 0, table


def assert_contrast(page: dict) -> None:
    """WCAG 1.4.3 and 1.4.1: every visible text node 4.5:1, links underlined."""
    low = [(t["text"], round(t["ratio"], 2)) for t in page["contrast"] if t["ratio"] < 4.5]
    assert page["contrast"] and low == []
    assert page["plainLinks"] == []


def assert_reflows(page: dict) -> None:
    """WCAG 1.4.10: no sideways scroll of the page, no text past its right edge; a box that
    scrolls sideways is reachable by keyboard and named."""
    assert page["width"][0] <= page["width"][1] and page["outside"] == [], page["outside"]
    for box in page["scrollers"]:
        if box["scrolls"]:
            assert box["tabindex"] == 0 and box["role"] == "region" and box["label"], box


def tab_through(driver, limit: int) -> list:
    """What Tab focuses, press after press, until focus leaves the page or ``limit`` presses."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    seen = []
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.execute_script(FOCUSED)
        if focused is None or (seen and focused["index"] == seen[0]["index"]):
            break
        seen.append(focused)
    return seen


@pytest.mark.parametrize("name", PAGES)
def test_structure_alternatives_and_contrast(chromium, addresses, name):
    page = audit(chromium, addresses[name])
    assert_structure(page)
    assert_text_alternatives(page)
    assert_contrast(page)
    if name != "landing":
        assert len(page["images"]) >= 3 and len(page["tables"]) >= 10
    if name == "failed-gate card":  # its two warning banners are among the texts measured
        assert sum(t["banner"] for t in page["contrast"]) >= 2


@pytest.mark.parametrize("name", PAGES)
def test_dark_mode_and_reduced_motion_keep_the_page_readable_and_still(chromium, addresses, name):
    media = {
        "features": [
            {"name": "prefers-color-scheme", "value": "dark"},
            {"name": "prefers-reduced-motion", "value": "reduce"},
        ]
    }
    page = audit(chromium, addresses[name], media=media)
    assert_contrast(page)
    assert page["moving"] == 0


@pytest.mark.parametrize("name", PAGES)
def test_every_link_and_control_is_reached_by_tab_in_order_with_a_visible_focus(
    chromium, addresses, name
):
    page = audit(chromium, addresses[name])
    seen = tab_through(chromium, page["focusable"] + 3)
    # each focusable element once, in the order of the page, each showing where focus is; the
    # last Tab leaves the page (no trap)
    assert len(seen) == page["focusable"], [s["what"] for s in seen]
    assert [s["index"] for s in seen] == sorted(s["index"] for s in seen)
    assert [s["what"] for s in seen if not s["visible"]] == []
    if page["nav"]:
        assert seen[0]["what"].startswith("A Skip to")


@pytest.mark.parametrize("width", [640, 320])
@pytest.mark.parametrize("name", PAGES)
def test_pages_reflow_at_200_percent_zoom_and_320_css_pixels(chromium, addresses, name, width):
    assert_reflows(audit(chromium, addresses[name], width=width))


@pytest.mark.parametrize("name", PAGES)
def test_printing_clips_nothing_and_leaves_out_the_navigation(chromium, addresses, name):
    # A4 at 96 dpi less margins is about 700 CSS px; a box that scrolls on screen cannot on paper.
    page = audit(chromium, addresses[name], width=700, media={"media": "print"})
    assert page["width"][0] <= page["width"][1] and page["outside"] == []
    assert [box for box in page["scrollers"] if box["scrolls"]] == []
    assert page["printed"] == 0


def test_a_page_built_to_fail_fails_every_check(chromium, tmp_path):
    # The checks above can fail: a page with each fault they look for.
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><head><title>x</title><style>.w{width:900px;overflow-x:auto}"
        "a{text-decoration:none}a:focus{outline:none}p{transition:color 1s}</style></head>"
        '<body><nav><a href="#x">contents</a></nav><h1>a</h1><h3>b</h3><h1>c</h1>'
        '<p style="color:#999">faint</p><img alt="plot" src="data:,">'
        '<div class="w"><table><tr><th>h</th><td></td></tr></table></div>'
        f"<p>{'wide ' * 5}<span style='white-space:nowrap'>{'x' * 400}</span></p></body></html>"
    )
    page = audit(chromium, bad.resolve().as_uri(), width=320)
    for check in (assert_structure, assert_text_alternatives, assert_contrast, assert_reflows):
        with pytest.raises(AssertionError):
            check(page)
    assert page["moving"] > 0
    seen = tab_through(chromium, page["focusable"] + 3)
    assert [s["what"] for s in seen if not s["visible"]] != []
