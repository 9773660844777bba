"""The coordinator's side of attestations and crisis mode (``coordinator/market.py``), over a
real protocol log and store: one commitment per figure, pledges only at the head of their
chain, a message sent again answered with its own leaf, crisis posts kept but never logged,
matches proposed by band, answers signed by the pseudonym, the reveal only after both
accepted, and all of it read back by a coordinator that starts again. And the pure rules:
the matching (hypothesis), bands, and the posts a crisis admits."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from coordinator.journal import Journal
from coordinator.log import ProtocolLog
from coordinator.market import Market
from coordinator.store import Store
from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.attest import figure_commitment, pledge_commitment
from scfed.crisis import Open, answer_message, band_of, check_post, post_hash, propose
from scfed.errors import MessageError, PermissionDeniedError, RefusedError, RemoteProtocolError
from scfed.secagg.driver import Federation, federation
from scfed.wire import attest, crisis
from scfed.wire import envelope as env
from scfed.wire.crisis import BAND_LABELS, BANDS, Post
from scfed.wire.envelope import Envelope
from scfed.wire.policy import Crisis, Policy
from tests.unit._support import Rng

KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
HSINCHU = "fabrication/logic/14-28nm/300mm/TW-Hsinchu"
TODAY = dt.date(2026, 12, 8)
WEEK = "2026-12-14"


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


class Coordinator:
    """The market over a log and a store in one SQLite file, as the daemon holds them."""

    def __init__(self, path: Path, fed: Federation, policy: Policy | None) -> None:
        self.fed, self.path = fed, path
        self.log = ProtocolLog(path, origin=fed.registry.origin, key=fed.coordinator_key)
        self.store = Store(path)
        self.journal = Journal(self.log)
        signed = env.seal(fed.governance_key, wire.POLICY, wire.GOVERNANCE,
                          fed.registry.origin, b"")  # fmt: skip
        loaded = None if policy is None else (policy, signed)
        self.market = Market.recovered(
            origin=fed.registry.origin, key=fed.coordinator_key, store=self.store,
            journal=self.journal, registry=lambda: (fed.registry, signed),
            policy=lambda: loaded,
        )  # fmt: skip
        self.market._today = lambda: TODAY

    def close(self) -> None:
        self.journal.close()
        self.store.close()
        self.log.close()

    def seal(self, member: str, kind: str, body: bytes) -> Envelope:
        return env.seal(self.fed.member_keys[member], kind, member, self.fed.registry.origin, body)

    def submit(self, member: str, envelope: Envelope) -> int:
        async def go() -> int:
            return (await self.market.submit(member, envelope)).index

        index: int = _run(go())
        return index

    def entries(self) -> list[Envelope]:
        return [Envelope.from_bytes(self.log.entry(i)) for i in range(self.log.size)]


def _policy(origin: str) -> Policy:
    crises = (Crisis("kyushu", "", (KYUSHU,), "2026-12-01", "2027-01-31"),)
    return Policy(origin, 1, "1", "1/2", "year", (), 0, crises)


@pytest.fixture
def fed() -> Federation:
    return federation(4, Rng(b"market"))


@pytest.fixture
def coordinator(tmp_path: Path, fed: Federation) -> Iterator[Coordinator]:
    opened = Coordinator(tmp_path / "coordinator.sqlite", fed, _policy(fed.registry.origin))
    yield opened
    opened.close()


def _holdings(nonce: bytes = b"\x01" * 32) -> attest.Holdings:
    return attest.Holdings(KYUSHU, WEEK, "unit:piece", "1800", "1200", nonce)


def _figure(c: Coordinator, member: str = "node-000") -> tuple[Envelope, bytes]:
    commitment = figure_commitment(c.fed.registry.origin, member, _holdings())
    body = attest.FigureCommitment(KYUSHU, WEEK, commitment)
    return c.seal(member, wire.FIGURE, attest.encode(body)), commitment


def _pledge(c: Coordinator, figure: int, sequence: int, previous: int, lender: str) -> Envelope:
    commitment = pledge_commitment(
        c.fed.registry.origin, "node-000", b"\x02" * 32, lender=lender, amount="10",
        nonce=bytes([sequence]) * 32,
    )  # fmt: skip
    body = attest.Pledge(KYUSHU, WEEK, figure, sequence, previous, commitment)
    return c.seal("node-000", wire.PLEDGE, attest.encode(body))


def test_one_commitment_per_figure_and_pledges_only_at_the_head(
    coordinator: Coordinator, tmp_path: Path, fed: Federation
) -> None:
    c = coordinator
    signed, _ = _figure(c)
    figure = c.submit("node-000", signed)
    assert c.submit("node-000", signed) == figure  # sent again: the same leaf, logged once
    other = c.seal("node-000", wire.FIGURE, attest.encode(
        attest.FigureCommitment(KYUSHU, WEEK, b"\x09" * 32)))  # fmt: skip
    with pytest.raises(RefusedError, match=f"at leaf {figure}: one commitment per figure"):
        c.submit("node-000", other)
    first = c.submit("node-000", _pledge(c, figure, 1, figure, "bank-a"))
    with pytest.raises(MessageError, match="follows its figure's commitment or a pledge"):
        _pledge(c, figure, 2, figure, "bank-b")  # a second pledge right after the figure
    with pytest.raises(RefusedError, match="head of the figure's pledge chain"):
        c.submit("node-000", _pledge(c, figure, 3, first, "bank-b"))
    second = c.submit("node-000", _pledge(c, figure, 2, first, "bank-b"))
    with pytest.raises(RefusedError, match="head of the figure's pledge chain"):
        c.submit("node-000", _pledge(c, figure, 2, first, "bank-c"))  # a fork
    # Another member may not pledge on this figure, nor sign as this member.
    with pytest.raises(RefusedError, match="no logged figure"):
        c.submit("node-001", c.seal("node-001", wire.PLEDGE, _pledge(c, figure, 3, second,
                                                                       "x").body))  # fmt: skip
    with pytest.raises(PermissionDeniedError):
        c.submit("node-001", signed)
    c.close()
    again = Coordinator(tmp_path / "coordinator.sqlite", fed, _policy(fed.registry.origin))
    try:  # read back from the log: the head is the second pledge
        assert again.submit("node-000", _pledge(again, figure, 2, first, "bank-b")) == second
        with pytest.raises(RefusedError, match="head of the figure's pledge chain"):
            again.submit("node-000", _pledge(again, figure, 2, first, "bank-c"))
        third = again.submit("node-000", _pledge(again, figure, 3, second, "bank-c"))
        assert third == again.log.size - 1
    finally:
        again.close()
    coordinator.close = lambda: None  # type: ignore[method-assign]  # closed above


def _post(c: Coordinator, member: str, side: str, band: str, key: Ed25519PrivateKey, *,
          week: str = WEEK, commodity: str = KYUSHU) -> Envelope:  # fmt: skip
    body = Post("kyushu", side, commodity, week, band, key.public_key().public_bytes_raw(),
                bytes(32))  # fmt: skip
    return c.seal(member, wire.POST, crisis.encode(body))


def _inbox(c: Coordinator, member: str) -> list[spb.CrisisItem]:
    return list(c.market.inbox(member).items)


def _answer(
    c: Coordinator, member: str, key: Ed25519PrivateKey, item: spb.CrisisItem, accept: bool
) -> None:
    proposal = crisis.decode_proposal(Envelope.from_proto(item.proposal).body)
    signature = key.sign(answer_message(c.fed.registry.origin, proposal, accept))
    request = spb.CrisisAnswerRequest(
        match_id=proposal.match_id, accept=accept, signature=signature
    )
    c.market.answer(member, request)


def test_a_match_is_proposed_by_band_and_revealed_after_both_accept(
    coordinator: Coordinator, tmp_path: Path, fed: Federation
) -> None:
    c = coordinator
    keys = [Ed25519PrivateKey.generate() for _ in range(4)]
    need = _post(c, "node-000", "need", "500-1999", keys[0])
    c.submit("node-000", need)
    small = _post(c, "node-002", "offer", "1-499", keys[2])  # below the need's band
    c.submit("node-002", small)
    assert not _inbox(c, "node-000")[0].HasField("proposal")
    offer = _post(c, "node-001", "offer", "2000-4999", keys[1])
    c.submit("node-001", offer)
    (mine,) = _inbox(c, "node-000")
    (theirs,) = _inbox(c, "node-001")
    assert mine.counterpart == "an offer of " + KYUSHU + f", week of {WEEK}, band 2000-4999"
    assert not mine.HasField("revealed")
    logged = c.entries()
    assert [e.type for e in logged].count(wire.LISTING) == 3
    assert wire.POST not in {e.type for e in logged}  # posts are kept, never logged
    assert logged[0].type == wire.POLICY  # the crisis is declared in the log before it
    listing = crisis.decode_listing(next(e for e in logged if e.type == wire.LISTING).body)
    assert listing.post_hash == post_hash(need.to_bytes())
    # A forged answer, another member's, or one for the wrong verdict is refused.
    with pytest.raises(PermissionDeniedError):
        _answer(c, "node-003", keys[0], mine, True)
    with pytest.raises(Exception, match="pseudonym"):
        _answer(c, "node-000", keys[3], mine, True)
    _answer(c, "node-000", keys[0], mine, True)
    with pytest.raises(RefusedError, match="answered already"):
        _answer(c, "node-000", keys[0], mine, True)
    assert not _inbox(c, "node-001")[0].HasField("revealed")
    c.close()
    again = Coordinator(tmp_path / "coordinator.sqlite", fed, _policy(fed.registry.origin))
    try:
        (theirs,) = _inbox(again, "node-001")
        _answer(again, "node-001", keys[1], theirs, True)
        (mine,) = _inbox(again, "node-000")
        assert Envelope.from_proto(mine.revealed).to_bytes() == offer.to_bytes()
        (theirs,) = _inbox(again, "node-001")
        assert Envelope.from_proto(theirs.revealed).signer == "node-000"
        assert not _inbox(again, "node-002")[0].HasField("proposal")  # still open, unmatched
        assert again.market.status() == [
            f"kyushu {KYUSHU} week of {WEEK}: 1 open offers, 1 revealed"
        ]
        counted = again.market._metrics.registry.get_sample_value
        for kind, times in ((wire.ANSWER, 1), (wire.REVEAL, 1), (wire.LISTING, 0)):
            assert counted("scfed_logged_outside_rounds_total", {"type": kind}) == times
    finally:
        again.close()
    coordinator.close = lambda: None  # type: ignore[method-assign]  # closed above


def test_a_declined_pair_is_never_proposed_again(coordinator: Coordinator) -> None:
    c = coordinator
    keys = [Ed25519PrivateKey.generate() for _ in range(3)]
    c.submit("node-000", _post(c, "node-000", "need", "500-1999", keys[0]))
    c.submit("node-001", _post(c, "node-001", "offer", "500-1999", keys[1]))
    (first,) = _inbox(c, "node-000")
    _answer(c, "node-001", keys[1], _inbox(c, "node-001")[0], False)
    assert "declined" in c.market.status()[0]
    c.submit("node-002", _post(c, "node-002", "offer", "500-1999", keys[2]))
    (mine,) = _inbox(c, "node-000")
    assert mine.proposal_index != first.proposal_index
    assert _inbox(c, "node-002")[0].HasField("proposal")
    assert _inbox(c, "node-001")[0].proposal_index != mine.proposal_index


def test_a_post_outside_the_declared_crisis_is_refused(coordinator: Coordinator) -> None:
    c = coordinator
    key = Ed25519PrivateKey.generate()
    with pytest.raises(RefusedError, match="not declared for"):
        c.submit("node-000", _post(c, "node-000", "need", "1-499", key, commodity=HSINCHU))
    body = Post("flood", "need", KYUSHU, WEEK, "1-499", bytes(32), bytes(32))
    with pytest.raises(RefusedError, match="no crisis 'flood'"):
        c.submit("node-000", c.seal("node-000", wire.POST, crisis.encode(body)))
    c.submit("node-000", _post(c, "node-000", "need", "1-499", key))
    with pytest.raises(RefusedError, match="posted before"):
        c.submit("node-000", _post(c, "node-000", "need", "5000+", key))
    with pytest.raises(RemoteProtocolError, match="does not submit"):
        c.submit("node-000", c.seal("node-000", wire.REFUSAL, b""))


def test_check_post_reads_the_window_and_band_of_reads_the_quantity() -> None:
    policy = _policy("o")
    post = Post("kyushu", "need", KYUSHU, WEEK, "1-499", bytes(32), bytes(32))
    assert check_post(post, policy, TODAY).name == "kyushu"
    with pytest.raises(RefusedError, match="runs from 2026-12-01 to 2027-01-31"):
        check_post(post, policy, dt.date(2027, 2, 1))
    with pytest.raises(RefusedError, match="no crisis"):
        check_post(post, None, TODAY)
    assert [band_of(Decimal(q)) for q in ("1", "499.9", "500", "5000")] == [
        "1-499", "1-499", "500-1999", "5000+",
    ]  # fmt: skip
    with pytest.raises(RefusedError):
        band_of(Decimal("0.5"))


_OPEN = st.builds(
    Open,
    pseudonym=st.binary(min_size=32, max_size=32),
    crisis=st.sampled_from(["a", "b"]),
    side=st.sampled_from(["need", "offer"]),
    commodity=st.sampled_from([KYUSHU, HSINCHU]),
    week=st.sampled_from(["2026-12-14", "2026-12-21"]),
    band=st.sampled_from(BAND_LABELS),
)


@given(st.lists(_OPEN, max_size=30, unique_by=lambda o: o.pseudonym))
def test_matching_pairs_a_need_with_an_offer_that_covers_it_each_once(posts: list[Open]) -> None:
    pairs = propose(posts)
    used = [p.pseudonym for pair in pairs for p in pair]
    assert len(used) == len(set(used))
    for need, offer in pairs:
        assert (need.side, offer.side) == ("need", "offer")
        assert (need.crisis, need.commodity, need.week) == (offer.crisis, offer.commodity,
                                                             offer.week)  # fmt: skip
        assert BAND_LABELS.index(offer.band) >= BAND_LABELS.index(need.band)
    # Maximal: no unmatched need has an unmatched offer that would cover it.
    free = [p for p in posts if p.pseudonym not in used]
    for need in (p for p in free if p.side == "need"):
        assert not any(
            o.side == "offer" and (o.crisis, o.commodity, o.week) == (
                need.crisis, need.commodity, need.week)
            and BAND_LABELS.index(o.band) >= BAND_LABELS.index(need.band)
            for o in free
        )  # fmt: skip
    assert len(BANDS) == len(BAND_LABELS)
