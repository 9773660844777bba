"""What a node requires of every round, and what it remembers of the rounds it answered. Pure.

``NodePolicy`` holds the node's own rules (n_min, a threshold above half of the candidates, or
of a neighbourhood with a sparse graph that meets the SecAgg+ rule, and above the largest
colluding corporate groups, cell count, colluders assumed, the noise floor,
ad-hoc rounds and their cap); ``NodeRound`` checks an announce against it before taking part.
``UnmaskGuard`` is what the node remembers across restarts (``node/store.py`` keeps it in
SQLite, ``MemoryGuard`` in memory): the one unmask answer per round and the privacy budget
each release charged; ``previous_answer`` replays that answer to the same request and refuses
a different one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from scfed.dp.ledger import Budget, Charge
from scfed.errors import PrivacyBudgetError, RefusedError
from scfed.groups import groups
from scfed.secagg.graph import check_sparse, planned_dropout
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce, Registry


@dataclass(frozen=True)
class NodePolicy:
    """What a node requires of any round before it takes part.

    ``noise_floor`` is the least noise per unit of sensitivity this node accepts: no single
    release may cost more than 1 / (2 noise_floor^2) of rho, checked for the planned
    survivors at the announce and for the actual survivors before anything is revealed.
    Ad-hoc rounds (cells the operator lists, outside the signed catalogue) are refused
    unless ``adhoc`` is set, and then spend at most ``adhoc_cap`` of the budget a period.
    """

    min_n_min: int = 3
    max_cells: int = 1_000_000
    budget: Budget = field(default_factory=Budget)
    min_t_collude: int = 1
    noise_floor: Fraction = Fraction(2)
    adhoc: bool = False
    adhoc_cap: Fraction = Fraction(1, 20)
    #: The fraction of candidates assumed to collude with the coordinator on a sparse graph.
    sparse_corrupt: Fraction = Fraction(1, 20)

    def check(self, announce: Announce, registry: Registry) -> None:
        """Raise RefusedError or PrivacyBudgetError unless the round meets this policy."""
        n = len(announce.candidates)
        if announce.n_min < self.min_n_min:
            raise RefusedError(f"n_min {announce.n_min} is below this node's {self.min_n_min}")
        if announce.sparse:
            self._check_graph(announce, registry)
        elif 2 * announce.threshold <= n:
            raise RefusedError(f"threshold {announce.threshold} is not above half of {n}")
        if announce.dim > self.max_cells:
            raise RefusedError(f"{announce.dim} cells exceed this node's {self.max_cells}")
        if announce.noise.t_collude < self.min_t_collude:
            raise PrivacyBudgetError(
                f"the round assumes {announce.noise.t_collude} colluders, this node assumes "
                f"{self.min_t_collude}: too little noise"
            )
        firms = groups(registry, announce.candidates)
        if firms.firms < announce.n_min:
            raise RefusedError(
                f"the {n} candidates belong to {firms.firms} corporate groups, fewer than "
                f"n_min {announce.n_min}: members of one group count as one firm"
            )
        if announce.threshold <= firms.colluders(announce.noise.t_collude):
            raise RefusedError(
                f"threshold {announce.threshold} does not exceed the members of the "
                f"{announce.noise.t_collude} largest corporate groups"
            )

    def _check_graph(self, announce: Announce, registry: Registry) -> None:
        """A sparse graph (SecAgg+) must meet the rule for the round's candidates, the
        colluders this node assumes (its own fraction, or the members of the t_collude
        largest corporate groups if more) and the dropouts the noise plans for."""
        n, k, t = len(announce.candidates), announce.neighbours, announce.threshold
        if 2 * t <= k + 1:
            raise RefusedError(f"threshold {t} is not above half of a neighbourhood of {k + 1}")
        try:
            check_sparse(
                n, k, t, self.assumed_corrupt(announce, registry), planned_dropout(announce)
            )
        except ValueError as exc:
            raise RefusedError(f"the round's sparse graph (k {k}, t {t}): {exc}") from None

    def assumed_corrupt(self, announce: Announce, registry: Registry) -> Fraction:
        """The fraction of a round's candidates a sparse graph must withstand colluding with
        the coordinator: this node's own fraction, or the members of the t_collude largest
        corporate groups if more (at least one candidate of a small round)."""
        n = len(announce.candidates)
        colluders = groups(registry, announce.candidates).colluders(announce.noise.t_collude)
        return max(self.sparse_corrupt, Fraction(colluders, n))

    def check_floor(self, rho: Fraction, survivors: int) -> None:
        """PrivacyBudgetError if one release to ``survivors`` would cost past the floor."""
        most = 1 / (2 * self.noise_floor**2)
        if rho > most:
            raise PrivacyBudgetError(
                f"with {survivors} survivors the release would cost rho {float(rho):.4g}, "
                f"more than this node's noise floor allows for one release ({float(most):.4g})"
            )


class UnmaskGuard(Protocol):
    """Durable memory of the one unmask request a node answered per round, and the node's
    privacy ledger: each answer is a release the node is charged for."""

    def answered(self, round_id: bytes) -> tuple[bytes, bytes] | None:
        """(request hash, response envelope bytes) if this round was answered, else None."""

    def spent(self, period: str) -> Fraction:
        """The rho charged so far in a budget period."""

    def charges_in(self, period: str) -> list[Charge]:
        """The charges of a budget period."""

    def released(self, query: str, window: str) -> list[bytes]:
        """The rounds of ``query`` charged in cadence ``window``, in any budget period."""

    def record(self, round_id: bytes, request_hash: bytes, response: bytes, charge: Charge) -> None:
        """Remember the answer and its charge, atomically and durably, before it is sent."""


class MemoryGuard:
    """An UnmaskGuard held in memory, for tests and the in-memory driver."""

    def __init__(self) -> None:
        self._answers: dict[bytes, tuple[bytes, bytes]] = {}
        self.charges: list[Charge] = []

    def answered(self, round_id: bytes) -> tuple[bytes, bytes] | None:
        return self._answers.get(round_id)

    def spent(self, period: str) -> Fraction:
        return sum((c.rho for c in self.charges if c.period == period), Fraction(0))

    def charges_in(self, period: str) -> list[Charge]:
        return [c for c in self.charges if c.period == period]

    def released(self, query: str, window: str) -> list[bytes]:
        return [c.round_id for c in self.charges if (c.query, c.window) == (query, window)]

    def record(self, round_id: bytes, request_hash: bytes, response: bytes, charge: Charge) -> None:
        if round_id not in self._answers:
            self._answers[round_id] = (request_hash, response)
            self.charges.append(charge)


def previous_answer(guard: UnmaskGuard, round_id: bytes, request_hash: bytes) -> Envelope | None:
    """The response already given to this request, None if the round was never answered.

    Raises RefusedError for a different request in an answered round: revealing shares for
    two different survivor lists could unmask a node's input.
    """
    prior = guard.answered(round_id)
    if prior is None:
        return None
    if prior[0] != request_hash:
        raise RefusedError("a different unmask request for this round was already answered")
    return Envelope.from_bytes(prior[1])
