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
from scfed import envelope as env
from scfed import messages as msg
from scfed import tasks
from scfed.dp.params import UNITS, Noise
from scfed.envelope import Envelope
from scfed.errors import RemoteProtocolError, VerificationError
from scfed.messages import (
    Abort,
    AdvertiseKeys,
    Announce,
    Domain,
    KeySet,
    MaskedInput,
    MaskingTask,
    Member,
    Operator,
    Registry,
    Result,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
    encode,
)
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
    Registry: (registries(), msg.decode_registry),
    Announce: (announces(), msg.decode_announce),
    AdvertiseKeys: (st.builds(AdvertiseKeys, b16, b32, b32, b32), msg.decode_advertise_keys),
    ShareKeys: (
        st.builds(ShareKeys, b16, b32, sorted_pairs(st.binary(max_size=1024))),
        msg.decode_share_keys,
    ),
    MaskedInput: (st.builds(MaskedInput, b16, b32, vectors), msg.decode_masked_input),
    UnmaskRequest: (
        st.builds(UnmaskRequest, b16, b32, sorted_ids(), sorted_ids()),
        msg.decode_unmask_request,
    ),
    UnmaskResponse: (
        st.builds(UnmaskResponse, b16, b32, sorted_pairs(shares33), sorted_pairs(shares33)),
        msg.decode_unmask_response,
    ),
    Result: (st.builds(Result, b16, b32, sorted_ids(), vectors), msg.decode_result),
    Abort: (
        st.builds(Abort, b16, b32, st.text(st.characters(codec="utf-8"), max_size=1000)),
        msg.decode_abort,
    ),
}


# ---- envelopes ----


def _sealed(type_: str = env.ANNOUNCE, body: bytes = b"body") -> Envelope:
    return env.seal(KEY, type_, env.COORDINATOR, ORIGIN, body)


@settings(max_examples=25, deadline=None)
@given(type_=st.sampled_from(sorted(env.TYPES)), body=st.binary(max_size=200))
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
        Envelope(env.RESULT, sealed.body, sealed.signer, sealed.signature).digest(ORIGIN),
    }
    assert len(digests) == 3


def test_verify_rejects_wrong_key() -> None:
    with pytest.raises(VerificationError):
        env.verify(_sealed(), ORIGIN, env.ANNOUNCE, OTHER_PUBLIC.public_bytes_raw())


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33)], ids=["empty", "short", "long"])
def test_verify_rejects_malformed_key(key: bytes) -> None:
    with pytest.raises(VerificationError):
        env.verify(_sealed(), ORIGIN, env.ANNOUNCE, key)


def test_verify_rejects_wrong_expected_type() -> None:
    with pytest.raises(VerificationError):
        env.verify(_sealed(env.ANNOUNCE), ORIGIN, env.RESULT, PUBLIC)


def test_verify_rejects_relabelled_type() -> None:
    sealed = _sealed(env.ANNOUNCE)
    relabelled = Envelope(env.RESULT, sealed.body, sealed.signer, sealed.signature)
    with pytest.raises(VerificationError):
        env.verify(relabelled, ORIGIN, env.RESULT, PUBLIC)


