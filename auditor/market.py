"""The checks of the log's messages outside rounds: attestations' pledges, crisis mode. Pure.

``check_pledges`` (``attest.pledges``): a member commits at most once to its holdings of a
commodity in a week, and the pledges on each figure form one chain, in log order, by the rule
the coordinator logs by and a lender checks (``scfed.attest.check_pledge``): the first follows
the figure's commitment, each next one the pledge before it, numbered 1, 2, 3... So a second
commitment, a fork, a skipped number or a pledge on another member's figure is reported: a
lender shown one branch would not see the pledges on the other.

``check_reveals`` (``crisis.reveals``): every proposal matches two listed posts of its crisis,
under a match id of its own; every answer is one side's, signed by its pseudonym
(``scfed.crisis.check_answer``); and the coordinator revealed a match, once, only after both
sides accepted (``scfed.crisis.check_reveal``). A side answers a proposal once.

Each check walks ``ReadLog.others`` (authenticated, decoded, in log order) once; "before"
is by leaf index. Findings name the leaves and say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from auditor.leaves import Other, OtherMessage
from auditor.model import require
from scfed import wire
from scfed.attest import check_pledge
from scfed.crisis import check_answer, check_reveal
from scfed.errors import VerificationError
from scfed.wire.attest import FigureCommitment, Pledge
from scfed.wire.crisis import Answer, Listing, Proposal, Reveal

_M = TypeVar("_M", bound=OtherMessage)


def message(other: Other, kind: type[_M]) -> _M:
    """The leaf's decoded message, which its type guarantees is a ``kind``."""
    if not isinstance(other.message, kind):
        raise VerificationError(f"leaf {other.index} does not hold a {kind.__name__}")
    return other.message


def count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def short(value: bytes) -> str:
    """A pseudonym or match id as people compare it: its first 8 bytes in hex."""
    return value.hex()[:16]


# ---- attestations: one commitment per figure, one chain of pledges --------------------------


@dataclass
class _Chain:
    """A logged figure commitment and the head of its pledge chain."""

    index: int
    signer: str
    figure: FigureCommitment
    #: The last pledge that took its place in the chain (the figure's leaf, before any).
    head: int
    pledges: int = 0


def check_pledges(others: Sequence[Other]) -> str:
    """VerificationError naming every second commitment and every pledge out of its chain."""
    chains: dict[int, _Chain] = {}
    first: dict[tuple[str, str, str], int] = {}
    problems: list[str] = []
    figures = pledges = 0
    for other in others:
        if other.type == wire.FIGURE:
            figure = message(other, FigureCommitment)
            figures += 1
            key = (other.signer, figure.commodity, figure.week)
            if key in first:
                problems.append(
                    f"leaf {other.index}: {other.signer} committed again to its holdings of "
                    f"{figure.commodity} in the week of {figure.week}, already committed at "
                    f"leaf {first[key]}: two figures for one week"
                )
            else:
                first[key] = other.index
            chains[other.index] = _Chain(other.index, other.signer, figure, other.index)
        elif other.type == wire.PLEDGE:
            pledges += 1
            problem = _pledge(other, message(other, Pledge), chains)
            if problem:
                problems.append(f"leaf {other.index} (a pledge of {other.signer}): {problem}")
    if not figures and not pledges:
        return "no attested figures"
    return require(
        problems,
        f"{count(figures, 'figure')}, {count(pledges, 'pledge')}: one commitment each, "
        "every chain whole",
    )


def _pledge(other: Other, pledge: Pledge, chains: dict[int, _Chain]) -> str:
    """Why the pledge does not take its place at the head of its figure's chain ("" if it
    does, and then it is the new head)."""
    chain = chains.get(pledge.figure)  # only figures logged before it are known yet
    if chain is None:
        return f"it names leaf {pledge.figure}, which holds no figure commitment logged before it"
    if chain.signer != other.signer:
        return f"it names the figure at leaf {chain.index}, which is {chain.signer}'s"
    if (chain.figure.commodity, chain.figure.week) != (pledge.commodity, pledge.week):
        return (
            f"it is of {pledge.commodity} in the week of {pledge.week}; the figure at leaf "
            f"{chain.index} is of {chain.figure.commodity} in the week of {chain.figure.week}"
        )
    try:
        check_pledge(pledge, chain.index, chain.pledges + 1, chain.head)
    except VerificationError as exc:
        return f"out of the chain of the figure at leaf {chain.index}: {exc}"
    chain.pledges += 1
    chain.head = other.index
    return ""


# ---- crisis mode: listed posts, signed answers, reveals after both acceptances --------------


