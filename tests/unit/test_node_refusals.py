"""Every refusal of a node (docs/architecture.md, a round step by step): each raises
RefusedError and ends the round for the node without revealing anything. Coordinator
messages are forged with the real coordinator key, as a malicious coordinator could.

The scripted round has candidates node-000..node-004 (t=3, n_min=3), node-004 advertises keys
and then vanishes, and node-005 is registered but not a candidate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import wire
from scfed.dp.ledger import Charge
from scfed.errors import RefusedError, RemoteProtocolError
from scfed.secagg import MemoryGuard, NodePolicy, NodeRound, previous_answer
from scfed.secagg._table import Phase
from scfed.wire import envelope as env
from scfed.wire.codec import decode_unmask_request, decode_unmask_response, encode
from scfed.wire.envelope import Envelope
from scfed.wire.messages import AdvertiseKeys, UnmaskRequest
from scfed.wire.tasks import KeySet, MaskingTask
from tests.unit._support import (
    Rng,
    announce_task,
    build_script,
    five_node_script,
    forge,
    keys_task,
    masking_task,
    new_node,
    node_in,
    unmask_task,
)

ME = "node-000"
CHARGE = Charge(bytes(16), "test.inventory", "test", 4, Fraction(1, 64))
script = five_node_script


def _refused(node: NodeRound, action: Callable[[], object], match: str) -> None:
    """``action`` is refused for ``match``; the node has abandoned the round for good."""
    with pytest.raises(RefusedError, match=match):
        action()
    assert node.phase is Phase.ABORTED
    with pytest.raises(RefusedError):  # and nothing is ever answered for this round again
        node.on_unmask(unmask_task(script(), ME), script().proof(Phase.UNMASKING))


def test_script_shape() -> None:
    recorded = script()
    assert recorded.result.type == wire.RESULT
    assert len(keys_task(recorded, ME).advertisements) == 5
    assert masking_task(recorded, ME).shared == ("node-000", "node-001", "node-002", "node-003")
    request = decode_unmask_request(unmask_task(recorded, ME).body)
    assert request.survivors == masking_task(recorded, ME).shared
    assert request.dropped == ()


# ---- step 1: announce ----


def _announce(**changes: Any) -> Envelope:
    recorded = script()
    return forge(recorded.fed, wire.ANNOUNCE, dataclasses.replace(recorded.announce, **changes))


def _announce_to(envelope: Envelope, policy: NodePolicy | None = None) -> NodeRound:
    node = new_node(script().fed, ME, policy=policy)
    node.on_announce(envelope, lambda _: script().input_of(ME))
    return node


def test_real_announce_is_accepted() -> None:
    node = _announce_to(announce_task(script(), ME))
    assert node.phase is Phase.ADVERTISING


@pytest.mark.parametrize(
    "signer", ["member-key", "fresh-key", "wrong-type", "wrong-origin"], ids=str
)
def test_announce_not_signed_by_the_coordinator_key(signer: str) -> None:
    recorded = script()
    body = encode(recorded.announce)
    origin, type_ = recorded.fed.registry.origin, wire.ANNOUNCE
    key = recorded.fed.coordinator_key
    if signer == "member-key":
        key = recorded.fed.member_keys["node-001"]
    elif signer == "fresh-key":
        key = Ed25519PrivateKey.from_private_bytes(Rng(b"impostor")(32))
    elif signer == "wrong-type":
        type_ = wire.RESULT
    else:
        origin = "another.federation/origin"
    forged = env.seal(key, type_, wire.COORDINATOR, origin, body)
    node = new_node(recorded.fed, ME)
    _refused(
        node,
        lambda: node.on_announce(forged, lambda _: recorded.input_of(ME)),
        "signature|expected",
    )


@pytest.mark.parametrize(
    ("changes", "match", "policy"),
    [
        pytest.param(
            {
                "candidates": ("node-000", "node-001", "node-002", "node-003", "zz-ghost"),
                "threshold": 3,
            },
            "unregistered",
            None,
            id="unregistered-candidate",
        ),
        pytest.param(
            {"candidates": ("node-001", "node-002", "node-003", "node-004", "node-005")},
            "not a candidate",
            None,
            id="not-a-candidate",
        ),
        pytest.param({"n_min": 2}, "n_min", None, id="n-min-below-policy"),
        pytest.param(
            {"n_min": 3},
            "n_min",
            NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2), min_n_min=4),
            id="n-min-below-stricter",
        ),
        pytest.param({"threshold": 2}, "threshold", None, id="threshold-not-above-half"),
        pytest.param({"threshold": 1, "n_min": 3}, "threshold", None, id="threshold-one"),
        pytest.param(
            {"candidates": ("node-000", "node-001", "node-002", "node-003"), "threshold": 2},
            "threshold",
            None,
            id="threshold-exactly-half",
        ),
        pytest.param({"registry_version": 2}, "registry version", None, id="other-registry"),
        pytest.param(
            {},
            "cells",
            NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2), max_cells=2),
            id="too-many-cells",
        ),
    ],
)
def test_announce_refused_by_policy(
    changes: dict[str, Any], match: str, policy: NodePolicy | None
) -> None:
    recorded = script()
    forged = _announce(**changes)
    node = new_node(recorded.fed, ME, policy=policy)
    _refused(node, lambda: node.on_announce(forged, lambda _: recorded.input_of(ME)), match)


@pytest.mark.parametrize(
    ("changes", "policy"),
    [
        pytest.param({"threshold": 3}, None, id="threshold-just-above-half-of-5"),
        pytest.param(
            {"n_min": 2},
            NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2), min_n_min=2),
            id="n-min-at-policy",
        ),
        pytest.param(
            {"candidates": ("node-000", "node-001", "node-002", "node-003"), "threshold": 3},
            None,
            id="threshold-3-of-4",
        ),
    ],
)
def test_announce_boundaries_are_accepted(
    changes: dict[str, Any], policy: NodePolicy | None
) -> None:
    node = _announce_to(_announce(**changes), policy)
    assert node.phase is Phase.ADVERTISING


# ---- step 3: key set ----


def _adverts() -> dict[str, bytes]:
    return {Envelope.from_bytes(a).signer: a for a in keys_task(script(), ME).advertisements}


def _advert(signer: str, key: Ed25519PrivateKey, **changes: Any) -> bytes:
    recorded = script()
    fields = {
        "round_id": recorded.round_id,
        "announce_hash": recorded.announce_hash,
        "c_public_key": Rng(b"c" + signer.encode())(32),
        "s_public_key": Rng(b"s" + signer.encode())(32),
        **changes,
    }
    body = encode(AdvertiseKeys(**fields))
    origin = recorded.fed.registry.origin
    return env.seal(key, wire.ADVERTISE_KEYS, signer, origin, body).to_bytes()


def _keyset(adverts: dict[str, bytes] | list[bytes]) -> KeySet:
    values = list(adverts.values()) if isinstance(adverts, dict) else adverts
    return KeySet(script().round_id, tuple(values))


def test_real_key_set_is_accepted() -> None:
    node = node_in(script(), ME, Phase.ADVERTISING)
    node.on_keys(_keyset(_adverts()))
    assert node.phase is Phase.SHARING


def _resealed(signer: str, key: Ed25519PrivateKey) -> bytes:
    original = Envelope.from_bytes(_adverts()[signer])
    origin = script().fed.registry.origin
    return env.seal(key, wire.ADVERTISE_KEYS, signer, origin, original.body).to_bytes()


def _flipped_signature(signer: str) -> bytes:
    original = Envelope.from_bytes(_adverts()[signer])
    signature = bytes([original.signature[0] ^ 1]) + original.signature[1:]
    return Envelope(original.type, original.body, signer, signature).to_bytes()


def _substituted_own_keys() -> bytes:
    # A valid advertisement of this very node, but with other keys (e.g. from another
    # instance of the node): the coordinator must not be able to swap our keys.
    recorded = script()
    other = new_node(recorded.fed, ME, seed=b"another-instance:")
    return other.on_announce(
        announce_task(recorded, ME), lambda _: recorded.input_of(ME)
    ).to_bytes()


def _keyset_case(case: str) -> KeySet:
    recorded = script()
    keys = recorded.fed.member_keys
    adverts = _adverts()
    match case:
        case "wrong-key":
            adverts["node-001"] = _resealed("node-001", keys["node-002"])
        case "flipped-signature":
            adverts["node-002"] = _flipped_signature("node-002")
        case "unregistered-signer":
            stranger = Ed25519PrivateKey.from_private_bytes(Rng(b"stranger")(32))
            adverts["zz-stranger"] = _advert("zz-stranger", stranger)
        case "registered-non-candidate":
            adverts["node-005"] = _advert("node-005", keys["node-005"])
        case "own-keys-substituted":
            adverts[ME] = _substituted_own_keys()
        case "own-keys-missing":
            del adverts[ME]
        case "another-round":
            adverts["node-003"] = _advert("node-003", keys["node-003"], round_id=bytes(16))
        case "another-announce":
            adverts["node-003"] = _advert("node-003", keys["node-003"], announce_hash=bytes(32))
        case "duplicate-advertisement":
            return _keyset([*adverts.values(), adverts["node-001"]])
        case "fewer-than-quorum":
            return _keyset([adverts[ME], adverts["node-001"]])
    return _keyset(adverts)


KEYSET_CASES = {
    "wrong-key": "unsigned",
    "flipped-signature": "unsigned",
    "unregistered-signer": "non-candidate",
    "registered-non-candidate": "non-candidate",
    "own-keys-substituted": "own keys",
    "own-keys-missing": "own keys",
    "another-round": "another round",
    "another-announce": "another round",
    "duplicate-advertisement": "twice",
    "fewer-than-quorum": "fewer than",
}


@pytest.mark.parametrize(("case", "match"), list(KEYSET_CASES.items()), ids=list(KEYSET_CASES))
def test_key_set_refused(case: str, match: str) -> None:
    keyset = _keyset_case(case)
    node = node_in(script(), ME, Phase.ADVERTISING)
    _refused(node, lambda: node.on_keys(keyset), match)


def test_substituted_keys_are_validly_signed() -> None:
    # The substitution case is only meaningful if the signature itself verifies.
    recorded = script()
    forged = Envelope.from_bytes(_substituted_own_keys())
    identity = recorded.fed.member_keys[ME].public_key().public_bytes_raw()
    env.verify(forged, recorded.fed.registry.origin, wire.ADVERTISE_KEYS, identity)
    assert forged.body != Envelope.from_bytes(_adverts()[ME]).body


def test_key_set_with_exactly_quorum_peers_is_accepted() -> None:
    adverts = _adverts()
    node = node_in(script(), ME, Phase.ADVERTISING)
    node.on_keys(_keyset([adverts[ME], adverts["node-001"], adverts["node-002"]]))
    assert node.phase is Phase.SHARING


# ---- step 4: masking task ----


def _with_shared(*extra: str) -> MaskingTask:
    real = masking_task(script(), ME)
    return dataclasses.replace(real, shared=(*real.shared, *extra))


def _too_few() -> MaskingTask:
    real = masking_task(script(), ME)
    shares = dict(real.shares)
    return MaskingTask(real.round_id, (ME, "node-001"), (("node-001", shares["node-001"]),))


def _masking_with(**changes: Any) -> MaskingTask:
    return dataclasses.replace(masking_task(script(), ME), **changes)


MASKING_TASKS: dict[str, Callable[[], MaskingTask]] = {
    "names-non-advertiser": lambda: _with_shared("node-005"),
    "names-unknown-node": lambda: _with_shared("zz-ghost"),
    "too-few": _too_few,
    "omits-this-node": lambda: _masking_with(shared=masking_task(script(), ME).shared[1:]),
    "claims-shares-never-forwarded": lambda: _with_shared("node-004"),
    "missing-shares": lambda: _masking_with(shares=masking_task(script(), ME).shares[1:]),
    "another-round": lambda: _masking_with(round_id=bytes(16)),
}


MASKING_CASES = {
    "names-non-advertiser": "did not advertise",
    "names-unknown-node": "did not advertise",
    "too-few": "fewer than",
    "omits-this-node": "did not advertise",
    "claims-shares-never-forwarded": "exactly those",
    "missing-shares": "exactly those",
    "another-round": "another round",
}


@pytest.mark.parametrize(("case", "match"), list(MASKING_CASES.items()), ids=list(MASKING_CASES))
def test_masking_task_refused(case: str, match: str) -> None:
    task = MASKING_TASKS[case]()
    node = node_in(script(), ME, Phase.SHARING)
    _refused(node, lambda: node.on_masking(task, script().proof(Phase.MASKING)), match)


def test_masking_task_with_altered_shares_is_the_peers_fault() -> None:
    real = masking_task(script(), ME)
    sender, ciphertext = real.shares[0]
    altered = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    task = dataclasses.replace(real, shares=((sender, altered), *real.shares[1:]))
    node = node_in(script(), ME, Phase.SHARING)
    with pytest.raises(RemoteProtocolError):
        node.on_masking(task, script().proof(Phase.MASKING))
    assert node.phase is Phase.ABORTED


# ---- step 5: unmask request ----


def _request(survivors: tuple[str, ...], dropped: tuple[str, ...] = (), **changes: Any) -> Envelope:
    recorded = script()
    fields = {
        "round_id": recorded.round_id,
        "announce_hash": recorded.announce_hash,
        "survivors": survivors,
        "dropped": dropped,
        **changes,
    }
    return forge(recorded.fed, wire.UNMASK_REQUEST, UnmaskRequest(**fields))


S = ("node-000", "node-001", "node-002", "node-003")
UNMASK_CASES: dict[str, tuple[Callable[[], Envelope], str]] = {
    "overlapping-lists": (lambda: _request(S, ("node-001",)), "both"),
    "overlap-on-this-node": (lambda: _request(S, (ME,)), "both"),
    "dropped-never-shared-keys": (lambda: _request(S, ("node-004",)), "never shared"),
    "survivor-never-shared-keys": (lambda: _request((*S, "node-004")), "never shared"),
    "survivor-never-advertised": (lambda: _request((*S, "node-005")), "never shared"),
    "omits-this-node": (lambda: _request(S[1:]), "survivor"),
    "this-node-dropped": (lambda: _request(S[1:], (ME,)), "survivor"),
    "too-few-survivors": (lambda: _request(S[:2], S[2:]), "fewer than"),
    "another-round": (lambda: _request(S, round_id=bytes(16)), "another round"),
    "another-announce": (lambda: _request(S, announce_hash=bytes(32)), "another round"),
    "not-signed-by-coordinator": (
        lambda: env.seal(
            script().fed.member_keys["node-001"],
            wire.UNMASK_REQUEST,
            wire.COORDINATOR,
            script().fed.registry.origin,
            unmask_task(script(), ME).body,
        ),
        "signature",
    ),
}


@pytest.mark.parametrize(("case"), list(UNMASK_CASES), ids=list(UNMASK_CASES))
def test_unmask_request_refused_without_revealing(case: str) -> None:
    make, match = UNMASK_CASES[case]
    request = make()
    guard = MemoryGuard()
    node = node_in(script(), ME, Phase.MASKING, guard)
    _refused(node, lambda: node.on_unmask(request, script().proof(Phase.UNMASKING)), match)
    assert guard.answered(script().round_id) is None


def test_real_unmask_request_reveals_seed_shares_of_survivors_only() -> None:
    node = node_in(script(), ME, Phase.MASKING)
    response = decode_unmask_response(
        node.on_unmask(unmask_task(script(), ME), script().proof(Phase.UNMASKING)).body
    )
    assert [owner for owner, _ in response.seed_shares] == list(S)
    assert response.key_shares == ()
    assert node.phase is Phase.UNMASKING


def test_valid_request_with_dropped_node_reveals_its_key_share_only() -> None:
    node = node_in(script(), ME, Phase.MASKING)
    response = decode_unmask_response(
        node.on_unmask(_request(S[:3], ("node-003",)), script().proof(Phase.UNMASKING)).body
    )
    assert [owner for owner, _ in response.seed_shares] == list(S[:3])
    assert [owner for owner, _ in response.key_shares] == ["node-003"]


def test_one_answer_per_round_even_after_a_restart() -> None:
    recorded = script()
    first = unmask_task(recorded, ME)
    # A second, different but otherwise valid request: node-003 now claimed dropped, which
    # would reveal its mask key next to the seed share already revealed for it.
    second = _request(S[:3], ("node-003",))
    assert second.digest(recorded.fed.registry.origin) != first.digest(recorded.fed.registry.origin)
    node_in(recorded, ME, Phase.MASKING).on_unmask(
        second, script().proof(Phase.UNMASKING)
    )  # valid for a node that never answered

    guard = MemoryGuard()
    answer = node_in(recorded, ME, Phase.MASKING, guard).on_unmask(
        first, script().proof(Phase.UNMASKING)
    )

    restarted = node_in(recorded, ME, Phase.MASKING, guard)
    with pytest.raises(RefusedError, match="already answered"):
        restarted.on_unmask(second, script().proof(Phase.UNMASKING))
    assert restarted.phase is Phase.ABORTED

    again = node_in(recorded, ME, Phase.MASKING, guard)
    assert again.on_unmask(first, script().proof(Phase.UNMASKING)).to_bytes() == answer.to_bytes()

    stored = guard.answered(recorded.round_id)
    assert stored is not None
    assert stored == (first.digest(recorded.fed.registry.origin), answer.to_bytes())


def test_the_same_node_instance_answers_once() -> None:
    node = node_in(script(), ME, Phase.MASKING)
    node.on_unmask(unmask_task(script(), ME), script().proof(Phase.UNMASKING))
    with pytest.raises(RefusedError):
        node.on_unmask(_request(S[:3], ("node-003",)), script().proof(Phase.UNMASKING))
    assert node.phase is Phase.UNMASKING


def test_previous_answer() -> None:
    guard = MemoryGuard()
    round_id, other_round = bytes(16), bytes([1]) * 16
    response = env.seal(
        script().fed.member_keys[ME], wire.UNMASK_RESPONSE, ME, "origin", b"response"
    )
    assert previous_answer(guard, round_id, b"h" * 32) is None
    guard.record(round_id, b"h" * 32, response.to_bytes(), CHARGE)
    assert previous_answer(guard, round_id, b"h" * 32) == response
    with pytest.raises(RefusedError):
        previous_answer(guard, round_id, b"x" * 32)
    assert previous_answer(guard, other_round, b"x" * 32) is None
    guard.record(round_id, b"x" * 32, b"another response", CHARGE)  # the first answer is kept
    assert previous_answer(guard, round_id, b"h" * 32) == response


# ---- step 6: outcome ----


def test_outcome_not_signed_by_coordinator_is_refused() -> None:
    recorded = script()
    forged = env.seal(
        recorded.fed.member_keys["node-001"],
        wire.RESULT,
        wire.COORDINATOR,
        recorded.fed.registry.origin,
        recorded.result.body,
    )
    node = node_in(recorded, ME, Phase.UNMASKING)
    with pytest.raises(RefusedError):
        node.on_outcome(forged)
    assert node.phase is Phase.ABORTED
    assert node.outcome is None


def test_non_outcome_message_is_refused_as_outcome() -> None:
    node = node_in(script(), ME, Phase.UNMASKING)
    with pytest.raises(RefusedError):
        node.on_outcome(unmask_task(script(), ME))
    assert node.outcome is None


def test_key_set_quorum_counts_n_min_when_it_exceeds_t() -> None:
    recorded = build_script(n=5, threshold=3, n_min=4)
    adverts = keys_task(recorded, ME).advertisements
    assert recorded.announce.quorum == 4
    node = node_in(recorded, ME, Phase.ADVERTISING)
    with pytest.raises(RefusedError, match="fewer than 4"):
        node.on_keys(KeySet(recorded.round_id, adverts[:3]))  # t=3 would be enough
    assert node.phase is Phase.ABORTED
    node = node_in(recorded, ME, Phase.ADVERTISING)
    node.on_keys(KeySet(recorded.round_id, adverts[:4]))
    assert node.phase is Phase.SHARING
