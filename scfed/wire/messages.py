"""Protocol messages as frozen dataclasses that hold their invariants. Pure, no I/O.

Every message checks itself on construction (sizes, counts, identifiers, ordering), so a
message that exists is a valid one, whether a peer sent it or we built it. A value the
protocol does not allow raises ``MessageError``; ``scfed.wire.codec`` rewraps that as
``RemoteProtocolError`` when the value came from a peer's bytes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache

from scfed.dp.params import Noise
from scfed.errors import MessageError, PrivacyParameterError

ROUND_ID_BYTES = 16
HASH_BYTES = 32
KEY_BYTES = 32
MAX_PARTICIPANTS = 1000
DEFAULT_N_MIN = 3
MAX_CELLS = 1_000_000
MAX_LISTED_CELLS = 65_536
MAX_CELL_KEY = 200
MAX_NAME = 200
#: Cells of one release: a catalogue entry's commodities x horizon x components.
MAX_RELEASE_CELLS = 500_000
MAX_REASON = 300
MAX_CIPHERTEXT = 1024
GRAPH_SEED_BYTES = 32
MIN_PHASE_TIMEOUT_MS = 100
MAX_PHASE_TIMEOUT_MS = 3_600_000

_MEMBER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_member_id(value: str, what: str = "member id") -> str:
    """``value`` if it is a valid member id, else MessageError naming ``what``."""
    if not _MEMBER_ID.fullmatch(value):
        raise MessageError(f"invalid {what} {value[:70]!r}")
    return value


def fixed_bytes(value: bytes, length: int, what: str) -> bytes:
    """``value`` if it has ``length`` bytes, else MessageError naming ``what``."""
    if len(value) != length:
        raise MessageError(f"{what} must be {length} bytes, not {len(value)}")
    return value


def text(value: str, what: str, limit: int = MAX_NAME) -> str:
    """``value`` if it has at most ``limit`` characters."""
    if len(value) > limit:
        raise MessageError(f"{what} is longer than {limit} characters")
    return value


def member_list(values: Iterable[str], what: str) -> tuple[str, ...]:
    """A sorted, duplicate-free, bounded list of member ids."""
    ids = tuple(values)
    if len(ids) > MAX_PARTICIPANTS:
        raise MessageError(f"{what} names more than {MAX_PARTICIPANTS} members")
    for member_id in ids:
        check_member_id(member_id, f"member id in {what}")
    if list(ids) != sorted(set(ids)):
        raise MessageError(f"{what} must be sorted and without duplicates")
    return ids


def pairs(items: Sequence[tuple[str, bytes]], what: str) -> tuple[tuple[str, bytes], ...]:
    """(member id, bytes) pairs, sorted by member id without duplicates."""
    member_list([name for name, _ in items], what)
    return tuple(items)


def _round(round_id: bytes, announce_hash: bytes, what: str = "an announce hash") -> None:
    fixed_bytes(round_id, ROUND_ID_BYTES, "a round id")
    fixed_bytes(announce_hash, HASH_BYTES, what)


def _words(data: bytes, what: str) -> None:
    if len(data) % 8 or not 8 <= len(data) <= 8 * MAX_CELLS:
        raise MessageError(f"{what} must be 1 to 1e6 little-endian 64-bit words")


# ---- Governance ----


@dataclass(frozen=True)
class Member:
    member_id: str
    display_name: str
    identity_key: bytes
    tls_cert_sha256: bytes
    corporate_group: str

    def __post_init__(self) -> None:
        check_member_id(self.member_id)
        text(self.display_name, "display name")
        fixed_bytes(self.identity_key, KEY_BYTES, "an identity key")
        fixed_bytes(self.tls_cert_sha256, HASH_BYTES, "a certificate fingerprint")
        text(self.corporate_group, "corporate group")


@dataclass(frozen=True)
class Operator:
    name: str
    tls_cert_sha256: bytes

    def __post_init__(self) -> None:
        check_member_id(self.name, "operator name")
        fixed_bytes(self.tls_cert_sha256, HASH_BYTES, "a certificate fingerprint")


@dataclass(frozen=True)
class Registry:
    """The governance-signed list of members and operators at one version."""

    origin: str
    version: int
    coordinator_key: bytes
    members: tuple[Member, ...]
    operators: tuple[Operator, ...]

    def __post_init__(self) -> None:
        member_list([m.member_id for m in self.members], "registry")
        member_list([o.name for o in self.operators], "operator list")
        fixed_bytes(self.coordinator_key, KEY_BYTES, "the coordinator key")
        text(self.origin, "origin")

    def member(self, member_id: str) -> Member | None:
        """The member with this id, or None."""
        return self._by_id.get(member_id)

    def member_by_certificate(self, fingerprint: bytes) -> Member | None:
        """The member whose TLS certificate has this SHA-256 fingerprint, or None."""
        return next((m for m in self.members if m.tls_cert_sha256 == fingerprint), None)

    @cached_property
    def _by_id(self) -> dict[str, Member]:
        """The members by id: asked for every candidate of every round."""
        return {m.member_id: m for m in self.members}

    @cached_property
    def group_of_member(self) -> dict[str, str]:
        """Each member's corporate group by member id: counted for every round's candidates."""
        return {m.member_id: m.corporate_group for m in self.members}

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
    #: SecAgg+: each node's neighbours in the sparse graph; 0 for the complete graph.
    neighbours: int = 0
    #: The public randomness the sparse graph is derived from; b"" for the complete graph.
    graph_seed: bytes = b""

    def __post_init__(self) -> None:
        candidates = member_list(self.candidates, "candidates")
        self._check_graph()
        if not 1 <= self.dim <= MAX_CELLS:
            raise MessageError(f"an announce has 1 to {MAX_CELLS} cells, not {self.dim}")
        if not 1 <= self.threshold <= len(candidates) or not 1 <= self.n_min <= len(candidates):
            raise MessageError("threshold and n_min must lie between 1 and the candidates")
        if not MIN_PHASE_TIMEOUT_MS <= self.phase_timeout_ms <= MAX_PHASE_TIMEOUT_MS:
            raise MessageError(f"phase timeout {self.phase_timeout_ms} ms is out of range")
        _round(self.round_id, self.layout_hash, "a layout hash")
        text(self.query, "query")
        if self.noise.disclosure and (self.dim % 3 or not self.week):
            raise MessageError(
                "only a catalogue round has disclosure segments, three of the same length"
            )
        check_noise(self.noise, self.n_min)
        _check_cells(self.cells, self.dim, self.layout_hash)
        _check_week(self.week, bool(self.cells))

    def _check_graph(self) -> None:
        k, n = self.neighbours, len(self.candidates)
        if not k:
            if self.graph_seed:
                raise MessageError("a round on the complete graph carries no graph seed")
            return
        if k % 2 or not 2 <= k < n - 1:
            raise MessageError(f"a sparse graph has an even degree from 2 to {n - 2}, not {k}")
        fixed_bytes(self.graph_seed, GRAPH_SEED_BYTES, "a graph seed")
        if self.threshold > k + 1:
            raise MessageError(f"threshold {self.threshold} exceeds a neighbourhood of {k + 1}")

    @property
    def sparse(self) -> bool:
        """Whether the round runs on a SecAgg+ sparse graph."""
        return self.neighbours > 0

    @property
    def quorum(self) -> int:
        """Fewest participants that may remain at any step: max(t, n_min)."""
        return max(self.threshold, self.n_min)

    @property
    def local_quorum(self) -> int:
        """Fewest of a node's neighbourhood (itself included) that may remain at a step: the
        quorum on the complete graph, the threshold on a sparse one."""
        return self.threshold if self.sparse else self.quorum

    def point(self, member_id: str) -> int:
        """The Shamir point of a candidate: its index in the sorted list, plus one."""
        return self.candidates.index(member_id) + 1


def check_noise(noise: Noise, n_min: int) -> None:
    """MessageError unless ``noise`` is valid for rounds of at least ``n_min`` survivors."""
    try:
        noise.check(n_min)
    except PrivacyParameterError as exc:
        raise MessageError(f"noise parameters: {exc}") from None


def _check_cells(cells: tuple[str, ...], dim: int, layout: bytes) -> None:
    if not cells:
        return
    if len(cells) != dim or len(cells) > MAX_LISTED_CELLS:
        raise MessageError(f"an announce lists {dim} cells, at most {MAX_LISTED_CELLS}")
    if any(len(c) > MAX_CELL_KEY or "\n" in c for c in cells):
        raise MessageError(f"a cell key is longer than {MAX_CELL_KEY} or has a newline")
    if len(set(cells)) != len(cells):
        raise MessageError("an announce lists a cell twice: a round's cells are a set")
    if layout_hash(cells) != layout:
        raise MessageError("the listed cells do not match the layout hash")


def _check_week(week: str, listed: bool) -> None:
    """A catalogue round's Monday, or "" for an ad-hoc round, whose cells are listed."""
    if not week:
        return
    if listed:
        raise MessageError("a catalogue round's cells come from the catalogue, not a list")
    try:
        monday = date.fromisoformat(week)
    except ValueError:
        raise MessageError(f"{week[:20]!r} is not a date") from None
    if monday.weekday() != 0 or monday.isoformat() != week:
        raise MessageError(f"a round's week starts on a Monday, not {week}")


