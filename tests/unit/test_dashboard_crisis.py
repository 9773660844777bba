"""The dashboard's crisis page, through Flask's test client, and where its crises come from.

The releases are the synthetic ones (``tools.dashboard_data``), with the need-spare releases
of its Kyushu crisis; the page's figures are compared with those releases' cells. The crises
are read from a real federation's signed policy (``governance.local``), through a node's
store and through the coordinator's policy file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import flask
import pytest

from dashboard.app import create_app
from dashboard.crisis import ENDED, ON, UPCOMING, gap, page, status
from dashboard.i18n import iso_week
from dashboard.source import crises, loader
from dashboard.view import index
from governance.catalogue import EXAMPLE
from governance.local import coordinator_config, enroll_member, init_federation, sign_catalogue
from node.store import NodeStore
from scfed import wire
from scfed.catalogue import Cell
from scfed.errors import ConfigError, ScfedError
from scfed.release import Alert, Release
from scfed.wire.envelope import Envelope
from scfed.wire.policy import Crisis
from tests.unit.test_dashboard import tags
from tools.dashboard_data import CRISIS, FEW, KYUSHU, declared, synthetic

TODAY = dt.datetime.now(dt.UTC).date()
MINUS = "\N{MINUS SIGN}"


def small() -> tuple[list[Release], list[Alert]]:
    return synthetic(8, 6, 4)


def _crises() -> Sequence[Crisis]:
    return (declared(TODAY),)


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    return create_app(small, who="fab-kyushu", crises=_crises).test_client()


def _text(response: object) -> str:
    assert isinstance(response, flask.Response)
    return response.get_data(as_text=True)


def _need_spare() -> list[Release]:
    releases, _ = small()
    return sorted((r for r in releases if r.entry.name == CRISIS), key=lambda r: r.week)


def _rows(html: str) -> dict[str, list[dict[str, str]]]:
    """Each week of the need-spare table: the attributes of its cells, in order."""
    found: dict[str, list[dict[str, str]]] = {}
    for row in re.findall(r'<tr data-week="[^"]+">.*?</tr>', html, flags=re.DOTALL):
        cells = tags(row)
        week = cells[0][1]["data-week"]
        found[week] = [a for t, a in cells if t == "td"]
    return found


def _chart(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert found is not None
    (chart,) = flask.json.loads(found.group(1))
    assert isinstance(chart, dict)
    return chart


# ---- the page ----


def test_the_page_lists_the_declared_crisis(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/crisis"))
    crisis = declared(TODAY)
    rows = [a for t, a in tags(html) if t == "tr" and "data-crisis" in a]
    assert rows == [{"data-crisis": crisis.name, "data-status": "on"}]
    assert crisis.purpose in html
    assert f"{crisis.start} – {crisis.end}" in html
    assert '<span class="status s-on">on today</span>' in html
    assert f'<a href="/crisis#{KYUSHU.replace("/", "-")}">{KYUSHU}</a>' in html  # its figures
    assert f"Declared crises of this commodity: {crisis.name}" in html
    assert "scfed crisis inbox" in html
    assert "fab-kyushu" not in html.split("</header>", 1)[1]  # no firm named on the page


def test_whether_a_crisis_is_on_today() -> None:
    crisis = declared(date(2026, 3, 1))
    assert status(crisis, date(2026, 3, 1)) == ON
    assert status(crisis, date(2026, 2, 22)) == ON  # its first day
    assert status(crisis, date(2026, 2, 21)) == UPCOMING
    assert status(crisis, date(2026, 4, 30)) == ON  # its last day
    assert status(crisis, date(2026, 5, 1)) == ENDED
    later, earlier = declared(TODAY + timedelta(days=30), "later"), declared(date(2026, 1, 9))
    app = create_app(small, who="x", crises=lambda: (later, earlier)).test_client()
    html = _text(app.get("/crisis"))
    assert f"not on yet (from {later.start})" in html
    assert f"ended ({earlier.end})" in html


def test_need_and_spare_are_the_releases_figures(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/crisis"))
    rows = _rows(html)
    chart = _chart(html)
    releases = _need_spare()
    assert len(rows) == len(releases) + 3  # a release a week, then its horizon
    assert chart["unit"] == "wafers (200mm)/week"
    assert "Figures in wafers (200mm)/week." in html
    series, labels = chart["series"], chart["labels"]
    assert isinstance(series, list)
    assert isinstance(labels, list)
    assert [s["name"] for s in series] == ["need", "spare capacity"]
    checked = 0
    for release in releases:  # each week shown from the release of that week, or the latest
        last = release is releases[-1]
        for cell in release.cells:
            if cell.week != release.week and not last:
                continue
            shown = rows[cell.week.isoformat()][0 if cell.component == "need" else 1]
            n = labels.index(iso_week(cell.week))
            values = series[0 if cell.component == "need" else 1]
            if cell.estimate is None:
                assert values["values"][n] is None
                continue
            assert float(shown["data-value"]) == round(cell.estimate.value, 2)
            assert values["values"][n] == round(cell.estimate.value, 2)
            assert values["low"][n] == round(cell.estimate.low, 2)
            assert values["high"][n] == round(cell.estimate.high, 2)
            checked += 1
    assert checked == 2 * len(rows) - 1  # every cell but the suppressed one


def test_the_gap_is_need_minus_spare(client: flask.testing.FlaskClient) -> None:
    rows = _rows(_text(client.get("/crisis")))
    words = set()
    for need, spare, shown, _ in rows.values():
        if "data-suppressed" in spare:
            assert "data-gap" not in shown
            continue
        want = float(need["data-value"]) - float(spare["data-value"])
        assert float(shown["data-gap"]) == pytest.approx(want, abs=0.02)
        words.add(shown["class"].split()[-1])
    assert words == {"gap-short", "gap-spare", "gap-even"}  # the data show each case
    html = _text(client.get("/crisis"))
    assert f"{MINUS}18 <small>[{MINUS}25, {MINUS}11]</small>" in html
    assert '<span class="word">short</span>' in html


def test_the_gap_s_interval_adds_the_two_noises() -> None:
    need = _need_spare()[1].cells[0]
    spare = _need_spare()[1].cells[1]
    assert (need.component, spare.component) == ("need", "spare")
    found = gap(need, spare)
    assert found is not None
    assert need.estimate is not None
    assert spare.estimate is not None
    assert found.value == pytest.approx(need.estimate.value - spare.estimate.value)
    assert found.sd == pytest.approx((need.estimate.sd**2 + spare.estimate.sd**2) ** 0.5)
    assert found.high - found.value == pytest.approx(1.96 * found.sd, rel=1e-3)
    suppressed = Cell("spare", KYUSHU, need.week, None, "<3", FEW)
    assert gap(need, suppressed) is None


def test_a_suppressed_cell_says_why(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/crisis"))
    first = _need_spare()[0]
    (cell,) = [c for c in first.cells if c.suppressed]
    need, spare, shown, _ = _rows(html)[cell.week.isoformat()]
    assert spare["data-suppressed"] == FEW
    assert spare["title"] == f"spare capacity: {FEW}"
    assert "l-suppressed" in spare["class"]
    assert "data-value" in need
    assert shown["class"] == "none"
    assert ">suppressed<sup>1</sup></td>" in html
    assert f'<h4>Why cells are suppressed</h4>\n<ol class="notes"><li>{FEW}</li></ol>' in html
    assert f">{first.cells[0].contributors} / &lt;3</td>" in html  # the bands, as released


def test_the_page_in_japanese(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get("/crisis?lang=ja"))
    assert '<html lang="ja">' in html
    for words in (
        "危機対応：必要量と余剰能力", "宣言された危機", "発動中", "品目別の必要量と余剰能力",
        "単位：ウェハ（200mm）/週", "非公表<sup>1</sup>", "余剰能力: 推定提供企業数が3未満",
        "<li>推定提供企業数が3未満</li>", "差（必要量 \N{MINUS SIGN} 余剰能力）", "不足",
        "余剰あり", "誤差の範囲内", "秘密集計", "<code>scfed crisis inbox</code> を実行",
        f"{declared(TODAY).start}〜{declared(TODAY).end}",
    ):  # fmt: skip
        assert words in html, words
    chart = _chart(html)
    assert chart["unit"] == "ウェハ（200mm）/週"
    assert chart["title"] == "必要量と余剰能力"
    assert [s["name"] for s in chart["series"]] == ["必要量", "余剰能力"]  # type: ignore[attr-defined]
    assert 'href="/crisis">危機対応</a>' in html
    english = _text(client.get("/crisis?lang=en"))
    assert "危機対応：" not in english


@pytest.mark.parametrize("path", ["/", "/grid", f"/commodity/{KYUSHU}", "/alerts", "/crisis"])
def test_every_page_links_to_the_crisis_page(client: flask.testing.FlaskClient, path: str) -> None:
    nav = _text(client.get(path)).split("<nav>", 1)[1].split("</nav>", 1)[0]
    assert '<a href="/crisis">Crisis</a>' in nav
    japanese = _text(client.get(f"{path}?lang=ja")).split("<nav>", 1)[1]
    assert '<a href="/crisis">危機対応</a>' in japanese.split("</nav>", 1)[0]


def test_the_commodity_page_shows_the_need_spare_entry(client: flask.testing.FlaskClient) -> None:
    html = _text(client.get(f"/commodity/{KYUSHU}"))
    assert f'data-entry="{CRISIS}" data-metric="need-spare"' in html
    assert "need vs spare capacity" in html
    assert f'href="/crisis#{KYUSHU.replace("/", "-")}"' in html


def test_no_crisis_and_no_figures_is_a_page_not_a_404() -> None:
    def nothing() -> tuple[Sequence[Release], Sequence[Alert]]:
        return (), ()

    response = create_app(nothing, who="x").test_client().get("/crisis")  # no crises given
    assert response.status_code == 200
    html = _text(response)
    assert "Governance has declared no crisis in the signed policy" in html
    assert "No need-spare release yet" in html
    assert "chart-data" not in html
    assert "<canvas" not in html
    ja = _text(create_app(nothing, who="x").test_client().get("/crisis?lang=ja"))
    assert "危機の宣言はありません" in ja
    assert "必要量・余剰能力のリリースはまだありません" in ja


def test_figures_without_a_declared_crisis() -> None:
    html = _text(create_app(small, who="x").test_client().get("/crisis"))
    assert "Governance has declared no crisis" in html
    assert 'id="crisis-chart-0"' in html  # the released figures are shown all the same
    assert "Declared crises of this commodity" not in html


def test_the_page_keeps_to_its_origin_and_its_policy(client: flask.testing.FlaskClient) -> None:
    response = client.get("/crisis")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    html = _text(response)
    for tag, attributes in tags(html):
        for name in ("src", "href"):
            if name in attributes:
                assert attributes[name].startswith("/"), (tag, attributes[name])
                assert not attributes[name].startswith("//"), (tag, attributes[name])
        if tag == "script":
            assert "src" in attributes or attributes.get("type") == "application/json"
        assert "style" not in attributes, tag
    assert "<style" not in html


@pytest.mark.parametrize("path", ["/crisis/kyushu-earthquake", "/crisis/", "/crises"])
def test_other_crisis_paths_are_404(client: flask.testing.FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "Not found" in _text(response)


def test_only_get_is_served(client: flask.testing.FlaskClient) -> None:
    assert client.post("/crisis").status_code == 405


def test_a_failing_policy_reader_is_a_plain_error_page() -> None:
    def broken() -> Sequence[Crisis]:
        raise ScfedError("the policy is unreadable")

    response = create_app(small, who="x", crises=broken).test_client().get("/crisis")
    assert response.status_code == 500
    assert "Traceback" not in _text(response)


def test_the_view_of_two_entries_and_charts_numbered() -> None:
    releases, alerts = small()
    other = [r for r in releases if r.entry.name == CRISIS]
    renamed = [
        dataclasses.replace(r, entry=dataclasses.replace(r.entry, name="crisis-two")) for r in other
    ]
    shown = page(index([*releases, *renamed], alerts), (), TODAY, "en")
    (commodity,) = shown.commodities
    assert commodity.key == KYUSHU
    assert [f.entry for f in commodity.figures] == [CRISIS, "crisis-two"]
    assert [c["id"] for c in shown.charts] == ["crisis-chart-0", "crisis-chart-1"]


# ---- where the crises come from ----

DECLARED = """
[[crisis]]
name = "kyushu-quake"
purpose = "wafer supply after the earthquake"
commodities = ["{key}"]
start = {start}
end = {end}
"""


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fed")
    now = dt.datetime.now(dt.UTC)
    init_federation(directory, "demo", None, "127.0.0.1:0", [], now)
    enroll_member(directory, "fab-a", None, None, now)
    catalogue = directory / "catalogue.toml"
    text = DECLARED.format(key=KYUSHU, start=TODAY - timedelta(days=3), end=TODAY + timedelta(30))
    catalogue.write_text(EXAMPLE + text, encoding="utf-8")
    sign_catalogue(directory, catalogue)
    return directory


def _want() -> Crisis:
    start, end = TODAY - timedelta(days=3), TODAY + timedelta(days=30)
    return Crisis(
        "kyushu-quake", "wafer supply after the earthquake", (KYUSHU,), start.isoformat(),
        end.isoformat(),
    )  # fmt: skip


def test_the_coordinator_reads_the_crises_of_its_policy_file(federation: Path) -> None:
    assert tuple(crises(coordinator_config(federation))()) == (_want(),)


def test_a_node_reads_the_crises_of_the_newest_policy_it_accepted(federation: Path) -> None:
    node = federation / "members" / "fab-a" / "node.toml"
    database = node.parent / "node.sqlite"
    database.unlink(missing_ok=True)
    read = crises(node)
    assert tuple(read()) == ()  # no policy accepted yet, and reading made no database
    assert not database.exists()
    signed = (federation / "governance" / "public" / "policy.signed").read_bytes()
    store = NodeStore(database)
    store.accept(wire.POLICY, 1, Envelope.from_bytes(signed))
    store.close()
    assert tuple(read()) == (_want(),)
    assert tuple(read()) == (_want(),)  # verified once, kept
    load, who = loader(node)
    app = create_app(load, who=who, crises=read).test_client()
    html = _text(app.get("/crisis"))
    assert 'data-crisis="kyushu-quake" data-status="on"' in html
    assert "No need-spare release yet" in html


def test_a_policy_not_signed_by_governance_is_refused(federation: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    now = dt.datetime.now(dt.UTC)
    init_federation(other, "demo", None, "127.0.0.1:0", [], now)  # another governance key
    catalogue = other / "catalogue.toml"
    catalogue.write_text(EXAMPLE, encoding="utf-8")
    sign_catalogue(other, catalogue)
    node = federation / "members" / "fab-a" / "node.toml"
    database = node.parent / "node.sqlite"
    database.unlink(missing_ok=True)
    store = NodeStore(database)
    forged = (other / "governance" / "public" / "policy.signed").read_bytes()
    store.accept(wire.POLICY, 2, Envelope.from_bytes(forged))
    store.close()
    with pytest.raises(ScfedError):
        crises(node)()
    database.unlink()


def test_crises_are_read_only_with_a_node_s_or_the_coordinator_s_config(tmp_path: Path) -> None:
    (tmp_path / "operator.toml").write_text('name = "ops"\n')
    with pytest.raises(ConfigError, match="read with a node's or the coordinator's config"):
        crises(tmp_path / "operator.toml")
