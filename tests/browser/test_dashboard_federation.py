"""A member, following the README: its node receives a real federation's release, and the
dashboard on its node's config shows it in headless Chromium, in English and Japanese.

Real daemons (a coordinator and fifteen node processes over mutual TLS), one catalogue round,
``scfed dashboard --config node.toml --port 0`` as its own process, Debian's Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from coordinator.admin_client import AdminClient
from edge.config import load_operator_config
from protos.scfed.v1 import service_pb2 as spb
from tests.browser._support import NEEDS_CHROMIUM, Recorded, new_context, screenshot
from tools import demo_data
from tools.demo import setup
from tools.processes import Processes, processes, start_coordinator, wait_for

pytestmark = [pytest.mark.integration, NEEDS_CHROMIUM]
MEMBER = "fab-kumamoto"


def _scfed(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scfed", *argv], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def _round(fed: Path, procs: Processes, start: dt.date) -> None:
    names = sorted(f.name for f in demo_data.FIRMS)
    address = f"127.0.0.1:{start_coordinator(fed, procs)}"
    for name in names:
        node = fed / "members" / name / "node.toml"
        procs.start(name, "node", "serve", "--config", str(node), "--coordinator", address)
    operator = load_operator_config(fed / "operators/operator/operator.toml")
    with AdminClient(operator, address) as admin:
        everyone = lambda: len(admin.status().connected) == len(names)  # noqa: E731
        wait_for("every node", everyone, procs, "coordinator")
        request = spb.StartRoundRequest(
            query=demo_data.ENTRY, entry=demo_data.ENTRY, week=start.isoformat(),
            candidates=names, phase_timeout_ms=5_000,
        )  # fmt: skip
        _, outcome = admin.start_round(request, timeout=90)
    assert outcome.type == "round.result", outcome


def _served(procs: Processes, config: Path) -> str:
    procs.start("dashboard", "dashboard", "--config", str(config), "--port", "0")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/", procs.log_text("dashboard"))
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(procs.log_text("dashboard"))


def _kept(config: Path) -> bool:
    listed = _scfed("node", "results", "--config", str(config), "--list")
    return demo_data.ENTRY in listed.stdout


#: Each row of the grid: its commodity, and each cell's light and text.
_ROWS = """rows => rows.map(r => [r.dataset.commodity,
    [...r.querySelectorAll('td')].map(c => [c.dataset.light, c.innerText])])"""


def _grid(page: Page) -> dict[tuple[str, str], tuple[str, str]]:
    """(commodity, week) -> (light, text) of every cell of the grid on the page."""
    weeks = page.eval_on_selector_all("table.lights thead th[title]", "t => t.map(h => h.title)")
    rows = page.eval_on_selector_all("tr[data-commodity]", _ROWS)
    return {
        (commodity, week): (light, text)
        for commodity, cells in rows
        for week, (light, text) in zip(weeks, cells, strict=True)
    }


def _look(page: Page, base: str, lang: str, want: dict[tuple[str, str], str], week: str) -> None:
    page.goto(f"{base}/grid")
    shown = _grid(page)
    assert {place: light for place, (light, _) in shown.items()} == want  # every light
    suppressed = "非公表" if lang == "ja" else "suppressed"
    for light, text in shown.values():
        assert (suppressed in text) == (light == "suppressed"), (light, text)
    screenshot(page, "federation-grid", lang)
    page.goto(f"{base}/")
    assert page.get_attribute("html", "lang") == lang
    tile = page.locator(f'.tile[data-commodity="{demo_data.KYUSHU_ANALOG}"]')
    assert tile.get_attribute("data-light") == want[(demo_data.KYUSHU_ANALOG, week)]
    if lang == "ja":
        assert "サプライチェーン" in page.inner_text("h1")
    screenshot(page, "federation-chain", lang)


def test_a_member_sees_its_node_s_release_in_the_browser(tmp_path: Path, browser: Browser) -> None:
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=today.weekday())
    fed = tmp_path / "fed"
    # The whole demo federation: Kyushu's demand has enough buyers that the dominance rule
    # publishes it (with ten firms its noisy squares hold it back in some runs).
    setup(fed, demo_data.FIRMS, start)
    config = fed / "members" / MEMBER / "node.toml"
    with processes(tmp_path / "logs") as procs:
        _round(fed, procs, start)
        wait_for(f"{MEMBER} keeps the release", lambda: _kept(config), procs, MEMBER)
        shown = _scfed("node", "results", "--config", str(config), "--format", "json")
        release = json.loads(shown.stdout)
        want = {(d["commodity"], d["week"]): d["light"] for d in release["derived"]}
        kyushu = [light for (key, _), light in want.items() if key == demo_data.KYUSHU_ANALOG]
        assert any(light.startswith("red") for light in kyushu), kyushu  # the squeeze
        base = _served(procs, config)
        for lang in ("en", "ja"):
            context = new_context(browser, lang)
            page = context.new_page()
            recorded = Recorded(page)
            _look(page, base, lang, want, start.isoformat())
            context.close()
            outside = [u for u in recorded.requests if not u.startswith(f"{base}/")]
            assert recorded.requests
            assert not outside, f"requests left 127.0.0.1: {outside}"
            assert not recorded.errors, recorded.errors
