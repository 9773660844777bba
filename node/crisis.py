"""A firm's side of crisis mode: its posts, their pseudonym keys, its inbox and answers. Does
I/O (the node's database, its folder, the coordinator).

``post`` makes a fresh pseudonym key (kept in the node's folder, ``crisis-keys/``, readable
by its owner only: it alone can answer for the post), keeps the exact quantity in the node's
database (it feeds the federation's need and spare-capacity aggregate, ``weekly``; only the
band leaves the node) and sends the member-signed post. The coordinator checks it against the
crisis its signed policy declares, which the node may not hold yet (policies reach nodes when
they connect and with rounds). The receipt's leaf must be a listing of this very post in the
coordinator-signed log.

``inbox`` reads the member's posts from the coordinator and checks what it is told: every
proposal, answer and reveal is a coordinator-signed message in the log; a revealed post is
the other firm's, signed with its registered key, hashed as its listing says, and the reveal
follows both sides' accepting answers, each signed by its pseudonym.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import read_governance_key
from edge.files import read_private_key_file, write_private
from edge.storage import fetch_read_only, open_database, transaction
from node.client import MemberClient
from node.governance import held_registry
from node.store import verified_checkpoint
from protos.scfed.v1 import service_pb2 as spb
from scfed import pki, tlog, wire
from scfed.config import NodeConfig
from scfed.crisis import answer_message, band_of, check_reveal, post_hash
from scfed.errors import RefusedError, StorageError, VerificationError
from scfed.tlog_verify import verify_inclusion
from scfed.wire import crisis
from scfed.wire import envelope as env
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.witness import LogView

SCHEMA = """
CREATE TABLE IF NOT EXISTS crisis_posts (
    pseudonym BLOB PRIMARY KEY,
    crisis TEXT NOT NULL,
    side TEXT NOT NULL,
    commodity TEXT NOT NULL,
    week TEXT NOT NULL,
    band TEXT NOT NULL,
    quantity TEXT NOT NULL,
    envelope BLOB NOT NULL,
    listing INTEGER,
    posted_at REAL NOT NULL
)
"""
#: The components of the need-spare metric, and the side of a post each sums.
COMPONENT_SIDES = {"need": "need", "spare": "offer"}
KEYS = "crisis-keys"


@dataclass(frozen=True)
class Posted:
    post: crisis.Post
    listing: int


def post(
    config: NodeConfig, *, name: str, side: str, commodity: str, week: date, quantity: Decimal,
    address: str | None = None,
) -> Posted:  # fmt: skip
    """Post a need or an offer in the crisis ``name``; its listing's leaf."""
    governance = read_governance_key(config.governance_key)
    pseudonym = Ed25519PrivateKey.generate()
    body = crisis.Post(
        name, side, commodity, week.isoformat(), band_of(quantity),
        pki.ed25519_public_raw(pseudonym.public_key()), secrets.token_bytes(crisis.NONCE_BYTES),
    )  # fmt: skip
    identity = pki.load_ed25519_private_pem(read_private_key_file(config.identity_key))
    signed = env.seal(identity, wire.POST, config.member_id, config.origin, crisis.encode(body))
    folder = config.path.parent / KEYS
    folder.mkdir(mode=0o700, exist_ok=True)
    write_private(_key_path(config, body.pseudonym), pki.private_key_pem(pseudonym))
    db = open_database(config.database, SCHEMA)
    try:
        with transaction(db):
            db.execute(
                "INSERT INTO crisis_posts VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (body.pseudonym, name, side, commodity, body.week, body.band, str(quantity),
                 signed.to_bytes(), time.time()),
            )  # fmt: skip
        with MemberClient(config, address) as client:
            receipt = client.submit(signed)
            registry = _registry(config, governance)
            _check_listing(
                client,
                config.origin,
                registry,
                index=receipt.index,
                signed=signed,
                body=body,
                database=config.database,
            )
        with transaction(db):
            db.execute(
                "UPDATE crisis_posts SET listing = ? WHERE pseudonym = ?",
                (receipt.index, body.pseudonym),
            )
    finally:
        db.close()
    return Posted(body, receipt.index)


def _key_path(config: NodeConfig, pseudonym: bytes) -> Path:
    return config.path.parent / KEYS / f"{pseudonym.hex()}.pem"


def _registry(config: NodeConfig, governance: bytes) -> Registry:
    return held_registry(config.database, config.origin, governance)[0]


