"""A catalogue round over real daemons, on data each firm imported with ``scfed node import``."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from coordinator.admin_client import AdminClient
from edge.config import load_operator_config
from protos.scfed.v1 import service_pb2 as spb
from scfed.wire.codec import decode_result
from tools import demo_data
from tools.demo import setup
from tools.processes import processes, start_coordinator, wait_for

pytestmark = pytest.mark.integration


def test_only_opted_in_nodes_take_part_and_the_release_is_honest(tmp_path: Path) -> None:
    firms = demo_data.FIRMS[:10]  # five Kyushu fabs take part: a cell's count is not marginal
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=today.weekday())  # nodes release the current week only
    fed = tmp_path / "fed"
    truth = setup(fed, firms, start)
    holdout = "fab-kitakyushu"  # has Kyushu capacity, but does not opt in
    config = fed / "members" / holdout / "node.toml"
    config.write_text(config.read_text().replace(f'opt_in = ["{demo_data.ENTRY}"]', "opt_in = []"))
    frugal = "auto-detroit"  # opts in, but its cap cannot hold the entry's plan for a year
    config = fed / "members" / frugal / "node.toml"
    config.write_text(config.read_text().replace('rho_cap = "0.5"', 'rho_cap = "0.1"'))
    names = sorted(f.name for f in firms)
    with processes(tmp_path / "logs") as procs:
        address = f"127.0.0.1:{start_coordinator(fed, procs)}"
        for name in names:
            node = fed / "members" / name / "node.toml"
            procs.start(name, "node", "serve", "--config", str(node), "--coordinator", address)
        operator = load_operator_config(fed / "operators/operator/operator.toml")
        with AdminClient(operator, address) as admin:
            wait_for("10 nodes", lambda: len(admin.status().connected) == 10, procs, "coordinator")
            request = spb.StartRoundRequest(
                query=demo_data.ENTRY, entry=demo_data.ENTRY, week=start.isoformat(),
                candidates=names, phase_timeout_ms=3_000,
            )  # fmt: skip
            _, outcome = admin.start_round(request, timeout=60)
        assert outcome.type == "round.result", outcome
        survivors = decode_result(outcome.body).survivors
        assert holdout not in survivors
        assert frugal not in survivors
        assert len(survivors) == 8
        assert "has not opted into catalogue entry" in procs.log_text(holdout)
        assert "past its cap" in procs.log_text(frugal)  # said when the policy arrived
        coordinator = fed / "coordinator/coordinator.toml"
        shown = subprocess.run(
            [sys.executable, "-m", "scfed", "coordinator", "results", "--config",
             str(coordinator), "--out", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        for name in (survivors[0], holdout):  # recipients = ["members"]: every member's node
            node = fed / "members" / name / "node.toml"
            wait_for(f"{name} keeps the release", lambda n=node: _kept(n), procs, name)  # type: ignore[misc]
        # A member audits the live log with its own node config, releases recomputed.
        member = fed / "members" / holdout / "node.toml"
        audited = _scfed("audit", "verify", "--config", str(member), "--coordinator", address)
        assert "release.recomputed" in audited, audited
    assert "estimated contributors below 3" in shown.stdout
    assert "wafers (200mm)/week" in shown.stdout  # every figure with its unit
    released = json.loads((tmp_path / "out/results.json").read_text())
    node = fed / "members" / holdout / "node.toml"
    received = json.loads(_scfed("node", "results", "--config", str(node), "--format", "json"))
    assert received == released  # the release the member's node verified and kept
    xlsx = tmp_path / "release.xlsx"
    _scfed("node", "results", "--config", str(node), "--format", "xlsx", "--output", str(xlsx))
    assert xlsx.read_bytes()[:2] == b"PK"
    assert released["survivors"] == 8
    kyushu = [
        c for c in released["cells"]
        if c["commodity"] == demo_data.KYUSHU_ANALOG and c["component"] == "capacity_actual"
    ]  # fmt: skip
    assert len(kyushu) == demo_data.HORIZON
    published = [c for c in kyushu if c["interval95"] is not None]
    # The disclosure rules read noisy sums: a cell may be held back.
    assert len(published) >= demo_data.HORIZON - 2, kyushu
    for cell in published:
        week = dt.date.fromisoformat(cell["week"])
        key = ("capacity_actual", demo_data.KYUSHU_ANALOG, week)
        true = sum((truth[f].get(key, Decimal(0)) for f in survivors), Decimal(0))
        low, high = cell["interval95"]
        # 95% intervals: a miss is possible, but not by more than another half-width.
        assert low - (high - low) / 2 <= true <= high + (high - low) / 2, cell
        assert cell["contributors"] in ("3-4", "5-9")


def _scfed(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scfed", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _kept(node: Path) -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "scfed", "node", "results", "--config", str(node), "--list"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode == 0 and demo_data.ENTRY in done.stdout
