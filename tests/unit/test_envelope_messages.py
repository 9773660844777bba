"""Unit tests for scfed.envelope and scfed.messages: signatures, wire round trips, bounds."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protos.scfed.v1 import messages_pb2 as pb
from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.dp.params import UNITS, Noise
from scfed.errors import MessageError, RemoteProtocolError, VerificationError
from scfed.wire import codec, tasks
from scfed.wire import envelope as env
from scfed.wire import messages as msg
from scfed.wire.codec import encode
from scfed.wire.envelope import Envelope
from scfed.wire.messages import (
    Abort,
    AdvertiseKeys,
    Announce,
    Domain,
    MaskedInput,
    Member,
    Operator,
    Registry,
    ReleaseCharge,
    Result,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
)
from scfed.wire.policy import Policy
from scfed.wire.tasks import KeySet, MaskingTask
from tests.unchecked import unchecked
from tests.unit._support import TEST_NOISE, Rng

ORIGIN = "scfed.test/unit"
KEY = Ed25519PrivateKey.from_private_bytes(Rng(b"signer")(32))
PUBLIC = KEY.public_key().public_bytes_raw()
OTHER_PUBLIC = Ed25519PrivateKey.from_private_bytes(Rng(b"other")(32)).public_key()
R16, H32, K32 = bytes(range(16)), bytes(range(32)), bytes(range(32, 64))

# ---- strategies ----

member_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
texts = st.text(st.characters(codec="utf-8"), max_size=40)
b16 = st.binary(min_size=16, max_size=16)
b32 = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, 2**64 - 1)


def sorted_ids(min_size: int = 0, max_size: int = 8) -> st.SearchStrategy[tuple[str, ...]]:
    ids = st.lists(member_ids, min_size=min_size, max_size=max_size, unique=True)
    return ids.map(lambda values: tuple(sorted(values)))


def sorted_pairs(
    value: st.SearchStrategy[bytes],
) -> st.SearchStrategy[tuple[tuple[str, bytes], ...]]:
    return sorted_ids().flatmap(lambda ids: st.tuples(*[st.tuples(st.just(i), value) for i in ids]))


cell_keys = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=20)


@st.composite
def announces(draw: st.DrawFn) -> Announce:
    candidates = draw(sorted_ids(min_size=1))
    with_cells = draw(st.booleans())
    if with_cells:
        cells = tuple(draw(st.lists(cell_keys, min_size=1, max_size=12, unique=True)))
        dim, layout = len(cells), msg.layout_hash(cells)
    else:
        cells, dim, layout = (), draw(st.integers(1, msg.MAX_CELLS)), draw(b32)
    n_min = draw(st.integers(1, len(candidates)))
    return Announce(
        round_id=draw(b16),
        query=draw(texts),
        dim=dim,
        candidates=candidates,
        threshold=draw(st.integers(1, len(candidates))),
        n_min=n_min,
        registry_version=draw(u64),
        phase_timeout_ms=draw(st.integers(msg.MIN_PHASE_TIMEOUT_MS, msg.MAX_PHASE_TIMEOUT_MS)),
        layout_hash=layout,
        noise=draw(noises(n_min)),
        cells=cells,
    )


def noises(n_min: int) -> st.SearchStrategy[Noise]:
    """Valid noise for any n_min up to 1000: each sigma keeps sigma_l^2 within 4 .. 1e8."""
    return st.builds(
        Noise,
        sigma=st.sampled_from(["1000", "2000.5", "300.25", "9999"]),
        t_collude=st.integers(0, n_min - 1),
        unit=st.sampled_from(UNITS),
        bound=st.integers(1, 2**40),
        grid=st.sampled_from(["1", "0.001", "1000", "2.5"]),
        plausible=st.integers(1, 2**52),
    )


@st.composite
def registries(draw: st.DrawFn) -> Registry:
    ids = draw(sorted_ids())
    members = tuple(Member(i, draw(texts), draw(b32), draw(b32), draw(texts)) for i in ids)
    operators = tuple(Operator(name, draw(b32)) for name in draw(sorted_ids(max_size=3)))
    return Registry(draw(texts), draw(u64), draw(b32), members, operators)


vectors = st.integers(1, 64).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n))
shares33 = st.binary(min_size=33, max_size=33)

MESSAGES: dict[type, tuple[st.SearchStrategy[Any], Callable[[bytes], Domain]]] = {
    Registry: (registries(), codec.decode_registry),
    Announce: (announces(), codec.decode_announce),
    AdvertiseKeys: (st.builds(AdvertiseKeys, b16, b32, b32, b32), codec.decode_advertise_keys),
    ShareKeys: (
        st.builds(ShareKeys, b16, b32, sorted_pairs(st.binary(max_size=1024))),
        codec.decode_share_keys,
    ),
    MaskedInput: (st.builds(MaskedInput, b16, b32, vectors), codec.decode_masked_input),
    UnmaskRequest: (
        st.builds(UnmaskRequest, b16, b32, sorted_ids(), sorted_ids()),
        codec.decode_unmask_request,
    ),
    UnmaskResponse: (
        st.builds(UnmaskResponse, b16, b32, sorted_pairs(shares33), sorted_pairs(shares33)),
        codec.decode_unmask_response,
    ),
    Result: (st.builds(Result, b16, b32, sorted_ids(), vectors), codec.decode_result),
    Abort: (
        st.builds(Abort, b16, b32, st.text(st.characters(codec="utf-8"), max_size=1000)),
        codec.decode_abort,
    ),
}


# ---- envelopes ----


def _sealed(type_: str = wire.ANNOUNCE, body: bytes = b"body") -> Envelope:
    return env.seal(KEY, type_, wire.COORDINATOR, ORIGIN, body)


@settings(max_examples=25, deadline=None)
@given(type_=st.sampled_from(sorted(wire.TYPES)), body=st.binary(max_size=200))
def test_seal_verify_round_trip(type_: str, body: bytes) -> None:
    sealed = _sealed(type_, body)
    env.verify(sealed, ORIGIN, type_, PUBLIC)
    parsed = Envelope.from_bytes(sealed.to_bytes())
    assert parsed == sealed
    env.verify(parsed, ORIGIN, type_, PUBLIC)
    assert sealed.digest(ORIGIN) == hashlib.sha256(env.signed_message(type_, ORIGIN, body)).digest()


def test_digest_binds_type_and_origin() -> None:
    sealed = _sealed()
    digests = {
        sealed.digest(ORIGIN),
        sealed.digest("another/origin"),
        Envelope(wire.RESULT, sealed.body, sealed.signer, sealed.signature).digest(ORIGIN),
    }
    assert len(digests) == 3


def test_verify_rejects_wrong_key() -> None:
    with pytest.raises(VerificationError):
        env.verify(_sealed(), ORIGIN, wire.ANNOUNCE, OTHER_PUBLIC.public_bytes_raw())


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33)], ids=["empty", "short", "long"])
def test_verify_rejects_malformed_key(key: bytes) -> None:
    with pytest.raises(VerificationError):
        env.verify(_sealed(), ORIGIN, wire.ANNOUNCE, key)


def test_verify_rejects_wrong_expected_type() -> None:
    with pytest.raises(VerificationError):
        env.verify(_sealed(wire.ANNOUNCE), ORIGIN, wire.RESULT, PUBLIC)


def test_verify_rejects_relabelled_type() -> None:
    sealed = _sealed(wire.ANNOUNCE)
    relabelled = Envelope(wire.RESULT, sealed.body, sealed.signer, sealed.signature)
    with pytest.raises(VerificationError):
        env.verify(relabelled, ORIGIN, wire.RESULT, PUBLIC)


def test_verify_rejects_wrong_origin() -> None:
    with pytest.raises(VerificationError):
        env.verify(_sealed(), "another/origin", wire.ANNOUNCE, PUBLIC)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_verify_rejects_flipped_body_bit(data: st.DataObject) -> None:
    sealed = _sealed(body=b"the body of a signed message")
    index = data.draw(st.integers(0, 8 * len(sealed.body) - 1), label="bit")
    body = bytearray(sealed.body)
    body[index // 8] ^= 1 << (index % 8)
    with pytest.raises(VerificationError):
        env.verify(
            Envelope(sealed.type, bytes(body), sealed.signer, sealed.signature),
            ORIGIN,
            sealed.type,
            PUBLIC,
        )


@settings(max_examples=30, deadline=None)
@given(index=st.integers(0, 8 * env.SIGNATURE_BYTES - 1))
def test_verify_rejects_flipped_signature_bit(index: int) -> None:
    sealed = _sealed()
    signature = bytearray(sealed.signature)
    signature[index // 8] ^= 1 << (index % 8)
    forged = Envelope(sealed.type, sealed.body, sealed.signer, bytes(signature))
    with pytest.raises(VerificationError):
        env.verify(forged, ORIGIN, sealed.type, PUBLIC)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xff\xff", id="garbage"),
        pytest.param(b"\x0a\x05ab", id="truncated-field"),
        pytest.param(b"", id="empty"),
    ],
)
def test_envelope_from_bytes_rejects_garbage(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        Envelope.from_bytes(data)


def _wire(
    type_: str = wire.ANNOUNCE,
    signer: str = "coordinator",
    signature: bytes = bytes(64),
    version: int = env.HASH_SIGNED,
) -> bytes:
    return pb.Envelope(
        type=type_, body=b"x", signer=signer, signature=signature, version=version
    ).SerializeToString()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_wire(type_="round.unknown"), id="unknown-type"),
        pytest.param(_wire(type_=""), id="no-type"),
        pytest.param(_wire(type_="close"), id="close-is-not-a-message"),
        pytest.param(_wire(signature=bytes(63)), id="short-signature"),
        pytest.param(_wire(signature=bytes(65)), id="long-signature"),
        pytest.param(_wire(signature=b""), id="no-signature"),
        pytest.param(_wire(signer=""), id="no-signer"),
        pytest.param(_wire(signer="s" * 65), id="long-signer"),
        pytest.param(_wire(version=3), id="unknown-version"),
    ],
)
def test_envelope_from_bytes_rejects_bad_fields(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        Envelope.from_bytes(data)


def test_envelope_from_bytes_accepts_well_formed_fields() -> None:
    parsed = Envelope.from_bytes(_wire(signer="s" * 64))
    assert parsed == Envelope(wire.ANNOUNCE, b"x", "s" * 64, bytes(64))
    legacy = Envelope.from_bytes(_wire(version=0))
    assert legacy.version == env.BODY_SIGNED


# ---- versions: 2 signs the body's hash, 1 (older logs) the body ----


def _body_signed(type_: str = wire.ANNOUNCE, body: bytes = b"body") -> Envelope:
    message = env.signed_message(type_, ORIGIN, body, env.BODY_SIGNED)
    return Envelope(type_, body, wire.COORDINATOR, KEY.sign(message), env.BODY_SIGNED)


def test_a_seal_signs_the_hash_of_the_body_with_the_domain_kept() -> None:
    body = bytes(range(256)) * 4
    sealed = _sealed(wire.MASKED_INPUT, body)
    assert sealed.version == env.HASH_SIGNED
    context = b"scfed/v2/" + wire.MASKED_INPUT.encode() + b"\n" + ORIGIN.encode() + b"\n"
    KEY.public_key().verify(sealed.signature, context + hashlib.sha256(body).digest())
    assert sealed.digest(ORIGIN) == hashlib.sha256(context + hashlib.sha256(body).digest()).digest()
    assert Envelope.from_bytes(sealed.to_bytes()) == sealed


def test_a_body_signed_envelope_of_an_older_log_still_verifies() -> None:
    legacy = _body_signed()
    env.verify(legacy, ORIGIN, wire.ANNOUNCE, PUBLIC)
    assert Envelope.from_bytes(legacy.to_bytes()) == legacy
    assert (
        legacy.digest(ORIGIN)
        == hashlib.sha256(
            env.signed_message(wire.ANNOUNCE, ORIGIN, b"body", env.BODY_SIGNED)
        ).digest()
    )


@pytest.mark.parametrize("version", [env.BODY_SIGNED, env.HASH_SIGNED])
def test_a_signature_does_not_verify_under_the_other_version(version: int) -> None:
    sealed = _sealed() if version == env.HASH_SIGNED else _body_signed()
    other = env.BODY_SIGNED if version == env.HASH_SIGNED else env.HASH_SIGNED
    relabelled = dataclasses.replace(sealed, version=other)
    assert relabelled.digest(ORIGIN) != sealed.digest(ORIGIN)
    with pytest.raises(VerificationError):
        env.verify(relabelled, ORIGIN, wire.ANNOUNCE, PUBLIC)


def test_an_envelope_of_an_unknown_version_cannot_be_made() -> None:
    with pytest.raises(MessageError, match="version"):
        dataclasses.replace(_sealed(), version=3)


# ---- message round trips ----


@pytest.mark.parametrize("kind", list(MESSAGES), ids=lambda kind: kind.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_message_round_trips(kind: type, data: st.DataObject) -> None:
    strategy, decode = MESSAGES[kind]
    message: Domain = data.draw(strategy, label=kind.__name__)
    assert type(message) is kind
    assert decode(encode(message)) == message


@settings(max_examples=25, deadline=None)
@given(announce=announces())
def test_announce_round_trips_with_and_without_cells(announce: Announce) -> None:
    decoded = codec.decode_announce(encode(announce))
    assert decoded == announce
    assert decoded.quorum == max(announce.threshold, announce.n_min)
    assert [decoded.point(c) for c in decoded.candidates] == list(
        range(1, len(announce.candidates) + 1)
    )


def test_announce_with_listed_cells_round_trips() -> None:
    cells = ("fab/300mm/wafer-starts", "fab/200mm/wafer-starts", "dram/inventory")
    layout = msg.layout_hash(cells)
    announce = Announce(R16, "q", 3, ("a", "b"), 2, 2, 1, 1000, layout, TEST_NOISE, cells)
    assert codec.decode_announce(encode(announce)) == announce
    assert (
        msg.layout_hash(cells) == hashlib.sha256("".join(c + "\n" for c in cells).encode()).digest()
    )


# ---- tasks ----


def _advert_envelope(seed: bytes) -> bytes:
    body = encode(AdvertiseKeys(R16, H32, Rng(seed)(32), Rng(seed + b"s")(32)))
    return env.seal(KEY, wire.ADVERTISE_KEYS, "node-000", ORIGIN, body).to_bytes()


@settings(max_examples=25, deadline=None)
@given(round_id=b16, count=st.integers(0, 6))
def test_key_set_task_round_trips(round_id: bytes, count: int) -> None:
    task = KeySet(round_id, tuple(_advert_envelope(bytes([i])) for i in range(count)))
    wire = tasks.task_to_proto(task).SerializeToString()
    assert tasks.task_from_proto(spb.Task.FromString(wire)) == task


@settings(max_examples=25, deadline=None)
@given(
    round_id=b16,
    shared=sorted_ids(),
    shares=sorted_pairs(st.binary(max_size=100)),
)
def test_masking_task_round_trips(
    round_id: bytes, shared: tuple[str, ...], shares: tuple[tuple[str, bytes], ...]
) -> None:
    task = MaskingTask(round_id, shared, shares)
    wire = tasks.task_to_proto(task).SerializeToString()
    assert tasks.task_from_proto(spb.Task.FromString(wire)) == task


TASK_ENVELOPE_TYPES = [wire.REGISTRY, wire.ANNOUNCE, wire.UNMASK_REQUEST, wire.RESULT, wire.ABORT]


@pytest.mark.parametrize("type_", TASK_ENVELOPE_TYPES)
@settings(max_examples=10, deadline=None)
@given(body=st.binary(max_size=100))
def test_envelope_task_round_trips(type_: str, body: bytes) -> None:
    task = _sealed(type_, body)
    wire = tasks.task_to_proto(task).SerializeToString()
    parsed = tasks.task_from_proto(spb.Task.FromString(wire))
    assert parsed == task
    assert isinstance(parsed, Envelope)
    env.verify(parsed, ORIGIN, type_, PUBLIC)


def _env_pb(type_: str) -> pb.Envelope:
    return pb.Envelope(type=type_, body=b"", signer="coordinator", signature=bytes(64))


@pytest.mark.parametrize(
    "task",
    [
        pytest.param(spb.Task(), id="empty-task"),
        pytest.param(spb.Task(announce=_env_pb(wire.RESULT)), id="announce-slot-with-result"),
        pytest.param(spb.Task(outcome=_env_pb(wire.ANNOUNCE)), id="outcome-slot-with-announce"),
        pytest.param(spb.Task(unmask=_env_pb(wire.ABORT)), id="unmask-slot-with-abort"),
        pytest.param(spb.Task(registry=_env_pb(wire.ANNOUNCE)), id="registry-slot-with-announce"),
        pytest.param(
            spb.Task(announce=pb.Envelope(type=wire.ANNOUNCE, signer="c", signature=bytes(10))),
            id="short-signature",
        ),
        pytest.param(spb.Task(keys=spb.KeySet(round_id=bytes(15))), id="keyset-short-round-id"),
        pytest.param(
            spb.Task(keys=spb.KeySet(round_id=R16, advertisements=[_env_pb("round.bogus")])),
            id="keyset-unknown-envelope-type",
        ),
        pytest.param(
            spb.Task(masking=spb.MaskingTask(round_id=bytes(17))), id="masking-long-round-id"
        ),
        pytest.param(
            spb.Task(masking=spb.MaskingTask(round_id=R16, shared=["b", "a"])),
            id="masking-unsorted-shared",
        ),
        pytest.param(
            spb.Task(masking=spb.MaskingTask(round_id=R16, shared=["a", "a"])),
            id="masking-duplicate-shared",
        ),
        pytest.param(
            spb.Task(masking=spb.MaskingTask(round_id=R16, shared=["Bad"])),
            id="masking-bad-member-id",
        ),
        pytest.param(
            spb.Task(
                masking=spb.MaskingTask(
                    round_id=R16,
                    shares=[
                        spb.ForwardedShare(sender="b", ciphertext=b""),
                        spb.ForwardedShare(sender="a", ciphertext=b""),
                    ],
                )
            ),
            id="masking-unsorted-senders",
        ),
    ],
)
def test_task_from_proto_rejects(task: spb.Task) -> None:
    with pytest.raises(RemoteProtocolError):
        tasks.task_from_proto(task)


# ---- decoders reject ----

ANNOUNCE = Announce(R16, "q", 3, ("node-a", "node-b", "node-c"), 2, 2, 1, 1000, H32, TEST_NOISE)
CELLS = ("x", "y", "z")
BAD_IDS = ["", "Node-a", "-lead", "a_b", "a b", "a" * 64, "caf\u00e9"]


def _announce(**changes: Any) -> bytes:
    """The bytes of the test announce with ``changes``, which need not be valid."""
    fields = {**vars(ANNOUNCE), **changes}
    return encode(unchecked(Announce, **fields))


def _announce_without_noise() -> bytes:
    m = pb.Announce()
    m.ParseFromString(_announce())
    m.ClearField("noise")
    return m.SerializeToString()


NOISE_MUTATIONS: list[tuple[str, dict[str, Any]]] = [
    ("noise-sigma-not-decimal", {"sigma": "4e3"}),
    ("noise-sigma-leading-zero", {"sigma": "04"}),
    ("noise-sigma-trailing-zero", {"sigma": "4.0"}),
    ("noise-sigma-zero", {"sigma": "0"}),
    ("noise-sigma-l-below-2", {"sigma": "1.7"}),
    ("noise-sigma-l2-above-1e8", {"sigma": "15000"}),
    ("noise-t-collude-at-n-min", {"t_collude": 2}),
    ("noise-unit-unknown", {"unit": "record"}),
    ("noise-bound-zero", {"bound": 0}),
    ("noise-bound-too-large", {"bound": 2**40 + 1}),
    ("noise-grid-negative", {"grid": "-1"}),
    ("noise-grid-empty", {"grid": ""}),
    ("noise-plausible-zero", {"plausible": 0}),
    ("noise-plausible-too-large", {"plausible": 2**52 + 1}),
]

DECODE_REJECTS: list[Any] = [
    # registry
    (
        codec.decode_registry,
        encode(
            unchecked(
                Registry,
                "o",
                1,
                K32,
                (
                    unchecked(Member, "b", "", K32, H32, ""),
                    unchecked(Member, "a", "", K32, H32, ""),
                ),
                (),
            )
        ),
        "unsorted-members",
    ),
    (
        codec.decode_registry,
        encode(
            unchecked(
                Registry,
                "o",
                1,
                K32,
                (
                    unchecked(Member, "a", "", K32, H32, ""),
                    unchecked(Member, "a", "", K32, H32, ""),
                ),
                (),
            )
        ),
        "duplicate-members",
    ),
    (
        codec.decode_registry,
        encode(unchecked(Registry, "o", 1, K32, (unchecked(Member, "A", "", K32, H32, ""),), ())),
        "bad-member-id",
    ),
    (
        codec.decode_registry,
        encode(
            unchecked(Registry, "o", 1, K32, (unchecked(Member, "a", "", K32[:31], H32, ""),), ())
        ),
        "short-identity-key",
    ),
    (
        codec.decode_registry,
        encode(
            unchecked(Registry, "o", 1, K32, (unchecked(Member, "a", "", K32, H32 + b"x", ""),), ())
        ),
        "long-fingerprint",
    ),
    (codec.decode_registry, encode(unchecked(Registry, "o", 1, b"", (), ())), "no-coordinator-key"),
    (
        codec.decode_registry,
        encode(
            unchecked(
                Registry,
                "o",
                1,
                K32,
                (),
                (unchecked(Operator, "b", H32), unchecked(Operator, "a", H32)),
            )
        ),
        "unsorted-operators",
    ),
    (
        codec.decode_registry,
        encode(
            unchecked(Registry, "o", 1, K32, (unchecked(Member, "a", "n" * 201, K32, H32, ""),), ())
        ),
        "long-display-name",
    ),
    # announce
    (codec.decode_announce, _announce(candidates=("node-b", "node-a", "node-c")), "unsorted"),
    (codec.decode_announce, _announce(candidates=("node-a", "node-a", "node-c")), "duplicate"),
    (codec.decode_announce, _announce(candidates=("Node-a", "node-b", "node-c")), "bad-id"),
    (codec.decode_announce, _announce(candidates=()), "no-candidates"),
    (codec.decode_announce, _announce(round_id=bytes(15)), "short-round-id"),
    (codec.decode_announce, _announce(round_id=bytes(17)), "long-round-id"),
    (codec.decode_announce, _announce(layout_hash=bytes(31)), "short-layout-hash"),
    (codec.decode_announce, _announce(dim=0), "dim-zero"),
    (codec.decode_announce, _announce(dim=msg.MAX_CELLS + 1), "dim-too-large"),
    (codec.decode_announce, _announce(threshold=4), "threshold-above-candidates"),
    (codec.decode_announce, _announce(threshold=0), "threshold-zero"),
    (codec.decode_announce, _announce(n_min=4), "n-min-above-candidates"),
    (codec.decode_announce, _announce(n_min=0), "n-min-zero"),
    (codec.decode_announce, _announce(phase_timeout_ms=99), "timeout-too-short"),
    (codec.decode_announce, _announce(phase_timeout_ms=3_600_001), "timeout-too-long"),
    (codec.decode_announce, _announce(phase_timeout_ms=0), "timeout-zero"),
    (codec.decode_announce, _announce(cells=CELLS), "cells-not-matching-layout-hash"),
    (codec.decode_announce, _announce_without_noise(), "no-noise"),
    *[
        (codec.decode_announce, _announce(noise=dataclasses.replace(TEST_NOISE, **bad)), name)
        for name, bad in NOISE_MUTATIONS
    ],
    (
        codec.decode_announce,
        _announce(cells=CELLS[:2], layout_hash=msg.layout_hash(CELLS[:2])),
        "cells-not-matching-dim",
    ),
    (
        codec.decode_announce,
        _announce(cells=("a\nb", "c", "d"), layout_hash=msg.layout_hash(("a\nb", "c", "d"))),
        "cell-with-newline",
    ),
    (
        codec.decode_announce,
        _announce(cells=("a", "b", "a"), layout_hash=msg.layout_hash(("a", "b", "a"))),
        "repeated-cell",
    ),
    (
        codec.decode_announce,
        _announce(
            noise=dataclasses.replace(
                TEST_NOISE, disclosure=True, presence_sigma="40", concentration_sigma="40"
            )
        ),
        "ad-hoc-with-disclosure-segments",
    ),
    (codec.decode_announce, _announce(query="q" * 201), "long-query"),
    # advertise keys
    (
        codec.decode_advertise_keys,
        encode(unchecked(AdvertiseKeys, bytes(15), H32, K32, K32)),
        "short-round",
    ),
    (
        codec.decode_advertise_keys,
        encode(unchecked(AdvertiseKeys, R16, bytes(33), K32, K32)),
        "long-hash",
    ),
    (
        codec.decode_advertise_keys,
        encode(unchecked(AdvertiseKeys, R16, H32, bytes(31), K32)),
        "short-c-key",
    ),
    (
        codec.decode_advertise_keys,
        encode(unchecked(AdvertiseKeys, R16, H32, K32, bytes(33))),
        "long-s-key",
    ),
    (codec.decode_advertise_keys, encode(unchecked(AdvertiseKeys, R16, H32, K32, b"")), "no-s-key"),
    # share keys
    (
        codec.decode_share_keys,
        encode(unchecked(ShareKeys, R16, H32, (("b", b""), ("a", b"")))),
        "unsorted",
    ),
    (
        codec.decode_share_keys,
        encode(unchecked(ShareKeys, R16, H32, (("a", b""), ("a", b"")))),
        "duplicate",
    ),
    (
        codec.decode_share_keys,
        encode(unchecked(ShareKeys, R16, H32, (("A", b""),))),
        "bad-receiver",
    ),
    (
        codec.decode_share_keys,
        encode(unchecked(ShareKeys, R16, H32, (("a", bytes(1025)),))),
        "long-shares",
    ),
    (codec.decode_share_keys, encode(unchecked(ShareKeys, R16, bytes(31), ())), "short-hash"),
    # masked input
    (
        codec.decode_masked_input,
        encode(unchecked(MaskedInput, R16, H32, bytes(12))),
        "vector-12-bytes",
    ),
    (
        codec.decode_masked_input,
        encode(unchecked(MaskedInput, R16, H32, bytes(7))),
        "vector-7-bytes",
    ),
    (codec.decode_masked_input, encode(unchecked(MaskedInput, R16, H32, b"")), "vector-empty"),
    (
        codec.decode_masked_input,
        encode(unchecked(MaskedInput, bytes(15), H32, bytes(8))),
        "short-round",
    ),
    # unmask request
    (
        codec.decode_unmask_request,
        encode(unchecked(UnmaskRequest, R16, H32, ("b", "a"), ())),
        "unsorted",
    ),
    (
        codec.decode_unmask_request,
        encode(unchecked(UnmaskRequest, R16, H32, ("a",), ("c", "c"))),
        "dup",
    ),
    (
        codec.decode_unmask_request,
        encode(unchecked(UnmaskRequest, R16, H32, ("a", "B"), ())),
        "bad-id",
    ),
    (
        codec.decode_unmask_request,
        encode(unchecked(UnmaskRequest, R16, bytes(0), ("a",), ())),
        "no-hash",
    ),
    # unmask response
    (
        codec.decode_unmask_response,
        encode(unchecked(UnmaskResponse, R16, bytes(31), (), ())),
        "short-hash",
    ),
    (
        codec.decode_unmask_response,
        encode(unchecked(UnmaskResponse, R16, H32, (("b", b""), ("a", b"")), ())),
        "unsorted-seed-shares",
    ),
    (
        codec.decode_unmask_response,
        encode(unchecked(UnmaskResponse, R16, H32, (), (("a", b""), ("a", b"")))),
        "duplicate-key-shares",
    ),
    # result
    (codec.decode_result, encode(unchecked(Result, R16, H32, ("a",), bytes(12))), "sums-12-bytes"),
    (codec.decode_result, encode(unchecked(Result, R16, H32, ("a",), b"")), "no-sums"),
    (
        codec.decode_result,
        encode(unchecked(Result, R16, H32, ("b", "a"), bytes(8))),
        "unsorted-survivors",
    ),
    (
        codec.decode_result,
        encode(unchecked(Result, bytes(17), H32, ("a",), bytes(8))),
        "long-round",
    ),
    # abort
    (codec.decode_abort, encode(unchecked(Abort, R16, H32, "r" * 1001)), "long-reason"),
    (codec.decode_abort, encode(unchecked(Abort, R16, bytes(16), "")), "short-hash"),
]
DECODE_REJECTS += [
    (
        codec.decode_unmask_request,
        encode(unchecked(UnmaskRequest, R16, H32, (bad,), ())),
        f"bad-id-{i}",
    )
    for i, bad in enumerate(BAD_IDS)
]
DECODE_REJECTS += [
    (decode, b"\xff\xff\xff", f"garbage-{kind.__name__}") for kind, (_, decode) in MESSAGES.items()
]


@pytest.mark.parametrize(
    ("decode", "body"),
    [pytest.param(d, b, id=f"{d.__name__}-{name}") for d, b, name in DECODE_REJECTS],
)
def test_decoders_reject(decode: Callable[[bytes], Domain], body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(body)


CONSTRUCTION_REJECTS: list[Any] = [
    pytest.param(lambda: Member("A", "", K32, H32, ""), id="member-id"),
    pytest.param(lambda: Operator("ops", H32[:31]), id="operator-fingerprint"),
    pytest.param(lambda: Registry("o", 1, b"", (), ()), id="registry-coordinator-key"),
    pytest.param(lambda: dataclasses.replace(ANNOUNCE, threshold=0), id="announce-threshold"),
    pytest.param(
        lambda: dataclasses.replace(
            ANNOUNCE, dim=2, cells=("a", "a"), layout_hash=msg.layout_hash(("a", "a"))
        ),
        id="announce-repeated-cell",
    ),
    pytest.param(
        lambda: dataclasses.replace(ANNOUNCE, noise=dataclasses.replace(TEST_NOISE, sigma="0")),
        id="announce-noise",
    ),
    pytest.param(lambda: AdvertiseKeys(R16, H32, K32, b""), id="advertise-keys-key"),
    pytest.param(lambda: ShareKeys(R16, H32, (("b", b""), ("a", b""))), id="share-keys-order"),
    pytest.param(lambda: MaskedInput(R16, H32, bytes(7)), id="masked-input-vector"),
    pytest.param(lambda: UnmaskRequest(R16, H32, ("a",), ("c", "c")), id="unmask-request-dup"),
    pytest.param(lambda: UnmaskResponse(R16, bytes(31), (), ()), id="unmask-response-hash"),
    pytest.param(lambda: Result(R16, H32, ("a",), b""), id="result-sums"),
    pytest.param(lambda: Abort(R16, H32, "r" * 1001), id="abort-reason"),
    pytest.param(lambda: ReleaseCharge(R16, H32, "2026", 0, "1/8"), id="charge-survivors"),
    pytest.param(lambda: tasks.KeySet(bytes(15), ()), id="key-set-round"),
    pytest.param(lambda: tasks.MaskingTask(R16, ("b", "a"), ()), id="masking-task-order"),
    pytest.param(lambda: tasks.CheckpointTask(b""), id="checkpoint-empty"),
    pytest.param(lambda: tasks.Receipt(0, b"note", (bytes(31),)), id="receipt-hash"),
    pytest.param(lambda: Policy("", 1, "v", "1/2", "year", ()), id="policy-origin"),
]


@pytest.mark.parametrize("build", CONSTRUCTION_REJECTS)
def test_messages_check_themselves_on_construction(build: Callable[[], object]) -> None:
    """A message that breaks a rule cannot be built, by us or from a peer's bytes."""
    with pytest.raises(MessageError):
        build()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_announce(), id="baseline"),
        pytest.param(_announce(threshold=3, n_min=3), id="threshold-equal-to-candidates"),
        pytest.param(_announce(phase_timeout_ms=100), id="shortest-timeout"),
        pytest.param(_announce(phase_timeout_ms=3_600_000), id="longest-timeout"),
        pytest.param(_announce(cells=CELLS, layout_hash=msg.layout_hash(CELLS)), id="cells"),
        pytest.param(_announce(dim=msg.MAX_CELLS), id="largest-dim"),
    ],
)
def test_announce_boundaries_are_accepted(body: bytes) -> None:
    assert codec.decode_announce(body).round_id == R16


@pytest.mark.parametrize("value", ["a", "0", "a" * 63, "node-000", "a-", "9-x"])
def test_check_member_id_accepts(value: str) -> None:
    assert msg.check_member_id(value) == value


@pytest.mark.parametrize("value", BAD_IDS)
def test_check_member_id_rejects(value: str) -> None:
    with pytest.raises(MessageError):
        msg.check_member_id(value)


def test_member_lists_are_bounded() -> None:
    many = tuple(f"m{i:04d}" for i in range(msg.MAX_PARTICIPANTS + 1))
    with pytest.raises(RemoteProtocolError):
        codec.decode_unmask_request(encode(unchecked(UnmaskRequest, R16, H32, many, ())))
    assert (
        len(codec.decode_unmask_request(encode(UnmaskRequest(R16, H32, many[:-1], ()))).survivors)
        == 1000
    )
