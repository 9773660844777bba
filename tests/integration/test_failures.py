"""Daemons that fail say so once: real processes, real certificates, loopback only.

A daemon that cannot start prints one line on stderr and exits non-zero; a second daemon on
one state folder is refused while the first keeps serving; a node that cannot reach its
coordinator says so and keeps trying; request bytes that do not parse get INVALID_ARGUMENT on
every RPC method; no input file and no closed pipe reaches a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from edge.config import load_coordinator_config, load_node_config, load_operator_config
from edge.files import write_private, write_public
from edge.lock import lock_path
from edge.transport import secure_channel
from protos.scfed.v1 import service_pb2 as spb
from scfed import pki
from scfed.config import TlsFiles
from tests.integration.conftest import Cluster, member_channel
from tools.processes import wait_for

pytestmark = pytest.mark.integration

MakeCluster = Callable[..., Cluster]
NAMES = ["fab-hsinchu", "fab-kumamoto", "osat-penang"]
DAEMONS = ("node", "coordinator")
#: Bytes no protobuf message parses from: a truncated varint tag, a truncated length-delimited
#: field, a tag with no value.
MALFORMED = (b"\xff\xff\xff", b"\x0a\x05ab", b"\x08")


def scfed(*args: str, stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scfed", *args],
        stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
    )  # fmt: skip


def assert_one_line(run: subprocess.CompletedProcess[str], *phrases: str) -> str:
    """The command failed with one line on stderr, no traceback, saying every phrase."""
    assert run.returncode != 0, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("scfed: error: "), lines[0]
    for phrase in phrases:
        assert phrase in lines[0]
    return lines[0]


def node_toml(cluster: Cluster, name: str) -> Path:
    return cluster.directory / "members" / name / "node.toml"


def coordinator_toml(cluster: Cluster) -> Path:
    return cluster.directory / "coordinator" / "coordinator.toml"


def without_state(config: Path, to: Path) -> Path:
    """A copy of a daemon's folder with its keys and configuration but none of its state."""
    ignore = shutil.ignore_patterns("*.sqlite*", "*.lock", "port", "evidence")
    shutil.copytree(config.parent, to, ignore=ignore)
    return to / config.name


def serve(daemon: str, config: Path, address: str) -> subprocess.CompletedProcess[str]:
    """Start a daemon in the foreground, the node dialling ``address``: it must fail."""
    if daemon == "node":
        return scfed("node", "serve", "--config", str(config), "--coordinator", address)
    return scfed("coordinator", "serve", "--config", str(config), "--listen", "127.0.0.1:0")


def tls_files(daemon: str, config: Path) -> TlsFiles:
    load = load_node_config if daemon == "node" else load_coordinator_config
    return load(config).tls


# ---- One instance per state folder ----


