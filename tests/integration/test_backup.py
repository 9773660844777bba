"""A node backed up while it serves, its database lost, restored: it spends nothing twice.

A real federation of three firms runs a catalogue round. The member's node is backed up while
it runs (and the coordinator too), stopped, and its database deleted; the restore brings back
the ledger, the unmask answer that makes the node refuse a second, different unmask request
for the answered round, and the release it received; then the node serves again, and a
restore while it runs is refused.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.admin_client import AdminClient
from edge.config import load_operator_config
from node.store import NodeStore
from protos.scfed.v1 import service_pb2 as spb
from scfed.errors import RefusedError
from scfed.secagg import previous_answer
from tools import demo_data
from tools.demo import setup
from tools.processes import Processes, processes, start_coordinator, wait_for

pytestmark = pytest.mark.integration

MEMBER = "fab-kumamoto"


def _scfed(*argv: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "scfed", *argv],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == code, done.stdout + done.stderr
    return done


def _kept(node: Path) -> bool:
    listed = subprocess.run(
        [sys.executable, "-m", "scfed", "node", "results", "--config", str(node), "--list"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return listed.returncode == 0 and demo_data.ENTRY in listed.stdout


def _connected(admin: AdminClient, count: int) -> bool:
    return len(admin.status(timeout=5).connected) == count


def _run_round(fed: Path, procs: Processes, address: str, names: list[str]) -> bytes:
    today = dt.datetime.now(dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    operator = load_operator_config(fed / "operators/operator/operator.toml")
    with AdminClient(operator, address) as admin:
        wait_for("3 nodes", lambda: _connected(admin, 3), procs, "coordinator")
        request = spb.StartRoundRequest(
            query=demo_data.ENTRY, entry=demo_data.ENTRY, week=monday.isoformat(),
            candidates=names, phase_timeout_ms=10_000,
        )  # fmt: skip
        round_id, outcome = admin.start_round(request, timeout=90)
    assert outcome.type == "round.result", outcome
    return round_id


def test_a_node_restored_from_a_live_backup_keeps_its_spend_answers_and_releases(
    tmp_path: Path,
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    fed = tmp_path / "fed"
    firms = demo_data.FIRMS[:3]
    setup(fed, firms, today - dt.timedelta(days=today.weekday()))
    names = sorted(f.name for f in firms)
    node = fed / "members" / MEMBER / "node.toml"
    database = node.parent / "node.sqlite"
    copy = tmp_path / "backups" / "node.sqlite"
    copy.parent.mkdir()
    with processes(tmp_path / "logs") as procs:
        address = f"127.0.0.1:{start_coordinator(fed, procs)}"
        for name in names:
            config = fed / "members" / name / "node.toml"
            procs.start(name, "node", "serve", "--config", str(config), "--coordinator", address)
        round_id = _run_round(fed, procs, address, names)
        wait_for(f"{MEMBER} keeps the release", lambda: _kept(node), procs, MEMBER)
        ledger = _scfed("node", "ledger", "--config", str(node)).stdout
        results = _scfed("node", "results", "--config", str(node), "--format", "json").stdout
        made = _scfed("node", "backup", "--config", str(node), "--to", str(copy)).stdout
        assert made.startswith(f"backed up the node's node.sqlite to {copy} (")
        coordinator = fed / "coordinator" / "coordinator.toml"
        _scfed("coordinator", "backup", "--config", str(coordinator), "--to", str(copy.parent))
        assert procs.running[MEMBER].poll() is None, "the backup disturbed the running node"

        procs.running[MEMBER].send_signal(signal.SIGTERM)
        assert procs.running[MEMBER].wait(timeout=10) == 0
        for suffix in ("", "-wal", "-shm"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        assert _scfed("node", "ledger", "--config", str(node)).stdout != ledger  # lost
        restored = _scfed("node", "restore", "--config", str(node), "--from", str(copy)).stdout
        tables = re.search(r"\((\d+) tables, ", made)
        assert tables is not None, made
        assert restored == (
            f"restored the node's {database} from {copy} ({tables.group(1)} tables, integrity ok); "
            "none was there before\n"
        )
        assert _scfed("node", "ledger", "--config", str(node)).stdout == ledger
        assert _scfed("node", "results", "--config", str(node), "--format", "json").stdout == (
            results
        )
        _check_the_answer_is_kept(database, round_id)

        procs.start(MEMBER, "node", "serve", "--config", str(node), "--coordinator", address)
        operator = load_operator_config(fed / "operators/operator/operator.toml")
        with AdminClient(operator, address) as admin:
            wait_for("the restored node", lambda: _connected(admin, 3), procs, "coordinator")
        refused = _scfed("node", "restore", "--config", str(node), "--from", str(copy), code=1)
        assert refused.stderr.startswith(
            "scfed: error: cannot restore: scfed node is already running on this state folder"
        ), refused.stderr
        assert procs.running[MEMBER].poll() is None
    backups = sorted(p.name for p in copy.parent.iterdir())
    assert backups[0].startswith("coordinator-")
    assert backups[1] == "node.sqlite"


def _check_the_answer_is_kept(database: Path, round_id: bytes) -> None:
    """The restored store still holds the node's unmask answer for the round, and so
    refuses a different unmask request for it."""
    store = NodeStore(database)
    try:
        answered = store.answered(round_id)
        assert answered is not None, "the restored node forgot its unmask answer"
        request_hash, _ = answered
        other = bytes(b ^ 0xFF for b in request_hash)
        with pytest.raises(RefusedError, match="different unmask request"):
            previous_answer(store, round_id, other)
    finally:
        store.close()
    db = sqlite3.connect(database)
    assert db.execute("SELECT COUNT(*) FROM charges").fetchone() == (1,)
    db.close()
