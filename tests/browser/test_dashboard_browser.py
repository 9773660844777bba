"""The dashboard in a real headless Chromium, served by waitress on loopback.

The app is the real one over the synthetic releases of ``tests/unit/test_dashboard.py``; the
browser is Debian's ``/usr/bin/chromium`` driven by Playwright (never a downloaded build).
Each test reads the DOM as drawn (light attributes, computed colours, canvas pixels), every
request the browser makes is recorded and must go to the test's own server, and each page is
photographed in English and Japanese into ``$SCFED_SCREENSHOTS`` (default ``.screenshots/``).
The crisis page reads the synthetic Kyushu crisis's need-spare releases and a crisis
declared around today.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from datetime import date
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page

from dashboard.app import create_app
from dashboard.server import bind, url
from edge.observe import stop_serving
from tests.browser._support import COLOURS, NEEDS_CHROMIUM, Recorded, new_context, screenshot
from tools.dashboard_data import CRISIS, FEW, KYUSHU, declared, synthetic

pytestmark = NEEDS_CHROMIUM
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    releases, alerts = synthetic(40, 10, 6)
    crises = lambda: (declared(TODAY),)  # noqa: E731
    app = create_app(lambda: (releases, alerts), who="fab-kyushu", crises=crises)
    server = bind(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield url(server).rstrip("/")
    stop_serving(server, thread)


@pytest.fixture(params=["en", "ja"])
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def page(browser: Browser, base: str, lang: str) -> Iterator[tuple[Page, Recorded]]:
    context = new_context(browser, lang)
    page = context.new_page()
    recorded = Recorded(page)
    yield page, recorded
    context.close()
    outside = [u for u in recorded.requests if not u.startswith(f"{base}/")]
    assert recorded.requests, "the page made requests"
    assert not outside, f"requests left {base}: {outside}"
    assert not recorded.errors, f"console errors: {recorded.errors}"


def _latest_lights() -> dict[tuple[str, date], str]:
    releases, _ = synthetic(40, 10, 6)
    return max(
        (r for r in releases if r.entry.metric == "demand-capacity"), key=lambda r: r.week
    ).lights()


def test_the_tiles_show_the_release_lights(
    page: tuple[Page, Recorded], base: str, lang: str
) -> None:
    view, _ = page
    view.goto(f"{base}/")
    tiles = view.eval_on_selector_all(
        ".tile",
        """tiles => tiles.map(t => [t.dataset.commodity, t.dataset.light,
            getComputedStyle(t).backgroundColor, getComputedStyle(t).borderImageSource])""",
    )
    want = _latest_lights()
    first = min(week for _, week in want)
    assert len(tiles) == 40
    for commodity, light, colour, border in tiles:
        assert light == want[(commodity, first)], commodity
        assert colour == COLOURS[light.split(" ")[0]], (commodity, light)
        assert ("gradient" in border) == light.endswith("(uncertain)"), (commodity, light)
    screenshot(view, "chain", lang)


def test_the_grid_colours_and_suppressed_cells(
    page: tuple[Page, Recorded], base: str, lang: str
) -> None:
    view, _ = page
    view.goto(f"{base}/grid")
    cells = view.eval_on_selector_all(
        "tr[data-commodity] td",
        """cells => cells.map(c => [c.parentElement.dataset.commodity, c.dataset.light,
            getComputedStyle(c).backgroundColor, c.innerText, c.title])""",
    )
    want = _latest_lights()
    assert sorted(light for _, light, *_ in cells) == sorted(want.values())
    word = "非公表" if lang == "ja" else "suppressed"
    for _, light, colour, text, title in cells:
        assert colour == COLOURS[light.split(" ")[0]]
        assert (word in text) == (light == "suppressed"), (light, text)
        if light == "suppressed":
            assert title, "a suppressed cell gives its reason"
    if lang == "en":
        assert any(FEW in title for *_, title in cells)
        assert view.locator("ol.notes li").first.inner_text() == FEW
    screenshot(view, "grid", lang)


def test_the_page_language(page: tuple[Page, Recorded], base: str, lang: str) -> None:
    view, _ = page
    view.goto(f"{base}/alerts")
    assert view.get_attribute("html", "lang") == lang
    heading = view.inner_text("h1")
    assert heading == ("アラート" if lang == "ja" else "Alerts")
    view.click("#lang-switch")
    other = "en" if lang == "ja" else "ja"
    assert view.get_attribute("html", "lang") == other
    view.goto(f"{base}/")
    assert view.get_attribute("html", "lang") == other, "the switch is remembered"
    view.goto(f"{base}/alerts?lang={lang}")
    screenshot(view, "alerts", lang)


def test_the_charts_draw(page: tuple[Page, Recorded], base: str, lang: str) -> None:
    view, _ = page
    view.goto(f"{base}/commodity/{quote(KYUSHU)}")
    view.wait_for_selector("body[data-charts=drawn]", timeout=10_000)
    inked = view.eval_on_selector_all(
        "canvas",
        """canvases => canvases.map(c => {
            const pixels = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let inked = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) inked++; }
            return [c.id, c.dataset.drawn || "", c.width, inked];
        })""",
    )
    assert len(inked) == 7  # demand-capacity, stock, bookings and billings, ratio, ..., need-spare
    for chart_id, drawn, width, count in inked:
        assert drawn == "true", chart_id
        assert width > 100, chart_id
        assert count > 2000, f"{chart_id} is blank"
    screenshot(view, "commodity", lang)


def test_the_crisis_page_draws_its_chart(page: tuple[Page, Recorded], base: str, lang: str) -> None:
    view, recorded = page
    view.goto(f"{base}/crisis")  # the browser's locale picks the language
    assert view.get_attribute("html", "lang") == lang
    view.wait_for_selector("body[data-charts=drawn]", timeout=10_000)
    inked = view.eval_on_selector_all(
        "canvas",
        """canvases => canvases.map(c => {
            const pixels = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let inked = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) inked++; }
            return [c.id, c.dataset.drawn || "", c.width, inked];
        })""",
    )
    assert [chart_id for chart_id, *_ in inked] == ["crisis-chart-0"]
    for chart_id, drawn, width, count in inked:
        assert drawn == "true", chart_id
        assert width > 100, chart_id
        assert count > 2000, f"{chart_id} is blank"
    assert any(u.endswith("/static/vendor/chart.umd.min.js") for u in recorded.requests)
    heading = view.inner_text("h1")
    assert heading == (
        "危機対応：必要量と余剰能力" if lang == "ja" else "Crisis: need and spare capacity"
    )
    status = view.inner_text('tr[data-crisis="kyushu-earthquake"] .status')
    assert status == ("発動中" if lang == "ja" else "on today")
    nav = view.inner_text("header nav")
    assert ("危機対応" if lang == "ja" else "Crisis") in nav
    screenshot(view, "crisis", lang)


def test_the_crisis_table_and_its_suppressed_cell(
    page: tuple[Page, Recorded], base: str, lang: str
) -> None:
    view, _ = page
    view.goto(f"{base}/crisis?lang={lang}")
    section = f'section[data-commodity="{KYUSHU}"] div[data-entry="{CRISIS}"]'
    rows = view.eval_on_selector_all(
        f"{section} tbody tr",
        """rows => rows.map(r => [...r.querySelectorAll('td')].map(c => [c.className,
            c.innerText, c.title, getComputedStyle(c).backgroundColor]))""",
    )
    assert len(rows) == 3 + 3  # a release a week for three weeks, then its horizon
    suppressed = [cell for row in rows for cell in row if "l-suppressed" in cell[0]]
    assert len(suppressed) == 1
    _, text, title, colour = suppressed[0]
    assert colour == COLOURS["suppressed"]
    if lang == "ja":
        assert text.startswith("非公表")
        assert title == "余剰能力: 推定提供企業数が3未満"
    else:
        assert text.startswith("suppressed")
        assert title == f"spare capacity: {FEW}"
    gaps = [cell[1] for row in rows for cell in row if "gap" in cell[0].split()]
    assert len(gaps) == len(rows) - 1
    assert view.get_attribute("html", "lang") == lang
