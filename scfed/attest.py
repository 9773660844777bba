"""Inventory attestations a lender can trust: commitments, pledge chains, and the lender's
check. Pure: no I/O (the time is given as ``now``).

A firm commits once per commodity and week to its holdings (stock of finished goods and work
in progress): the commitment is SHA-256 over the federation, the member, the holdings and a
32-byte random nonce, so it binds the figure and reveals nothing of it. Each pledge of the
figure to a lender commits in the same way to the lender and the amount, and names the pledge
before it on the figure (the figure's commitment, for the first): the coordinator logs a
pledge only at the head of its figure's chain, and the auditor checks that no figure has two
commitments or a forked chain. A lender is shown the figure and every pledge on it, the last
its own; since its own pledge is logged at the head of the chain, the chain it walks back
from there holds every earlier pledge, and each opens to an amount. What the lender checks,
in ``verify_attestation``, with the governance key as its one trust anchor: the registry is
governance's and names the member; the attestation, the figure and every pledge carry the
member's signature; the checkpoint is the coordinator's (whose key the registry names); every
logged message is in that checkpoint's tree; the holdings open the logged commitment and the
pledges their commitments; the chain is whole and ends with the lender's own pledge; the
pledged amounts stay within the holdings; and the attestation is not older than the lender's
stated age.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from scfed import tlog, wire
from scfed.errors import RemoteProtocolError, ScfedError, VerificationError
from scfed.registry import open_registry
from scfed.tlog_verify import verify_inclusion
from scfed.wire import envelope as env
from scfed.wire.attest import Attestation, FigureCommitment, Holdings, Logged, Pledge
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Member, Publication, Registry
from scfed.wire.policy import DOS_BINS
from scfed.witness import LogView

_FIGURE = b"scfed/attest/figure/v1\n"
_PLEDGE = b"scfed/attest/pledge/v1\n"
#: An attestation dated later than this after the lender's clock is refused (clock skew).
FUTURE_SECONDS = 300


class AttestationError(VerificationError):
    """An attestation a lender must refuse; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


#: Why a lender refuses an attestation.
REASONS = ("forged", "unregistered", "stale", "not-logged", "equivocating", "over-pledged",
           "not-yours")  # fmt: skip


def _lines(*parts: str) -> bytes:
    return b"".join(p.encode() + b"\n" for p in parts)


def figure_commitment(origin: str, member: str, holdings: Holdings) -> bytes:
    """The hiding commitment to ``member``'s holdings."""
    h = holdings
    fields = _lines(origin, member, h.commodity, h.week, h.unit, h.stock_finished, h.stock_wip)
    return hashlib.sha256(_FIGURE + fields + h.nonce).digest()


def pledge_commitment(
    origin: str, member: str, figure: bytes, *, lender: str, amount: str, nonce: bytes
) -> bytes:
    """The hiding commitment to one pledge of the figure committed as ``figure``."""
    fields = _lines(origin, member, figure.hex(), lender, amount)
    return hashlib.sha256(_PLEDGE + fields + nonce).digest()