def test_a_second_coordinator_on_one_state_folder_is_refused_and_the_first_serves_on(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(NAMES, start=NAMES[:1])
    config = coordinator_toml(cluster)
    second = serve("coordinator", config, cluster.address)
    lock = lock_path(load_coordinator_config(config).database)
    assert_one_line(
        second, "scfed coordinator is already running on this state folder", f"lock {lock} held"
    )
    assert cluster.procs.running["coordinator"].poll() is None
    cluster.start_node(NAMES[1])
    cluster.wait_connected(2)  # the first still serves, and takes new nodes


def test_a_second_node_on_one_state_folder_is_refused(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(NAMES, start=NAMES[:1])
    config = node_toml(cluster, NAMES[0])
    second = serve("node", config, cluster.address)
    lock = lock_path(load_node_config(config).database)
    assert_one_line(second, "scfed node is already running on this state folder", str(lock))
    assert cluster.procs.running[NAMES[0]].poll() is None
    with cluster.admin() as admin:
        assert admin.status().connected == NAMES[:1]


# ---- Start-up errors: one line, non-zero ----


def _issued(daemon: str, tls: TlsFiles, start: dt.datetime, days: int, *, other_key: bool) -> None:
    """Replace a daemon's CA, key and certificate with ones valid ``days`` from ``start``;
    with ``other_key`` the certificate is for another key than the one in the key file."""
    now = dt.datetime.now(dt.UTC)
    ca_key = pki.new_tls_key()
    ca = pki.Issued(ca_key, pki.new_ca("demo", ca_key, now - dt.timedelta(days=400)))
    key, certified = pki.new_tls_key(), pki.new_tls_key()
    subject = certified if other_key else key
    if daemon == "node":
        cert = pki.issue_client(ca, "demo", "fab-x", pki.ROLE_MEMBER, subject, start, days)
    else:
        cert = pki.issue_server(ca, "demo", ["127.0.0.1"], subject, start, days)
    write_public(tls.ca, pki.certificate_pem(ca.certificate))
    write_private(tls.key, pki.private_key_pem(key))
    write_public(tls.certificate, pki.certificate_pem(cert))


def _expired(daemon: str, tls: TlsFiles) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    _issued(daemon, tls, past, 10, other_key=False)


def _not_yet_valid(daemon: str, tls: TlsFiles) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    _issued(daemon, tls, future, 10, other_key=False)


def _of_another_key(daemon: str, tls: TlsFiles) -> None:
    _issued(daemon, tls, dt.datetime.now(dt.UTC), 10, other_key=True)


#: A broken start, as (name, what breaks it, what the one line must say).
BROKEN: list[tuple[str, Callable[[str, TlsFiles], object], str]] = [
    ("key-readable-by-group", lambda _, tls: tls.key.chmod(0o640), "accessible by group or others"),
    ("key-readable-by-all", lambda _, tls: tls.key.chmod(0o644), "accessible by group or others"),
    ("expired-certificate", _expired, "certificate expired at"),
    ("not-yet-valid-certificate", _not_yet_valid, "certificate is not valid before"),
    ("certificate-of-another-key", _of_another_key, "is not for the key"),
    ("garbage-certificate", lambda _, t: t.certificate.write_text("junk"), "cannot parse PEM"),
    ("missing-ca", lambda _, tls: tls.ca.unlink(), "cannot read"),
]


@pytest.mark.parametrize("daemon", DAEMONS)
def test_a_daemon_that_cannot_start_says_why_in_one_line(
    make_cluster: MakeCluster, tmp_path: Path, daemon: str
) -> None:
    cluster = make_cluster(NAMES, start=[])
    original = node_toml(cluster, NAMES[0]) if daemon == "node" else coordinator_toml(cluster)
    for name, breaks, says in BROKEN:
        config = without_state(original, tmp_path / name)
        breaks(daemon, tls_files(daemon, config))
        line = assert_one_line(serve(daemon, config, cluster.address), says)
        assert str(tmp_path / name) in line, name  # it names the file at fault


@pytest.mark.parametrize("daemon", DAEMONS)
@pytest.mark.parametrize(
    ("text", "says"), [("origin = [", "invalid TOML"), (None, "cannot read configuration")]
)
def test_a_daemon_with_a_bad_configuration_says_why_in_one_line(
    tmp_path: Path, daemon: str, text: str | None, says: str
) -> None:
    config = tmp_path / f"{daemon}.toml"
    if text is not None:
        config.write_text(text, encoding="utf-8")
    assert_one_line(serve(daemon, config, "127.0.0.1:1"), str(config), says)


def test_a_coordinator_whose_port_is_taken_says_so_and_the_other_serves_on(
    make_cluster: MakeCluster, tmp_path: Path
) -> None:
    cluster = make_cluster(NAMES, start=NAMES[:1])
    config = without_state(coordinator_toml(cluster), tmp_path / "second")
    run = scfed("coordinator", "serve", "--config", str(config), "--listen", cluster.address)
    assert_one_line(run, f"cannot listen on {cluster.address}: the port is in use")
    cluster.start_node(NAMES[1])
    cluster.wait_connected(2)


def test_a_node_that_cannot_reach_its_coordinator_says_so_and_keeps_trying(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(NAMES, start=[])
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    name, procs = NAMES[0], cluster.procs
    procs.start(name, "node", "serve", "--config", str(node_toml(cluster, name)),
                "--coordinator", address)  # fmt: skip
    said = f"cannot reach the coordinator at {address}: "

    def tried_twice() -> bool:
        return procs.log_text(name).count(said) >= 2

    wait_for("two attempts to reach the coordinator", tried_twice, procs, name)
    log = procs.log_text(name)
    assert "Connection refused" in log.split(said, 1)[1].splitlines()[0]
    assert "Traceback" not in log
    assert procs.running[name].poll() is None  # still trying, with backoff


# ---- Malformed request bytes ----


def _raw_call(channel: grpc.Channel, method: str, streaming: bool, data: bytes) -> None:
    """Send ``data`` as the request bytes of ``method``, serialized by nobody."""
    if streaming:
        next(iter(channel.unary_stream(method, None, None)(data, timeout=10)))
    else:
        channel.unary_unary(method, None, None)(data, timeout=10)


def test_malformed_request_bytes_get_invalid_argument_on_every_method(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(NAMES, start=NAMES[:1])
    operator = load_operator_config(cluster.directory / "operators/operator/operator.toml")
    member = member_channel(cluster.directory / "members" / NAMES[1], cluster.address)
    admin = secure_channel(operator.tls, cluster.address, operator.server_name)
    channels = {"NodeService": member, "LogService": member, "AdminService": admin}
    tried = []
    with member, admin:
        for service in spb.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                for data in MALFORMED:
                    with pytest.raises(grpc.RpcError) as refused:
                        _raw_call(channels[service.name], path, method.server_streaming, data)
                    error = refused.value
                    assert isinstance(error, grpc.Call)
                    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (path, data)
                    details = error.details() or ""
                    assert f"malformed request to {path}" in details
                    assert f"not a valid {method.input_type.full_name}" in details
                tried.append(path)
    assert len(tried) >= 10  # Subscribe, Submit, Cosign; five log reads; StartRound, Status
    with cluster.admin() as client:
        assert client.status().connected == NAMES[:1]  # and the coordinator serves on


# ---- No input reaches a traceback ----


def test_deeply_nested_json_is_refused_in_one_line(
    make_cluster: MakeCluster, tmp_path: Path
) -> None:
    cluster = make_cluster(NAMES[:1], start=[])
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("item,commodity\n", encoding="utf-8")
    for name, text in [("list", "[" * 100_000), ("object", '{"a": ' * 100_000)]:
        deep = tmp_path / f"{name}.json"
        deep.write_text(text, encoding="utf-8")
        config = str(node_toml(cluster, NAMES[0]))
        run = scfed("node", "import", "--config", config, "--mapping", str(mapping), str(deep))
        assert_one_line(run, f"{deep}: not valid JSON: nested too deeply")


def test_a_ledger_piped_into_a_closed_pipe_ends_quietly(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(NAMES[:1], start=[])
    configs = {"node": node_toml(cluster, NAMES[0]), "coordinator": coordinator_toml(cluster)}
    for daemon, config in configs.items():
        read, write = os.pipe()
        os.close(read)  # the reader is gone before anything is written, as `| head -0` would be
        try:
            run = scfed(daemon, "ledger", "--config", str(config), stdout=write)
        finally:
            os.close(write)
        assert run.stderr == "", daemon
        assert run.returncode == 141, daemon  # 128 + SIGPIPE, as a shell would report
