"""Protocol messages to bytes and back: where protobuf and the domain meet. Pure, no I/O.

``decode_*`` parses a peer's bytes into the message's dataclass, which checks its own
invariants; anything wrong is the peer's fault and raises ``RemoteProtocolError``. ``encode``
turns a message back into bytes. Code past ``scfed.wire`` never sees a protobuf message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from protos.scfed.v1 import messages_pb2 as pb
from scfed.dp.params import Noise
from scfed.errors import MessageError, RemoteProtocolError, ScfedError
from scfed.wire.messages import (
    MAX_RELEASE_CELLS,
    Abort,
    AdvertiseKeys,
    Announce,
    Domain,
    MaskedInput,
    Member,
    Operator,
    Publication,
    Refusal,
    Registry,
    ReleaseCell,
    ReleaseCharge,
    ReleaseFigure,
    Result,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
    check_noise,
)

_P = TypeVar("_P", bound=Message)
_T = TypeVar("_T")


def parse(message: _P, body: bytes, what: str) -> _P:
    """``body`` parsed into the protobuf ``message``; RemoteProtocolError if it is not one."""
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise RemoteProtocolError(f"malformed {what}: {exc}") from exc
    return message


def from_peer(build: Callable[[], _T]) -> _T:
    """The message ``build`` makes from a peer's fields; its invalid values are the peer's
    fault."""
    try:
        return build()
    except MessageError as exc:
        raise RemoteProtocolError(str(exc)) from None


def decode_registry(body: bytes) -> Registry:
    m = parse(pb.Registry(), body, "registry")

    def build() -> Registry:
        members = tuple(
            Member(x.member_id, x.display_name, x.identity_key, x.tls_cert_sha256,
                   x.corporate_group)
            for x in m.members
        )  # fmt: skip
        operators = tuple(Operator(x.name, x.tls_cert_sha256) for x in m.operators)
        return Registry(m.origin, m.version, m.coordinator_key, members, operators)

    return from_peer(build)


def decode_announce(body: bytes) -> Announce:
    m = parse(pb.Announce(), body, "announce")
    if not m.HasField("noise"):
        raise RemoteProtocolError("an announce must carry its noise parameters")
    return from_peer(
        lambda: Announce(
            m.round_id,
            m.query,
            m.dim,
            tuple(m.candidates),
            m.threshold,
            m.n_min,
            m.registry_version,
            m.phase_timeout_ms,
            m.layout_hash,
            noise_from_proto(m.noise),
            tuple(m.cells),
            m.week,
            m.neighbours,
            m.graph_seed,
        )
    )


def noise_from_proto(m: pb.Noise) -> Noise:
    """The noise parameters as sent; their checks run where they are used."""
    return Noise(
        m.sigma, m.t_collude, m.unit, m.bound, m.grid, m.plausible, m.disclosure, m.planned,
        m.presence_sigma, m.concentration_sigma,
    )  # fmt: skip


def decode_noise(m: pb.Noise, n_min: int, error: type[ScfedError]) -> Noise:
    """Noise parameters checked for ``n_min``; ``error`` names whose fault a bad value is."""
    noise = noise_from_proto(m)
    try:
        check_noise(noise, n_min)
    except MessageError as exc:
        raise error(str(exc)) from None
    return noise


def noise_to_proto(noise: Noise) -> pb.Noise:
    return pb.Noise(**vars(noise))


def decode_advertise_keys(body: bytes) -> AdvertiseKeys:
    m = parse(pb.AdvertiseKeys(), body, "advertised keys")
    return from_peer(
        lambda: AdvertiseKeys(m.round_id, m.announce_hash, m.c_public_key, m.s_public_key)
    )


def decode_share_keys(body: bytes) -> ShareKeys:
    m = parse(pb.ShareKeys(), body, "share keys")
    shares = tuple((s.receiver, s.ciphertext) for s in m.shares)
    return from_peer(lambda: ShareKeys(m.round_id, m.announce_hash, shares))


def decode_masked_input(body: bytes) -> MaskedInput:
    m = parse(pb.MaskedInput(), body, "masked input")
    return from_peer(lambda: MaskedInput(m.round_id, m.announce_hash, m.vector))


def decode_unmask_request(body: bytes) -> UnmaskRequest:
    m = parse(pb.UnmaskRequest(), body, "unmask request")
    return from_peer(
        lambda: UnmaskRequest(m.round_id, m.announce_hash, tuple(m.survivors), tuple(m.dropped))
    )


def decode_unmask_response(body: bytes) -> UnmaskResponse:
    m = parse(pb.UnmaskResponse(), body, "unmask response")
    seeds = tuple((s.owner, s.share) for s in m.seed_shares)
    keys = tuple((s.owner, s.share) for s in m.key_shares)
    return from_peer(lambda: UnmaskResponse(m.round_id, m.request_hash, seeds, keys))


def decode_result(body: bytes) -> Result:
    m = parse(pb.Result(), body, "result")
    return from_peer(lambda: Result(m.round_id, m.announce_hash, tuple(m.survivors), m.sums))


def decode_abort(body: bytes) -> Abort:
    m = parse(pb.Abort(), body, "abort")
    return from_peer(lambda: Abort(m.round_id, m.announce_hash, m.reason))


def decode_charge(body: bytes) -> ReleaseCharge:
    m = parse(pb.Charge(), body, "charge")
    return from_peer(
        lambda: ReleaseCharge(m.round_id, m.announce_hash, m.period, m.survivors, m.rho)
    )


def decode_refusal(body: bytes) -> Refusal:
    m = parse(pb.Refusal(), body, "refusal")
    return from_peer(lambda: Refusal(m.round_id, m.announce_hash, m.code, m.detail))


def decode_release(body: bytes) -> Publication:
    m = parse(pb.Release(), body, "release")
    if len(m.cells) > MAX_RELEASE_CELLS or len(m.derived) > MAX_RELEASE_CELLS:
        raise RemoteProtocolError(f"a release holds at most {MAX_RELEASE_CELLS} cells")

    def cell(c: pb.ReleaseCell) -> ReleaseCell:
        estimate, trend = tuple(c.estimate), tuple(c.trend)
        return ReleaseCell(
            c.component, c.commodity, c.week, estimate, trend, c.contributors, c.suppressed
        )

    def release() -> Publication:
        cells = tuple(cell(c) for c in m.cells)
        derived = tuple(ReleaseFigure(d.commodity, d.week, d.label, d.value) for d in m.derived)
        return Publication(
            m.round_id, m.result_hash, m.entry, m.week, m.policy_version, m.survivors,
            tuple(m.recipients), cells, derived,
        )  # fmt: skip

    return from_peer(release)


def encode(message: Domain) -> bytes:
    """The wire bytes of a protocol message."""
    return _to_proto(message).SerializeToString()


def _to_proto(message: Domain) -> Message:
    match message:
        case Registry():
            return pb.Registry(
                origin=message.origin,
                version=message.version,
                coordinator_key=message.coordinator_key,
                members=[pb.Member(**vars(m)) for m in message.members],
                operators=[pb.Operator(**vars(o)) for o in message.operators],
            )
        case Announce():
            fields = vars(message) | {"noise": noise_to_proto(message.noise)}
            return pb.Announce(**fields)
        case (
            AdvertiseKeys()
            | MaskedInput()
            | UnmaskRequest()
            | Result()
            | Abort()
            | ReleaseCharge()
            | Refusal()
        ):
            return _PROTO[type(message)](**vars(message))
        case ShareKeys():
            shares = [pb.EncryptedShares(receiver=r, ciphertext=c) for r, c in message.shares]
            return pb.ShareKeys(
                round_id=message.round_id, announce_hash=message.announce_hash, shares=shares
            )
        case Publication():
            fields = vars(message) | {
                "cells": [pb.ReleaseCell(**vars(c)) for c in message.cells],
                "derived": [pb.ReleaseFigure(**vars(d)) for d in message.derived],
            }
            return pb.Release(**fields)
        case UnmaskResponse():
            return pb.UnmaskResponse(
                round_id=message.round_id,
                request_hash=message.request_hash,
                seed_shares=[pb.RevealedShare(owner=o, share=s) for o, s in message.seed_shares],
                key_shares=[pb.RevealedShare(owner=o, share=s) for o, s in message.key_shares],
            )


_PROTO: dict[type, type[Message]] = {
    Refusal: pb.Refusal,
    ReleaseCharge: pb.Charge,
    AdvertiseKeys: pb.AdvertiseKeys,
    MaskedInput: pb.MaskedInput,
    UnmaskRequest: pb.UnmaskRequest,
    Result: pb.Result,
    Abort: pb.Abort,
}