def quantity(text: str, what: str) -> Decimal:
    """A non-negative finite decimal, or RemoteProtocolError."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RemoteProtocolError(f"{what} {text[:40]!r} is not a decimal") from None
    if not value.is_finite() or value < 0:
        raise RemoteProtocolError(f"{what} {text[:40]!r} is not a non-negative decimal")
    return value


def pledgeable(holdings: Holdings) -> Decimal:
    """What the holdings can secure: finished goods and work in progress."""
    finished = quantity(holdings.stock_finished, "stock of finished goods")
    return finished + quantity(holdings.stock_wip, "work in progress")


def check_pledge(pledge: Pledge, figure_index: int, sequence: int, previous: int) -> None:
    """VerificationError unless ``pledge`` is the ``sequence``-th on the figure at leaf
    ``figure_index``, following leaf ``previous``: the rule the coordinator logs by and the
    auditor and lender check."""
    if pledge.figure != figure_index:
        raise VerificationError(
            f"a pledge on the figure at leaf {pledge.figure}, not {figure_index}"
        )
    if pledge.sequence != sequence or pledge.previous != previous:
        raise VerificationError(
            f"pledge {pledge.sequence} follows leaf {pledge.previous}; the chain's next is "
            f"pledge {sequence} after leaf {previous}"
        )


# ---- the lender's check ----


@dataclass(frozen=True)
class Context:
    """A published figure for the attested commodity and week."""

    entry: str
    component: str
    text: str
    #: The estimate (a published cell's), None for a derived figure or a suppressed cell.
    value: float | None = None


@dataclass(frozen=True)
class Verified:
    """What a lender learns from an attestation that checks out."""

    member: str
    lender: str
    holdings: Holdings
    pledgeable: Decimal
    #: (lender, amount) of every pledge before the lender's own, in order.
    earlier: tuple[tuple[str, Decimal], ...]
    amount: Decimal
    checkpoint_size: int
    issued_at: int
    days_of_supply: str
    market: tuple[Context, ...]

    @property
    def pledged(self) -> Decimal:
        return sum((a for _, a in self.earlier), self.amount)

    def standing(self) -> str:
        """Where the firm's days of supply stand against the published distribution of
        days of supply ("" when either is missing)."""
        bins = [c for c in self.market if c.component.startswith("dos:") and c.value is not None]
        if not self.days_of_supply or not bins:
            return ""
        days = Decimal(self.days_of_supply)
        mine = [label for label, low in DOS_BINS if days >= low][-1]
        total = sum(max(c.value or 0.0, 0.0) for c in bins)
        if total <= 0:
            return ""
        labels = [label for label, _ in DOS_BINS]
        below = sum(
            max(c.value or 0.0, 0.0) for c in bins
            if labels.index(c.component.removeprefix("dos:")) < labels.index(mine)
        )  # fmt: skip
        return (
            f"{days} days of supply: in the {mine} bin; about {below / total:.0%} of the firms "
            f"published hold less"
        )


def verify_attestation(
    signed: Envelope, *, origin: str, governance_key: bytes, lender: str, now: int,
    max_age: int,
) -> Verified:  # fmt: skip
    """The attestation's facts once every check passes; AttestationError with its reason
    for the first that fails. ``max_age`` is the oldest, in seconds, the lender accepts."""
    try:
        attestation = _decode(signed)
        registry = _registry(attestation, origin, governance_key)
    except RemoteProtocolError as exc:
        raise AttestationError("forged", str(exc)) from None
    member = registry.member(signed.signer)
    if member is None:
        raise AttestationError(
            "unregistered", f"{signed.signer} is not in registry version {registry.version}"
        )
    _signed_by(signed, member, origin, wire.ATTESTATION)
    if attestation.lender != lender:
        raise AttestationError("not-yours", f"it was issued to {attestation.lender}, not {lender}")
    _fresh(attestation.issued_at, now, max_age)
    size, root = _checkpoint(attestation.checkpoint, origin, registry)
    for logged in _logged(attestation):
        _included(logged, size, root)
    figure = _figure(attestation, member, origin)
    earlier, amount = _pledges(attestation, member, origin, figure)
    total = pledgeable(attestation.holdings)
    pledged = sum((a for _, a in earlier), amount)
    if pledged > total:
        raise AttestationError(
            "over-pledged",
            f"{pledged} is pledged of holdings of {total} {attestation.holdings.unit}",
        )
    return Verified(
        member.member_id, lender, attestation.holdings, total, earlier, amount, size,
        attestation.issued_at, attestation.days_of_supply,
        _market(attestation, registry, origin),
    )  # fmt: skip


def _decode(signed: Envelope) -> Attestation:
    if signed.type != wire.ATTESTATION:
        raise RemoteProtocolError(f"a {signed.type} message, not an attestation")
    found = wire.MESSAGE_TYPES[wire.ATTESTATION].decode(signed.body)
    if not isinstance(found, Attestation):
        raise RemoteProtocolError("not an attestation")
    return found


def _registry(attestation: Attestation, origin: str, governance_key: bytes) -> Registry:
    try:
        return open_registry(attestation.registry, origin, governance_key)
    except VerificationError as exc:
        raise AttestationError("unregistered", f"the registry it carries: {exc}") from None


def _signed_by(signed: Envelope, member: Member, origin: str, kind: str) -> None:
    if signed.signer != member.member_id:
        raise AttestationError("forged", f"a {kind} of {signed.signer}, not {member.member_id}")
    try:
        env.verify(signed, origin, kind, member.identity_key)
    except VerificationError as exc:
        raise AttestationError("forged", str(exc)) from None


def _fresh(issued_at: int, now: int, max_age: int) -> None:
    if issued_at > now + FUTURE_SECONDS:
        raise AttestationError("stale", "it is dated in the future")
    if now - issued_at > max_age:
        days = (now - issued_at) / 86_400
        raise AttestationError(
            "stale", f"it was issued {days:.1f} days ago; you accept {max_age / 86_400:g}"
        )


def _checkpoint(signed: bytes, origin: str, registry: Registry) -> tuple[int, bytes]:
    try:
        checkpoint = LogView(origin, registry.coordinator_key).opened(signed).checkpoint
    except ScfedError as exc:
        raise AttestationError("forged", f"the log checkpoint: {exc}") from None
    return checkpoint.size, checkpoint.root


def _logged(attestation: Attestation) -> list[Logged]:
    return [attestation.figure, *(p.pledge for p in attestation.pledges), *attestation.market]


def _included(logged: Logged, size: int, root: bytes) -> None:
    leaf = tlog.leaf_hash(logged.envelope.to_bytes())
    try:
        verify_inclusion(leaf, logged.index, size, logged.inclusion, root)
    except VerificationError as exc:
        raise AttestationError(
            "not-logged", f"the {logged.envelope.type} at leaf {logged.index}: {exc}"
        ) from None


def _decoded(logged: Logged, kind: str) -> object:
    try:
        return wire.MESSAGE_TYPES[kind].decode(logged.envelope.body)
    except RemoteProtocolError as exc:
        raise AttestationError("forged", f"leaf {logged.index}: {exc}") from None


def _figure(attestation: Attestation, member: Member, origin: str) -> bytes:
    logged, holdings = attestation.figure, attestation.holdings
    _signed_by(logged.envelope, member, origin, wire.FIGURE)
    figure = _decoded(logged, wire.FIGURE)
    assert isinstance(figure, FigureCommitment)  # the table's decoder for the type
    if (figure.commodity, figure.week) != (holdings.commodity, holdings.week):
        raise AttestationError(
            "equivocating", f"the logged figure is of {figure.commodity} in the week of "
            f"{figure.week}, not of the holdings shown",
        )  # fmt: skip
    if figure_commitment(origin, member.member_id, holdings) != figure.commitment:
        raise AttestationError(
            "equivocating",
            f"the holdings shown do not open the commitment logged at leaf {logged.index}",
        )
    return figure.commitment


def _pledges(
    attestation: Attestation, member: Member, origin: str, figure: bytes
) -> tuple[tuple[tuple[str, Decimal], ...], Decimal]:
    """Every pledge opened, in chain order from the figure; (earlier pledges, own amount)."""
    openings = attestation.pledges
    previous, figure_index = attestation.figure.index, attestation.figure.index
    amounts: list[tuple[str, Decimal]] = []
    for sequence, opening in enumerate(openings, 1):
        logged = opening.pledge
        _signed_by(logged.envelope, member, origin, wire.PLEDGE)
        pledge = _decoded(logged, wire.PLEDGE)
        assert isinstance(pledge, Pledge)  # the table's decoder for the type
        try:
            check_pledge(pledge, figure_index, sequence, previous)
        except VerificationError as exc:
            raise AttestationError("equivocating", f"the pledges shown skip one: {exc}") from None
        opened = pledge_commitment(
            origin, member.member_id, figure, lender=opening.lender, amount=opening.amount,
            nonce=opening.nonce,
        )  # fmt: skip
        if opened != pledge.commitment:
            raise AttestationError(
                "equivocating", f"pledge {sequence} does not open to the lender and amount shown"
            )
        try:
            amounts.append((opening.lender, quantity(opening.amount, "a pledged amount")))
        except RemoteProtocolError as exc:
            raise AttestationError("forged", str(exc)) from None
        previous = logged.index
    if openings[-1].lender != attestation.lender:
        raise AttestationError(
            "not-yours", f"the last pledge on the figure is to {openings[-1].lender}"
        )
    return tuple(amounts[:-1]), amounts[-1][1]


def _market(attestation: Attestation, registry: Registry, origin: str) -> tuple[Context, ...]:
    """The published figures of the attested commodity and week, from coordinator-signed
    releases in the log."""
    holdings, out = attestation.holdings, []
    for logged in attestation.market:
        release = _release(logged, registry, origin)
        for cell in release.cells:
            if (cell.commodity, cell.week) != (holdings.commodity, holdings.week):
                continue
            shown = (
                f"{cell.estimate[0]:,.0f} [{cell.estimate[1]:,.0f}, {cell.estimate[2]:,.0f}]"
                if cell.estimate
                else f"suppressed ({cell.suppressed})"
            )
            out.append(
                Context(release.entry, cell.component, f"{shown}, {cell.contributors} firms")
            )
        for figure in release.derived:
            if (figure.commodity, figure.week) == (holdings.commodity, holdings.week):
                out.append(Context(release.entry, figure.label, figure.value))
    return tuple(out)


def _release(logged: Logged, registry: Registry, origin: str) -> Publication:
    try:
        env.verify(logged.envelope, origin, wire.RELEASE, registry.coordinator_key)
    except VerificationError as exc:
        raise AttestationError("forged", f"a release shown: {exc}") from None
    found = _decoded(logged, wire.RELEASE)
    assert isinstance(found, Publication)  # the table's decoder for the type
    return found


def market_of(releases: Sequence[tuple[int, Envelope, Publication]], commodity: str,
              week: str) -> list[tuple[int, Envelope]]:  # fmt: skip
    """The newest release of each entry that holds a cell of ``commodity`` in ``week``."""
    newest: dict[str, tuple[int, Envelope]] = {}
    for index, envelope, publication in releases:
        holds = any((c.commodity, c.week) == (commodity, week) for c in publication.cells)
        if holds and (publication.entry not in newest or newest[publication.entry][0] < index):
            newest[publication.entry] = (index, envelope)
    return sorted(newest.values(), key=lambda x: x[0])
