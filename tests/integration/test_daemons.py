"""Real coordinator and node processes over mutual TLS on loopback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest

from edge.config import load_coordinator_config
from governance import federation, install, party
from governance.local import enroll_member, init_federation
from node.store import NodeStore
from protos.scfed.v1 import messages_pb2 as pb
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import RemoteProtocolError
from scfed.wire.codec import decode_abort, decode_result, decode_unmask_request, noise_to_proto
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Result
from scfed.wire.tasks import KeySet, MaskingTask
from tests.integration.conftest import Cluster, allow_adhoc, member_channel
from tests.integration.peer import ScriptedNode

pytestmark = pytest.mark.integration

MakeCluster = Callable[..., Cluster]
NAMES = ["auto-nagoya", "fab-hsinchu", "fab-kumamoto", "osat-penang", "wafer-niigata"]
#: With n_min 3 and one colluder each node adds N_Z(0, 800); a release costs at most 1/32.
NOISE = Noise("40", 1, MAGNITUDE, 10, "1", 10**6)
SIGMA_L2 = 800


def run_round(cluster: Cluster, names: list[str], timeout_ms: int = 20_000) -> Envelope:
    request = spb.StartRoundRequest(
        query="test",
        cells=cluster.cells,
        candidates=names,
        phase_timeout_ms=timeout_ms,
        noise=noise_to_proto(NOISE),
    )
    with cluster.admin() as admin:
        _, outcome = admin.start_round(request, timeout=60)
    return outcome


def status(error: grpc.RpcError) -> grpc.StatusCode:
    """The status code of a failed call (every RpcError of a call is also a grpc.Call)."""
    assert isinstance(error, grpc.Call)
    return error.code()


def plaintext_sums(cluster: Cluster, result: Result) -> list[int]:
    return [sum(cluster.figures[m].get(c, 0) for m in result.survivors) for c in cluster.cells]


def sums(result: Result) -> list[int]:
    return [int(v) for v in np.frombuffer(result.sums, dtype="<i8")]


def assert_noisy_sum(cluster: Cluster, result: Result) -> None:
    """The result is the plaintext sum plus the survivors' noise, m draws of N_Z(0, 800).

    Over 36 cells the sample variance of the noise lies within [0.3, 2.5] times its true
    variance except with probability below 1e-5, and no cell is 7 sd away.
    """
    noise = np.array(sums(result)) - np.array(plaintext_sums(cluster, result))
    variance = len(result.survivors) * SIGMA_L2
    assert np.count_nonzero(noise) > len(noise) // 2, "the nodes added no noise"
    assert np.all(np.abs(noise) < 7 * variance**0.5), noise
    assert 0.3 < float(np.mean(noise.astype(np.float64) ** 2)) / variance < 2.5, noise


def ledger(cluster: Cluster, role: str, config: str) -> str:
    """What ``scfed <role> ledger`` prints for a configuration of the cluster."""
    done = subprocess.run(
        [sys.executable, "-m", "scfed", role, "ledger", "--config", cluster.directory / config],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def test_full_round_adds_noise_and_charges_every_ledger(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(NAMES)
    outcome = run_round(cluster, NAMES)
    assert outcome.type == "round.result"
    result = decode_result(outcome.body)
    assert result.survivors == tuple(NAMES)
    assert_noisy_sum(cluster, result)
    # 5 survivors: rho = 10^2 / (2 (5 - 1) 800) = 1/64, in the ledgers of all parties.
    row = r"\n\d{4} +1 +0\.015625 +0\.484375 "
    for name in NAMES:
        cluster.procs.running[name].terminate()  # the ledger outlives the node process
        assert cluster.procs.running[name].wait(10) == 0
        assert re.search(row, ledger(cluster, "node", f"members/{name}/node.toml"))
    assert re.search(row, ledger(cluster, "coordinator", "coordinator/coordinator.toml"))


def test_a_node_over_its_budget_stays_out_and_the_round_goes_on(
    make_cluster: MakeCluster,
) -> None:
    frugal = NAMES[0]
    cluster = make_cluster(NAMES[:4], start=NAMES[1:4])
    config = cluster.directory / "members" / frugal / "node.toml"
    text = config.read_text().replace('rho_cap = "0.5"', 'rho_cap = "0.01"')
    config.write_text(text)  # a cap below one release at the worst case, 1/32
    cluster.start_node(frugal)
    cluster.wait_connected(4)
    outcome = run_round(cluster, NAMES[:4], timeout_ms=3_000)
    assert outcome.type == "round.result"
    result = decode_result(outcome.body)
    assert result.survivors == tuple(NAMES[1:4])
    assert_noisy_sum(cluster, result)
    assert "REFUSED" in cluster.procs.log_text(frugal)
    assert "past the cap" in cluster.procs.log_text(frugal)


def test_the_coordinator_refuses_a_round_past_the_federation_cap(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(NAMES[:3])
    with cluster.admin() as admin:
        request = spb.StartRoundRequest(
            query="test",
            cells=cluster.cells,
            noise=noise_to_proto(dataclasses.replace(NOISE, bound=200)),  # rho 12.5 at worst
        )
        with pytest.raises(RemoteProtocolError, match=r"FAILED_PRECONDITION.*past the cap"):
            admin.start_round(request, timeout=30)
        assert admin.status().phase == ""  # nothing was announced


def test_round_with_a_node_killed_after_sharing_keys(make_cluster: MakeCluster) -> None:
    daemons = NAMES[:4]
    cluster = make_cluster([*daemons, "peer"], start=daemons)
    peer = ScriptedNode(
        cluster.directory / "members/peer", cluster.address, cluster.figures["peer"]
    )
    cluster.wait_connected(5)
    victim = "fab-kumamoto"
    outcomes: list[Envelope] = []
    starter = threading.Thread(
        target=lambda: outcomes.append(run_round(cluster, [*daemons, "peer"], 1_500))
    )
    starter.start()
    announce = peer.next_task()
    assert isinstance(announce, Envelope)
    peer.submit(peer.round.on_announce(announce, peer.inputs))
    keys = peer.next_task()
    assert isinstance(keys, KeySet)
    held = peer.round.on_keys(keys)  # the masking phase cannot start before these arrive
    deadline = time.monotonic() + 20
    while "round.share_keys accepted" not in cluster.procs.log_text(victim):
        assert time.monotonic() < deadline, "the victim never shared its keys"
        time.sleep(0.01)
    cluster.procs.kill(victim)
    cluster.procs.running[victim].wait(10)
    peer.submit(held)
    masking = peer.next_task()
    assert isinstance(masking, MaskingTask)
    assert victim in masking.shared
    peer.submit(peer.mask(masking))
    unmask = peer.next_task()
    assert isinstance(unmask, Envelope)
    assert decode_unmask_request(unmask.body).dropped == (victim,)
    peer.submit(peer.unmask(unmask))
    starter.join(30)
    peer.close()
    result = decode_result(outcomes[0].body)
    assert victim not in result.survivors
    assert len(result.survivors) == 4
    assert_noisy_sum(cluster, result)


def test_certificate_from_another_ca_is_refused(make_cluster: MakeCluster, tmp_path: Path) -> None:
    cluster = make_cluster(NAMES[:3])
    now = dt.datetime.now(dt.UTC)
    init_federation(tmp_path / "other", "other", None, "127.0.0.1:0", [], now)
    stranger = enroll_member(tmp_path / "other", "stranger", None, None, now)
    with (
        member_channel(stranger, cluster.address) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        rpc.NodeServiceStub(channel).Submit(pb.Envelope(), timeout=10)
    assert status(refused.value) is grpc.StatusCode.UNAVAILABLE
    with cluster.admin() as admin:
        assert len(admin.status().connected) == 3


def test_enrolled_member_missing_from_registry_is_refused(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(NAMES[:3])
    now = dt.datetime.now(dt.UTC)
    mallory = cluster.directory / "mallory"
    who = party.member("mallory")
    request = party.init_party(
        mallory, cluster.directory / "governance/public/federation.toml", who
    )
    issued = federation.enroll(cluster.directory / "governance", request, now)
    install.install_issued(who.kind, mallory / "node.toml", issued.certificate, now)
    # a certificate from the federation's CA, but the operator never installed the registry
    with member_channel(mallory, cluster.address) as channel:
        stub = rpc.NodeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(stub.Subscribe(spb.SubscribeRequest(), timeout=10)))
    assert status(refused.value) is grpc.StatusCode.PERMISSION_DENIED
    assert isinstance(refused.value, grpc.Call)
    assert "no registered member" in (refused.value.details() or "")


def test_oversized_message_is_refused_and_the_server_keeps_serving(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(NAMES[:3])
    huge = pb.Envelope(type="round.masked_input", body=bytes(17 * 1024 * 1024), signer=NAMES[0])
    channel = member_channel(cluster.directory / "members" / NAMES[0], cluster.address)
    with channel, pytest.raises(grpc.RpcError) as refused:
        rpc.NodeServiceStub(channel).Submit(huge, timeout=30)
    assert status(refused.value) is grpc.StatusCode.RESOURCE_EXHAUSTED
    outcome = run_round(cluster, NAMES[:3])
    assert outcome.type == "round.result"


def test_bad_and_out_of_order_messages_get_precise_status(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(NAMES[:3])
    member = cluster.directory / "members" / NAMES[0]
    cases = [
        (pb.Envelope(type="round.bogus", signature=bytes(64), signer=NAMES[0]), "INVALID_ARGUMENT"),
        (pb.Envelope(type="round.masked_input", signature=bytes(3), signer=NAMES[0]),
         "INVALID_ARGUMENT"),
        (pb.Envelope(type="round.masked_input", signature=bytes(64), signer=NAMES[0]),
         "FAILED_PRECONDITION"),
    ]  # fmt: skip
    with member_channel(member, cluster.address) as channel:
        stub = rpc.NodeServiceStub(channel)
        for envelope, code in cases:
            with pytest.raises(grpc.RpcError) as refused:
                stub.Submit(envelope, timeout=10)
            assert status(refused.value).name == code
        with pytest.raises(grpc.RpcError) as denied:
            rpc.AdminServiceStub(channel).Status(spb.StatusRequest(), timeout=10)
        assert status(denied.value) is grpc.StatusCode.PERMISSION_DENIED
    assert run_round(cluster, NAMES[:3]).type == "round.result"


def test_nodes_reconnect_after_the_coordinator_restarts(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(NAMES[:3])
    coordinator = cluster.procs.running["coordinator"]
    coordinator.terminate()
    assert coordinator.wait(10) == 0
    config = cluster.directory / "coordinator/coordinator.toml"
    cluster.procs.start(
        "coordinator", "coordinator", "serve", "--config", str(config), "--listen", cluster.address
    )
    cluster.wait_connected(3)
    for name in NAMES[:3]:
        assert "reconnecting in" in cluster.procs.log_text(name)
    assert run_round(cluster, NAMES[:3]).type == "round.result"


def test_a_member_enrolled_while_nodes_run_takes_part_in_the_next_round(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(NAMES[:3])
    newcomer = enroll_member(cluster.directory, "osat-cavite", None, None, dt.datetime.now(dt.UTC))
    cluster.figures["osat-cavite"] = {cluster.cells[0]: 1234}
    (newcomer / "figures.csv").write_text(f"cell,value\n{cluster.cells[0]},1234\n")
    allow_adhoc(newcomer / "node.toml")
    cluster.start_node("osat-cavite")
    cluster.wait_connected(4)
    outcome = run_round(cluster, [*NAMES[:3], "osat-cavite"])
    assert outcome.type == "round.result", outcome
    result = decode_result(outcome.body)
    assert "osat-cavite" in result.survivors
    assert_noisy_sum(cluster, result)


def scfed(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scfed", *map(str, args)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_an_auditor_verifies_the_log_online_and_exported(
    make_cluster: MakeCluster, tmp_path: Path
) -> None:
    cluster = make_cluster(NAMES[:4])
    assert run_round(cluster, NAMES[:4]).type == "round.result"
    fed, address = cluster.directory, cluster.address
    operator = fed / "operators/operator/operator.toml"
    origin = load_coordinator_config(fed / "coordinator/coordinator.toml").origin
    trust: list[str | Path] = [
        "--governance-key",
        fed / "governance/public/governance.pub",
        "--origin",
        origin,
    ]
    online = scfed("audit", "verify", "--coordinator", address, "--config", operator, *trust)
    assert online.returncode == 0, online.stdout + online.stderr
    assert "result recomputed \u2713" in online.stdout
    assert "audit passed: 1 rounds" in online.stdout
    # A node's own latest checkpoint is an older view the exported log must extend.
    cluster.procs.running[NAMES[0]].terminate()
    assert cluster.procs.running[NAMES[0]].wait(10) == 0
    kept = NodeStore(fed / "members" / NAMES[0] / "node.sqlite").latest_checkpoint()
    assert kept is not None
    (tmp_path / "node-checkpoint").write_bytes(kept)
    out = tmp_path / "exported"
    assert (
        scfed("audit", "export", "--config", operator, "--coordinator", address, out).returncode
        == 0
    )
    offline = scfed(
        "audit", "verify", "--log", out, *trust, "--checkpoint", tmp_path / "node-checkpoint"
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "\u2713 log.consistency" in offline.stdout
    # The exported checkpoint verifies with standard note tooling and the coordinator's vkey.
    vkey = scfed("audit", "vkey", "--registry", fed / "coordinator/registry.signed", *trust)
    note_check = scfed("audit", "verify-note", "--vkey", vkey.stdout.strip(), out / "checkpoint")
    assert note_check.returncode == 0, note_check.stderr
    # An independent witness cosigns the checkpoint it verified.
    witnessed = scfed(
        "audit", "witness", "--config", operator, "--coordinator", address,
        "--vkey", vkey.stdout.strip(), "--name", "auditor-1",
        "--key", tmp_path / "witness.key", "--state", tmp_path / "witness",
    )  # fmt: skip
    assert witnessed.returncode == 0, witnessed.stderr
    assert "\u2014 auditor-1 " in witnessed.stdout.splitlines()[-1]


def test_without_a_witness_quorum_the_round_aborts_before_any_masked_input(
    make_cluster: MakeCluster,
) -> None:
    daemons = NAMES[:2]
    cluster = make_cluster([*daemons, "peer-a", "peer-b"], start=daemons)
    peers = [
        ScriptedNode(cluster.directory / f"members/{name}", cluster.address, {}, witness=False)
        for name in ("peer-a", "peer-b")
    ]
    cluster.wait_connected(4)
    outcomes: list[Envelope] = []
    candidates = [*daemons, "peer-a", "peer-b"]
    starter = threading.Thread(
        target=lambda: outcomes.append(run_round(cluster, candidates, 2_000))
    )
    starter.start()
    for step in ("announce", "keys"):
        for peer in peers:
            task = peer.next_task()
            if step == "announce":
                assert isinstance(task, Envelope)
                peer.submit(peer.round.on_announce(task, peer.inputs))
            else:
                assert isinstance(task, KeySet)
                peer.submit(peer.round.on_keys(task))
    starter.join(30)
    outcome = outcomes[0]
    assert outcome.type == "round.abort"
    assert "no quorum of witnesses" in decode_abort(outcome.body).reason
    for peer in peers:
        assert isinstance(peer.next_task(), Envelope)  # the abort, never a masking task
        peer.close()
    for name in daemons:
        assert "round.masked_input accepted" not in cluster.procs.log_text(name)
