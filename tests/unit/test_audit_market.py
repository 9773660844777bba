"""The auditor's checks of the messages outside rounds: figure commitments and their pledge
chains (``attest.pledges``), crisis listings, proposals, answers and reveals
(``crisis.reveals``), and the messages that are never logged (``log.never_logged``).

Every log here is real: the honest rounds of ``honest_log`` (a governance-signed registry at
leaf 0), then figure commitments and pledges each signed by its member's registered identity
key, and crisis listings, proposals, answers and reveals signed by the coordinator key, with
answers signed by fresh pseudonym keys as a posting node signs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor import AuditReport
from auditor.leaves import read_log
from scfed import crisis, wire
from scfed.attest import figure_commitment, pledge_commitment
from scfed.wire import attest as wire_attest
from scfed.wire import crisis as wire_crisis
from scfed.wire import envelope as env
from scfed.wire.attest import FigureCommitment, Holdings, Pledge
from scfed.wire.crisis import Answer, Listing, Post, Proposal, Reveal
from tests.unit._audit_support import Log, assert_caught, failed, honest_log, run_audit
from tests.unit._support import Rng

COMMODITY = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
WEEK = "2026-11-30"
NEXT_WEEK = "2026-12-07"
CRISIS = "kyushu-quake"
PLEDGES, REVEALS, NEVER_LOGGED = "attest.pledges", "crisis.reveals", "log.never_logged"


def pseudonym_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


@dataclass
class Market:
    """The honest rounds' leaves, and messages outside rounds appended one by one."""

    log: Log = field(default_factory=honest_log)
    leaves: list[bytes] = field(default_factory=list)
    rng: Rng = field(default_factory=lambda: Rng(b"market"))
    #: Leaf index of each logged figure -> its commitment (what a pledge commits against).
    figures: dict[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.leaves = list(self.log.leaves)

    @property
    def origin(self) -> str:
        return self.log.origin

    def add(self, data: bytes) -> int:
        self.leaves.append(data)
        return len(self.leaves) - 1

    def member(self, member: str, message: FigureCommitment | Pledge | Post) -> int:
        """Log a message signed by ``member``'s registered identity key."""
        key = self.log.fed.member_keys[member]
        return self.add(self.sealed(key, member, message))

    def sealed(
        self, key: Ed25519PrivateKey, signer: str, message: FigureCommitment | Pledge | Post
    ) -> bytes:
        body = (
            wire_crisis.encode(message)
            if isinstance(message, Post)
            else wire_attest.encode(message)
        )
        return env.seal(key, wire.type_of(message), signer, self.origin, body).to_bytes()

    def coordinator(self, message: wire_crisis.CrisisMessage) -> int:
        """Log a crisis message signed by the coordinator key."""
        body = wire_crisis.encode(message)
        sealed = env.seal(
            self.log.fed.coordinator_key, wire.type_of(message), wire.COORDINATOR, self.origin, body
        )
        return self.add(sealed.to_bytes())

    # ---- attestations ----

    def figure(self, member: str, week: str = WEEK) -> int:
        holdings = Holdings(COMMODITY, week, "wafers", "1200", "300.5", self.rng(32))
        commitment = figure_commitment(self.origin, member, holdings)
        index = self.member(member, FigureCommitment(COMMODITY, week, commitment))
        self.figures[index] = commitment
        return index

    def pledge(
        self, member: str, figure: int, sequence: int, previous: int, week: str = WEEK
    ) -> int:
        commitment = pledge_commitment(
            self.origin, member, self.figures.get(figure, bytes(32)),
            lender=f"bank-{sequence}", amount="100", nonce=self.rng(32),
        )  # fmt: skip
        return self.member(member, Pledge(COMMODITY, week, figure, sequence, previous, commitment))

    # ---- crisis mode ----

    def post(self, member: str, side: str) -> tuple[Ed25519PrivateKey, bytes]:
        """A member's signed post under a fresh pseudonym: the key and the envelope's bytes."""
        key = Ed25519PrivateKey.from_private_bytes(self.rng(32))
        post = Post(CRISIS, side, COMMODITY, WEEK, "500-1999", pseudonym_of(key), self.rng(32))
        return key, self.sealed(self.log.fed.member_keys[member], member, post)

    def listing(self, member: str, side: str, crisis_name: str = CRISIS) -> Ed25519PrivateKey:
        """List a member's post (the post itself stays with the coordinator)."""
        key, signed = self.post(member, side)
        self.coordinator(Listing(crisis_name, pseudonym_of(key), crisis.post_hash(signed)))
        return key

    def proposal(
        self, need: Ed25519PrivateKey, offer: Ed25519PrivateKey, match_id: bytes | None = None
    ) -> Proposal:
        proposal = Proposal(
            match_id or self.rng(16), CRISIS, pseudonym_of(need), pseudonym_of(offer)
        )
        self.coordinator(proposal)
        return proposal

    def answer(
        self,
        proposal: Proposal,
        side: Ed25519PrivateKey,
        accept: bool,
        signed_by: Ed25519PrivateKey | None = None,
    ) -> int:
        """Log a side's answer, signed by its pseudonym key (or by ``signed_by``)."""
        signature = (signed_by or side).sign(crisis.answer_message(self.origin, proposal, accept))
        return self.coordinator(Answer(proposal.match_id, pseudonym_of(side), accept, signature))

    def reveal(self, proposal: Proposal) -> int:
        return self.coordinator(Reveal(proposal.match_id))

    def audit(self) -> AuditReport:
        return run_audit(self.log, self.leaves)


@dataclass
class Honest:
    market: Market
    #: node-000's figure and its two pledges.
    figure: int
    pledges: tuple[int, int]
    need: Ed25519PrivateKey
    offer: Ed25519PrivateKey
    proposal: Proposal


def honest() -> Honest:
    """Two figures (node-000's, with two pledges, and node-001's of the same commodity and
    week), and a match of node-002's need with node-003's offer, accepted and revealed."""
    market = Market()
    figure = market.figure("node-000")
    first = market.pledge("node-000", figure, 1, figure)
    market.figure("node-001")
    second = market.pledge("node-000", figure, 2, first)
    need, offer = market.listing("node-002", "need"), market.listing("node-003", "offer")
    proposal = market.proposal(need, offer)
    market.answer(proposal, offer, accept=True)
    market.answer(proposal, need, accept=True)
    market.reveal(proposal)
    return Honest(market, figure, (first, second), need, offer, proposal)


def detail(report: AuditReport, check: str) -> str:
    (finding,) = [f for f in report.findings if f.check == check]
    assert finding.passed, finding.detail
    return finding.detail


# ---- the honest log ---------------------------------------------------------------------------


def test_an_honest_log_with_figures_pledges_and_a_revealed_match_passes_every_check() -> None:
    report = honest().market.audit()
    assert failed(report) == {}
    assert report.ok
    report.check()
    assert detail(report, PLEDGES) == "2 figures, 2 pledges: one commitment each, every chain whole"
    assert detail(report, REVEALS) == (
        "2 listings, 1 proposal, 2 answers, 1 reveal: every reveal followed both acceptances"
    )
    assert "no leaf is an attestation or a crisis post" in detail(report, NEVER_LOGGED)
    assert len(report.rounds) == len(run_audit(honest_log()).rounds)  # the rounds, unchanged


def test_a_log_without_them_says_so() -> None:
    report = run_audit(honest_log())
    assert detail(report, PLEDGES) == "no attested figures"
    assert detail(report, REVEALS) == "no crisis listings"


def test_messages_outside_rounds_are_authenticated_and_kept_apart_from_the_rounds() -> None:
    case = honest()
    market = case.market
    read = read_log(market.leaves, origin=market.origin, governance_key=market.log.governance_key)
    assert {leaf.type for leaf in read.leaves} <= set(wire.ROUND_TYPES)
    assert len(read.leaves) == len(read_log(
        honest_log().leaves, origin=market.origin, governance_key=market.log.governance_key
    ).leaves)  # fmt: skip
    types = [other.type for other in read.others]
    attest, listing = [wire.FIGURE, wire.PLEDGE], [wire.LISTING]
    crisis_steps = [wire.PROPOSAL, wire.ANSWER, wire.ANSWER, wire.REVEAL]
    assert types == [*attest, *attest, *listing, *listing, *crisis_steps]
    first = read.others[0]
    assert (first.index, first.signer) == (case.figure, "node-000")
    assert isinstance(first.message, FigureCommitment)
    assert {o.signer for o in read.others if o.type in wire.CRISIS_TYPES} == {wire.COORDINATOR}


def test_a_figure_signed_with_another_members_key_is_not_believed() -> None:
    market = Market()
    holdings = Holdings(COMMODITY, WEEK, "wafers", "1", "0", market.rng(32))
    figure = FigureCommitment(
        COMMODITY, WEEK, figure_commitment(market.origin, "node-000", holdings)
    )
    forged = market.add(market.sealed(market.log.fed.member_keys["node-001"], "node-000", figure))
    market.pledge("node-000", forged, 1, forged)
    report = market.audit()
    assert_caught(report, "log.signatures", f"leaf {forged}", "node-000's registered identity key")
    # Not believed, the figure is not there for the pledge to follow.
    assert_caught(report, PLEDGES, f"names leaf {forged}", "no figure commitment")


def test_a_crisis_message_signed_by_a_member_is_not_believed() -> None:
    market = Market()
    key, _ = market.post("node-002", "need")
    listing = Listing(CRISIS, pseudonym_of(key), bytes(32))
    body = wire_crisis.encode(listing)
    signed = env.seal(market.log.fed.member_keys["node-002"], wire.LISTING, "node-002",
                      market.origin, body)  # fmt: skip
    index = market.add(signed.to_bytes())
    assert_caught(market.audit(), "log.signatures", f"leaf {index}", "signed by the coordinator")


# ---- attest.pledges ---------------------------------------------------------------------------


def test_a_second_commitment_to_one_figure_is_an_equivocation() -> None:
    case = honest()
    market = case.market
    assert market.audit().ok
    other_week = market.figure("node-000", NEXT_WEEK)  # another week: a figure of its own
    assert market.audit().ok
    again = market.figure("node-000")
    report = market.audit()
    assert_caught(report, PLEDGES, f"leaf {again}", f"already committed at leaf {case.figure}")
    assert f"leaf {other_week}" not in failed(report)[PLEDGES][0]


def test_a_forked_chain_is_caught() -> None:
    case = honest()
    market = case.market
    first, second = case.pledges
    fork = market.pledge("node-000", case.figure, 2, first)  # a second pledge 2 after pledge 1
    report = market.audit()
    assert_caught(
        report, PLEDGES, f"leaf {fork}", f"pledge 2 follows leaf {first}",
        f"the chain's next is pledge 3 after leaf {second}",
    )  # fmt: skip
    assert set(failed(report)) == {PLEDGES}


def test_the_chain_goes_on_from_its_head() -> None:
    case = honest()
    market = case.market
    market.pledge("node-000", case.figure, 3, case.pledges[1])
    assert market.audit().ok


def test_a_skipped_sequence_is_caught() -> None:
    case = honest()
    market = case.market
    skipped = market.pledge("node-000", case.figure, 4, case.pledges[1])
    assert_caught(market.audit(), PLEDGES, f"leaf {skipped}", "pledge 4", "next is pledge 3")


def test_a_pledge_on_another_members_figure_is_caught() -> None:
    case = honest()
    market = case.market
    # node-001 pledges node-000's figure, at the head of its chain.
    stolen = market.pledge("node-001", case.figure, 3, case.pledges[1])
    assert_caught(
        market.audit(), PLEDGES, f"leaf {stolen} (a pledge of node-001)",
        f"the figure at leaf {case.figure}, which is node-000's",
    )  # fmt: skip


def test_a_pledge_of_another_week_than_its_figure_is_caught() -> None:
    case = honest()
    market = case.market
    index = market.pledge("node-000", case.figure, 3, case.pledges[1], week=NEXT_WEEK)
    assert_caught(market.audit(), PLEDGES, f"leaf {index}", f"the figure at leaf {case.figure}")


def test_a_pledge_on_a_figure_logged_after_it_is_caught() -> None:
    market = Market()
    ahead = len(market.leaves) + 1  # where the figure will be logged, after the pledge
    early = market.pledge("node-000", ahead, 1, ahead)
    assert market.figure("node-000") == ahead
    assert_caught(
        market.audit(), PLEDGES, f"leaf {early}", f"names leaf {ahead}", "logged before it"
    )


def test_a_pledge_naming_a_leaf_that_is_no_figure_is_caught() -> None:
    market = Market()
    round_leaf = 3  # a round message
    index = market.pledge("node-000", round_leaf, 1, round_leaf)
    assert_caught(market.audit(), PLEDGES, f"leaf {index}", f"names leaf {round_leaf}")


# ---- crisis.reveals ---------------------------------------------------------------------------


def _matched(market: Market) -> tuple[Ed25519PrivateKey, Ed25519PrivateKey, Proposal]:
    need, offer = market.listing("node-002", "need"), market.listing("node-003", "offer")
    return need, offer, market.proposal(need, offer)


def test_a_reveal_after_one_acceptance_is_caught() -> None:
    market = Market()
    need, _, proposal = _matched(market)
    accepted = market.answer(proposal, need, accept=True)
    reveal = market.reveal(proposal)
    report = market.audit()
    assert_caught(
        report, REVEALS, f"leaf {reveal}", "before both sides accepted",
        "1 of the two sides did not accept", f"leaf {accepted} accepts",
    )  # fmt: skip
    assert set(failed(report)) == {REVEALS}


def test_a_reveal_before_the_second_acceptance_is_caught() -> None:
    market = Market()
    need, offer, proposal = _matched(market)
    market.answer(proposal, need, accept=True)
    reveal = market.reveal(proposal)
    market.answer(proposal, offer, accept=True)  # logged, but after the reveal
    assert_caught(market.audit(), REVEALS, f"leaf {reveal}", "did not accept")


def test_a_reveal_after_a_decline_is_caught() -> None:
    market = Market()
    need, offer, proposal = _matched(market)
    market.answer(proposal, need, accept=True)
    declined = market.answer(proposal, offer, accept=False)
    assert market.audit().ok  # a declined match, not revealed: nothing wrong
    reveal = market.reveal(proposal)
    assert_caught(
        market.audit(), REVEALS, f"leaf {reveal}", "did not accept", f"leaf {declined} declines"
    )


def test_a_side_answers_once() -> None:
    market = Market()
    need, offer, proposal = _matched(market)
    declined = market.answer(proposal, offer, accept=False)
    market.answer(proposal, need, accept=True)
    again = market.answer(proposal, offer, accept=True)  # changes its mind after declining
    reveal = market.reveal(proposal)
    report = market.audit()
    assert_caught(report, REVEALS, f"leaf {again}", f"having answered it at leaf {declined}")
    assert_caught(report, REVEALS, f"leaf {reveal}", "did not accept")


def test_an_answer_not_signed_by_the_pseudonym_is_caught() -> None:
    market = Market()
    need, offer, proposal = _matched(market)
    market.answer(proposal, offer, accept=True)
    forged = market.answer(proposal, need, accept=True, signed_by=offer)  # the coordinator's
    reveal = market.reveal(proposal)
    report = market.audit()
    assert_caught(report, REVEALS, f"leaf {forged}", "not signed by the post's pseudonym")
    assert_caught(report, REVEALS, f"leaf {reveal}", "1 of the two sides did not accept")


def test_an_answer_signed_for_the_other_verdict_is_caught() -> None:
    market = Market()
    need, offer, proposal = _matched(market)
    market.answer(proposal, offer, accept=True)
    signature = need.sign(crisis.answer_message(market.origin, proposal, False))
    turned = market.coordinator(Answer(proposal.match_id, pseudonym_of(need), True, signature))
    assert_caught(market.audit(), REVEALS, f"leaf {turned}", "not signed by the post's pseudonym")


def test_an_answer_from_neither_side_is_caught() -> None:
    market = Market()
    proposal = _matched(market)[2]
    stranger = market.listing("node-004", "need")
    index = market.answer(proposal, stranger, accept=True)
    assert_caught(market.audit(), REVEALS, f"leaf {index}", "neither side")


def test_an_answer_or_reveal_before_its_proposal_is_caught() -> None:
    market = Market()
    need, offer = market.listing("node-002", "need"), market.listing("node-003", "offer")
    match_id = market.rng(16)
    unproposed = Proposal(match_id, CRISIS, pseudonym_of(need), pseudonym_of(offer))
    early = market.answer(unproposed, need, accept=True)
    reveal = market.reveal(unproposed)
    market.proposal(need, offer, match_id)
    report = market.audit()
    assert_caught(report, REVEALS, f"leaf {early} answers", "no proposal logged before it")
    assert_caught(report, REVEALS, f"leaf {reveal} reveals", "no proposal logged before it")


def test_a_proposal_of_an_unlisted_post_is_caught() -> None:
    market = Market()
    need = market.listing("node-002", "need")
    offer = market.listing("node-003", "offer", crisis_name="another-crisis")
    unlisted = Ed25519PrivateKey.from_private_bytes(market.rng(32))
    first = market.proposal(need, offer)
    second = market.proposal(unlisted, need)
    report = market.audit()
    start = len(honest_log().leaves)
    assert_caught(report, REVEALS, f"leaf {start + 2}", "offer", f"no listing in crisis {CRISIS}")
    assert_caught(report, REVEALS, f"leaf {start + 3}", "need", "no listing")
    assert first.match_id != second.match_id


def test_a_proposal_before_its_listing_is_caught() -> None:
    market = Market()
    need = market.listing("node-002", "need")
    key, signed = market.post("node-003", "offer")
    proposal = market.proposal(need, key)
    market.coordinator(Listing(CRISIS, pseudonym_of(key), crisis.post_hash(signed)))
    index = len(honest_log().leaves) + 1
    assert_caught(market.audit(), REVEALS, f"leaf {index}", "offer", "no listing", "before it")
    assert proposal.offer == pseudonym_of(key)


def test_a_match_id_is_proposed_once_and_revealed_once() -> None:
    case = honest()
    market = case.market
    again = market.reveal(case.proposal)
    market.proposal(case.need, case.offer, case.proposal.match_id)
    reused = len(market.leaves) - 1
    report = market.audit()
    assert_caught(report, REVEALS, f"leaf {again} reveals", "again, already revealed at leaf")
    assert_caught(report, REVEALS, f"leaf {reused} proposes", "again, already proposed at leaf")


# ---- never logged -----------------------------------------------------------------------------


def test_a_logged_crisis_post_is_reported() -> None:
    market = Market()
    _, signed = market.post("node-002", "need")
    index = market.add(signed)
    report = market.audit()
    assert_caught(report, NEVER_LOGGED, f"leaf {index}", "crisis.post", "names its firm")
    assert set(failed(report)) == {NEVER_LOGGED}
