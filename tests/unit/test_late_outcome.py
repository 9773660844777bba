"""A node keeps a round's outcome that arrives after it lost the round from memory (it
restarted, or a restarted coordinator finished the round from its log) only if the round is
one it answered for, the coordinator signed the outcome, and a result counts it among the
survivors. No sockets: the real daemon object over a real store, fed its tasks directly."""

from __future__ import annotations

import datetime as dt
import sqlite3
from fractions import Fraction
from pathlib import Path

import pytest

from edge.config import load_coordinator_config, load_node_config
from edge.files import read_private_key_file, read_public_file
from governance.local import enroll_member, init_federation
from node.daemon import NodeDaemon
from scfed import pki, wire
from scfed.dp.ledger import Charge
from scfed.errors import RefusedError, ScfedError
from scfed.wire import envelope as env
from scfed.wire.codec import encode
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Abort, Result

ROUND = bytes(range(16))
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def node(tmp_path: Path) -> tuple[NodeDaemon, Path]:
    init_federation(tmp_path, "late", None, "127.0.0.1:0", [], NOW)
    folder = enroll_member(tmp_path, "fab-oita", None, None, NOW)
    for name in ("fab-saga", "fab-kumamoto"):
        enroll_member(tmp_path, name, None, None, NOW)
    daemon = NodeDaemon(load_node_config(folder / "node.toml"))
    coordinator = load_coordinator_config(tmp_path / "coordinator/coordinator.toml")
    daemon._update_registry(Envelope.from_bytes(read_public_file(coordinator.registry)))
    return daemon, tmp_path


def _signed(directory: Path, type_: str, body: bytes, key_file: str = "signing.key") -> Envelope:
    key = pki.load_ed25519_private_pem(read_private_key_file(directory / "coordinator" / key_file))
    return env.seal(key, type_, wire.COORDINATOR, "scfed.example/late", body)


def _result(survivors: tuple[str, ...]) -> bytes:
    return encode(Result(ROUND, bytes(32), survivors, bytes(8)))


def _answered(daemon: NodeDaemon) -> None:
    charge = Charge(ROUND, "test", "2026", 3, Fraction(1, 64))
    daemon._store.record(ROUND, bytes(32), b"our unmask response", charge)


def _kept(directory: Path) -> int:
    with sqlite3.connect(directory / "members/fab-oita/node.sqlite") as db:
        count = db.execute("SELECT count(*) FROM outcomes").fetchone()[0]
    return int(count)


def test_the_outcome_of_a_round_it_answered_is_kept(node: tuple[NodeDaemon, Path]) -> None:
    daemon, directory = node
    _answered(daemon)
    outcome = _signed(directory, wire.RESULT, _result(("fab-kumamoto", "fab-oita", "fab-saga")))
    daemon._finish(outcome)
    assert _kept(directory) == 1


def test_an_abort_of_a_round_it_answered_is_kept(node: tuple[NodeDaemon, Path]) -> None:
    daemon, directory = node
    _answered(daemon)
    body = encode(Abort(ROUND, bytes(32), "the coordinator restarted during the round"))
    daemon._finish(_signed(directory, wire.ABORT, body))
    assert _kept(directory) == 1


def test_an_outcome_of_a_round_it_never_answered_is_refused(
    node: tuple[NodeDaemon, Path],
) -> None:
    daemon, directory = node
    outcome = _signed(directory, wire.RESULT, _result(("fab-kumamoto", "fab-oita", "fab-saga")))
    with pytest.raises(ScfedError, match="which this node is not in"):
        daemon._finish(outcome)
    assert _kept(directory) == 0


def test_a_result_that_leaves_out_a_node_that_answered_is_refused(
    node: tuple[NodeDaemon, Path],
) -> None:
    daemon, directory = node
    _answered(daemon)
    outcome = _signed(directory, wire.RESULT, _result(("fab-kumamoto", "fab-saga")))
    with pytest.raises(RefusedError, match="leaves out this node"):
        daemon._finish(outcome)
    assert _kept(directory) == 0


def test_an_outcome_not_signed_by_the_coordinator_is_refused(
    node: tuple[NodeDaemon, Path],
) -> None:
    daemon, directory = node
    _answered(daemon)
    forged = _signed(directory, wire.RESULT, _result(("fab-kumamoto", "fab-oita", "fab-saga")),
                     "../governance/governance.key")  # fmt: skip
    with pytest.raises(ScfedError):
        daemon._finish(forged)
    assert _kept(directory) == 0
