"""Registry and policy versions only go forward: for a node across restarts, for the files a
coordinator serves, and in the log an auditor reads (``scfed.versions``).

A replayed older registry could re-admit a removed member and a replayed older policy lower the
witness quorum; each test replays one to a real node store, coordinator file or protocol log.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from coordinator.journal import Journal
from coordinator.log import ProtocolLog
from coordinator.signed import RegistryFile, SignedFile, logged_versions
from edge.config import read_policy_file
from edge.storage import LEDGER_SCHEMA, insert_charge, open_database, transaction
from node.governance import SignedVersions
from node.store import NodeStore
from scfed import wire
from scfed.dp.ledger import Charge
from scfed.errors import ConfigError, RefusedError, StorageError
from scfed.policy import seal_policy
from scfed.registry import seal_registry
from scfed.secagg.driver import Federation, federation
from scfed.versions import Held, check_forward
from scfed.wire import envelope as env
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.policy import Policy
from tests.unit._audit_support import assert_caught, failed, honest_log, run_audit
from tests.unit._support import Rng

FED = federation(4, Rng(b"rollback"))
ORIGIN = FED.registry.origin
GOVERNANCE = FED.governance_key.public_key().public_bytes_raw()
REMOVED = "node-003"


def registry(version: int, *, without: str | None = None) -> Envelope:
    """The federation's registry as version ``version``, signed by governance."""
    members = tuple(m for m in FED.registry.members if m.member_id != without)
    return seal_registry(
        replace(FED.registry, version=version, members=members), FED.governance_key
    )


def policy(version: int, quorum: int, fed: Federation = FED) -> Envelope:
    """A signed policy with an empty catalogue and the given witness quorum."""
    signed = Policy(fed.registry.origin, version, "2026.1", "1", "year", (), quorum)
    return seal_policy(signed, fed.governance_key)


# ---- the rule ------------------------------------------------------------------------------


def test_only_a_newer_version_is_taken_and_the_one_held_is_nothing_new() -> None:
    held = Held("registry", 4, b"four", "accepted on 2026-05-04")
    assert check_forward(None, 1, b"one")
    assert check_forward(held, 5, b"five")
    assert not check_forward(held, 4, b"four")
    with pytest.raises(RefusedError, match=r"^registry version 3 is older than version 4 accepted"):
        check_forward(held, 3, b"three")
    with pytest.raises(RefusedError, match="two different registry bodies as one version"):
        check_forward(held, 4, b"another four")


# ---- the node's store ----------------------------------------------------------------------


def test_the_store_keeps_the_newest_accepted_version_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    store = NodeStore(path)
    assert store.newest_accepted("registry") is None
    store.accept("registry", 4, registry(4))
    store.accept("registry", 5, registry(5, without=REMOVED))
    store.accept("policy", 2, policy(2, 3))
    store.close()
    reopened = NodeStore(path)
    newest = reopened.newest_accepted("registry")
    assert newest is not None
    assert newest.version == 5
    assert newest.envelope == registry(5, without=REMOVED).to_bytes()
    accepted = reopened.newest_accepted("policy")
    assert accepted is not None
    assert accepted.version == 2
    reopened.close()


#: The node database's tables before it kept signed versions.
_OLD_NODE_SCHEMA = (
    """
CREATE TABLE unmask_answers (
    round_id BLOB PRIMARY KEY, request_hash BLOB NOT NULL, response BLOB NOT NULL,
    answered_at REAL NOT NULL
);
CREATE TABLE outcomes (
    round_id BLOB PRIMARY KEY, type TEXT NOT NULL, envelope BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE log_view (id INTEGER PRIMARY KEY CHECK (id = 1), checkpoint BLOB, halted TEXT);
"""
    + LEDGER_SCHEMA
)


