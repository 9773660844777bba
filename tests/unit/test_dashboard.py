"""The dashboard's pages, through Flask's test client, over releases built here.

The releases are real ``scfed.release.Release`` objects (``published`` derives their lights
from the cells), so what a page shows is compared with what the release says. No socket is
opened; the browser tests in ``tests/browser`` serve the same data over loopback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import date
from html.parser import HTMLParser

import flask
import pytest

from dashboard.app import create_app
from dashboard.i18n import bin_label, choose, number, reason, unit
from scfed.cli import main
from scfed.release import Alert, Release
from tools.dashboard_data import DOMINATED, FEW, KYUSHU, commodities, synthetic


def small() -> tuple[list[Release], list[Alert]]:
    return synthetic(8, 6, 4)


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    return create_app(small, who="fab-kyushu").test_client()


def latest_lights() -> dict[tuple[str, date], str]:
    releases, _ = small()
    dc = [r for r in releases if r.entry.metric == "demand-capacity"]
    return max(dc, key=lambda r: r.week).lights()


class _Page(HTMLParser):
    """The elements of a page: each tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def tags(html: str) -> list[tuple[str, dict[str, str]]]:
    page = _Page()
    page.feed(html)
    return page.tags


def _text(response: object) -> str:
    assert isinstance(response, flask.Response)
    return response.get_data(as_text=True)


# ---- what the pages show ----


