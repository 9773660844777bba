"""Running a federation week after week, as the operator sees it: the coordinator runs its
entry by itself and never twice in a window, a round the nodes refuse ends at once saying
why, and the status lists past rounds after a restart. Real daemons on loopback."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordinator.admin_client import AdminClient
from edge.config import load_operator_config
from protos.scfed.v1 import service_pb2 as spb
from scfed.wire.codec import decode_abort
from tools import demo_data
from tools.demo import setup
from tools.processes import Processes, processes, start_coordinator, wait_for

pytestmark = pytest.mark.integration
FIRMS = demo_data.FIRMS[:5]


def _scfed(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scfed", *argv], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _federation(tmp_path: Path) -> tuple[Path, dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    fed = tmp_path / "fed"
    setup(fed, FIRMS, monday)
    return fed, monday


def _window(monday: dt.date) -> str:
    from scfed.dp.ledger import window_label

    return window_label(demo_data.CADENCE, monday)


def _nodes(fed: Path, procs: Processes, address: str) -> None:
    for firm in FIRMS:
        node = fed / "members" / firm.name / "node.toml"
        procs.start(firm.name, "node", "serve", "--config", str(node), "--coordinator", address)


def _last(config: Path) -> str:
    """The schedule's last outcomes, as the operator reads them."""
    shown = _scfed("coordinator", "schedule", "--config", str(config))
    return shown.split("last outcomes:")[1] if "last outcomes:" in shown else ""


def test_the_coordinator_runs_its_entry_by_itself_once_a_window(tmp_path: Path) -> None:
    fed, monday = _federation(tmp_path)
    config = fed / "coordinator" / "coordinator.toml"
    with config.open("a") as out:
        out.write('\n[schedule]\nenabled = true\nat = "00:00"\n')  # due since Monday
    operator = load_operator_config(fed / "operators/operator/operator.toml")
    with processes(tmp_path / "logs") as procs:
        address = f"127.0.0.1:{start_coordinator(fed, procs)}"
        _nodes(fed, procs, address)
        deadline = time.monotonic() + 90
        while f"{demo_data.ENTRY}  " not in _last(config):
            assert time.monotonic() < deadline, procs.log_text("coordinator")[-3000:]
            time.sleep(1)
        assert f"{demo_data.ENTRY}  {_window(monday)}  result" in _last(config)
        shown = _scfed("coordinator", "schedule", "--config", str(config))
        assert "schedule: on" in shown
        assert "next window" in shown  # released: nothing more this window
        with AdminClient(operator, address) as admin:
            request = spb.StartRoundRequest(
                query=demo_data.ENTRY, entry=demo_data.ENTRY, week=monday.isoformat()
            )
            with pytest.raises(Exception, match="released already in its window"):
                admin.start_round(request, timeout=30)
            rounds = list(admin.status().rounds)
        assert len(rounds) == 1
        assert rounds[0].endswith(f"{demo_data.ENTRY}: result"), rounds
        procs.kill("coordinator")
        procs.running["coordinator"].wait()
        (fed / "coordinator" / "port").unlink()
        address = f"127.0.0.1:{start_coordinator(fed, procs)}"
        with AdminClient(operator, address) as admin:
            assert list(admin.status().rounds) == rounds  # from the store, after a restart


def test_a_round_the_nodes_refuse_ends_at_once_and_says_why(tmp_path: Path) -> None:
    fed, monday = _federation(tmp_path)
    for firm in FIRMS[:3]:  # three of five ask for more noise than the entry gives
        node = fed / "members" / firm.name / "node.toml"
        node.write_text(node.read_text().replace('noise_floor = "2"', 'noise_floor = "900"'))
    operator = load_operator_config(fed / "operators/operator/operator.toml")
    with processes(tmp_path / "logs") as procs:
        address = f"127.0.0.1:{start_coordinator(fed, procs)}"
        _nodes(fed, procs, address)
        with AdminClient(operator, address) as admin:
            wait_for("5 nodes", lambda: len(admin.status().connected) == 5, procs, "coordinator")
            request = spb.StartRoundRequest(
                query=demo_data.ENTRY, entry=demo_data.ENTRY, week=monday.isoformat(),
                phase_timeout_ms=60_000,
            )  # fmt: skip
            started = time.monotonic()
            _, outcome = admin.start_round(request, timeout=90)
            took = time.monotonic() - started
            status = admin.status()
    assert outcome.type == "round.abort"
    reason = decode_abort(outcome.body).reason
    assert reason.startswith("3 nodes refused: noise below their floor; 2 of the 5 nodes"), reason
    assert took < 30, f"the round waited {took:.0f} s for its 60 s deadline"
    assert "3 nodes refused: noise below their floor" in status.rounds[0]


def test_a_node_takes_a_changed_opt_in_without_a_restart(tmp_path: Path) -> None:
    fed, monday = _federation(tmp_path)
    operator = load_operator_config(fed / "operators/operator/operator.toml")
    with processes(tmp_path / "logs") as procs:
        address = f"127.0.0.1:{start_coordinator(fed, procs)}"
        _nodes(fed, procs, address)
        with AdminClient(operator, address) as admin:
            wait_for("5 nodes", lambda: len(admin.status().connected) == 5, procs, "coordinator")
            for firm in FIRMS[:3]:  # they opt out while their nodes run
                node = fed / "members" / firm.name / "node.toml"
                text = node.read_text().replace(f'opt_in = ["{demo_data.ENTRY}"]', "opt_in = []")
                node.write_text(text.replace('rho_cap = "0.5"', 'rho_cap = "0.4"'))
            request = spb.StartRoundRequest(
                query=demo_data.ENTRY, entry=demo_data.ENTRY, week=monday.isoformat()
            )
            _, outcome = admin.start_round(request, timeout=90)
        log = procs.log_text(FIRMS[0].name)
    reason = decode_abort(outcome.body).reason
    assert reason.startswith("3 nodes refused: the entry is not one they opted into"), reason
    assert "node.toml changed: opt_in is now empty" in log
    assert "restart the node (scfed node serve) for the other changes" in log