def test_a_database_from_before_gains_the_table_in_place_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.sqlite"
    db = open_database(path, _OLD_NODE_SCHEMA)
    charge = Charge(bytes(16), "test", "2026", 4, Fraction(1, 64))
    with transaction(db):
        db.execute("INSERT INTO unmask_answers VALUES (?, ?, ?, 0)", (bytes(16), b"h", b"r"))
        insert_charge(db, charge, 0.0)
    db.close()
    store = NodeStore(path)
    assert store.answered(bytes(16)) == (b"h", b"r")
    assert store.charges == [charge]
    store.accept("registry", 4, registry(4))
    assert store.newest_accepted("registry") is not None
    store.close()
    with sqlite3.connect(path) as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert "signed_versions" in tables


# ---- the node: nothing older is taken, across restarts -------------------------------------


def versions(path: Path) -> SignedVersions:
    return SignedVersions(NodeStore(path), ORIGIN, GOVERNANCE)


def test_a_restarted_node_holds_its_newest_registry_and_refuses_an_older_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.sqlite"
    before = versions(path)
    assert before.stored_registry() is None
    before.accept_registry(registry(4))
    assert before.accept_registry(registry(5, without=REMOVED)).version == 5
    after = versions(path)  # the restarted node, on the same database
    held = after.stored_registry()
    assert held is not None
    assert held.version == 5
    assert held.member(REMOVED) is None
    with pytest.raises(
        RefusedError, match=r"registry version 4 is older than version 5 accepted on \d{4}-"
    ):
        after.accept_registry(registry(4))  # it would re-admit the removed member
    assert after.accept_registry(registry(5, without=REMOVED)).version == 5  # the one held
    stored = after.stored_registry()
    assert stored is not None
    assert stored.member(REMOVED) is None


def test_another_registry_signed_as_the_version_held_is_refused(tmp_path: Path) -> None:
    node = versions(tmp_path / "node.sqlite")
    node.accept_registry(registry(5, without=REMOVED))
    with pytest.raises(RefusedError, match="two different registry bodies as one version"):
        node.accept_registry(registry(5))
    stored = node.stored_registry()
    assert stored is not None
    assert stored.member(REMOVED) is None


def test_a_replayed_policy_with_a_lower_quorum_is_refused_live_and_after_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.sqlite"
    live = versions(path)
    live.accept_policy(policy(1, 1))
    assert live.accept_policy(policy(2, 3)).witness_quorum == 3
    with pytest.raises(RefusedError, match="policy version 1 is older than version 2 accepted"):
        live.accept_policy(policy(1, 1))
    restarted = versions(path)
    held = restarted.stored_policy()
    assert held is not None
    assert (held.version, held.witness_quorum) == (2, 3)
    with pytest.raises(RefusedError, match="policy version 1 is older than version 2 accepted"):
        restarted.accept_policy(policy(1, 1))
    with pytest.raises(RefusedError, match="two different policy bodies"):
        restarted.accept_policy(policy(2, 1))