@dataclass
class _Match:
    """A logged proposal and the valid answers to it so far."""

    index: int
    proposal: Proposal
    #: (leaf, answer), in log order: each side's first answer.
    answers: list[tuple[int, Answer]] = field(default_factory=list)
    revealed: int | None = None

    def answer_of(self, pseudonym: bytes) -> tuple[int, Answer] | None:
        return next((a for a in self.answers if a[1].pseudonym == pseudonym), None)


@dataclass
class _Crisis:
    origin: str
    #: Pseudonym -> the crises it was listed in, with the leaf of each listing.
    listed: dict[bytes, list[tuple[int, str]]] = field(default_factory=dict)
    matches: dict[bytes, _Match] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(wire.CRISIS_TYPES, 0))

    def read(self, other: Other) -> None:
        where = f"leaf {other.index}"
        match other.type:
            case wire.LISTING:
                listing = message(other, Listing)
                self.listed.setdefault(listing.pseudonym, []).append((other.index, listing.crisis))
            case wire.PROPOSAL:
                self._proposal(where, other.index, message(other, Proposal))
            case wire.ANSWER:
                self._answer(where, other.index, message(other, Answer))
            case wire.REVEAL:
                self._reveal(where, other.index, message(other, Reveal))
            case _:
                return
        self.counts[other.type] += 1

    def _proposal(self, where: str, index: int, proposal: Proposal) -> None:
        match_id = proposal.match_id
        if match_id in self.matches:
            self.problems.append(
                f"{where} proposes match {short(match_id)} again, already proposed at leaf "
                f"{self.matches[match_id].index}"
            )
            return  # answers and reveals count against the first proposal
        self.matches[match_id] = _Match(index, proposal)
        for side, pseudonym in (("need", proposal.need), ("offer", proposal.offer)):
            if not any(c == proposal.crisis for _, c in self.listed.get(pseudonym, [])):
                self.problems.append(
                    f"{where} proposes match {short(match_id)} with a {side} "
                    f"{short(pseudonym)} that has no listing in crisis {proposal.crisis} "
                    "before it"
                )

    def _logged(self, where: str, what: str, match_id: bytes) -> _Match | None:
        found = self.matches.get(match_id)
        if found is None:
            self.problems.append(
                f"{where} {what} match {short(match_id)}, which no proposal logged before it names"
            )
        return found

    def _answer(self, where: str, index: int, answer: Answer) -> None:
        found = self._logged(where, "answers", answer.match_id)
        if found is None:
            return
        try:
            check_answer(self.origin, found.proposal, answer)
        except VerificationError as exc:
            self.problems.append(
                f"{where} answers match {short(answer.match_id)} proposed at leaf "
                f"{found.index}: {exc}"
            )
            return
        earlier = found.answer_of(answer.pseudonym)
        if earlier is None:
            found.answers.append((index, answer))
        elif earlier[1] != answer:
            self.problems.append(
                f"{where}: pseudonym {short(answer.pseudonym)} answers match "
                f"{short(answer.match_id)} again, having answered it at leaf {earlier[0]}"
            )

    def _reveal(self, where: str, index: int, reveal: Reveal) -> None:
        found = self._logged(where, "reveals", reveal.match_id)
        if found is None:
            return
        if found.revealed is not None:
            self.problems.append(
                f"{where} reveals match {short(reveal.match_id)} again, already revealed at "
                f"leaf {found.revealed}"
            )
            return
        found.revealed = index
        try:
            check_reveal(self.origin, found.proposal, [a for _, a in found.answers])
        except VerificationError as exc:
            said = ", ".join(
                f"leaf {i} {'accepts' if a.accept else 'declines'}" for i, a in found.answers
            )
            self.problems.append(
                f"{where} reveals match {short(reveal.match_id)} proposed at leaf "
                f"{found.index} before both sides accepted: {exc} "
                f"(answers before it: {said or 'none'})"
            )


def check_reveals(others: Sequence[Other], origin: str) -> str:
    """VerificationError naming every proposal of unlisted posts or a reused match id, every
    answer that is not a side's, and every reveal that did not follow both acceptances."""
    state = _Crisis(origin)
    for other in others:
        state.read(other)
    counts = state.counts
    if not any(counts.values()):
        return "no crisis listings"
    return require(
        state.problems,
        f"{count(counts[wire.LISTING], 'listing')}, {count(counts[wire.PROPOSAL], 'proposal')}, "
        f"{count(counts[wire.ANSWER], 'answer')}, {count(counts[wire.REVEAL], 'reveal')}: "
        "every reveal followed both acceptances",
    )