@dataclass(frozen=True)
class AdvertiseKeys:
    round_id: bytes
    announce_hash: bytes
    c_public_key: bytes
    s_public_key: bytes

    def __post_init__(self) -> None:
        _round(self.round_id, self.announce_hash)
        fixed_bytes(self.c_public_key, KEY_BYTES, "an encryption key")
        fixed_bytes(self.s_public_key, KEY_BYTES, "a mask key")


@dataclass(frozen=True)
class ShareKeys:
    round_id: bytes
    announce_hash: bytes
    shares: tuple[tuple[str, bytes], ...]  # (receiver, ciphertext), sorted by receiver

    def __post_init__(self) -> None:
        _round(self.round_id, self.announce_hash)
        pairs(self.shares, "share list")
        if any(len(c) > MAX_CIPHERTEXT for _, c in self.shares):
            raise MessageError(f"encrypted shares are longer than {MAX_CIPHERTEXT} bytes")


@dataclass(frozen=True)
class MaskedInput:
    round_id: bytes
    announce_hash: bytes
    vector: bytes

    def __post_init__(self) -> None:
        _words(self.vector, "a masked vector")
        _round(self.round_id, self.announce_hash)


@dataclass(frozen=True)
class UnmaskRequest:
    round_id: bytes
    announce_hash: bytes
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]

    def __post_init__(self) -> None:
        _round(self.round_id, self.announce_hash)
        member_list(self.survivors, "survivors")
        member_list(self.dropped, "dropped")


