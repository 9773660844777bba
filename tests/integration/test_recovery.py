"""A coordinator killed (SIGKILL) mid-round and restarted: the round gets its outcome.

Two node daemons and three scripted members take part, t = 3 of 5. The daemons answer the
unmask request at once; the scripted members answer exactly when the test says, so the kill
lands after a chosen number of unmask responses are in the log. Killed after t of them, the
log alone can rebuild the noisy sum: the restarted coordinator publishes that result, charges
the federation ledger, and the audit passes. Killed before, the round ends in a signed abort
that every candidate gets when it connects, and nothing is charged.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from coordinator.store import read_rounds
from edge.config import load_coordinator_config, load_node_config
from edge.storage import fetch_read_only
from scfed import wire
from scfed.errors import RemoteProtocolError, ScfedError
from scfed.secagg.recovery import RESTARTED
from scfed.wire import envelope as env
from scfed.wire.codec import decode_abort, decode_announce, decode_result
from scfed.wire.envelope import Envelope
from scfed.wire.tasks import KeySet, MaskingTask
from tests.integration.conftest import Cluster
from tests.integration.peer import ScriptedNode
from tests.integration.test_daemons import MakeCluster, assert_noisy_sum, ledger, run_round, scfed
from tools.processes import start_coordinator, wait_for

pytestmark = pytest.mark.integration

DAEMONS = ["auto-nagoya", "fab-hsinchu"]
PEERS = ["peer-a", "peer-b", "peer-c"]
CANDIDATES = sorted([*DAEMONS, *PEERS])
THRESHOLD = 3  # len(CANDIDATES) // 2 + 1, the coordinator's default
COORDINATOR_TOML = "coordinator/coordinator.toml"


def _member(cluster: Cluster, name: str) -> Path:
    return cluster.directory / "members" / name


def _peer(cluster: Cluster, name: str) -> ScriptedNode:
    return ScriptedNode(_member(cluster, name), cluster.address, cluster.figures[name])


def _start_round(cluster: Cluster) -> None:
    """Start the round; its deadlines are far off, and the call dies with the coordinator."""
    with contextlib.suppress(RemoteProtocolError):
        run_round(cluster, CANDIDATES, timeout_ms=120_000)


def interrupted_round(make_cluster: MakeCluster, peers_answering: int) -> tuple[Cluster, bytes]:
    """Run a round up to its unmask responses: both daemons' and those of the first
    ``peers_answering`` scripted members are logged; then SIGKILL the coordinator."""
    cluster = make_cluster([*DAEMONS, *PEERS], start=DAEMONS)
    peers = [_peer(cluster, name) for name in PEERS]
    cluster.wait_connected(len(CANDIDATES))
    starter = threading.Thread(target=_start_round, args=(cluster,))
    starter.start()
    announces = [peer.next_task() for peer in peers]
    for peer, announce in zip(peers, announces, strict=True):
        assert isinstance(announce, Envelope)
        peer.submit(peer.round.on_announce(announce, peer.inputs))
    for peer in peers:
        keys = peer.next_task()
        assert isinstance(keys, KeySet)
        peer.submit(peer.round.on_keys(keys))
    for peer in peers:
        masking = peer.next_task()
        assert isinstance(masking, MaskingTask)
        peer.submit(peer.mask(masking))
    requests = [peer.next_task() for peer in peers]  # each cosigns the checkpoint first
    for name in DAEMONS:
        _wait_for_log(cluster, name, "round.unmask_response accepted")
    for peer, request in list(zip(peers, requests, strict=True))[:peers_answering]:
        assert isinstance(request, Envelope)
        peer.submit(peer.unmask(request))  # acknowledged once it is logged
    for peer in peers:
        peer.close()
    cluster.procs.kill("coordinator")
    cluster.procs.running["coordinator"].wait(10)
    starter.join(30)
    assert isinstance(announces[0], Envelope)
    return cluster, decode_announce(announces[0].body).round_id


def _wait_for_log(cluster: Cluster, name: str, line: str) -> None:
    def logged() -> bool:
        return line in cluster.procs.log_text(name)

    wait_for(f"{name} to log {line!r}", logged, cluster.procs, name)


def _stored_outcome(cluster: Cluster, round_id: bytes) -> Envelope:
    database = load_coordinator_config(cluster.directory / COORDINATOR_TOML).database
    (stored,) = [r for r in read_rounds(database) if r.round_id == round_id]
    assert stored.outcome is not None, "the round was left without an outcome"
    return stored.outcome


def _wait_for_kept_outcome(cluster: Cluster, name: str, round_id: bytes, type_: str) -> None:
    """Wait until node ``name`` keeps the round's outcome in its own store."""
    database = load_node_config(_member(cluster, name) / "node.toml").database
    sql = "SELECT type FROM outcomes WHERE round_id = ?"
    try:
        wait_for(
            f"{name} to keep the {type_}",
            lambda: fetch_read_only(database, sql, (round_id,)) == [(type_,)],
            cluster.procs,
            name,
        )
    except ScfedError as exc:
        tail = cluster.procs.log_text(name)[-3000:]
        raise AssertionError(f"{exc}; its log ends:\n{tail}") from exc