class _Log:
    """Checks that messages are in the coordinator-signed log, against one checkpoint that
    extends the latest one this node verified."""

    def __init__(
        self, client: MemberClient, origin: str, registry: Registry, latest: bytes | None
    ) -> None:
        self._client = client
        view = LogView(origin, registry.coordinator_key, latest)
        self._checkpoint = view.advance(client.checkpoint(), client.consistency).checkpoint

    def holds(self, index: int, signed: Envelope) -> None:
        proof = self._client.inclusion(index, self._checkpoint.size)
        leaf = tlog.leaf_hash(signed.to_bytes())
        try:
            verify_inclusion(leaf, index, self._checkpoint.size, proof, self._checkpoint.root)
        except VerificationError as exc:
            raise VerificationError(
                f"the {signed.type} at leaf {index} is not logged: {exc}"
            ) from None


def _check_listing(
    client: MemberClient, origin: str, registry: Registry, *, index: int, signed: Envelope,
    body: crisis.Post, database: Path,
) -> None:  # fmt: skip
    """The listing at ``index`` is the coordinator's, of this post, and in the log."""
    listing_envelope = Envelope.from_bytes(client.entry(index))
    listing = _coordinator_message(listing_envelope, origin, registry, wire.LISTING)
    assert isinstance(listing, crisis.Listing)  # the table's decoder
    if listing.pseudonym != body.pseudonym or listing.post_hash != post_hash(signed.to_bytes()):
        raise VerificationError(f"leaf {index} is not the listing of this post")
    _Log(client, origin, registry, verified_checkpoint(database)).holds(index, listing_envelope)


def _coordinator_message(signed: Envelope, origin: str, registry: Registry, kind: str) -> object:
    env.verify(signed, origin, kind, registry.coordinator_key)
    return wire.MESSAGE_TYPES[kind].decode(signed.body)


# ---- the inbox ----


@dataclass(frozen=True)
class Item:
    """One of the member's posts and where it stands, every part of it checked."""

    post: crisis.Post
    quantity: str
    listing: int
    match_id: bytes = b""
    counterpart: str = ""
    #: "waiting", "proposed", "you accepted", "they accepted", "declined", "revealed".
    state: str = "waiting"
    #: Once revealed: the other firm and its post.
    revealed_member: str = ""
    revealed_post: crisis.Post | None = None
    proposal: crisis.Proposal | None = None

    @property
    def match(self) -> str:
        return self.match_id.hex()


def inbox(config: NodeConfig, address: str | None = None) -> list[Item]:
    """The member's posts with their proposals and reveals, each checked."""
    governance = read_governance_key(config.governance_key)
    registry = _registry(config, governance)
    mine = _posts(config.database)
    with MemberClient(config, address) as client:
        checks = _Checks(config.origin, registry, client, config.database)
        return [checks.item(item, mine) for item in client.inbox()]


def _posts(database: Path) -> dict[bytes, tuple[bytes, str]]:
    """This node's posts: pseudonym -> (signed post bytes, exact quantity)."""
    rows = fetch_read_only(database, "SELECT pseudonym, envelope, quantity FROM crisis_posts")
    return {_bytes(p): (_bytes(e), str(q)) for p, e, q in rows}


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StorageError("the node database holds a value of the wrong type")
    return value


@dataclass
class _Checks:
    """What the coordinator says of the member's posts, checked against the log."""

    origin: str
    registry: Registry
    client: MemberClient
    database: Path

    def item(self, item: spb.CrisisItem, mine: Mapping[bytes, tuple[bytes, str]]) -> Item:
        return _item(self, item, mine)

    def message(self, signed: Envelope, kind: str, index: int) -> object:
        """A coordinator-signed message of ``kind``, logged at ``index``."""
        found = _coordinator_message(signed, self.origin, self.registry, kind)
        self.log.holds(index, signed)
        return found

    @functools.cached_property
    def log(self) -> _Log:
        return _Log(self.client, self.origin, self.registry, verified_checkpoint(self.database))


def _item(checks: _Checks, item: spb.CrisisItem, mine: Mapping[bytes, tuple[bytes, str]]) -> Item:
    signed = Envelope.from_proto(item.post)
    body = crisis.decode_post(signed.body)
    held = mine.get(body.pseudonym)
    if held is None or held[0] != signed.to_bytes():
        raise VerificationError("the coordinator listed a post this node did not make")
    if not item.HasField("proposal"):
        return Item(body, held[1], item.listing)
    proposal = checks.message(
        Envelope.from_proto(item.proposal), wire.PROPOSAL, item.proposal_index
    )
    assert isinstance(proposal, crisis.Proposal)  # the table's decoder
    if body.pseudonym not in (proposal.need, proposal.offer):
        raise VerificationError("a proposal on another post")
    answers = []
    for index, answer_proto in zip(item.answer_indices, item.answers, strict=True):
        answer = checks.message(Envelope.from_proto(answer_proto), wire.ANSWER, index)
        assert isinstance(answer, crisis.Answer)  # the table's decoder
        answers.append(answer)
    found = Item(body, held[1], item.listing, proposal.match_id, item.counterpart,
                 _state(body, answers), proposal=proposal)  # fmt: skip
    if not item.HasField("reveal"):
        return found
    return _revealed(checks, item, found, answers)