def test_verify_rejects_wrong_origin() -> None:
    with pytest.raises(VerificationError):
        env.verify(_sealed(), "another/origin", env.ANNOUNCE, PUBLIC)


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
    type_: str = env.ANNOUNCE, signer: str = "coordinator", signature: bytes = bytes(64)
) -> bytes:
    return pb.Envelope(
        type=type_, body=b"x", signer=signer, signature=signature
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
    ],
)
def test_envelope_from_bytes_rejects_bad_fields(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        Envelope.from_bytes(data)


def test_envelope_from_bytes_accepts_well_formed_fields() -> None:
    parsed = Envelope.from_bytes(_wire(signer="s" * 64))
    assert parsed == Envelope(env.ANNOUNCE, b"x", "s" * 64, bytes(64))


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
    decoded = msg.decode_announce(encode(announce))
    assert decoded == announce
    assert decoded.quorum == max(announce.threshold, announce.n_min)
    assert [decoded.point(c) for c in decoded.candidates] == list(
        range(1, len(announce.candidates) + 1)
    )


def test_announce_with_listed_cells_round_trips() -> None:
    cells = ("fab/300mm/wafer-starts", "fab/200mm/wafer-starts", "dram/inventory")
    layout = msg.layout_hash(cells)
    announce = Announce(R16, "q", 3, ("a", "b"), 2, 2, 1, 1000, layout, TEST_NOISE, cells)
    assert msg.decode_announce(encode(announce)) == announce
    assert (
        msg.layout_hash(cells) == hashlib.sha256("".join(c + "\n" for c in cells).encode()).digest()
    )


# ---- tasks ----


def _advert_envelope(seed: bytes) -> bytes:
    body = encode(AdvertiseKeys(R16, H32, Rng(seed)(32), Rng(seed + b"s")(32)))
    return env.seal(KEY, env.ADVERTISE_KEYS, "node-000", ORIGIN, body).to_bytes()


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


TASK_ENVELOPE_TYPES = [env.REGISTRY, env.ANNOUNCE, env.UNMASK_REQUEST, env.RESULT, env.ABORT]


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
        pytest.param(spb.Task(announce=_env_pb(env.RESULT)), id="announce-slot-with-result"),
        pytest.param(spb.Task(outcome=_env_pb(env.ANNOUNCE)), id="outcome-slot-with-announce"),
        pytest.param(spb.Task(unmask=_env_pb(env.ABORT)), id="unmask-slot-with-abort"),
        pytest.param(spb.Task(registry=_env_pb(env.ANNOUNCE)), id="registry-slot-with-announce"),
        pytest.param(
            spb.Task(announce=pb.Envelope(type=env.ANNOUNCE, signer="c", signature=bytes(10))),
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
    fields = {**vars(ANNOUNCE), **changes}
    return encode(Announce(**fields))


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
        msg.decode_registry,
        encode(
            Registry(
                "o", 1, K32, (Member("b", "", K32, H32, ""), Member("a", "", K32, H32, "")), ()
            )
        ),
        "unsorted-members",
    ),
    (
        msg.decode_registry,
        encode(
            Registry(
                "o", 1, K32, (Member("a", "", K32, H32, ""), Member("a", "", K32, H32, "")), ()
            )
        ),
        "duplicate-members",
    ),
    (
        msg.decode_registry,
        encode(Registry("o", 1, K32, (Member("A", "", K32, H32, ""),), ())),
        "bad-member-id",
    ),
    (
        msg.decode_registry,
        encode(Registry("o", 1, K32, (Member("a", "", K32[:31], H32, ""),), ())),
        "short-identity-key",
    ),
    (
        msg.decode_registry,
        encode(Registry("o", 1, K32, (Member("a", "", K32, H32 + b"x", ""),), ())),
        "long-fingerprint",
    ),
    (msg.decode_registry, encode(Registry("o", 1, b"", (), ())), "no-coordinator-key"),
    (
        msg.decode_registry,
        encode(Registry("o", 1, K32, (), (Operator("b", H32), Operator("a", H32)))),
        "unsorted-operators",
    ),
    (
        msg.decode_registry,
        encode(Registry("o", 1, K32, (Member("a", "n" * 201, K32, H32, ""),), ())),
        "long-display-name",
    ),
    # announce
    (msg.decode_announce, _announce(candidates=("node-b", "node-a", "node-c")), "unsorted"),
    (msg.decode_announce, _announce(candidates=("node-a", "node-a", "node-c")), "duplicate"),
    (msg.decode_announce, _announce(candidates=("Node-a", "node-b", "node-c")), "bad-id"),
    (msg.decode_announce, _announce(candidates=()), "no-candidates"),
    (msg.decode_announce, _announce(round_id=bytes(15)), "short-round-id"),
    (msg.decode_announce, _announce(round_id=bytes(17)), "long-round-id"),
    (msg.decode_announce, _announce(layout_hash=bytes(31)), "short-layout-hash"),
    (msg.decode_announce, _announce(dim=0), "dim-zero"),
    (msg.decode_announce, _announce(dim=msg.MAX_CELLS + 1), "dim-too-large"),
    (msg.decode_announce, _announce(threshold=4), "threshold-above-candidates"),
    (msg.decode_announce, _announce(threshold=0), "threshold-zero"),
    (msg.decode_announce, _announce(n_min=4), "n-min-above-candidates"),
    (msg.decode_announce, _announce(n_min=0), "n-min-zero"),
    (msg.decode_announce, _announce(phase_timeout_ms=99), "timeout-too-short"),
    (msg.decode_announce, _announce(phase_timeout_ms=3_600_001), "timeout-too-long"),
    (msg.decode_announce, _announce(phase_timeout_ms=0), "timeout-zero"),
    (msg.decode_announce, _announce(cells=CELLS), "cells-not-matching-layout-hash"),
    (msg.decode_announce, _announce_without_noise(), "no-noise"),
    *[
        (msg.decode_announce, _announce(noise=dataclasses.replace(TEST_NOISE, **bad)), name)
        for name, bad in NOISE_MUTATIONS
    ],
    (
        msg.decode_announce,
        _announce(cells=CELLS[:2], layout_hash=msg.layout_hash(CELLS[:2])),
        "cells-not-matching-dim",
    ),
    (
        msg.decode_announce,
        _announce(cells=("a\nb", "c", "d"), layout_hash=msg.layout_hash(("a\nb", "c", "d"))),
        "cell-with-newline",
    ),
    (
        msg.decode_announce,
        _announce(cells=("a", "b", "a"), layout_hash=msg.layout_hash(("a", "b", "a"))),
        "repeated-cell",
    ),
    (
        msg.decode_announce,
        _announce(
            noise=dataclasses.replace(
                TEST_NOISE, disclosure=True, presence_sigma="40", concentration_sigma="40"
            )
        ),
        "ad-hoc-with-disclosure-segments",
    ),
    (msg.decode_announce, _announce(query="q" * 201), "long-query"),
    # advertise keys
    (msg.decode_advertise_keys, encode(AdvertiseKeys(bytes(15), H32, K32, K32)), "short-round"),
    (msg.decode_advertise_keys, encode(AdvertiseKeys(R16, bytes(33), K32, K32)), "long-hash"),
    (msg.decode_advertise_keys, encode(AdvertiseKeys(R16, H32, bytes(31), K32)), "short-c-key"),
    (msg.decode_advertise_keys, encode(AdvertiseKeys(R16, H32, K32, bytes(33))), "long-s-key"),
    (msg.decode_advertise_keys, encode(AdvertiseKeys(R16, H32, K32, b"")), "no-s-key"),
    # share keys
    (msg.decode_share_keys, encode(ShareKeys(R16, H32, (("b", b""), ("a", b"")))), "unsorted"),
    (msg.decode_share_keys, encode(ShareKeys(R16, H32, (("a", b""), ("a", b"")))), "duplicate"),
    (msg.decode_share_keys, encode(ShareKeys(R16, H32, (("A", b""),))), "bad-receiver"),
    (msg.decode_share_keys, encode(ShareKeys(R16, H32, (("a", bytes(1025)),))), "long-shares"),
    (msg.decode_share_keys, encode(ShareKeys(R16, bytes(31), ())), "short-hash"),
    # masked input
    (msg.decode_masked_input, encode(MaskedInput(R16, H32, bytes(12))), "vector-12-bytes"),
    (msg.decode_masked_input, encode(MaskedInput(R16, H32, bytes(7))), "vector-7-bytes"),
    (msg.decode_masked_input, encode(MaskedInput(R16, H32, b"")), "vector-empty"),
    (msg.decode_masked_input, encode(MaskedInput(bytes(15), H32, bytes(8))), "short-round"),
    # unmask request
    (msg.decode_unmask_request, encode(UnmaskRequest(R16, H32, ("b", "a"), ())), "unsorted"),
    (msg.decode_unmask_request, encode(UnmaskRequest(R16, H32, ("a",), ("c", "c"))), "dup"),
    (msg.decode_unmask_request, encode(UnmaskRequest(R16, H32, ("a", "B"), ())), "bad-id"),
    (msg.decode_unmask_request, encode(UnmaskRequest(R16, bytes(0), ("a",), ())), "no-hash"),
    # unmask response
    (msg.decode_unmask_response, encode(UnmaskResponse(R16, bytes(31), (), ())), "short-hash"),
    (
        msg.decode_unmask_response,
        encode(UnmaskResponse(R16, H32, (("b", b""), ("a", b"")), ())),
        "unsorted-seed-shares",
    ),
    (
        msg.decode_unmask_response,
        encode(UnmaskResponse(R16, H32, (), (("a", b""), ("a", b"")))),
        "duplicate-key-shares",
    ),
    # result
    (msg.decode_result, encode(Result(R16, H32, ("a",), bytes(12))), "sums-12-bytes"),
    (msg.decode_result, encode(Result(R16, H32, ("a",), b"")), "no-sums"),
    (msg.decode_result, encode(Result(R16, H32, ("b", "a"), bytes(8))), "unsorted-survivors"),
    (msg.decode_result, encode(Result(bytes(17), H32, ("a",), bytes(8))), "long-round"),
    # abort
    (msg.decode_abort, encode(Abort(R16, H32, "r" * 1001)), "long-reason"),
    (msg.decode_abort, encode(Abort(R16, bytes(16), "")), "short-hash"),
]
DECODE_REJECTS += [
    (msg.decode_unmask_request, encode(UnmaskRequest(R16, H32, (bad,), ())), f"bad-id-{i}")
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
    assert msg.decode_announce(body).round_id == R16


@pytest.mark.parametrize("value", ["a", "0", "a" * 63, "node-000", "a-", "9-x"])
def test_check_member_id_accepts(value: str) -> None:
    assert msg.check_member_id(value) == value


@pytest.mark.parametrize("value", BAD_IDS)
def test_check_member_id_rejects(value: str) -> None:
    with pytest.raises(RemoteProtocolError):
        msg.check_member_id(value)


def test_member_lists_are_bounded() -> None:
    many = tuple(f"m{i:04d}" for i in range(msg.MAX_PARTICIPANTS + 1))
    with pytest.raises(RemoteProtocolError):
        msg.decode_unmask_request(encode(UnmaskRequest(R16, H32, many, ())))
    assert (
        len(msg.decode_unmask_request(encode(UnmaskRequest(R16, H32, many[:-1], ()))).survivors)
        == 1000
    )
