"""Inventory attestations as messages: a figure's commitment, its pledges and the attestation
a firm hands its lender, with their wire form. Pure.

``FigureCommitment`` ("attest.figure") and ``Pledge`` ("attest.pledge") are the member's own
messages and are logged; ``Attestation`` ("attest.attestation") travels from the firm to its
lender only. What the commitments commit to, and how a lender checks an attestation, is
``scfed.attest``.
"""

from __future__ import annotations

from dataclasses import dataclass

from protos.scfed.v1 import messages_pb2 as pb
from scfed.errors import MessageError, RemoteProtocolError
from scfed.wire.codec import from_peer, parse
from scfed.wire.envelope import Envelope
from scfed.wire.messages import HASH_BYTES, MAX_CELL_KEY, check_monday, fixed_bytes, text

NONCE_BYTES = 32
#: Pledges on one figure, and releases shown beside it: far more than any lender reads.
MAX_PLEDGES = 1000
MAX_MARKET = 100
MAX_PROOF = 64
MAX_DECIMAL = 40


@dataclass(frozen=True)
class FigureCommitment:
    """A member's hiding commitment to its holdings of ``commodity`` in ``week``."""

    commodity: str
    week: str
    commitment: bytes

    def __post_init__(self) -> None:
        text(self.commodity, "a commodity", MAX_CELL_KEY)
        check_monday(self.week)
        fixed_bytes(self.commitment, HASH_BYTES, "a figure commitment")


@dataclass(frozen=True)
class Pledge:
    """The ``sequence``-th pledge of a committed figure: ``previous`` is the leaf of the one
    before it (of the commitment, for the first), so a figure's pledges form one chain."""

    commodity: str
    week: str
    figure: int
    sequence: int
    previous: int
    commitment: bytes

    def __post_init__(self) -> None:
        text(self.commodity, "a commodity", MAX_CELL_KEY)
        check_monday(self.week)
        fixed_bytes(self.commitment, HASH_BYTES, "a pledge commitment")
        if not 1 <= self.sequence <= MAX_PLEDGES:
            raise MessageError(f"a pledge's sequence is 1 to {MAX_PLEDGES}")
        if self.sequence == 1 and self.previous != self.figure:
            raise MessageError("the first pledge on a figure follows the figure's commitment")
        if not self.figure <= self.previous or (self.sequence > 1 and self.previous == self.figure):
            raise MessageError("a pledge follows its figure's commitment or a pledge after it")


@dataclass(frozen=True)
class Holdings:
    """The holdings a figure commitment opens to: stock of finished goods and work in
    progress, exact decimals in ``unit``."""

    commodity: str
    week: str
    unit: str
    stock_finished: str
    stock_wip: str
    nonce: bytes

    def __post_init__(self) -> None:
        text(self.commodity, "a commodity", MAX_CELL_KEY)
        check_monday(self.week)
        text(self.unit, "a unit", 80)
        for value in (self.stock_finished, self.stock_wip):
            text(value, "a quantity", MAX_DECIMAL)
        fixed_bytes(self.nonce, NONCE_BYTES, "a nonce")


@dataclass(frozen=True)
class Logged:
    """An envelope of the log, its leaf, and its inclusion proof against a checkpoint."""

    index: int
    envelope: Envelope
    inclusion: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if len(self.inclusion) > MAX_PROOF or any(len(h) != HASH_BYTES for h in self.inclusion):
            raise MessageError(f"an inclusion proof is at most {MAX_PROOF} hashes of 32 bytes")


@dataclass(frozen=True)
class PledgeOpening:
    """A logged pledge with what its commitment opens to."""

    pledge: Logged
    lender: str
    amount: str
    nonce: bytes

    def __post_init__(self) -> None:
        text(self.lender, "a lender")
        text(self.amount, "an amount", MAX_DECIMAL)
        fixed_bytes(self.nonce, NONCE_BYTES, "a nonce")


@dataclass(frozen=True)
class Attestation:
    """What a firm hands its lender: signed by the member, never logged."""

    lender: str
    issued_at: int
    registry: Envelope
    holdings: Holdings
    figure: Logged
    pledges: tuple[PledgeOpening, ...]
    market: tuple[Logged, ...]
    checkpoint: bytes
    days_of_supply: str = ""

    def __post_init__(self) -> None:
        text(self.lender, "a lender")
        if not 1 <= len(self.pledges) <= MAX_PLEDGES or len(self.market) > MAX_MARKET:
            raise MessageError(
                f"an attestation opens 1 to {MAX_PLEDGES} pledges and shows at most "
                f"{MAX_MARKET} releases"
            )
        if not self.checkpoint or len(self.checkpoint) > 1 << 20:
            raise MessageError("an attestation carries the checkpoint its proofs are against")
        text(self.days_of_supply, "days of supply", MAX_DECIMAL)


# ---- wire form ----


def encode(message: FigureCommitment | Pledge | Attestation) -> bytes:
    """The wire bytes of an attestation message."""
    match message:
        case FigureCommitment():
            return pb.FigureCommitment(**vars(message)).SerializeToString()
        case Pledge():
            return pb.Pledge(**vars(message)).SerializeToString()
        case Attestation():
            return _attestation_proto(message).SerializeToString()


def _logged_proto(logged: Logged) -> pb.LoggedEnvelope:
    return pb.LoggedEnvelope(
        index=logged.index, envelope=logged.envelope.to_proto(), inclusion=logged.inclusion
    )


def _attestation_proto(a: Attestation) -> pb.Attestation:
    pledges = [
        pb.PledgeOpening(pledge=_logged_proto(p.pledge), lender=p.lender, amount=p.amount,
                         nonce=p.nonce)
        for p in a.pledges
    ]  # fmt: skip
    return pb.Attestation(
        lender=a.lender, issued_at=a.issued_at, registry=a.registry.to_proto(),
        holdings=pb.Holdings(**vars(a.holdings)), figure=_logged_proto(a.figure),
        pledges=pledges, market=[_logged_proto(m) for m in a.market],
        checkpoint=a.checkpoint, days_of_supply=a.days_of_supply,
    )  # fmt: skip


def decode_figure(body: bytes) -> FigureCommitment:
    m = parse(pb.FigureCommitment(), body, "figure commitment")
    return from_peer(lambda: FigureCommitment(m.commodity, m.week, m.commitment))


def decode_pledge(body: bytes) -> Pledge:
    m = parse(pb.Pledge(), body, "pledge")
    return from_peer(
        lambda: Pledge(m.commodity, m.week, m.figure, m.sequence, m.previous, m.commitment)
    )


def _logged(m: pb.LoggedEnvelope) -> Logged:
    return Logged(m.index, Envelope.from_proto(m.envelope), tuple(m.inclusion))


def decode_attestation(body: bytes) -> Attestation:
    m = parse(pb.Attestation(), body, "attestation")
    if len(m.pledges) > MAX_PLEDGES or len(m.market) > MAX_MARKET:
        raise RemoteProtocolError(f"an attestation opens at most {MAX_PLEDGES} pledges")

    def build() -> Attestation:
        h = m.holdings
        holdings = Holdings(h.commodity, h.week, h.unit, h.stock_finished, h.stock_wip, h.nonce)
        pledges = tuple(
            PledgeOpening(_logged(p.pledge), p.lender, p.amount, p.nonce) for p in m.pledges
        )
        return Attestation(
            m.lender, m.issued_at, Envelope.from_proto(m.registry), holdings, _logged(m.figure),
            pledges, tuple(_logged(x) for x in m.market), m.checkpoint, m.days_of_supply,
        )  # fmt: skip

    return from_peer(build)