def _state(mine: crisis.Post, answers: Sequence[crisis.Answer]) -> str:
    if any(not a.accept for a in answers):
        return "declined"
    ours = any(a.pseudonym == mine.pseudonym for a in answers)
    theirs = any(a.pseudonym != mine.pseudonym for a in answers)
    return {(True, False): "you accepted", (False, True): "they accepted"}.get(
        (ours, theirs), "proposed"
    )


def _revealed(
    checks: _Checks, item: spb.CrisisItem, found: Item, answers: Sequence[crisis.Answer]
) -> Item:
    """The other side of a revealed match, once everything about the reveal checks out."""
    assert found.proposal is not None  # an item with a reveal has its proposal
    proposal = found.proposal
    reveal = checks.message(Envelope.from_proto(item.reveal), wire.REVEAL, item.reveal_index)
    assert isinstance(reveal, crisis.Reveal)  # the table's decoder
    if reveal.match_id != proposal.match_id:
        raise VerificationError("a reveal of another match")
    check_reveal(checks.origin, proposal, answers)
    other = Envelope.from_proto(item.revealed)
    member = checks.registry.member(other.signer)
    if member is None:
        raise VerificationError(f"the revealed post's signer {other.signer} is not registered")
    env.verify(other, checks.origin, wire.POST, member.identity_key)
    theirs = crisis.decode_post(other.body)
    wanted = proposal.offer if found.post.pseudonym == proposal.need else proposal.need
    index = item.counterpart_listing
    listing = checks.message(Envelope.from_bytes(checks.client.entry(index)), wire.LISTING, index)
    assert isinstance(listing, crisis.Listing)  # the table's decoder
    if theirs.pseudonym != wanted or listing.pseudonym != wanted or (
        listing.post_hash != post_hash(other.to_bytes())
    ):  # fmt: skip
        raise VerificationError("the revealed post is not the one the match was proposed with")
    mine = found.post
    same = (theirs.crisis, theirs.commodity, theirs.week) == (
        mine.crisis,
        mine.commodity,
        mine.week,
    )
    if not same or theirs.side == mine.side or theirs.describe() != found.counterpart:
        raise VerificationError("the revealed post is not the one described in the proposal")
    return Item(
        found.post, found.quantity, found.listing, found.match_id, found.counterpart,
        "revealed", other.signer, theirs, proposal,
    )  # fmt: skip


def answer(config: NodeConfig, match: str, *, accept: bool, address: str | None = None) -> Item:
    """Accept or decline the proposal ``match`` (its hex id) on one of the member's posts."""
    items = [i for i in inbox(config, address) if i.match == match]
    if not items or items[0].proposal is None:
        raise RefusedError(
            f"no proposal {match} is on one of this node's posts (scfed crisis inbox)"
        )
    item, proposal = items[0], items[0].proposal
    if item.state not in ("proposed", "they accepted"):
        raise RefusedError(f"match {match} is {item.state} already")
    key = pki.load_ed25519_private_pem(
        read_private_key_file(_key_path(config, item.post.pseudonym))
    )
    signature = key.sign(answer_message(config.origin, proposal, accept))
    with MemberClient(config, address) as client:
        client.answer(proposal.match_id, accept, signature)
    return next(i for i in inbox(config, address) if i.match == match)


# ---- the need and spare capacity a round of the need-spare metric reads ----


def weekly(
    database: Path, component: str, weeks: Sequence[date]
) -> dict[tuple[str, date], Decimal]:
    """The exact need (``component`` "need") or spare capacity ("spare") this firm posted,
    per (commodity, week), over its listed posts."""
    side = COMPONENT_SIDES[component]
    wanted = {w.isoformat() for w in weeks}
    rows = fetch_read_only(  # read-only: no write transaction in every round
        database, "SELECT commodity, week, quantity FROM crisis_posts "
        "WHERE side = ? AND listing IS NOT NULL", (side,),
    )  # fmt: skip
    out: dict[tuple[str, date], Decimal] = {}
    for commodity, week, quantity in rows:
        if str(week) in wanted:
            key = (str(commodity), date.fromisoformat(str(week)))
            out[key] = out.get(key, Decimal(0)) + Decimal(str(quantity))
    return out
