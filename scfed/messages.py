"""Protocol messages as validated, frozen dataclasses, and their wire form. Pure, no I/O.

This is the one place where protobuf and domain types meet: ``decode_*`` parses a peer's
bytes into a dataclass whose invariants hold (sizes, counts, identifiers, ordering) or raises
``RemoteProtocolError``; ``encode`` turns a dataclass back into bytes. Code past this module
never sees a protobuf message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from protos.scfed.v1 import messages_pb2 as pb
from scfed.dp.params import Noise
from scfed.errors import PrivacyParameterError, RemoteProtocolError, ScfedError

ROUND_ID_BYTES = 16
HASH_BYTES = 32
KEY_BYTES = 32
MAX_PARTICIPANTS = 1000
DEFAULT_N_MIN = 3
MAX_CELLS = 1_000_000
MAX_LISTED_CELLS = 65_536
MAX_CELL_KEY = 200
MAX_NAME = 200
MIN_PHASE_TIMEOUT_MS = 100
MAX_PHASE_TIMEOUT_MS = 3_600_000

_MEMBER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_member_id(value: str, what: str = "member id") -> str:
    """``value`` if it is a valid member id, else RemoteProtocolError naming ``what``."""
    if not _MEMBER_ID.fullmatch(value):
        raise RemoteProtocolError(f"invalid {what} {value[:70]!r}")
    return value


def fixed_bytes(value: bytes, length: int, what: str) -> bytes:
    if len(value) != length:
        raise RemoteProtocolError(f"{what} must be {length} bytes, not {len(value)}")
    return value


def _text(value: str, what: str, limit: int = MAX_NAME) -> str:
    if len(value) > limit:
        raise RemoteProtocolError(f"{what} is longer than {limit} characters")
    return value


def member_list(values: Iterable[str], what: str) -> tuple[str, ...]:
    """A sorted, duplicate-free, bounded list of member ids."""
    ids = tuple(values)
    if len(ids) > MAX_PARTICIPANTS:
        raise RemoteProtocolError(f"{what} names more than {MAX_PARTICIPANTS} members")
    for member_id in ids:
        check_member_id(member_id, f"member id in {what}")
    if list(ids) != sorted(set(ids)):
        raise RemoteProtocolError(f"{what} must be sorted and without duplicates")
    return ids


# ---- Governance ----


@dataclass(frozen=True)
class Member:
    member_id: str
    display_name: str
    identity_key: bytes
    tls_cert_sha256: bytes
    corporate_group: str


@dataclass(frozen=True)
class Operator:
    name: str
    tls_cert_sha256: bytes


@dataclass(frozen=True)
class Registry:
    """The governance-signed list of members and operators at one version."""

    origin: str
    version: int
    coordinator_key: bytes
    members: tuple[Member, ...]
    operators: tuple[Operator, ...]

    def member(self, member_id: str) -> Member | None:
        """The member with this id, or None."""
        return next((m for m in self.members if m.member_id == member_id), None)

    def member_by_certificate(self, fingerprint: bytes) -> Member | None:
        """The member whose TLS certificate has this SHA-256 fingerprint, or None."""
        return next((m for m in self.members if m.tls_cert_sha256 == fingerprint), None)

    def operator_by_certificate(self, fingerprint: bytes) -> Operator | None:
        """The operator whose TLS certificate has this SHA-256 fingerprint, or None."""
        return next((o for o in self.operators if o.tls_cert_sha256 == fingerprint), None)


# ---- Round messages ----


def layout_hash(cells: Iterable[str]) -> bytes:
    """SHA-256 of the cell keys, each followed by a newline: the identity of a layout."""
    digest = hashlib.sha256()
    for cell in cells:
        digest.update(cell.encode() + b"\n")
    return digest.digest()


@dataclass(frozen=True)
class Announce:
    round_id: bytes
    query: str
    dim: int
    candidates: tuple[str, ...]
    threshold: int
    n_min: int
    registry_version: int
    phase_timeout_ms: int
    layout_hash: bytes
    noise: Noise
    cells: tuple[str, ...] = ()
    week: str = ""  # a catalogue round's first Monday; its cells come from the catalogue

    @property
    def quorum(self) -> int:
        """Fewest participants that may remain at any step: max(t, n_min)."""
        return max(self.threshold, self.n_min)

    def point(self, member_id: str) -> int:
        """The Shamir point of a candidate: its index in the sorted list, plus one."""
        return self.candidates.index(member_id) + 1


@dataclass(frozen=True)
class AdvertiseKeys:
    round_id: bytes
    announce_hash: bytes
    c_public_key: bytes
    s_public_key: bytes


@dataclass(frozen=True)
class ShareKeys:
    round_id: bytes
    announce_hash: bytes
    shares: tuple[tuple[str, bytes], ...]  # (receiver, ciphertext), sorted by receiver


@dataclass(frozen=True)
class MaskedInput:
    round_id: bytes
    announce_hash: bytes
    vector: bytes


@dataclass(frozen=True)
class UnmaskRequest:
    round_id: bytes
    announce_hash: bytes
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]


@dataclass(frozen=True)
class UnmaskResponse:
    round_id: bytes
    request_hash: bytes
    seed_shares: tuple[tuple[str, bytes], ...]  # (owner, share)
    key_shares: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Result:
    round_id: bytes
    announce_hash: bytes
    survivors: tuple[str, ...]
    sums: bytes


@dataclass(frozen=True)
class Abort:
    round_id: bytes
    announce_hash: bytes
    reason: str


@dataclass(frozen=True)
class ReleaseCharge:
    """The budget charge the coordinator logs after a result (type "round.charge")."""

    round_id: bytes
    announce_hash: bytes
    period: str
    survivors: int
    rho: str  # exact "num/den"


Domain = (
    Registry
    | Announce
    | AdvertiseKeys
    | ShareKeys
    | MaskedInput
    | UnmaskRequest
    | UnmaskResponse
    | Result
    | Abort
    | ReleaseCharge
)

_P = TypeVar("_P", bound=Message)


def _parse(message: _P, body: bytes, what: str) -> _P:
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise RemoteProtocolError(f"malformed {what}: {exc}") from exc
    return message


def _pairs(items: Sequence[tuple[str, bytes]], what: str) -> tuple[tuple[str, bytes], ...]:
    member_list([name for name, _ in items], what)
    return tuple(items)


def decode_registry(body: bytes) -> Registry:
    m = _parse(pb.Registry(), body, "registry")
    members = tuple(
        Member(
            check_member_id(x.member_id),
            _text(x.display_name, "display name"),
            fixed_bytes(x.identity_key, KEY_BYTES, "an identity key"),
            fixed_bytes(x.tls_cert_sha256, HASH_BYTES, "a certificate fingerprint"),
            _text(x.corporate_group, "corporate group"),
        )
        for x in m.members
    )
    member_list([x.member_id for x in members], "registry")
    operators = tuple(
        Operator(
            check_member_id(x.name, "operator name"),
            fixed_bytes(x.tls_cert_sha256, HASH_BYTES, "a certificate fingerprint"),
        )
        for x in m.operators
    )
    member_list([o.name for o in operators], "operator list")
    key = fixed_bytes(m.coordinator_key, KEY_BYTES, "the coordinator key")
    return Registry(_text(m.origin, "origin"), m.version, key, members, operators)


def _cells(values: Sequence[str], dim: int, layout: bytes) -> tuple[str, ...]:
    cells = tuple(values)
    if not cells:
        return cells
    if len(cells) != dim or len(cells) > MAX_LISTED_CELLS:
        raise RemoteProtocolError(f"an announce lists {dim} cells, at most {MAX_LISTED_CELLS}")
    if any(len(c) > MAX_CELL_KEY or "\n" in c for c in cells):
        raise RemoteProtocolError(f"a cell key is longer than {MAX_CELL_KEY} or has a newline")
    if len(set(cells)) != len(cells):
        raise RemoteProtocolError("an announce lists a cell twice: a round's cells are a set")
    if layout_hash(cells) != layout:
        raise RemoteProtocolError("the listed cells do not match the layout hash")
    return cells


def decode_announce(body: bytes) -> Announce:
    m = _parse(pb.Announce(), body, "announce")
    candidates = member_list(m.candidates, "candidates")
    if not 1 <= m.dim <= MAX_CELLS:
        raise RemoteProtocolError(f"an announce has 1 to {MAX_CELLS} cells, not {m.dim}")
    if not 1 <= m.threshold <= len(candidates) or not 1 <= m.n_min <= len(candidates):
        raise RemoteProtocolError("threshold and n_min must lie between 1 and the candidates")
    if not MIN_PHASE_TIMEOUT_MS <= m.phase_timeout_ms <= MAX_PHASE_TIMEOUT_MS:
        raise RemoteProtocolError(f"phase timeout {m.phase_timeout_ms} ms is out of range")
    layout = fixed_bytes(m.layout_hash, HASH_BYTES, "a layout hash")
    if not m.HasField("noise"):
        raise RemoteProtocolError("an announce must carry its noise parameters")
    if m.noise.disclosure and (m.dim % 3 or not m.week):
        raise RemoteProtocolError(
            "only a catalogue round has disclosure segments, three of the same length"
        )
    return Announce(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        _text(m.query, "query"),
        m.dim,
        candidates,
        m.threshold,
        m.n_min,
        m.registry_version,
        m.phase_timeout_ms,
        layout,
        decode_noise(m.noise, m.n_min, RemoteProtocolError),
        _cells(m.cells, m.dim, layout),
        _week(m.week, bool(m.cells)),
    )


def _week(text: str, listed: bool) -> str:
    """A catalogue round's Monday, or "" for an ad-hoc round, whose cells are listed."""
    if not text:
        return ""
    if listed:
        raise RemoteProtocolError("a catalogue round's cells come from the catalogue, not a list")
    try:
        monday = date.fromisoformat(text)
    except ValueError:
        raise RemoteProtocolError(f"{text[:20]!r} is not a date") from None
    if monday.weekday() != 0 or monday.isoformat() != text:
        raise RemoteProtocolError(f"a round's week starts on a Monday, not {text}")
    return text