def test_the_grid_shows_the_latest_release_lights(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/grid"))
    want = latest_lights()
    shown = [a["data-light"] for t, a in tags(html) if t == "td" and "data-light" in a]
    assert sorted(shown) == sorted(want.values())
    assert {"green", "orange", "red", "suppressed"} <= {s.split(" ")[0] for s in shown}
    assert any(s.endswith("(uncertain)") for s in shown)


def test_each_grid_cell_has_its_release_light(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/grid"))
    rows = re.findall(r'<tr data-commodity="([^"]+)">(.*?)</tr>', html, flags=re.DOTALL)
    want = latest_lights()
    weeks = sorted({week for _, week in want})
    assert len(rows) == 8
    for key, row in rows:
        lights = re.findall(r'data-light="([^"]*)"', row)
        assert lights == [want[(key, week)] for week in weeks], key


def test_a_suppressed_cell_says_so_with_its_reason(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/grid"))
    cells = [a for t, a in tags(html) if t == "td" and a.get("data-light") == "suppressed"]
    assert cells
    assert all("title" in a for a in cells)
    assert any(f"maximum capacity: {FEW}" in a["title"] for a in cells)
    assert any(f"demand: {DOMINATED}" in a["title"] for a in cells)
    assert ">suppressed<sup>" in html
    assert f"<li>{FEW}</li>" in html  # the footnote


def test_the_chain_tiles_show_the_first_week_light(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/"))
    want = latest_lights()
    first = min(week for _, week in want)
    tiles = {a["data-commodity"]: a for t, a in tags(html) if "tile" in a.get("class", "")}
    assert set(tiles) == set(commodities(8))
    for key, attributes in tiles.items():
        assert attributes["data-light"] == want[(key, first)], key
        assert ("uncertain" in attributes["class"]) == want[(key, first)].endswith("(uncertain)")
    assert "first week of the latest demand-capacity release" in html


def test_new_alerts_are_marked(client: flask.testing.FlaskClient) -> None:
    _, raised = small()
    releases, _ = small()
    newest = max(r.week for r in releases)
    latest_rounds = {r.round_id for r in releases if r.week == newest}
    new = [a for a in raised if a.round_id in latest_rounds]
    assert new, "the data raise alerts in the latest release"
    html = _text(client.get("/alerts"))
    assert html.count('<tr class="new"') == len(new)
    assert html.count("<tr class=") == len(raised)
    indexes = [int(n.replace(",", "")) for n in re.findall(r'<td class="num">([\d,]+)</td>', html)]
    assert indexes == sorted(indexes, reverse=True)
    chain = _text(client.get("/"))
    assert chain.count('<span class="badge">new alert</span>') == len({a.commodity for a in new})


def test_the_commodity_page_has_charts_with_units_and_bands(
    client: flask.testing.FlaskClient,
) -> None:
    key = "fabrication/analog/14-28nm/300mm/JP-Kyushu"
    response = client.get(f"/commodity/{key}")
    html = _text(response)
    assert response.status_code == 200
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert found is not None
    charts = flask.json.loads(found.group(1))
    units = {c["title"]: c["unit"] for c in charts}
    assert units["demand vs capacity"] == "wafers (300mm)/week"
    assert units["stock"] == "wafers (300mm)"
    assert units["Book-to-bill ratio"] == "ratio"
    assert any(u == "firms" for t, u in units.items() if t.startswith("days of supply"))
    demand = next(c for c in charts if c["title"] == "demand vs capacity")
    assert [s["name"] for s in demand["series"]] == [
        "demand",
        "actual capacity",
        "maximum capacity",
    ]
    assert all(len(s["low"]) == len(s["high"]) == len(demand["labels"]) for s in demand["series"])
    assert "Contributors (2026-W07)" in html
    assert len(re.findall(r"<canvas ", html)) == len(charts)


def test_past_weeks_come_from_their_own_release(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get(f"/commodity/{KYUSHU}"))
    found = re.search(r'id="chart-data">(.*?)</script>', html)
    assert found is not None
    demand = flask.json.loads(found.group(1))[0]
    releases, _ = small()
    dc = sorted((r for r in releases if r.entry.metric == "demand-capacity"), key=lambda r: r.week)
    assert demand["labels"][0] == "2026-W02"
    assert len(demand["labels"]) == len(dc) + 3  # a release a week, then the horizon
    for n, release in enumerate(dc):
        cell = next(
            c for c in release.cells
            if c.commodity == KYUSHU and c.week == release.week and c.component == "demand"
        )  # fmt: skip
        assert cell.estimate is not None
        assert demand["series"][0]["values"][n] == round(cell.estimate.value, 2)


# ---- languages ----


def test_japanese_is_chosen_by_the_browser(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/grid", headers={"Accept-Language": "ja,en;q=0.5"}))
    assert '<html lang="ja">' in html
    assert "週ごとの信号" in html
    assert "非公表" in html
    assert "推定提供企業数が3未満" in html
    english = _text(client.get("/grid", headers={"Accept-Language": "en-GB,en"}))
    assert '<html lang="en">' in english
    assert "週ごとの信号" not in english


def test_the_switch_sets_and_remembers_the_language(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/alerts", headers={"Accept-Language": "en"}))
    switch = next(a for t, a in tags(html) if a.get("id") == "lang-switch")
    assert switch["href"] == "/alerts?lang=ja"
    response = client.get(switch["href"], headers={"Accept-Language": "en"})
    assert '<html lang="ja">' in _text(response)
    assert "lang=ja" in response.headers["Set-Cookie"]
    again = _text(client.get("/", headers={"Accept-Language": "en"}))
    assert '<html lang="ja">' in again
    assert "サプライチェーン全体の状況" in again
    back = _text(client.get("/?lang=en"))
    assert '<html lang="en">' in back


def test_the_japanese_commodity_page_translates_units(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get(f"/commodity/{KYUSHU}?lang=ja"))
    assert "ウェハ（200mm）/週" in html
    assert "需要と能力" in html
    assert "提供企業数" in html


@pytest.mark.parametrize(
    ("asked", "remembered", "accepted", "chosen"),
    [
        (None, None, None, "en"),
        (None, None, "ja", "ja"),
        (None, "en", "ja", "en"),
        ("ja", "en", "en", "ja"),
        ("fr", None, None, "en"),
    ],
)
def test_the_language_choice(
    asked: str | None, remembered: str | None, accepted: str | None, chosen: str
) -> None:
    assert choose(asked, remembered, accepted) == chosen


def test_units_numbers_and_reasons_in_japanese() -> None:
    assert unit("ja", "wafers (300mm)/week") == "ウェハ（300mm）/週"
    assert unit("ja", "units") == "個"
    assert unit("ja", "firms") == "社"
    assert unit("en", "units/week") == "units/week"
    assert number(1234567.4) == "1,234,567"
    assert number(1) == "1"
    assert number(2.5) == "2.50"
    assert bin_label("ja", "lead:52w+") == "52週以上"
    assert bin_label("en", "dos:7-14d") == "7-14 days"
    assert (
        reason("ja", "estimated contributors below 5 in this week")
        == "この週の推定提供企業数が5未満"
    )
    assert reason("ja", "something new") == "something new"


# ---- what the server allows ----


@pytest.mark.parametrize(
    "path",
    ["/commodity/fabrication/analog/90-180nm/200mm/US", "/commodity/nonsense", "/nowhere",
     "/grid/weekly-unknown", "/grid/weekly-stock"],
)  # fmt: skip
def test_unknown_pages_are_404_without_a_traceback(
    client: flask.testing.FlaskClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "Traceback" not in _text(response)
    assert "Not found" in _text(response)


def test_one_entry_grid(client: flask.testing.FlaskClient) -> None:
    response = client.get("/grid/weekly-demand-capacity")
    assert response.status_code == 200
    assert 'data-entry="weekly-demand-capacity"' in _text(response)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_is_served(client: flask.testing.FlaskClient, method: str) -> None:
    response = client.open("/grid", method=method)
    assert response.status_code == 405
    assert "read-only" in _text(response)


@pytest.mark.parametrize(
    "path", ["/", "/grid", f"/commodity/{KYUSHU}", "/alerts", "/crisis", "/nowhere"]
)
def test_headers_and_same_origin_links(client: flask.testing.FlaskClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    html = _text(response)
    for tag, attributes in tags(html):
        for name in ("src", "href"):
            if name in attributes:
                link = attributes[name]
                assert link.startswith("/"), (tag, link)
                assert not link.startswith("//"), (tag, link)
        if tag == "script":
            assert "src" in attributes or attributes.get("type") == "application/json"
        assert "style" not in attributes, tag
    assert "<style" not in html


def test_the_static_files_are_served(client: flask.testing.FlaskClient) -> None:
    for name in ("dashboard.css", "charts.js", "vendor/chart.umd.min.js", "vendor/LICENSE.md"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        response.close()
    css = _text(client.get("/static/dashboard.css"))
    assert '"Noto Sans CJK JP"' in css
    assert "IPAGothic" in css
    assert "url(" not in css  # no web fonts, no images from anywhere


def test_a_failing_loader_is_a_plain_error_page() -> None:
    def broken() -> tuple[Sequence[Release], Sequence[Alert]]:
        raise RuntimeError("the store is unreadable")

    response = create_app(broken, who="x").test_client().get("/")
    assert response.status_code == 500
    assert "Traceback" not in _text(response)
    assert "could not be read" in _text(response)


# ---- speed ----


@pytest.fixture(scope="module")
def year() -> flask.testing.FlaskClient:
    data = synthetic(100, 52, 8)
    return create_app(lambda: data, who="fab-kyushu").test_client()


@pytest.mark.parametrize("path", ["/", "/grid", f"/commodity/{KYUSHU}", "/alerts", "/crisis"])
def test_a_year_of_releases_renders_in_under_a_second(
    year: flask.testing.FlaskClient, path: str
) -> None:
    year.get(path)  # templates compiled
    began = time.perf_counter()
    response = year.get(path)
    took = time.perf_counter() - began
    assert response.status_code == 200
    assert took < 1.0, f"{path} took {took:.2f} s"
    assert len(response.get_data()) < 400_000


def test_the_alerts_come_a_hundred_a_page(year: flask.testing.FlaskClient) -> None:
    _, raised = synthetic(100, 52, 8)
    assert len(raised) > 200
    first = _text(year.get("/alerts"))
    assert first.count("<tr class=") == 100
    assert f"Alerts 1–100 of {len(raised):,}." in first
    last_page = -(-len(raised) // 100)
    last = _text(year.get(f"/alerts?page={last_page}"))
    assert last.count("<tr class=") == len(raised) - 100 * (last_page - 1)
    for page in ("0", str(last_page + 1), "x"):
        assert year.get(f"/alerts?page={page}").status_code == 404


# ---- the command ----


def test_the_command_refuses_a_public_host_without_public(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["dashboard", "--config", "node.toml", "--host", "0.0.0.0"])
    assert code == 1
    assert "--public" in capsys.readouterr().err


def test_the_command_help_says_who_may_see_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    out = capsys.readouterr().out
    assert "--public" in out
    assert "members" in out
