"""The three-party setup from the README, run as written: each party makes its own keys, only
public files cross, the coordinator runs without governance's folder, and membership changes
(a member removed, a member's keys rotated) take effect in the next round."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from edge.config import load_node_config
from edge.files import read_private_key_file
from governance.federation import open_governance
from protos.scfed.v1 import service_pb2 as spb
from scfed import pki
from scfed.dp.params import MAGNITUDE, Noise
from scfed.registry import with_member_keys
from scfed.wire.codec import noise_to_proto
from tests.integration.conftest import Cluster, allow_adhoc, demo_cells, synthetic_figures
from tools.processes import Processes, processes, wait_for

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
FIRMS = {
    "fab-kumamoto": "kumamoto",
    "fab-oita": "oita",
    "osat-kurume": "kurume",
    "fab-saga": "saga",
}
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
ROUND = (
    "--query",
    "weekly-demand",
    "--cells-file",
    "cells.txt",
    "--sigma",
    "400",
    "--bound",
    "100",
)


def readme_setup() -> list[list[str]]:
    """The commands of the README's first block under "Running a federation"."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Running a federation") :]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    lines = block.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.startswith("scfed ")]


def scfed(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scfed", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"scfed {' '.join(args)}: {done.stderr}"
    return done.stdout


def add_firm(cwd: Path, member: str, folder: str) -> None:
    """A firm joins as the README shows: its own init, governance enrols, it installs."""
    federation = "gov/public/federation.toml"
    scfed(cwd, "node", "init", folder, "--federation", federation, "--member", member)
    scfed(cwd, "federation", "enroll", "gov", "--request", f"{folder}/{member}.request")
    scfed(cwd, "node", "install", "--config", f"{folder}/node.toml",
          "--certificate", f"gov/issued/{member}.pem")  # fmt: skip


def install_registry(cwd: Path) -> None:
    scfed(cwd, "coordinator", "install", "--config", "coord/coordinator.toml",
          "--registry", "gov/public/registry.signed")  # fmt: skip


def private_keys(folder: Path) -> set[bytes]:
    """The public halves of every private key stored in ``folder``."""
    found = set()
    for path in folder.rglob("*"):
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            found.add(key.public_key().public_bytes(*SPKI))
    return found


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[tuple[Path, Processes]]:
    """The README's setup run as written, three more firms enrolled the same way, each with
    figures for ad-hoc rounds."""
    for command in readme_setup():
        scfed(tmp_path, *command[1:])
    for member, folder in list(FIRMS.items())[1:]:
        add_firm(tmp_path, member, folder)
    install_registry(tmp_path)
    cells = demo_cells(dt.date(2026, 11, 23))
    (tmp_path / "cells.txt").write_text("\n".join(cells) + "\n", encoding="utf-8")
    for seed, folder in enumerate(FIRMS.values()):
        figures = synthetic_figures(cells, seed)
        lines = ["cell,value"] + [f"{c},{v}" for c, v in figures.items()]
        (tmp_path / folder / "figures.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        allow_adhoc(tmp_path / folder / "node.toml")
    with processes(tmp_path / "logs") as procs:
        yield tmp_path, procs


def serve(cwd: Path, procs: Processes) -> str:
    port_file = cwd / "coord" / "port"
    port_file.unlink(missing_ok=True)
    config = str(cwd / "coord/coordinator.toml")
    procs.start("coordinator", "coordinator", "serve", "--config", config,
                "--listen", "127.0.0.1:0", "--port-file", str(port_file))  # fmt: skip
    wait_for("the coordinator to listen", port_file.exists, procs, "coordinator")
    return f"127.0.0.1:{port_file.read_text().strip()}"


def start_nodes(cwd: Path, procs: Processes, address: str, folders: list[str]) -> None:
    for folder in folders:
        config = str(cwd / folder / "node.toml")
        procs.start(folder, "node", "serve", "--config", config, "--coordinator", address)


def connected(cwd: Path, address: str) -> list[str]:
    out = scfed(cwd, "coordinator", "status", "--config", "ops/operator.toml",
                "--coordinator", address)  # fmt: skip
    match = re.search(r"^\d+ connected: (.*)$", out, flags=re.MULTILINE)
    return [] if match is None or not match.group(1) else match.group(1).split(", ")


def wait_connected(cwd: Path, procs: Processes, address: str, count: int) -> None:
    wait_for(f"{count} nodes", lambda: len(connected(cwd, address)) == count, procs, "coordinator")


def run_round(cwd: Path, address: str) -> str:
    return scfed(cwd, "coordinator", "round", "start", "--config", "ops/operator.toml",
                 "--coordinator", address, *ROUND)  # fmt: skip


def test_the_readme_setup_keeps_every_key_with_its_owner_and_runs_without_governance(
    federation: tuple[Path, Processes],
) -> None:
    cwd, procs = federation
    folders = {"gov": cwd / "gov", "coord": cwd / "coord", "ops": cwd / "ops"}
    folders |= {folder: cwd / folder for folder in FIRMS.values()}
    keys = {name: private_keys(path) for name, path in folders.items()}
    assert len(keys["gov"]) == 2  # the governance key and the CA key
    assert len(keys["coord"]) == 2  # its TLS key and its log key
    for folder in FIRMS.values():
        assert len(keys[folder]) == 2  # its TLS key and its identity key
    for name, held in keys.items():
        for other, theirs in keys.items():
            assert other == name or not held & theirs, f"{other} holds a key of {name}"
    shutil.move(cwd / "gov", cwd / "gov-offline")  # the coordinator needs none of it
    address = serve(cwd, procs)
    start_nodes(cwd, procs, address, list(FIRMS.values()))
    wait_connected(cwd, procs, address, len(FIRMS))
    out = run_round(cwd, address)
    assert out.splitlines()[0].endswith(": round.result"), out
    assert "4 contributors: fab-kumamoto, fab-oita, fab-saga, osat-kurume" in out


def test_a_removed_member_is_refused_and_rotated_keys_take_part(
    federation: tuple[Path, Processes],
) -> None:
    cwd, procs = federation
    address = serve(cwd, procs)
    start_nodes(cwd, procs, address, list(FIRMS.values()))
    wait_connected(cwd, procs, address, len(FIRMS))
    scfed(cwd, "federation", "remove", "gov", "--member", "fab-saga")
    install_registry(cwd)
    # The coordinator re-reads the registry: the removed member's next connection is refused.
    procs.kill("saga")
    start_nodes(cwd, procs, address, ["saga"])
    wait_connected(cwd, procs, address, 3)
    wait_for("the refusal", lambda: "no registered member" in procs.log_text("saga"), procs, "saga")
    # A firm rotates its keys; governance replaces them; the firm installs and restarts.
    scfed(cwd, "node", "rotate", "--config", "oita/node.toml")
    old_identity = (cwd / "oita/identity.key").read_bytes()
    scfed(cwd, "federation", "enroll", "gov", "--request", "oita/fab-oita.request", "--replace")
    install_registry(cwd)
    scfed(cwd, "node", "install", "--config", "oita/node.toml",
          "--certificate", "gov/issued/fab-oita.pem")  # fmt: skip
    assert (cwd / "oita/identity.key").read_bytes() != old_identity
    assert not (cwd / "oita/identity.key.next").exists()
    procs.kill("oita")
    procs.running["oita"].wait(10)
    start_nodes(cwd, procs, address, ["oita"])
    wait_connected(cwd, procs, address, 3)
    out = run_round(cwd, address)
    assert out.splitlines()[0].endswith(": round.result"), out
    assert "3 contributors: fab-kumamoto, fab-oita, osat-kurume" in out
    assert load_node_config(cwd / "oita/node.toml").member_id == "fab-oita"


def adhoc_round(cluster: Cluster, names: list[str]) -> str:
    """A light ad-hoc round (each release costs rho 1/128), so several fit a node's cap."""
    noise = Noise("80", 1, MAGNITUDE, 10, "1", 10**6)
    request = spb.StartRoundRequest(
        query="test", cells=cluster.cells, candidates=names, phase_timeout_ms=20_000,
        noise=noise_to_proto(noise),
    )  # fmt: skip
    with cluster.admin() as admin:
        _, outcome = admin.start_round(request, timeout=60)
    return outcome.type


def test_the_coordinator_rotates_its_keys_and_its_log_stays_one_verifiable_log(
    make_cluster: Callable[..., Cluster],
) -> None:
    names = list(FIRMS)
    cluster = make_cluster(names)
    fed, address = cluster.directory, cluster.address
    assert adhoc_round(cluster, names) == "round.result"
    old_log_key = (fed / "coordinator/signing.key").read_bytes()
    config = str(fed / "coordinator/coordinator.toml")
    scfed(fed, "coordinator", "rotate", "--config", config)
    scfed(fed, "federation", "enroll", "governance",
          "--request", "coordinator/coordinator.request", "--replace")  # fmt: skip
    coordinator = cluster.procs.running["coordinator"]
    coordinator.terminate()
    assert coordinator.wait(10) == 0
    out = scfed(fed, "coordinator", "install", "--config", config,
                "--certificate", "governance/issued/coordinator.pem",
                "--registry", "governance/public/registry.signed")  # fmt: skip
    assert "restart the coordinator" in out
    assert (fed / "coordinator/signing.key").read_bytes() != old_log_key
    cluster.procs.start(
        "coordinator", "coordinator", "serve", "--config", config, "--listen", address
    )
    cluster.wait_connected(len(names))
    assert adhoc_round(cluster, names) == "round.result"
    audit = scfed(fed, "audit", "verify", "--coordinator", address,
                  "--config", "operators/operator/operator.toml",
                  "--governance-key", "governance/public/governance.pub",
                  "--origin", "scfed.example/demo")  # fmt: skip
    assert "audit passed: 2 rounds" in audit, audit


def test_a_certificate_near_its_end_is_warned_of_in_status_the_node_log_and_check(
    make_cluster: Callable[..., Cluster],
) -> None:
    names = list(FIRMS)[:3]
    cluster = make_cluster(names)
    fed, member = cluster.directory, names[0]
    folder = fed / "members" / member
    ca_key = pki.load_private_key_pem(read_private_key_file(fed / "governance/ca.key"))
    ca = pki.load_certificate_pem((fed / "governance/public/ca.pem").read_bytes())
    tls_key = pki.load_private_key_pem(read_private_key_file(folder / "tls.key"))
    now = dt.datetime.now(dt.UTC)
    short = pki.issue_client(
        pki.Issued(ca_key, ca), "demo", member, pki.ROLE_MEMBER, tls_key, now, days=10
    )
    (fed / "short.pem").write_bytes(pki.certificate_pem(short))
    # Governance pins certificates by fingerprint: the renewed one goes into the registry.
    governance = open_governance(fed / "governance")
    entry = governance.current().member(member)
    assert entry is not None
    renewed = dataclasses.replace(entry, tls_cert_sha256=pki.fingerprint(short))
    governance.publish(with_member_keys(governance.current(), renewed))
    scfed(fed, "coordinator", "install", "--config", "coordinator/coordinator.toml",
          "--registry", "governance/public/registry.signed")  # fmt: skip
    scfed(fed, "node", "install", "--config", str(folder / "node.toml"),
          "--certificate", "short.pem")  # fmt: skip
    check = scfed(fed, "node", "check", "--config", str(folder / "node.toml"))
    assert re.search(r"warning: certificate .*tls\.pem expires on .* \(in 9 days\)", check), check
    cluster.procs.kill(member)
    cluster.procs.running[member].wait(10)
    cluster.start_node(member)
    cluster.wait_connected(3)
    wait_for("the warning", lambda: "tls.pem expires on" in cluster.procs.log_text(member),
             cluster.procs, member)  # fmt: skip
    status = scfed(fed, "coordinator", "status", "--config", "operators/operator/operator.toml",
                   "--coordinator", cluster.address)  # fmt: skip
    assert f"warning: the certificate of member {member} expires on" in status, status
