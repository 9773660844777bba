"""Crisis mode's rules: bands, matching, answers and what a reveal needs. Pure: no I/O.

In a crisis governance declared (``scfed.wire.policy.Crisis``), a firm posts a need or an
offer of a commodity for a week, in a band (``BANDS``), under a pseudonym: a fresh Ed25519 key
its node keeps. The coordinator, the federation's broker, proposes matches (``propose``): a
need and an offer of the same crisis, commodity and week whose bands agree (the offer's band
at least the need's), the nearest band first, the earliest posts first. Each side is told
only the other post's description; the log holds listings, proposals, answers and reveals,
none naming a firm. A firm accepts or declines with its pseudonym's signature over
``answer_message``, which the coordinator cannot make; the coordinator reveals the two posts
(their member-signed envelopes, to the two firms only) once both accepted, and the auditor
checks that every reveal follows the two acceptances (``check_reveal``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from scfed.errors import RefusedError, VerificationError
from scfed.wire.crisis import BAND_LABELS, BANDS, Answer, Post, Proposal
from scfed.wire.policy import Crisis, Policy

_ANSWER = b"scfed/crisis/answer/v1\n"


def band_of(quantity: Decimal) -> str:
    """The band a quantity (at least 1) falls in."""
    if quantity < 1:
        raise RefusedError("a need or an offer is at least 1 unit")
    return [label for label, low in BANDS if quantity >= low][-1]


def check_post(post: Post, policy: Policy | None, today: date) -> Crisis:
    """The crisis a post belongs to, or RefusedError: it must be declared, on today, and of
    one of its commodities."""
    crisis = None if policy is None else policy.crisis(post.crisis)
    if crisis is None:
        raise RefusedError(f"no crisis {post.crisis!r} is declared in the signed policy")
    if not crisis.on(today):
        raise RefusedError(
            f"crisis {crisis.name} runs from {crisis.start} to {crisis.end}, not on {today}"
        )
    if post.commodity not in crisis.commodities:
        raise RefusedError(f"crisis {crisis.name} is not declared for {post.commodity}")
    return crisis


def post_hash(envelope_bytes: bytes) -> bytes:
    """What a listing holds of a post: the SHA-256 of its signed envelope (whose nonce makes
    the hash reveal nothing)."""
    return hashlib.sha256(envelope_bytes).digest()


def answer_message(origin: str, proposal: Proposal, accept: bool) -> bytes:
    """What a pseudonym signs to answer a proposal."""
    fields = (origin, proposal.match_id.hex(), proposal.crisis, proposal.need.hex(),
              proposal.offer.hex(), "accept" if accept else "decline")  # fmt: skip
    return _ANSWER + b"".join(f.encode() + b"\n" for f in fields)


def check_answer(origin: str, proposal: Proposal, answer: Answer) -> None:
    """VerificationError unless ``answer`` is one side's, signed by its pseudonym."""
    if answer.match_id != proposal.match_id or answer.pseudonym not in (
        proposal.need, proposal.offer,
    ):  # fmt: skip
        raise VerificationError("an answer from neither side of the proposal")
    try:
        key = Ed25519PublicKey.from_public_bytes(answer.pseudonym)
        key.verify(answer.signature, answer_message(origin, proposal, answer.accept))
    except (InvalidSignature, ValueError):
        raise VerificationError("an answer not signed by the post's pseudonym") from None


def check_reveal(origin: str, proposal: Proposal, answers: Iterable[Answer]) -> None:
    """VerificationError unless both sides accepted ``proposal`` with valid signatures."""
    accepted = set()
    for answer in answers:
        check_answer(origin, proposal, answer)
        if answer.accept:
            accepted.add(answer.pseudonym)
    missing = {proposal.need, proposal.offer} - accepted
    if missing:
        raise VerificationError(
            f"the reveal does not follow both sides' acceptances: {len(missing)} of the two "
            "sides did not accept"
        )


@dataclass(frozen=True)
class Open:
    """A post waiting for a match: its pseudonym, and what matching reads of it."""

    pseudonym: bytes
    crisis: str
    side: str
    commodity: str
    week: str
    band: str


def propose(
    posts: Sequence[Open], declined: Collection[tuple[bytes, bytes]] = ()
) -> list[tuple[Open, Open]]:
    """(need, offer) pairs from open posts, oldest first: for each need, the open offer of
    the same crisis, commodity and week whose band is the need's or the nearest above it,
    never a (need, offer) pair of pseudonyms in ``declined``."""
    offers = [p for p in posts if p.side == "offer"]
    pairs = []
    for need in (p for p in posts if p.side == "need"):
        rank = BAND_LABELS.index(need.band)
        fitting = [
            o for o in offers
            if (o.crisis, o.commodity, o.week) == (need.crisis, need.commodity, need.week)
            and BAND_LABELS.index(o.band) >= rank
            and (need.pseudonym, o.pseudonym) not in declined
        ]  # fmt: skip
        if fitting:
            offer = min(fitting, key=lambda o: BAND_LABELS.index(o.band))
            offers.remove(offer)
            pairs.append((need, offer))
    return pairs