def decode_noise(m: pb.Noise, n_min: int, error: type[ScfedError]) -> Noise:
    """Validated noise parameters; ``error`` names whose fault a bad value is."""
    noise = Noise(
        m.sigma, m.t_collude, m.unit, m.bound, m.grid, m.plausible, m.disclosure, m.planned,
        m.presence_sigma, m.concentration_sigma,
    )  # fmt: skip
    try:
        noise.check(n_min)
    except PrivacyParameterError as exc:
        raise error(f"noise parameters: {exc}") from None
    return noise


def noise_to_proto(noise: Noise) -> pb.Noise:
    return pb.Noise(**vars(noise))


def decode_advertise_keys(body: bytes) -> AdvertiseKeys:
    m = _parse(pb.AdvertiseKeys(), body, "advertised keys")
    return AdvertiseKeys(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        fixed_bytes(m.announce_hash, HASH_BYTES, "an announce hash"),
        fixed_bytes(m.c_public_key, KEY_BYTES, "an encryption key"),
        fixed_bytes(m.s_public_key, KEY_BYTES, "a mask key"),
    )


def decode_share_keys(body: bytes) -> ShareKeys:
    m = _parse(pb.ShareKeys(), body, "share keys")
    shares = _pairs([(s.receiver, s.ciphertext) for s in m.shares], "share list")
    if any(len(c) > 1024 for _, c in shares):
        raise RemoteProtocolError("encrypted shares are longer than 1024 bytes")
    return ShareKeys(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        fixed_bytes(m.announce_hash, HASH_BYTES, "an announce hash"),
        shares,
    )


