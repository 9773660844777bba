"""A node enforces its own privacy policy and keeps its own ledger (README, Differential privacy).

The scripted round has 5 candidates, 4 of whom share keys and survive; the test announce's
noise is sigma 4 with n_min 3 and t_collude 1, so sigma_l^2 = 8 and, with R = 1, a release
costs rho = 1 / (2 (m - 1) 8): 1/32 at worst (m = 3) and 1/48 for the 4 survivors.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from scfed import wire
from scfed.dp.ledger import Budget, Charge
from scfed.errors import LocalProtocolError, PrivacyBudgetError, RefusedError
from scfed.secagg import MemoryGuard, NodePolicy
from scfed.secagg._table import Phase
from scfed.wire.envelope import Envelope
from tests.unit._support import (
    TEST_NOISE,
    announce_task,
    feed_node,
    five_node_script,
    forge,
    new_node,
    node_in,
    unmask_task,
)

ME = "node-000"
WORST, ACTUAL = Fraction(1, 32), Fraction(1, 48)
script = five_node_script


def _spent(guard: MemoryGuard, rho: Fraction, period: str = "test") -> None:
    guard.charges.append(Charge(bytes(16), "earlier", period, 5, rho))


def _announced(policy: NodePolicy, guard: MemoryGuard, announce: Envelope | None = None) -> None:
    node = new_node(script().fed, ME, guard=guard, policy=policy)
    with pytest.raises(PrivacyBudgetError) as refused:
        node.on_announce(announce or announce_task(script(), ME), lambda _: script().input_of(ME))
    assert node.phase is Phase.ABORTED
    assert guard.charges == [c for c in guard.charges if c.query == "earlier"]
    raise refused.value


def test_a_round_that_would_pass_the_cap_is_refused_at_the_announce() -> None:
    guard = MemoryGuard()
    _spent(guard, Fraction(1, 2) - WORST + Fraction(1, 10**9))
    with pytest.raises(PrivacyBudgetError, match="past the cap"):
        _announced(
            NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2)),
            guard,
        )


def test_exactly_reaching_the_cap_is_allowed() -> None:
    guard = MemoryGuard()
    _spent(guard, Fraction(1, 2) - WORST)
    node = new_node(script().fed, ME, guard=guard)
    node.on_announce(announce_task(script(), ME), lambda _: script().input_of(ME))
    assert node.phase is Phase.ADVERTISING


def test_spending_in_another_period_does_not_count() -> None:
    guard = MemoryGuard()
    _spent(guard, Fraction(1, 2), period="last-year")
    node = new_node(script().fed, ME, guard=guard)
    node.on_announce(announce_task(script(), ME), lambda _: script().input_of(ME))
    assert node.phase is Phase.ADVERTISING


def test_a_round_with_less_noise_than_the_policy_is_refused() -> None:
    # sigma_l^2 = 8 and (n_min - t) = 2: sigma/Delta is 4, so a floor of 4.01 refuses it.
    policy = NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2), noise_floor=Fraction(401, 100))
    with pytest.raises(PrivacyBudgetError, match="this node's noise floor"):
        _announced(policy, MemoryGuard())
    accepted = new_node(
        script().fed,
        ME,
        policy=NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2), noise_floor=Fraction(4)),
    )
    accepted.on_announce(announce_task(script(), ME), lambda _: script().input_of(ME))


def test_a_round_assuming_fewer_colluders_than_the_node_is_refused() -> None:
    with pytest.raises(PrivacyBudgetError, match="assumes 1 colluders, this node assumes 2"):
        _announced(NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2), min_t_collude=2), MemoryGuard())


def test_a_larger_radius_costs_more_and_can_be_refused() -> None:
    # R = 2 quadruples Delta^2: sigma/Delta drops to 2, still at the default floor ...
    wider = dataclasses.replace(script().announce, noise=dataclasses.replace(TEST_NOISE, bound=2))
    envelope = forge(script().fed, wire.ANNOUNCE, wider)
    new_node(script().fed, ME).on_announce(envelope, lambda _: script().input_of(ME))
    # ... and its worst-case cost, 1/8, no longer fits a cap of 1/10.
    with pytest.raises(PrivacyBudgetError, match="past the cap"):
        _announced(
            NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 2), budget=Budget(Fraction(1, 10))),
            MemoryGuard(),
            envelope,
        )


def test_unmasking_charges_the_actual_survivors() -> None:
    guard = MemoryGuard()
    node = node_in(script(), ME, Phase.MASKING, guard)
    node.on_unmask(unmask_task(script(), ME), script().proof(Phase.UNMASKING))
    (charge,) = guard.charges
    assert charge == Charge(script().round_id, "test.inventory", "test", 4, ACTUAL)


def test_unmasking_is_refused_when_other_releases_used_the_budget_meanwhile() -> None:
    guard = MemoryGuard()
    node = node_in(script(), ME, Phase.MASKING, guard)
    _spent(guard, Fraction(1, 2) - ACTUAL + Fraction(1, 10**9))
    with pytest.raises(PrivacyBudgetError, match="past the cap"):
        node.on_unmask(unmask_task(script(), ME), script().proof(Phase.UNMASKING))
    assert guard.answered(script().round_id) is None
    assert node.phase is Phase.ABORTED
    with pytest.raises(RefusedError):
        node.on_unmask(unmask_task(script(), ME), script().proof(Phase.UNMASKING))


def test_a_round_that_aborts_before_unmasking_costs_nothing() -> None:
    guard = MemoryGuard()
    node = node_in(script(), ME, Phase.MASKING, guard)
    node.on_outcome(script().abort())
    assert guard.charges == []
    assert guard.spent("test") == 0


def test_a_figure_beyond_the_plausibility_bound_is_refused_naming_its_cell() -> None:
    bounded = dataclasses.replace(TEST_NOISE, plausible=1000)
    announce = dataclasses.replace(script().announce, noise=bounded)
    node = new_node(script().fed, ME)
    figures = np.array([5, -1001, 7], dtype=np.int64)
    with pytest.raises(LocalProtocolError, match="cell-1: value -1001 grid units is beyond"):
        node.on_announce(forge(script().fed, wire.ANNOUNCE, announce), lambda _: figures)
    assert node.phase is Phase.ABORTED


def test_the_contribution_is_the_input_plus_a_small_noise_share() -> None:
    node = node_in(script(), ME, Phase.ADVERTISING)
    noise = node.contribution - script().input_of(ME)
    assert np.all(np.abs(noise) <= 20 * 8**0.5)  # sigma_l^2 = 8


def test_a_partly_spent_budget_does_not_change_what_the_node_sends() -> None:
    guard = MemoryGuard()
    _spent(guard, Fraction(1, 4))
    node = new_node(script().fed, ME, guard=guard)
    feed_node(node, script(), ME, 0, 4)  # every reply byte-identical to the recorded round
    assert guard.spent("test") == Fraction(1, 4) + ACTUAL
