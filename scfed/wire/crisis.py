"""Crisis mode as messages: a firm's post, and the listing, proposal, answers and reveal the
coordinator logs, with their wire form. Pure.

A post ("crisis.post") is signed by the member and goes to the coordinator only; the log
holds its listing ("crisis.listing"): the crisis, the post's pseudonym and the post's hash,
nothing that says who posted or what. Proposals, answers and reveals are the coordinator's
("crisis.proposal", "crisis.answer", "crisis.reveal"); an answer carries the signature of the
post's pseudonym key, which only the posting node holds. The rules are ``scfed.crisis``.
"""

from __future__ import annotations

from dataclasses import dataclass

from protos.scfed.v1 import messages_pb2 as pb
from scfed.errors import MessageError
from scfed.wire.codec import from_peer, parse
from scfed.wire.messages import (
    HASH_BYTES,
    KEY_BYTES,
    MAX_CELL_KEY,
    ROUND_ID_BYTES,
    check_monday,
    fixed_bytes,
    text,
)

SIDES = ("need", "offer")
#: Bands of a post, in the commodity's unit a week: (label, lower bound). Never the figure.
BANDS = (("1-499", 1), ("500-1999", 500), ("2000-4999", 2000), ("5000+", 5000))
BAND_LABELS = tuple(label for label, _ in BANDS)
NONCE_BYTES = 32
SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class Post:
    """A firm's need or offer of ``commodity`` in ``week``, in a band."""

    crisis: str
    side: str
    commodity: str
    week: str
    band: str
    pseudonym: bytes
    nonce: bytes

    def __post_init__(self) -> None:
        text(self.crisis, "a crisis")
        if self.side not in SIDES or self.band not in BAND_LABELS:
            raise MessageError(
                f"a post is a need or an offer in a band of {', '.join(BAND_LABELS)}"
            )
        text(self.commodity, "a commodity", MAX_CELL_KEY)
        check_monday(self.week)
        fixed_bytes(self.pseudonym, KEY_BYTES, "a pseudonym")
        fixed_bytes(self.nonce, NONCE_BYTES, "a nonce")

    def describe(self) -> str:
        """What the other side of a proposal is told of this post: no firm, no figure."""
        article = "an" if self.side == "offer" else "a"
        return f"{article} {self.side} of {self.commodity}, week of {self.week}, band {self.band}"


@dataclass(frozen=True)
class Listing:
    crisis: str
    pseudonym: bytes
    post_hash: bytes

    def __post_init__(self) -> None:
        text(self.crisis, "a crisis")
        fixed_bytes(self.pseudonym, KEY_BYTES, "a pseudonym")
        fixed_bytes(self.post_hash, HASH_BYTES, "a post hash")


@dataclass(frozen=True)
class Proposal:
    match_id: bytes
    crisis: str
    need: bytes
    offer: bytes

    def __post_init__(self) -> None:
        fixed_bytes(self.match_id, ROUND_ID_BYTES, "a match id")
        text(self.crisis, "a crisis")
        fixed_bytes(self.need, KEY_BYTES, "a pseudonym")
        fixed_bytes(self.offer, KEY_BYTES, "a pseudonym")
        if self.need == self.offer:
            raise MessageError("a proposal matches two different posts")


@dataclass(frozen=True)
class Answer:
    match_id: bytes
    pseudonym: bytes
    accept: bool
    signature: bytes

    def __post_init__(self) -> None:
        fixed_bytes(self.match_id, ROUND_ID_BYTES, "a match id")
        fixed_bytes(self.pseudonym, KEY_BYTES, "a pseudonym")
        fixed_bytes(self.signature, SIGNATURE_BYTES, "a pseudonym's signature")


@dataclass(frozen=True)
class Reveal:
    match_id: bytes

    def __post_init__(self) -> None:
        fixed_bytes(self.match_id, ROUND_ID_BYTES, "a match id")


CrisisMessage = Post | Listing | Proposal | Answer | Reveal
_PROTO = {
    Post: pb.CrisisPost,
    Listing: pb.CrisisListing,
    Proposal: pb.CrisisProposal,
    Answer: pb.CrisisAnswer,
    Reveal: pb.CrisisReveal,
}


def encode(message: CrisisMessage) -> bytes:
    """The wire bytes of a crisis message."""
    data: bytes = _PROTO[type(message)](**vars(message)).SerializeToString()
    return data


def decode_post(body: bytes) -> Post:
    m = parse(pb.CrisisPost(), body, "crisis post")
    return from_peer(
        lambda: Post(m.crisis, m.side, m.commodity, m.week, m.band, m.pseudonym, m.nonce)
    )


def decode_listing(body: bytes) -> Listing:
    m = parse(pb.CrisisListing(), body, "crisis listing")
    return from_peer(lambda: Listing(m.crisis, m.pseudonym, m.post_hash))


def decode_proposal(body: bytes) -> Proposal:
    m = parse(pb.CrisisProposal(), body, "crisis proposal")
    return from_peer(lambda: Proposal(m.match_id, m.crisis, m.need, m.offer))


def decode_answer(body: bytes) -> Answer:
    m = parse(pb.CrisisAnswer(), body, "crisis answer")
    return from_peer(lambda: Answer(m.match_id, m.pseudonym, m.accept, m.signature))


def decode_reveal(body: bytes) -> Reveal:
    m = parse(pb.CrisisReveal(), body, "crisis reveal")
    return from_peer(lambda: Reveal(m.match_id))