@dataclass(frozen=True)
class UnmaskResponse:
    round_id: bytes
    request_hash: bytes
    seed_shares: tuple[tuple[str, bytes], ...]  # (owner, share)
    key_shares: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        _round(self.round_id, self.request_hash, "a request hash")
        pairs(self.seed_shares, "seed shares")
        pairs(self.key_shares, "key shares")


@dataclass(frozen=True)
class Result:
    round_id: bytes
    announce_hash: bytes
    survivors: tuple[str, ...]
    sums: bytes

    def __post_init__(self) -> None:
        _words(self.sums, "a result")
        _round(self.round_id, self.announce_hash)
        member_list(self.survivors, "survivors")


@dataclass(frozen=True)
class Abort:
    round_id: bytes
    announce_hash: bytes
    reason: str

    def __post_init__(self) -> None:
        _round(self.round_id, self.announce_hash)
        text(self.reason, "abort reason", 1000)


#: Why a node refuses or abandons a round, as the operator reads it ("3 nodes refused: ...").
REFUSAL_CODES = {
    "parameters": "the round's parameters break their policy",
    "noise-floor": "noise below their floor",
    "budget": "past their privacy budget",
    "catalogue": "the entry is not one they opted into",
    "window": "they released the entry in its window already",
    "week": "not the current week by their clock",
    "graph": "the round's graph",
    "log": "the protocol log did not check out",
    "data": "their data could not be read",
    "registry": "the registry or policy they hold",
    "protocol": "a message that broke the protocol",
}
MAX_REFUSAL_DETAIL = 300


@dataclass(frozen=True)
class Refusal:
    """A node's signed reason for refusing or abandoning a round (type "round.refusal")."""

    round_id: bytes
    announce_hash: bytes
    code: str
    detail: str

    def __post_init__(self) -> None:
        _round(self.round_id, self.announce_hash)
        if self.code not in REFUSAL_CODES:
            raise MessageError(f"{self.code[:40]!r} is not a refusal code")
        text(self.detail, "a refusal's detail", MAX_REFUSAL_DETAIL)


