"""Releases as recipients receive them: signed, logged, verified, with units and alerts."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import tlog, wire
from scfed.catalogue import Cell
from scfed.checkpoint import Checkpoint
from scfed.dp.distribution import Estimate
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import RemoteProtocolError, VerificationError
from scfed.note import Signer, sign_note
from scfed.release import (
    Release,
    alerts,
    from_publication,
    published,
    to_publication,
    unit,
    verify_release,
)
from scfed.tlog import MemoryTree
from scfed.wire import envelope as env
from scfed.wire.codec import decode_release, encode
from scfed.wire.policy import CatalogueEntry
from tests.unchecked import unchecked_replace
from tests.unit._audit_support import Log
from tests.unit._support import Rng

ORIGIN = "scfed.test/release"
WEEK = date(2026, 11, 23)
KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
ENTRY = CatalogueEntry(
    name="weekly-demand-capacity", purpose="", metric="demand-capacity", commodities=(KYUSHU,),
    horizon_weeks=2, noise=Noise("10", 1, MAGNITUDE, 1, "1", 10**6, True, 0, "10", "90"),
    min_contributors=3, dominance="0.6", presence_threshold=50, concentration_scale=5000,
    recipients=("members",), planned_percent=100,
)  # fmt: skip


def _estimate(value: float) -> Estimate:
    return Estimate(value, value - 10, value + 10, 5.0)


def _release(demand: float, round_id: str = "ab" * 16, log_index: int = 7) -> Release:
    cells = []
    for w in (WEEK, WEEK + timedelta(weeks=1)):
        for component, value in (("demand", demand), ("capacity_actual", 100.0),
                                 ("capacity_max", 150.0)):  # fmt: skip
            e = _estimate(value)
            cells.append(Cell(component, KYUSHU, w, e, "5-9", "", e))
    cells.append(Cell("demand", KYUSHU, WEEK, None, "<3", "estimated contributors below 3"))
    del cells[0]
    return dataclasses.replace(published(round_id, ENTRY, WEEK, 6, cells), log_index=log_index)


def test_a_release_turns_lights_and_raises_alerts_only_when_they_worsen() -> None:
    green, orange, red = _release(50.0), _release(125.0), _release(400.0)
    assert set(green.lights().values()) <= {"green", "suppressed"}
    raised = alerts(orange, green)
    assert [(a.week, a.before, a.light) for a in raised] == [
        (WEEK + timedelta(weeks=1), "green", "orange")
    ]
    assert [a.light for a in alerts(red, orange)] == ["red"]
    assert alerts(orange, red) == []  # better is no alert
    assert alerts(orange, orange) == []
    assert [a.before for a in alerts(red, None)] == [""]


def test_every_component_has_its_unit() -> None:
    assert unit("demand-capacity", "demand", KYUSHU) == "wafers (200mm)/week"
    assert unit("stock", "stock_wip", KYUSHU) == "wafers (200mm)"
    assert unit("stock", "stock_finished", "assembly-test-packaging/analog/na/na/JP") == "units"
    assert unit("days-of-supply", "dos:0-7d", KYUSHU) == "firms"


def _logged(signed: bytes, key: Ed25519PrivateKey) -> tuple[int, bytes, list[bytes]]:
    tree = MemoryTree()
    for i in range(5):
        tree.append(tlog.leaf_hash(b"other %d" % i))
    index = tree.append(tlog.leaf_hash(signed))
    tree.append(tlog.leaf_hash(b"after"))
    size = tree.size
    body = Checkpoint(ORIGIN, size, tree.root(size)).format()
    note = sign_note(body, [Signer(ORIGIN, key)])
    return index, note, list(tree.inclusion_proof(index, size))


def test_a_logged_release_verifies_and_round_trips_and_a_forgery_does_not() -> None:
    key = Ed25519PrivateKey.from_private_bytes(Rng(b"coordinator")(32))
    public = key.public_key().public_bytes_raw()
    release = _release(125.0)
    body = to_publication(release, bytes(32), 3)
    assert decode_release(encode(body)) == body
    assert body.entitles("anyone-registered")
    assert not dataclasses.replace(body, recipients=("meti",)).entitles("fab-kyushu")
    signed = env.seal(key, wire.RELEASE, wire.COORDINATOR, ORIGIN, encode(body)).to_bytes()
    index, note, proof = _logged(signed, key)
    opened = verify_release(signed, index, note, proof, origin=ORIGIN, coordinator_key=public)
    assert from_publication(opened, ENTRY, index) == dataclasses.replace(release, log_index=index)
    with pytest.raises(VerificationError):
        verify_release(signed, index - 1, note, proof, origin=ORIGIN, coordinator_key=public)
    other = Ed25519PrivateKey.from_private_bytes(Rng(b"other")(32))
    forged = env.seal(other, wire.RELEASE, wire.COORDINATOR, ORIGIN, encode(body)).to_bytes()
    with pytest.raises(VerificationError):
        verify_release(forged, index, note, proof, origin=ORIGIN, coordinator_key=public)


@pytest.mark.parametrize(
    "change",
    [
        {"survivors": 0},
        {"recipients": ()},
        {"week": "2026-11-24"},
        {"result_hash": b"short"},
    ],
)
def test_a_malformed_release_is_refused(change: dict[str, object]) -> None:
    body = to_publication(_release(125.0), bytes(32), 3)
    with pytest.raises(RemoteProtocolError):
        decode_release(encode(unchecked_replace(body, **change)))


def test_the_operator_and_a_member_pick_any_release_by_round_or_entry_and_week() -> None:
    from scfed.cli.results import pick
    from scfed.errors import ConfigError

    held = [_release(50.0, "01" * 16, 3), _release(125.0, "02" * 16, 9)]
    later = dataclasses.replace(held[1], week=WEEK + timedelta(weeks=1))
    held[1] = later
    assert pick(held, entry=None, week=None, round_hex=None) is later  # the latest
    assert pick(held, entry=ENTRY.name, week=WEEK, round_hex=None) is held[0]
    assert pick(held, entry=None, week=None, round_hex="01" * 16) is held[0]
    with pytest.raises(
        ConfigError, match=r"no release matches week 2026-11-16 \(2 releases held\)"
    ):
        pick(held, entry=None, week=WEEK - timedelta(weeks=1), round_hex=None)


def _logged_release(change: dict[str, object] | None = None) -> tuple[Log, list[bytes]]:
    """A catalogue round's log with its release appended (altered by ``change``)."""
    from scfed.release import Published, choose
    from scfed.wire.codec import decode_announce, decode_result
    from tests.unit._audit_support import catalogue_log, catalogue_policy, catalogue_round, find
    from tests.unit._audit_support import envelope as opened

    log = catalogue_log(catalogue_round(WEEK, b"release"))
    announce = opened(log.leaves[find(log, 0, wire.ANNOUNCE)])
    result = log.leaves[find(log, 0, wire.RESULT)]
    published_ = Published(decode_announce(announce.body), decode_result(opened(result).body))
    policy = catalogue_policy(log.fed)
    chosen = choose([published_], None, policy.entry, log.fed.registry)
    assert chosen is not None
    body = to_publication(chosen, hashlib.sha256(result).digest(), policy.version)
    if change:
        body = unchecked_replace(body, **change)
    key = log.fed.coordinator_key
    sealed = env.seal(key, wire.RELEASE, wire.COORDINATOR, log.origin, encode(body)).to_bytes()
    return log, [*log.leaves, sealed]


def test_the_auditor_recomputes_a_logged_release_and_fails_a_doctored_one() -> None:
    from tests.unit._audit_support import assert_caught, run_audit

    log, leaves = _logged_release()
    assert run_audit(log, leaves).ok
    honest = decode_release(env.Envelope.from_bytes(leaves[-1]).body)
    cell = honest.cells[0]
    if cell.estimate:
        doctored = dataclasses.replace(cell, estimate=(cell.estimate[0] + 100, *cell.estimate[1:]))
    else:
        doctored = dataclasses.replace(cell, suppressed="", estimate=(1.0, 0.0, 2.0, 0.5))
    log, leaves = _logged_release({"cells": (doctored, *honest.cells[1:])})
    assert_caught(run_audit(log, leaves), "release.recomputed", "differs from the recomputed")
    log, leaves = _logged_release({"recipients": ("members", "meti")})
    assert_caught(run_audit(log, leaves), "release.recomputed", "recipients")
