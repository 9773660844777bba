"""Messages outside rounds: figure commitments and pledges, and crisis mode. Does I/O.

Attestations: a member's ``attest.figure`` is logged once per member, commodity and week, and
an ``attest.pledge`` only at the head of its figure's chain (``scfed.attest.check_pledge``),
so that a lender shown the chain up to its own pledge is shown every pledge before it.

Crisis mode: a member's signed post is kept in the store, never logged; its listing (the
crisis, the pseudonym, the post's hash) is. Each new post is matched at once
(``scfed.crisis.propose``) and a proposal logged; each side's node is told the other post's
description, nothing more. Answers carry the pseudonym's signature and are logged; once both
sides accepted, the reveal is logged, and each side's inbox then holds the other's signed
post. Everything here runs on the server's event loop, so no two calls interleave between a
check and the state it changes; the state is the log's (read back at start-up) and, for the
posts themselves, the store's.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.journal import Journal
from coordinator.metrics import CoordinatorMetrics
from coordinator.store import Store
from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.attest import check_pledge
from scfed.crisis import Open, check_answer, check_post, post_hash, propose
from scfed.errors import (
    MessageError,
    PermissionDeniedError,
    RefusedError,
    RemoteProtocolError,
    VerificationError,
)
from scfed.taxonomy import parse_commodity
from scfed.wire import attest, crisis
from scfed.wire import envelope as env
from scfed.wire.envelope import Envelope
from scfed.wire.messages import ROUND_ID_BYTES, Registry
from scfed.wire.policy import Policy
from scfed.wire.tasks import Receipt

log = logging.getLogger("scfed.coordinator")
_T = TypeVar("_T")
#: A figure: (member, commodity, week).
_Key = tuple[str, str, str]

#: Leaves larger than this are round vectors, never a message of this module: not read back.
INLINE_MAX = 1 << 16
#: Open posts one member may hold at once, and figures it may commit: they bound our state.
MAX_OPEN_POSTS = 200
MAX_FIGURES = 10_000


@dataclass
class _Chain:
    """A committed figure and its pledges: their leaves in chain order, the figure's first
    (-1 for the last while it is being logged, so that nothing can follow it meanwhile)."""

    leaves: list[int]

    @property
    def figure(self) -> int:
        return self.leaves[0]

    @property
    def head(self) -> int:
        return self.leaves[-1]

    @property
    def pledges(self) -> int:
        return len(self.leaves) - 1


@dataclass
class _Match:
    index: int
    proposal: crisis.Proposal
    envelope: Envelope
    answers: list[tuple[int, crisis.Answer, Envelope]] = field(default_factory=list)
    reveal: tuple[int, Envelope] | None = None

    def answer_of(self, pseudonym: bytes) -> crisis.Answer | None:
        return next((a for _, a, _ in self.answers if a.pseudonym == pseudonym), None)

    @property
    def declined(self) -> bool:
        return any(not a.accept for _, a, _ in self.answers)


@dataclass(frozen=True)
class _Posted:
    member: str
    envelope: Envelope
    post: crisis.Post


class Market:
    """Attested figures, their pledges, and the crisis posts and matches."""

    def __init__(
        self, *, origin: str, key: Ed25519PrivateKey, store: Store, journal: Journal,
        registry: Callable[[], tuple[Registry, Envelope]],
        policy: Callable[[], tuple[Policy, Envelope] | None],
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        metrics: CoordinatorMetrics | None = None,
    ) -> None:  # fmt: skip
        self._origin, self._key, self._store, self._journal = origin, key, store, journal
        self._metrics = metrics or CoordinatorMetrics()
        self._registry, self._policy, self._today = registry, policy, today
        self._chains: dict[_Key, _Chain] = {}
        self._figures: dict[str, int] = {}  # figures committed, by member
        self._posts: dict[bytes, _Posted] = {}  # by pseudonym
        self._listings: dict[bytes, int] = {}  # pseudonym -> leaf of its listing
        self._matches: dict[bytes, _Match] = {}  # by match id
        self._declined: set[tuple[bytes, bytes]] = set()  # (need, offer) never proposed again
        self._engaged: set[bytes] = set()  # pseudonyms in a live (not declined) proposal

    # ---- start-up ----

    @classmethod
    def recovered(
        cls, *, origin: str, key: Ed25519PrivateKey, store: Store, journal: Journal,
        registry: Callable[[], tuple[Registry, Envelope]],
        policy: Callable[[], tuple[Policy, Envelope] | None],
        metrics: CoordinatorMetrics | None = None,
    ) -> Market:  # fmt: skip
        """The market as the log and the store left it (``recover``)."""
        market = cls(
            origin=origin, key=key, store=store, journal=journal, registry=registry,
            policy=policy, metrics=metrics,
        )  # fmt: skip
        market.recover()
        return market

    def recover(self) -> None:
        """Read this module's messages back from the log, list any kept post the log does
        not hold yet (a stop between the two), and match what is open."""
        for index, envelope in self._logged():
            self._replay(index, envelope)
        for member, signed in self._store.posts():
            post = _decode(signed, wire.POST, crisis.Post)
            self._posts[post.pseudonym] = _Posted(member, signed, post)
            if post.pseudonym not in self._listings:
                self._list(post, signed)
        self._match()
        if self._chains or self._posts:
            log.info(
                "%d attested figures and %d crisis posts (%d matches) read back",
                len(self._chains), len(self._posts), len(self._matches),
            )  # fmt: skip

    def _logged(self) -> Iterator[tuple[int, Envelope]]:
        """This module's messages in the log, in order (large leaves are never read)."""
        kinds = {*wire.ATTEST_TYPES, *wire.CRISIS_TYPES}
        plog, start = self._journal.log, 0
        while start < plog.size:
            listed = plog.listing(start, plog.size, inline_max=INLINE_MAX, max_bytes=32 << 20)
            for item in listed:
                if item.data is not None:
                    envelope = Envelope.from_bytes(item.data)
                    if envelope.type in kinds:
                        yield item.index, envelope
            start = listed[-1].index + 1

    def _replay(self, index: int, envelope: Envelope) -> None:
        kind = envelope.type
        if kind == wire.FIGURE:
            figure = _decode(envelope, kind, attest.FigureCommitment)
            key = (envelope.signer, figure.commodity, figure.week)
            self._chains[key] = _Chain([index])
            self._figures[envelope.signer] = self._figures.get(envelope.signer, 0) + 1
        elif kind == wire.PLEDGE:
            pledge = _decode(envelope, kind, attest.Pledge)
            self._chains[(envelope.signer, pledge.commodity, pledge.week)].leaves.append(index)
        elif kind == wire.LISTING:
            self._listings[_decode(envelope, kind, crisis.Listing).pseudonym] = index
        elif kind == wire.PROPOSAL:
            proposal = _decode(envelope, kind, crisis.Proposal)
            self._matches[proposal.match_id] = _Match(index, proposal, envelope)
            self._engaged |= {proposal.need, proposal.offer}
        elif kind == wire.ANSWER:
            answer = _decode(envelope, kind, crisis.Answer)
            match = self._matches[answer.match_id]
            match.answers.append((index, answer, envelope))
            if not answer.accept:
                self._release(match.proposal)
        elif kind == wire.REVEAL:
            self._matches[_decode(envelope, kind, crisis.Reveal).match_id].reveal = (
                index, envelope,
            )  # fmt: skip

    # ---- a member's messages ----

    async def submit(self, member_id: str, envelope: Envelope) -> Receipt:
        """Log a member's figure commitment or pledge, or keep and list its crisis post; the
        receipt of what was logged (the listing, for a post)."""
        registry = self._registry()[0]
        member = registry.member(member_id)
        if member is None or envelope.signer != member_id:
            raise PermissionDeniedError(f"a {envelope.type} signed as {envelope.signer[:64]}")
        env.verify(envelope, self._origin, envelope.type, member.identity_key)
        if envelope.type == wire.POST:
            return self._post(member_id, envelope)
        if envelope.type not in wire.ATTEST_TYPES:
            raise RemoteProtocolError(f"a member does not submit {envelope.type} messages")
        message = wire.MESSAGE_TYPES[envelope.type].decode(envelope.body)
        if not isinstance(message, (attest.FigureCommitment, attest.Pledge)):
            raise RemoteProtocolError(f"not a {envelope.type} message")
        key = (member_id, message.commodity, message.week)
        again = self._logged_before(key, message, envelope)
        if again is not None:  # the member did not get our answer: the same receipt again
            return self._journal.receipt(again)
        if isinstance(message, attest.FigureCommitment):
            self._commit(member_id, key, message)
        else:
            self._pledge(member_id, key, message)
        logged = self._journal.acknowledge(envelope)
        try:
            receipt = await asyncio.shield(logged)
        except Exception:
            self._forget(member_id, key)
            raise
        self._chains[key].leaves[-1] = receipt.index  # the chain's new head
        self._metrics.logged_outside_rounds(envelope.type)
        return receipt

    def _logged_before(
        self, key: _Key, message: attest.FigureCommitment | attest.Pledge, envelope: Envelope
    ) -> int | None:
        """The leaf of this very figure or pledge if it is logged already."""
        chain = self._chains.get(key)
        step = message.sequence if isinstance(message, attest.Pledge) else 0
        if chain is None or step >= len(chain.leaves) or chain.leaves[step] < 0:
            return None
        index = chain.leaves[step]
        return index if self._journal.log.entry(index) == envelope.to_bytes() else None

    def _commit(self, member_id: str, key: _Key, figure: attest.FigureCommitment) -> None:
        _commodity(figure.commodity)
        held = self._chains.get(key)
        if held is not None:
            raise RefusedError(
                f"{member_id} committed its figure of {figure.commodity} for the week of "
                f"{figure.week} at leaf {held.figure}: one commitment per figure"
            )
        if self._figures.get(member_id, 0) >= MAX_FIGURES:
            raise RefusedError(
                f"{member_id} has {MAX_FIGURES} attested figures, the most one holds"
            )
        self._figures[member_id] = self._figures.get(member_id, 0) + 1
        # Held at once (no leaf yet, -1): a second commitment sent meanwhile is refused too.
        self._chains[key] = _Chain([-1])

    def _pledge(self, member_id: str, key: _Key, pledge: attest.Pledge) -> None:
        chain = self._chains.get(key)
        if chain is None or chain.figure < 0:
            raise RefusedError(
                f"{member_id} has no logged figure of {pledge.commodity} for the week of "
                f"{pledge.week} to pledge"
            )
        try:
            check_pledge(pledge, chain.figure, chain.pledges + 1, chain.head)
        except VerificationError as exc:
            raise RefusedError(f"not the head of the figure's pledge chain: {exc}") from None
        chain.leaves.append(-1)  # until logged: no second one

    def _forget(self, member_id: str, key: _Key) -> None:
        """A figure or pledge the log did not take is undone (the member may send it again)."""
        chain = self._chains[key]
        chain.leaves.pop()
        if not chain.leaves:  # it was the figure
            del self._chains[key]
            self._figures[member_id] -= 1

    def _post(self, member_id: str, signed: Envelope) -> Receipt:
        post = _decode(signed, wire.POST, crisis.Post)
        loaded = self._policy()
        check_post(post, None if loaded is None else loaded[0], self._today())
        assert loaded is not None  # check_post refuses a post without a policy
        self._journal.record_once(loaded[1])  # the crisis is declared in the log first
        if post.pseudonym in self._posts:
            raise RefusedError("a post's pseudonym is fresh: this one was posted before")
        on = self._crises_on()
        mine = [p for p in self._posts.values() if p.member == member_id and self._open(p.post, on)]
        if len(mine) >= MAX_OPEN_POSTS:
            raise RefusedError(f"{member_id} holds {MAX_OPEN_POSTS} open posts already")
        self._store.post_kept(post.pseudonym, member_id, signed, time.time())
        self._posts[post.pseudonym] = _Posted(member_id, signed, post)
        index = self._list(post, signed)
        log.info("crisis %s: a %s posted (listing at leaf %d)", post.crisis, post.side, index)
        self._match()
        return self._journal.receipt(index)

    def _list(self, post: crisis.Post, signed: Envelope) -> int:
        listing = crisis.Listing(post.crisis, post.pseudonym, post_hash(signed.to_bytes()))
        index, _ = self._record(wire.LISTING, crisis.encode(listing))
        self._listings[post.pseudonym] = index
        return index

    def _record(self, kind: str, body: bytes) -> tuple[int, Envelope]:
        """Sign and log one of the coordinator's crisis messages; its leaf and envelope."""
        signed = env.seal(self._key, kind, wire.COORDINATOR, self._origin, body)
        index = self._journal.record(signed)
        self._metrics.logged_outside_rounds(kind)
        return index, signed

    # ---- matching ----

    def _crises_on(self) -> frozenset[str]:
        """The crises the signed policy declares for today (read once per use)."""
        loaded = self._policy()
        crises = () if loaded is None else loaded[0].crises
        return frozenset(c.name for c in crises if c.on(self._today()))

    def _open(self, post: crisis.Post, on: frozenset[str]) -> bool:
        """Whether a post waits for a match: listed, in no live proposal, its crisis ``on``."""
        return (
            post.pseudonym in self._listings
            and post.pseudonym not in self._engaged
            and post.crisis in on
        )

    def _match(self) -> None:
        """Propose every match the open posts allow, never a pair that was declined."""
        on = self._crises_on()
        waiting = [
            Open(p.post.pseudonym, p.post.crisis, p.post.side, p.post.commodity, p.post.week,
                 p.post.band)
            for p in self._posts.values() if self._open(p.post, on)
        ]  # fmt: skip
        for need, offer in propose(waiting, self._declined):
            proposal = crisis.Proposal(
                secrets.token_bytes(ROUND_ID_BYTES), need.crisis, need.pseudonym, offer.pseudonym
            )
            index, signed = self._record(wire.PROPOSAL, crisis.encode(proposal))
            self._matches[proposal.match_id] = _Match(index, proposal, signed)
            self._engaged |= {proposal.need, proposal.offer}
            log.info("crisis %s: match %s proposed", need.crisis, proposal.match_id.hex())

    def _release(self, proposal: crisis.Proposal) -> None:
        """A declined proposal frees both posts, never to be proposed to each other again."""
        self._declined.add((proposal.need, proposal.offer))
        self._engaged -= {proposal.need, proposal.offer}

    # ---- answers ----

    def answer(self, member_id: str, request: spb.CrisisAnswerRequest) -> Receipt:
        """Log a side's signed answer; once both accepted, log the reveal."""
        match = self._matches.get(bytes(request.match_id))
        if match is None:
            raise RemoteProtocolError("no such match was proposed")
        proposal = match.proposal
        side = next(
            (p for p in (proposal.need, proposal.offer) if self._posts[p].member == member_id),
            None,
        )
        if side is None:
            raise PermissionDeniedError("this match is not on one of your posts")
        if match.reveal is not None or match.declined or match.answer_of(side) is not None:
            raise RefusedError("this match was answered already")
        try:
            answer = crisis.Answer(proposal.match_id, side, request.accept, request.signature)
            check_answer(self._origin, proposal, answer)
        except MessageError as exc:  # a signature of the wrong length
            raise RemoteProtocolError(f"the answer: {exc}") from None
        index, signed = self._record(wire.ANSWER, crisis.encode(answer))
        match.answers.append((index, answer, signed))
        if not answer.accept:
            self._release(proposal)
            self._match()
        elif all(match.answer_of(p) is not None for p in (proposal.need, proposal.offer)):
            match.reveal = self._record(
                wire.REVEAL, crisis.encode(crisis.Reveal(proposal.match_id))
            )
            log.info("crisis %s: match %s revealed", proposal.crisis, proposal.match_id.hex())
        return self._journal.receipt(index)

    # ---- what members and the operator see ----

    def inbox(self, member_id: str) -> spb.CrisisInboxReply:
        """The member's posts, each with the live proposal on it and what it may see."""
        items = []
        for pseudonym, posted in self._posts.items():
            if posted.member != member_id:
                continue
            item = spb.CrisisItem(
                post=posted.envelope.to_proto(), listing=self._listings.get(pseudonym, 0)
            )
            match = self._live(pseudonym)
            if match is not None:
                self._describe(item, match, pseudonym)
            items.append(item)
        return spb.CrisisInboxReply(items=items)

    def _live(self, pseudonym: bytes) -> _Match | None:
        """The newest proposal on a post."""
        found = [
            m for m in self._matches.values() if pseudonym in (m.proposal.need, m.proposal.offer)
        ]
        return max(found, key=lambda m: m.index) if found else None

    def _describe(self, item: spb.CrisisItem, match: _Match, pseudonym: bytes) -> None:
        proposal = match.proposal
        other = proposal.offer if pseudonym == proposal.need else proposal.need
        item.proposal.CopyFrom(match.envelope.to_proto())
        item.proposal_index = match.index
        item.counterpart = self._posts[other].post.describe()
        item.counterpart_listing = self._listings[other]
        for index, _, signed in match.answers:
            item.answers.append(signed.to_proto())
            item.answer_indices.append(index)
        if match.reveal is not None:
            item.reveal.CopyFrom(match.reveal[1].to_proto())
            item.reveal_index = match.reveal[0]
            item.revealed.CopyFrom(self._posts[other].envelope.to_proto())

    def status(self) -> list[str]:
        """Per crisis, commodity and week: open needs and offers, proposals, matches; no
        firm is named."""
        counts: dict[tuple[str, str, str], dict[str, int]] = {}
        on = self._crises_on()
        for posted in self._posts.values():
            post = posted.post
            row = counts.setdefault((post.crisis, post.commodity, post.week), {})
            if self._open(post, on):
                row[f"open {post.side}s"] = row.get(f"open {post.side}s", 0) + 1
        for match in self._matches.values():
            post = self._posts[match.proposal.need].post
            row = counts.setdefault((post.crisis, post.commodity, post.week), {})
            state = "revealed" if match.reveal else "declined" if match.declined else "proposed"
            row[state] = row.get(state, 0) + 1
        return [
            f"{name} {commodity} week of {week}: "
            + ", ".join(f"{n} {what}" for what, n in sorted(row.items()))
            for (name, commodity, week), row in sorted(counts.items())
        ]


def _commodity(key: str) -> None:
    try:
        parse_commodity(key)
    except ValueError as exc:
        raise RemoteProtocolError(str(exc)) from None


def _decode(envelope: Envelope, kind: str, domain: type[_T]) -> _T:
    """The decoded body of a message of ``kind``."""
    if envelope.type != kind:
        raise RemoteProtocolError(f"expected a {kind} message, got {envelope.type}")
    message = wire.MESSAGE_TYPES[kind].decode(envelope.body)
    if not isinstance(message, domain):
        raise RemoteProtocolError(f"not a {kind} message")
    return message
