"""A node keeps the releases it may receive, refuses the others, and delivers its alerts:
a real SQLite store, a real Merkle tree and checkpoint, a real HTTP server on loopback."""

from __future__ import annotations

import dataclasses
import http.server
import json
import sys
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from node.releases import keep_release, notify, received
from node.store import NodeStore
from scfed import tlog, wire
from scfed.catalogue import Cell
from scfed.checkpoint import Checkpoint
from scfed.dp.distribution import Estimate
from scfed.errors import RefusedError
from scfed.note import Signer, sign_note
from scfed.policy import seal_policy
from scfed.release import Alert, Release, published, to_publication
from scfed.secagg.driver import Federation, federation
from scfed.wire import envelope as env
from scfed.wire.codec import encode
from scfed.wire.envelope import Envelope
from scfed.wire.policy import Policy
from scfed.wire.tasks import Receipt
from tests.unit._support import Rng
from tools.dashboard_data import KYUSHU, entry

WEEK = date(2026, 11, 23)
ENTRY = dataclasses.replace(entry("demand-capacity", (KYUSHU,), 2), recipients=("members",))


def _release(demand: float, n: int) -> Release:
    cells = [
        Cell(component, KYUSHU, w, e, "5-9", "", e)
        for w in (WEEK, WEEK + timedelta(weeks=1))
        for component, value in (
            ("demand", demand),
            ("capacity_actual", 100.0),
            ("capacity_max", 150.0),
        )
        for e in [Estimate(value, value - 5, value + 5, 2.5)]
    ]
    return published(f"{n:032x}", ENTRY, WEEK, 6, cells)


class _Log:
    """A federation's log as a node sees it: each release logged, with its receipt."""

    def __init__(self, fed: Federation) -> None:
        self.fed, self.tree = fed, tlog.MemoryTree()

    def receive(
        self, release: Release, recipients: tuple[str, ...] = ("members",)
    ) -> tuple[Envelope, Receipt]:
        body = dataclasses.replace(to_publication(release, bytes(32), 1), recipients=recipients)
        origin = self.fed.registry.origin
        signed = env.seal(
            self.fed.coordinator_key, wire.RELEASE, wire.COORDINATOR, origin, encode(body)
        )
        index = self.tree.append(tlog.leaf_hash(signed.to_bytes()))
        text = Checkpoint(origin, self.tree.size, self.tree.root()).format()
        note = sign_note(text, [Signer(origin, self.fed.coordinator_key)])
        return signed, Receipt(index, note, tuple(self.tree.inclusion_proof(index)))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[NodeStore, _Log, dict[int, Policy]]]:
    fed = federation(3, Rng(b"node-releases"))
    policy = Policy(fed.registry.origin, 1, "2026.1", "0.5", "year", (ENTRY,))
    store = NodeStore(tmp_path / "node.db")
    store.accept(wire.POLICY, 1, seal_policy(policy, fed.governance_key))
    yield store, _Log(fed), {1: policy}
    store.close()


def test_a_node_keeps_its_releases_raises_alerts_and_reads_them_back_verified(
    node: tuple[NodeStore, _Log, dict[int, Policy]],
) -> None:
    store, log, policies = node
    registry = log.fed.registry
    first = keep_release(store, *log.receive(_release(50.0, 1)), registry,
                         member_id="node-000", policies=policies)  # fmt: skip
    assert first == []  # green: nothing to say
    raised = keep_release(store, *log.receive(_release(400.0, 2)), registry,
                          member_id="node-000", policies=policies)  # fmt: skip
    assert [(a.week, a.before, a.light) for a in raised] == [
        (WEEK, "green", "red"), (WEEK + timedelta(weeks=1), "green", "red")
    ]  # fmt: skip
    assert store.releases_from() == 2
    got = received(
        store.database, registry.origin, log.fed.governance_key.public_key().public_bytes_raw()
    )
    assert [r.log_index for r in got.releases] == [0, 1]
    assert got.releases[1].lights()[(KYUSHU, WEEK)] == "red"
    assert sorted(got.alerts, key=lambda a: a.week) == raised


def test_a_node_refuses_a_release_for_others_or_of_an_unknown_entry(
    node: tuple[NodeStore, _Log, dict[int, Policy]],
) -> None:
    store, log, policies = node
    registry = log.fed.registry
    with pytest.raises(RefusedError, match="not us"):
        keep_release(store, *log.receive(_release(50.0, 1), ("meti",)), registry,
                     member_id="node-000", policies=policies)  # fmt: skip
    with pytest.raises(RefusedError, match="the signed entry names members"):
        keep_release(store, *log.receive(_release(50.0, 3), ("members", "meti")), registry,
                     member_id="node-000", policies=policies)  # fmt: skip
    with pytest.raises(RefusedError, match="in no policy this node accepted"):
        keep_release(store, *log.receive(_release(50.0, 2)), registry,
                     member_id="node-000", policies={})  # fmt: skip
    assert store.releases_from() == 0  # nothing kept


class _Hook(http.server.BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Hook.got.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_an_alert_reaches_the_webhook_and_the_command_as_json(tmp_path: Path) -> None:
    alert = Alert("weekly-demand-capacity", "ab" * 16, 9, KYUSHU, WEEK, "green", "red (uncertain)")
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    out = tmp_path / "alert.json"
    command = tmp_path / "on-alert"
    command.write_text(
        f"#!{sys.executable}\nimport sys\nopen({str(out)!r}, 'wb').write(sys.stdin.buffer.read())\n"
    )
    command.chmod(0o700)
    try:
        notify([alert], f"http://127.0.0.1:{server.server_port}/hook", str(command))
    finally:
        server.shutdown()
        server.server_close()
    assert _Hook.got == [alert.as_json()]
    assert json.loads(out.read_text()) == alert.as_json()
    notify([alert], "http://127.0.0.1:9/refused", str(tmp_path / "missing"))  # logged, no raise


def test_each_role_s_config_is_told_apart_and_only_readers_of_releases_are_served(
    tmp_path: Path,
) -> None:
    from dashboard.source import loader
    from edge.config import kind_of
    from scfed.errors import ConfigError

    files = {
        "node": 'member_id = "fab"\n', "coordinator": 'listen = "127.0.0.1:0"\n',
        "operator": 'name = "ops"\n', "other": 'colour = "red"\n',
    }  # fmt: skip
    for kind, text in files.items():
        (tmp_path / f"{kind}.toml").write_text(text)
    assert [kind_of(tmp_path / f"{k}.toml") for k in files if k != "other"] == [
        "node", "coordinator", "operator"
    ]  # fmt: skip
    with pytest.raises(
        ConfigError, match="not the config of a node, the coordinator, an operator or"
    ):
        kind_of(tmp_path / "other.toml")
    with pytest.raises(ConfigError, match="read with a node's or the coordinator's config"):
        loader(tmp_path / "operator.toml")
    with pytest.raises(ConfigError, match="no such file"):
        kind_of(tmp_path / "missing.toml")