def _audit(cluster: Cluster) -> Any:
    """``scfed audit verify --json`` against the live log service; it must pass."""
    config = load_coordinator_config(cluster.directory / COORDINATOR_TOML)
    done = scfed(
        "audit", "verify", "--coordinator", cluster.address,
        "--config", cluster.directory / "operators/operator/operator.toml",
        "--governance-key", config.governance_key, "--origin", config.origin, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _finding(report: Any, check: str) -> Any:
    """The one round's finding of ``check`` in a JSON audit report."""
    (entry,) = report["rounds"]
    (finding,) = [f for f in entry["findings"] if f["check"] == check]
    return finding


def test_a_kill_after_t_unmask_responses_still_publishes_and_charges(
    make_cluster: MakeCluster,
) -> None:
    cluster, round_id = interrupted_round(make_cluster, peers_answering=THRESHOLD - len(DAEMONS))
    (cluster.directory / "coordinator" / "port").unlink()  # written again by the new start
    cluster.address = f"127.0.0.1:{start_coordinator(cluster.directory, cluster.procs)}"
    assert "closed with its round.result and a charge" in cluster.procs.log_text("coordinator")
    outcome = _stored_outcome(cluster, round_id)
    assert outcome.type == wire.RESULT
    result = decode_result(outcome.body)
    assert result.survivors == tuple(CANDIDATES)  # every masked input, t responses
    assert_noisy_sum(cluster, result)
    # 5 survivors: rho = 10^2 / (2 (5 - 1) 800) = 1/64, in the federation ledger.
    spent = ledger(cluster, "coordinator", COORDINATOR_TOML)
    assert re.search(r"\n\d{4} +1 +0\.015625 +0\.484375 ", spent), spent
    assert f"round {round_id.hex()}" in spent
    # The daemons, restarted for the new address, no longer hold the round in memory: they
    # keep the verified result of a round they answered for.
    for name in DAEMONS:
        cluster.procs.running[name].terminate()
        assert cluster.procs.running[name].wait(10) == 0
        cluster.start_node(name)
    latecomer = _peer(cluster, "peer-b")  # never answered: it still gets the outcome
    assert latecomer.next_task() == outcome
    latecomer.close()
    for name in DAEMONS:
        _wait_for_kept_outcome(cluster, name, round_id, wire.RESULT)
    report = _audit(cluster)
    assert "published at leaf" in str(_finding(report, "release.charged")["detail"])
    assert _finding(report, "result.recomputed")["passed"] is True
    assert _finding(report, "charge.rho")["passed"] is True


def test_a_kill_before_t_unmask_responses_ends_in_an_abort_every_node_gets(
    make_cluster: MakeCluster,
) -> None:
    cluster, round_id = interrupted_round(make_cluster, peers_answering=0)
    config = cluster.directory / COORDINATOR_TOML
    cluster.procs.start(
        "coordinator", "coordinator", "serve", "--config", str(config), "--listen", cluster.address
    )  # the same address: the daemons reconnect by themselves, the round still in memory
    cluster.wait_connected(len(DAEMONS))
    outcome = _stored_outcome(cluster, round_id)
    assert outcome.type == wire.ABORT
    assert decode_abort(outcome.body).reason == RESTARTED
    for name in DAEMONS:
        _wait_for_kept_outcome(cluster, name, round_id, wire.ABORT)
    reconnecting = _peer(cluster, "peer-a")
    task = reconnecting.next_task()
    assert task == outcome
    registry = reconnecting.round.identity.registry
    env.verify(task, registry.origin, wire.ABORT, registry.coordinator_key)
    reconnecting.close()
    spent = ledger(cluster, "coordinator", COORDINATOR_TOML)
    assert re.search(r"\n\d{4} +0 +0 +0\.5 ", spent), spent  # an abort costs nothing
    report = _audit(cluster)
    assert "fewer than t = 3" in str(_finding(report, "release.charged")["detail"])
    assert _finding(report, "abort.nothing_unmasked")["passed"] is True