def decode_masked_input(body: bytes) -> MaskedInput:
    m = _parse(pb.MaskedInput(), body, "masked input")
    if len(m.vector) % 8 or not 8 <= len(m.vector) <= 8 * MAX_CELLS:
        raise RemoteProtocolError("a masked vector must be 1 to 1e6 little-endian uint64")
    return MaskedInput(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        fixed_bytes(m.announce_hash, HASH_BYTES, "an announce hash"),
        m.vector,
    )


def decode_unmask_request(body: bytes) -> UnmaskRequest:
    m = _parse(pb.UnmaskRequest(), body, "unmask request")
    return UnmaskRequest(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        fixed_bytes(m.announce_hash, HASH_BYTES, "an announce hash"),
        member_list(m.survivors, "survivors"),
        member_list(m.dropped, "dropped"),
    )


def decode_unmask_response(body: bytes) -> UnmaskResponse:
    m = _parse(pb.UnmaskResponse(), body, "unmask response")
    return UnmaskResponse(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        fixed_bytes(m.request_hash, HASH_BYTES, "a request hash"),
        _pairs([(s.owner, s.share) for s in m.seed_shares], "seed shares"),
        _pairs([(s.owner, s.share) for s in m.key_shares], "key shares"),
    )


def decode_result(body: bytes) -> Result:
    m = _parse(pb.Result(), body, "result")
    if len(m.sums) % 8 or not 8 <= len(m.sums) <= 8 * MAX_CELLS:
        raise RemoteProtocolError("a result must be 1 to 1e6 little-endian int64")
    return Result(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        fixed_bytes(m.announce_hash, HASH_BYTES, "an announce hash"),
        member_list(m.survivors, "survivors"),
        m.sums,
    )