@dataclass(frozen=True)
class ReleaseCharge:
    """The budget charge the coordinator logs after a result (type "round.charge")."""

    round_id: bytes
    announce_hash: bytes
    period: str
    survivors: int
    rho: str  # exact "num/den"

    def __post_init__(self) -> None:
        if not 1 <= self.survivors <= MAX_PARTICIPANTS:
            raise MessageError(f"a charge names 1 to {MAX_PARTICIPANTS} survivors")
        _round(self.round_id, self.announce_hash)
        text(self.period, "budget period", 20)
        text(self.rho, "rho", 200)


@lru_cache(maxsize=4096)
def _monday(week: str) -> None:
    """A release's week: a Monday (a release holds many cells of few weeks)."""
    _check_week(week, False)
    if not week:
        raise MessageError("a release names its week")


def check_monday(week: str) -> None:
    """MessageError unless ``week`` is a Monday, "YYYY-MM-DD"."""
    _monday(week)


def _finite(values: tuple[float, ...], what: str) -> None:
    # The sum of finite numbers of this size is finite; an inf or a nan makes it not.
    if len(values) not in (0, 4) or not math.isfinite(sum(values)):
        raise MessageError(f"{what} is empty or four finite numbers (value, low, high, sd)")


@dataclass(frozen=True)
class ReleaseCell:
    """One figure of a release: its estimate and trend (value, low, high, sd; empty when
    suppressed), contributor band and the reason it is suppressed ("" when published)."""

    component: str
    commodity: str
    week: str
    estimate: tuple[float, ...]
    trend: tuple[float, ...]
    contributors: str
    suppressed: str

    def __post_init__(self) -> None:
        text(self.component, "a component", 40)
        text(self.commodity, "a commodity", MAX_CELL_KEY)
        _monday(self.week)
        _finite(self.estimate, "an estimate")
        _finite(self.trend, "a trend")
        if bool(self.estimate) == bool(self.suppressed):
            raise MessageError("a release cell has an estimate or a reason it is suppressed")
        text(self.contributors, "a contributor band", 20)
        text(self.suppressed, "a suppression reason", MAX_REASON)


@dataclass(frozen=True)
class ReleaseFigure:
    """A figure derived from a release's cells: the traffic light or book-to-bill."""

    commodity: str
    week: str
    label: str
    value: str

    def __post_init__(self) -> None:
        text(self.commodity, "a commodity", MAX_CELL_KEY)
        _monday(self.week)
        text(self.label, "a figure's label", 40)
        text(self.value, "a figure's value", 80)


@dataclass(frozen=True)
class Publication:
    """A catalogue round's release (type "round.release"), logged after its result."""

    round_id: bytes
    result_hash: bytes
    entry: str
    week: str
    policy_version: int
    survivors: int
    recipients: tuple[str, ...]
    cells: tuple[ReleaseCell, ...]
    derived: tuple[ReleaseFigure, ...]

    def __post_init__(self) -> None:
        _round(self.round_id, self.result_hash, "a result hash")
        text(self.entry, "an entry name")
        _monday(self.week)
        if not 1 <= self.survivors <= MAX_PARTICIPANTS:
            raise MessageError(f"a release names 1 to {MAX_PARTICIPANTS} survivors")
        if not 1 <= len(self.recipients) <= 100 or not all(self.recipients):
            raise MessageError("a release names 1 to 100 recipients")
        for recipient in self.recipients:
            text(recipient, "a recipient")
        if not 1 <= len(self.cells) <= MAX_RELEASE_CELLS or len(self.derived) > len(self.cells):
            raise MessageError(f"a release holds 1 to {MAX_RELEASE_CELLS} cells")

    def entitles(self, member_id: str) -> bool:
        """Whether ``member_id``'s node may receive this release."""
        return bool({"members", "public", member_id} & set(self.recipients))


RoundMessage = (
    Announce
    | AdvertiseKeys
    | ShareKeys
    | MaskedInput
    | UnmaskRequest
    | UnmaskResponse
    | Result
    | Abort
    | ReleaseCharge
    | Publication
    | Refusal
)
#: What ``scfed.wire.codec.encode`` takes: the registry and the round messages.
Domain = Registry | RoundMessage
