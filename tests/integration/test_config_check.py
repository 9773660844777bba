"""``scfed config check`` on a real federation's configs: what is right says so, what is wrong
is one line naming the file and the reason, and the exit status tells them apart."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load_coordinator_config, load_node_config
from node.store import NodeStore
from scfed import wire
from scfed.wire.envelope import Envelope
from tools import demo_data
from tools.demo import setup
from tools.processes import processes, start_coordinator

pytestmark = pytest.mark.integration


def _check(config: Path, *extra: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "scfed", "config", "check", "--config", str(config), *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def _holds_policy(fed: Path, member: str) -> None:
    """The member's node holds the signed policy, as it would after its first connection."""
    config = load_coordinator_config(fed / "coordinator" / "coordinator.toml")
    store = NodeStore(load_node_config(fed / "members" / member / "node.toml").database)
    store.accept(wire.POLICY, 1, Envelope.from_bytes(config.policy.read_bytes()))
    store.close()


def test_config_check_says_what_is_right_and_what_is_wrong(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    fed = tmp_path / "fed"
    setup(fed, demo_data.FIRMS[:3], today - dt.timedelta(days=today.weekday()))
    member = demo_data.FIRMS[0].name
    node = fed / "members" / member / "node.toml"
    _holds_policy(fed, member)
    with processes(tmp_path / "logs") as procs:
        address = f"127.0.0.1:{start_coordinator(fed, procs)}"
        code, out = _check(node, "--coordinator", address)
        assert code == 0, out
        assert f"ok: opt_in '{demo_data.ENTRY}' is in the signed catalogue (version 1)" in out
        assert f"ok: the coordinator at {address} answers over mutual TLS" in out
        code, out = _check(fed / "coordinator" / "coordinator.toml")
        assert (code, out.splitlines()[-1]) == (0, "no errors"), out
        operator = fed / "operators" / "operator" / "operator.toml"
        assert _check(operator, "--coordinator", address)[0] == 0
        code, out = _check(fed / "governance" / "public" / "federation.toml")
        assert code == 0, out
        assert "governance.key: governance's signing key, owner only" in out
    node.write_text(
        node.read_text().replace(f'opt_in = ["{demo_data.ENTRY}"]', 'opt_in = ["weekly-demnd"]')
    )
    (fed / "members" / member / "identity.key").chmod(0o644)
    code, out = _check(node, "--coordinator", "127.0.0.1:9")
    assert code == 1, out
    assert "identity.key: private key file is accessible by group or others" in out
    assert "error: opt_in 'weekly-demnd' is not in the signed catalogue" in out
    assert "error: the coordinator at 127.0.0.1:9 did not answer" in out
    assert out.splitlines()[-1] == "3 errors"
    code, out = _check(tmp_path / "missing.toml")
    assert (code, out.strip().splitlines()[0]) == (
        1,
        f"error: {tmp_path / 'missing.toml'}: no such file",
    )