def decode_abort(body: bytes) -> Abort:
    m = _parse(pb.Abort(), body, "abort")
    return Abort(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        fixed_bytes(m.announce_hash, HASH_BYTES, "an announce hash"),
        _text(m.reason, "abort reason", 1000),
    )


def decode_charge(body: bytes) -> ReleaseCharge:
    m = _parse(pb.Charge(), body, "charge")
    if not 1 <= m.survivors <= MAX_PARTICIPANTS:
        raise RemoteProtocolError(f"a charge names 1 to {MAX_PARTICIPANTS} survivors")
    return ReleaseCharge(
        fixed_bytes(m.round_id, ROUND_ID_BYTES, "a round id"),
        fixed_bytes(m.announce_hash, HASH_BYTES, "an announce hash"),
        _text(m.period, "budget period", 20),
        m.survivors,
        _text(m.rho, "rho", 200),
    )


def encode(message: Domain) -> bytes:
    """The wire bytes of a domain message."""
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
            AdvertiseKeys() | MaskedInput() | UnmaskRequest() | Result() | Abort() | ReleaseCharge()
        ):
            return _PROTO[type(message)](**vars(message))
        case ShareKeys():
            shares = [pb.EncryptedShares(receiver=r, ciphertext=c) for r, c in message.shares]
            return pb.ShareKeys(
                round_id=message.round_id, announce_hash=message.announce_hash, shares=shares
            )
        case UnmaskResponse():
            return pb.UnmaskResponse(
                round_id=message.round_id,
                request_hash=message.request_hash,
                seed_shares=[pb.RevealedShare(owner=o, share=s) for o, s in message.seed_shares],
                key_shares=[pb.RevealedShare(owner=o, share=s) for o, s in message.key_shares],
            )


_PROTO: dict[type, type[Message]] = {
    ReleaseCharge: pb.Charge,
    AdvertiseKeys: pb.AdvertiseKeys,
    MaskedInput: pb.MaskedInput,
    UnmaskRequest: pb.UnmaskRequest,
    Result: pb.Result,
    Abort: pb.Abort,
}


# ---- Tasks the coordinator pushes to a node (unsigned containers of signed messages) ----


@dataclass(frozen=True)
class KeySet:
    """Every node's signed AdvertiseKeys envelope, as received by the coordinator."""

    round_id: bytes
    advertisements: tuple[bytes, ...]  # serialized envelopes


@dataclass(frozen=True)
class MaskingTask:
    """Who completed share keys, and the encrypted shares other nodes sent this node."""

    round_id: bytes
    shared: tuple[str, ...]
    shares: tuple[tuple[str, bytes], ...]  # (sender, ciphertext)