def test_a_stored_envelope_that_no_longer_verifies_stops_the_node(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    store = NodeStore(path)
    forged = env.seal(FED.coordinator_key, wire.REGISTRY, wire.GOVERNANCE, ORIGIN, b"")
    store.accept("registry", 9, forged)
    with pytest.raises(StorageError, match="no longer verifies"):
        SignedVersions(store, ORIGIN, GOVERNANCE).stored_registry()


# ---- the coordinator: never serving an older file ------------------------------------------


def protocol_log(path: Path) -> ProtocolLog:
    return ProtocolLog(path, origin=ORIGIN, key=FED.coordinator_key)


def write(path: Path, signed: Envelope) -> None:
    """Replace the file with ``signed``, with a modification time that differs for sure."""
    path.write_bytes(signed.to_bytes())
    stamp = path.stat().st_mtime_ns + 1_000_000
    os.utime(path, ns=(stamp, stamp))


def test_the_coordinator_does_not_start_on_a_registry_older_than_it_logged(
    tmp_path: Path,
) -> None:
    database, path = tmp_path / "coordinator.sqlite", tmp_path / "registry.signed"
    log = protocol_log(database)
    Journal(log).record_once(registry(4))
    Journal(log).record_once(registry(5, without=REMOVED))
    floors = logged_versions(log, database)
    assert floors[wire.REGISTRY].version == 5
    write(path, registry(4))
    with pytest.raises(ConfigError, match=r"registry\.signed: registry version 4 is older than "
                       r"version 5 logged at leaf 1 of the protocol log"):  # fmt: skip
        RegistryFile(path, ORIGIN, GOVERNANCE, floors[wire.REGISTRY]).load()
    write(path, registry(5))  # another body signed as version 5
    with pytest.raises(ConfigError, match="two different registry bodies"):
        RegistryFile(path, ORIGIN, GOVERNANCE, floors[wire.REGISTRY]).load()
    write(path, registry(5, without=REMOVED))
    assert RegistryFile(path, ORIGIN, GOVERNANCE, floors[wire.REGISTRY]).registry().version == 5
    log.close()


def test_a_running_coordinator_keeps_serving_the_newer_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.signed"
    write(path, policy(2, 3))
    served = SignedFile(path, lambda p: read_policy_file(p, ORIGIN, GOVERNANCE))
    assert served.load()[0].version == 2
    write(path, policy(1, 1))
    with caplog.at_level(logging.ERROR, logger="scfed.coordinator"):
        loaded, signed = served.load()
    assert (loaded.version, loaded.witness_quorum) == (2, 3)
    assert signed == policy(2, 3)
    assert f"REFUSED {path}: policy version 1 is older than version 2" in caplog.text
    write(path, policy(3, 3))
    assert served.load()[0].version == 3


def test_the_log_is_read_once_and_read_on_where_the_last_start_stopped(tmp_path: Path) -> None:
    database = tmp_path / "coordinator.sqlite"
    log = protocol_log(database)
    journal = Journal(log)
    journal.record_once(registry(4))
    journal.record_once(policy(2, 3))
    first = logged_versions(log, database)
    assert (first[wire.REGISTRY].version, first[wire.POLICY].version) == (4, 2)
    journal.record_once(registry(6))
    journal.record_once(registry(5))  # an older one logged later does not lower the floor
    again = logged_versions(log, database)
    assert again[wire.REGISTRY].version == 6
    assert again[wire.REGISTRY].where == "logged at leaf 2 of the protocol log"
    with sqlite3.connect(database) as raw:
        assert raw.execute("SELECT size FROM logged_versions_read").fetchall() == [(4,)]
    log.close()


# ---- the auditor: a log whose versions go back fails -------------------------------------


def _honest_fed_registry(version: int, *, drop_last: bool = False) -> bytes:
    fed = honest_log().fed
    members = fed.registry.members[:-1] if drop_last else fed.registry.members
    changed: Registry = replace(fed.registry, version=version, members=members)
    return seal_registry(changed, fed.governance_key).to_bytes()


def test_the_auditor_fails_a_log_whose_registry_version_goes_back() -> None:
    log = honest_log()
    newer = _honest_fed_registry(2, drop_last=True)  # version 2 removes a member
    forward = run_audit(log, [*log.leaves, newer])
    assert "log.registry_versions" not in failed(forward)
    (finding,) = [f for f in forward.findings if f.check == "log.registry_versions"]
    assert finding.detail == "registry versions 1, 2, each newer"
    back = [*log.leaves, newer, log.leaves[0]]  # version 1 again, re-admitting the member
    assert_caught(
        run_audit(log, back),
        "log.registry_versions",
        f"leaf {len(log.leaves) + 1}: registry version 1 is older than version 2 "
        f"at leaf {len(log.leaves)}",
    )
    other = [*log.leaves, newer, _honest_fed_registry(2)]  # another version 2
    assert_caught(run_audit(log, other), "log.registry_versions", "two different registry")


def test_the_auditor_fails_a_log_whose_policy_version_goes_back() -> None:
    log = honest_log()
    higher, lower = (policy(v, q, log.fed).to_bytes() for v, q in ((2, 3), (1, 1)))
    forward = run_audit(log, [*log.leaves, lower, higher])
    assert "log.policy_versions" not in failed(forward)
    assert_caught(
        run_audit(log, [*log.leaves, higher, lower]),
        "log.policy_versions",
        "policy version 1 is older than version 2",
    )
