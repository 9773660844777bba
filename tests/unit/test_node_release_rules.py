"""Which releases a node takes part in: ad-hoc rounds, cadence windows, the current week,
the planned survivors, corporate groups, and the plan of the entries a node opted into.

Every round here runs on the real machines: a ``CoordinatorRound`` and ``NodeRound``s that
exchange the exact signed messages (``_Round``), or the in-memory driver. Catalogue rounds
are of ``ENTRY`` (weekly, k = 3, 80% planned survivors: 4 of 5 candidates, t = 3) in a
federation of five members, dated by default on the Wednesday of 2026-W49. Coordinator
messages a malicious coordinator would change are forged with the real coordinator key.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction

import pytest

from scfed import wire
from scfed.dp.contribution import Ints
from scfed.dp.ledger import Budget, Charge
from scfed.errors import PrivacyBudgetError, RefusedError
from scfed.policy import check_plan, planned_release_rho, release_rho
from scfed.secagg import Identity, MemoryGuard, NodePolicy, NodeRound
from scfed.secagg._table import Phase
from scfed.secagg.coordinator import CoordinatorRound, Outgoing
from scfed.secagg.driver import (
    Federation,
    MemoryLog,
    Witness,
    federation,
    run_round,
    witness_step,
)
from scfed.wire.codec import decode_charge, decode_unmask_request
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce
from scfed.wire.policy import CatalogueEntry, Policy
from scfed.witness import Witnessed
from tests.unit._audit_support import ENTRY, NEXT_WEEK, WEEK
from tests.unit._support import (
    Rng,
    announce_task,
    catalogue_inputs,
    deliver,
    entry_announce,
    feed_node,
    five_node_script,
    forge,
    new_node,
    unmask_task,
    witnessed_task,
)

ME = "node-000"
TODAY = WEEK + timedelta(days=2)  # the Wednesday of 2026-W49
YEAR = "2026"  # the budget period of every catalogue round here (NodePolicy's "year")
EPSILON = Fraction(1, 10**9)


# ---- federations, catalogue rounds and nodes -------------------------------------------------


@functools.cache
def _fed(*grouped: tuple[str, ...]) -> Federation:
    """Five members; each tuple in ``grouped`` is one corporate group, the rest firms alone."""
    base = federation(5, Rng(b"release-rules-federation"))
    group = {m: f"group-{i}" for i, members in enumerate(grouped) for m in members}
    members = tuple(
        replace(m, corporate_group=group.get(m.member_id, m.member_id))
        for m in base.registry.members
    )
    registry = replace(base.registry, members=members)
    return Federation(registry, base.member_keys, base.coordinator_key, base.governance_key)


def _policy(fed: Federation, *entries: CatalogueEntry) -> Policy:
    return Policy(fed.registry.origin, 1, "2026.1", "1", "year", entries or (ENTRY,))


def _announce(fed: Federation, entry: CatalogueEntry, week: date, seed: bytes) -> Announce:
    return entry_announce(fed, entry, week, seed)


def _inputs(fed: Federation, entry: CatalogueEntry, announce: Announce, member: str) -> Ints:
    return catalogue_inputs(fed, entry, announce, member)


def _node(
    fed: Federation,
    catalogue: Policy,
    announce: Announce,
    member: str = ME,
    *,
    guard: MemoryGuard | None = None,
    policy: NodePolicy | None = None,
    today: date = TODAY,
) -> NodeRound:
    """A node opted into every entry of ``catalogue``, dated ``today``."""
    return NodeRound(
        Identity(member, fed.member_keys[member], fed.registry),
        policy or NodePolicy(),
        guard or MemoryGuard(),
        Rng(b"node:" + announce.round_id + member.encode()),
        period=YEAR,
        catalogue=catalogue,
        opt_in=tuple(e.name for e in catalogue.entries),
        today=today,
    )


class _Round:
    """One catalogue round between the real coordinator and a real node per candidate.

    ``guards`` and ``policy`` are what the nodes hold (a fresh guard for a node not in
    ``guards``); a node in ``vanish`` goes silent once it reaches that phase."""

    def __init__(
        self,
        fed: Federation,
        catalogue: Policy,
        announce: Announce,
        *,
        guards: Mapping[str, MemoryGuard] | None = None,
        policy: NodePolicy | None = None,
        today: date = TODAY,
        vanish: Mapping[str, Phase] | None = None,
    ) -> None:
        self.fed, self.catalogue, self.announce = fed, catalogue, announce
        entry = catalogue.entry(announce.query)
        assert entry is not None
        self.entry = entry
        guards = guards or {}
        self.nodes = {
            m: _node(fed, catalogue, announce, m, guard=guards.get(m), policy=policy, today=today)
            for m in announce.candidates
        }
        self.vanish = vanish or {}
        self.coordinator = CoordinatorRound(
            announce, fed.registry, fed.coordinator_key, policy=catalogue
        )
        self.pending: list[Outgoing] = self.coordinator.start()
        self.log, self.cosigned = MemoryLog(fed), b""
        self.witnesses = {
            m: Witness(m, fed.member_keys[m], fed.registry) for m in announce.candidates
        }

    def run(self, until: Phase | None = None) -> None:
        """Deliver tasks until the coordinator enters ``until`` (its tasks not yet delivered)
        or the round ends; the nodes still there cosign the log in its witnessing steps."""
        coordinator = self.coordinator
        while (self.pending or coordinator.witnessing) and coordinator.phase is not until:
            if coordinator.witnessing:
                present = {m: w for m, w in self.witnesses.items() if not self._silent(m)}
                self.pending, self.cosigned = witness_step(coordinator, self.log, present)
                continue
            self.log.coordinator_messages(self.pending)
            replies = []
            for out in self.pending:
                node = self.nodes[out.to]
                if self._silent(out.to):
                    continue
                if isinstance(out.task, Envelope) and out.task.type in (wire.RESULT, wire.ABORT):
                    node.on_outcome(out.task)
                    continue
                inputs = _inputs(self.fed, self.entry, self.announce, out.to)
                proof = self.proof(out.to) if witnessed_task(out.task) else None
                replies.append((out.to, deliver(node, out.task, inputs, proof)))
            self.pending = []
            for member, reply in replies:
                self.pending += coordinator.receive(member, reply)
                self.log.append(reply)
            if not self.pending and not coordinator.phase.terminal and not coordinator.witnessing:
                self.pending = coordinator.close()  # what the phase deadline would do

    def _silent(self, member: str) -> bool:
        return self.vanish.get(member) is self.nodes[member].phase

    def proof(self, member: str = ME) -> Witnessed:
        """The proof the node of ``member`` builds from the latest cosigned checkpoint."""
        return self.witnesses[member].proof(self.cosigned, self.log, self.nodes[member])

    @property
    def request(self) -> Envelope:
        """The unmask request, once the coordinator has made it (``run(Phase.UNMASKING)``)."""
        assert self.coordinator.phase is Phase.UNMASKING
        task = self.pending[0].task
        assert isinstance(task, Envelope)
        assert task.type == wire.UNMASK_REQUEST
        return task

    @property
    def survivors(self) -> tuple[str, ...]:
        return decode_unmask_request(self.request.body).survivors


def _announce_to(node: NodeRound, fed: Federation, announce: Announce) -> None:
    """Hand ``node`` the coordinator-signed ``announce``."""
    entry = node.catalogue.entry(announce.query) if node.catalogue is not None else None
    assert entry is not None
    node.on_announce(
        forge(fed, wire.ANNOUNCE, announce),
        lambda a: _inputs(fed, entry, a, node.identity.member_id),
    )


def _refused_at_announce(
    node: NodeRound, fed: Federation, announce: Announce, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        _announce_to(node, fed, announce)
    assert node.phase is Phase.ABORTED


def _refused_at_unmask(
    node: NodeRound, request: Envelope, guard: MemoryGuard, error: type[Exception], match: str,
    *, proof: Witnessed,
) -> None:  # fmt: skip
    """The node refuses the request (with a valid witness ``proof``) before revealing
    anything: no answer, no new charge."""
    charges = list(guard.charges)
    round_id = node.announce.round_id
    with pytest.raises(error, match=match):
        node.on_unmask(request, proof)
    assert node.phase is Phase.ABORTED
    assert guard.answered(round_id) is None
    assert guard.charges == charges
    with pytest.raises(RefusedError, match="out of order"):  # and never answers it later
        node.on_unmask(request, proof)


def _charge(guard: MemoryGuard, rho: Fraction, window: str, period: str = YEAR) -> None:
    """An earlier release: ad hoc when ``window`` is "", else of another catalogue entry."""
    guard.charges.append(Charge(bytes(16), "earlier", period, 5, rho, window))


# ---- 1. ad-hoc rounds ------------------------------------------------------------------------

# The scripted ad-hoc round (five_node_script) plans for n_min = 3: rho 1/32 at the announce,
# and 1/48 for the 4 survivors it unmasks (see test_node_privacy).
WORST, ACTUAL = Fraction(1, 32), Fraction(1, 48)


def _adhoc_announce(policy: NodePolicy, guard: MemoryGuard | None = None) -> NodeRound:
    script = five_node_script()
    node = new_node(script.fed, ME, guard=guard, policy=policy)
    node.on_announce(announce_task(script, ME), lambda _: script.input_of(ME))
    return node


def test_the_default_policy_refuses_an_adhoc_round() -> None:
    assert five_node_script().announce.week == ""  # cells the operator lists: ad hoc
    with pytest.raises(RefusedError, match=r"'test\.inventory' is an ad-hoc round"):
        _adhoc_announce(NodePolicy())


def test_a_policy_that_takes_adhoc_rounds_accepts_one() -> None:
    assert _adhoc_announce(NodePolicy(adhoc=True)).phase is Phase.ADVERTISING


def test_an_adhoc_round_past_the_adhoc_cap_is_refused_at_the_announce() -> None:
    policy = NodePolicy(adhoc=True)  # ad-hoc cap 1/20 of the default 1/2 a year
    guard = MemoryGuard()
    _charge(guard, policy.adhoc_cap - WORST + EPSILON, "", period="test")
    with pytest.raises(PrivacyBudgetError, match=r"past this node's cap for them of 0\.05"):
        _adhoc_announce(policy, guard)
    assert len(guard.charges) == 1


def test_adhoc_rounds_may_reach_the_adhoc_cap_exactly() -> None:
    policy = NodePolicy(adhoc=True)
    guard = MemoryGuard()
    _charge(guard, policy.adhoc_cap - WORST, "", period="test")
    assert _adhoc_announce(policy, guard).phase is Phase.ADVERTISING


def test_catalogue_charges_do_not_count_toward_the_adhoc_cap() -> None:
    policy = NodePolicy(adhoc=True)
    guard = MemoryGuard()
    _charge(guard, Fraction(4, 10), "2026-W48", period="test")  # 8 ad-hoc caps' worth
    assert policy.budget.cap - Fraction(4, 10) >= WORST  # the period's cap still holds it
    assert _adhoc_announce(policy, guard).phase is Phase.ADVERTISING


def test_an_adhoc_round_past_the_adhoc_cap_by_the_unmask_is_refused_there() -> None:
    script = five_node_script()
    guard = MemoryGuard()
    node = new_node(script.fed, ME, guard, NodePolicy(adhoc=True, adhoc_cap=Fraction(1, 10)))
    feed_node(node, script, ME, 0, 3)  # up to the masked input, as recorded
    _charge(guard, Fraction(1, 10) - ACTUAL + EPSILON, "", period="test")  # meanwhile
    _refused_at_unmask(
        node, unmask_task(script, ME), guard, PrivacyBudgetError, "ad-hoc release costing",
        proof=script.proof(Phase.UNMASKING),
    )  # fmt: skip


# ---- 2. cadence windows ----------------------------------------------------------------------


def test_a_second_round_of_an_entry_in_the_week_it_was_released_is_refused() -> None:
    fed = _fed()
    policy, guard = _policy(fed), MemoryGuard()
    first = _Round(fed, policy, _announce(fed, ENTRY, WEEK, b"first"), guards={ME: guard})
    first.run()
    assert first.nodes[ME].phase is Phase.FINISHED
    assert [c.window for c in guard.charges] == ["2026-W49"]
    second = _announce(fed, ENTRY, WEEK, b"second")
    _refused_at_announce(
        _node(fed, policy, second, guard=guard),
        fed,
        second,
        RefusedError,
        "already took part in a release of weekly-demand-capacity in its weekly window 2026-W49",
    )
    # A node that was not charged for the first round takes part in the second.
    _announce_to(_node(fed, policy, second), fed, second)


def test_of_two_rounds_joined_in_one_week_only_the_first_unmasked_is_answered() -> None:
    fed = _fed()
    policy, guard = _policy(fed), MemoryGuard()
    first = _Round(fed, policy, _announce(fed, ENTRY, WEEK, b"first"), guards={ME: guard})
    second = _Round(fed, policy, _announce(fed, ENTRY, WEEK, b"second"), guards={ME: guard})
    first.run(Phase.UNMASKING)
    second.run(Phase.UNMASKING)  # joined: nothing was charged for the week yet
    first.run()
    assert first.coordinator.phase is Phase.FINISHED
    (charge,) = guard.charges
    assert (charge.round_id, charge.window) == (first.announce.round_id, "2026-W49")
    _refused_at_unmask(
        second.nodes[ME],
        second.request,
        guard,
        RefusedError,
        "already took part in a release of weekly-demand-capacity in its weekly window 2026-W49",
        proof=second.proof(),
    )


def test_a_round_that_aborted_before_unmasking_leaves_its_window_open() -> None:
    fed = _fed()
    policy, guard = _policy(fed), MemoryGuard()
    announce = _announce(fed, ENTRY, WEEK, b"aborted")
    vanish = dict.fromkeys(announce.candidates[2:], Phase.ADVERTISING)
    aborted = _Round(fed, policy, announce, guards={ME: guard}, vanish=vanish)
    aborted.run()
    assert aborted.coordinator.phase is Phase.ABORTED
    assert aborted.nodes[ME].phase is Phase.ABORTED
    assert guard.charges == []
    retry = _Round(fed, policy, _announce(fed, ENTRY, WEEK, b"retry"), guards={ME: guard})
    retry.run()
    assert retry.coordinator.phase is Phase.FINISHED
    assert retry.nodes[ME].phase is Phase.FINISHED
    assert [(c.round_id, c.window) for c in guard.charges] == [
        (retry.announce.round_id, "2026-W49")
    ]


def test_the_next_weeks_window_is_open_after_a_release() -> None:
    fed = _fed()
    policy, guard = _policy(fed), MemoryGuard()
    _Round(fed, policy, _announce(fed, ENTRY, WEEK, b"this"), guards={ME: guard}).run()
    following = _Round(
        fed,
        policy,
        _announce(fed, ENTRY, NEXT_WEEK, b"next"),
        guards={ME: guard},
        today=NEXT_WEEK + timedelta(days=2),
    )
    following.run()
    assert following.nodes[ME].phase is Phase.FINISHED
    assert [c.window for c in guard.charges] == ["2026-W49", "2026-W50"]
    assert {c.period for c in guard.charges} == {YEAR}


MONTHLY = replace(ENTRY, name="monthly-demand-capacity", cadence="monthly")


def test_a_monthly_entry_is_released_once_a_month() -> None:
    fed = _fed()
    policy, guard = _policy(fed, MONTHLY), MemoryGuard()
    first_week, second_week = date(2026, 11, 2), date(2026, 11, 16)  # two Mondays of November
    first = _Round(
        fed,
        policy,
        _announce(fed, MONTHLY, first_week, b"nov-1"),
        guards={ME: guard},
        today=first_week,
    )
    first.run()
    assert [c.window for c in guard.charges] == ["2026-11"]
    second = _announce(fed, MONTHLY, second_week, b"nov-2")
    _refused_at_announce(
        _node(fed, policy, second, guard=guard, today=second_week),
        fed,
        second,
        RefusedError,
        "release of monthly-demand-capacity in its monthly window 2026-11",
    )
    december = date(2026, 12, 7)
    next_month = _announce(fed, MONTHLY, december, b"dec")
    node = _node(fed, policy, next_month, guard=guard, today=december)
    _announce_to(node, fed, next_month)
    assert node.phase is Phase.ADVERTISING


QUARTERLY = replace(ENTRY, name="quarterly-demand-capacity", cadence="quarterly")


def test_a_quarterly_entry_is_released_once_a_quarter_under_a_monthly_budget() -> None:
    # The cadence window (the quarter) spans three of the node's budget periods (months):
    # the release in October must still close the window for November.
    fed = _fed()
    policy, guard = _policy(fed, QUARTERLY), MemoryGuard()
    monthly = NodePolicy(budget=Budget(Fraction(1, 2), "month"))
    october, november = date(2026, 10, 5), date(2026, 11, 2)
    first = _Round(
        fed,
        policy,
        _announce(fed, QUARTERLY, october, b"oct"),
        guards={ME: guard},
        policy=monthly,
        today=october,
    )
    first.run()
    assert [(c.period, c.window) for c in guard.charges] == [("2026-10", "2026-Q4")]
    second = _announce(fed, QUARTERLY, november, b"nov")
    _refused_at_announce(
        _node(fed, policy, second, guard=guard, policy=monthly, today=november),
        fed,
        second,
        RefusedError,
        "release of quarterly-demand-capacity in its quarterly window 2026-Q4",
    )


# ---- 3. the current week ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("week", "today"),
    [
        pytest.param(NEXT_WEEK, TODAY, id="next-week"),
        pytest.param(WEEK - timedelta(weeks=1), TODAY, id="last-week"),
        pytest.param(WEEK, WEEK + timedelta(days=8), id="a-week-late"),
        pytest.param(WEEK, WEEK - timedelta(days=2), id="two-days-early"),
    ],
)
def test_a_round_for_another_week_than_the_current_one_is_refused(week: date, today: date) -> None:
    fed = _fed()
    policy = _policy(fed)
    announce = _announce(fed, ENTRY, week, b"other-week")
    _refused_at_announce(
        _node(fed, policy, announce, today=today),
        fed,
        announce,
        RefusedError,
        f"releases the week of {week}, not the current week",
    )


@pytest.mark.parametrize(
    "today",
    [WEEK, WEEK + timedelta(days=6), WEEK - timedelta(days=1), WEEK + timedelta(days=7)],
    ids=["monday", "sunday", "a-day-early", "a-day-late"],
)
def test_a_round_of_the_current_week_is_accepted_with_a_day_of_skew(today: date) -> None:
    fed = _fed()
    policy = _policy(fed)
    announce = _announce(fed, ENTRY, WEEK, b"this-week")
    node = _node(fed, policy, announce, today=today)
    _announce_to(node, fed, announce)
    assert node.phase is Phase.ADVERTISING


# ---- 4. planned survivors --------------------------------------------------------------------


@pytest.mark.parametrize("planned", [0, 3, 5])
def test_an_announce_must_plan_for_the_entrys_share_of_its_candidates(planned: int) -> None:
    fed = _fed()
    policy = _policy(fed)
    assert ENTRY.planned(5) == 4  # 80% of 5 candidates
    honest = _announce(fed, ENTRY, WEEK, b"planned")
    announce = replace(honest, noise=replace(honest.noise, planned=planned))
    _refused_at_announce(
        _node(fed, policy, announce),
        fed,
        announce,
        RefusedError,
        f"plans its noise for {planned} survivors, catalogue entry weekly-demand-capacity "
        "for 4 of 5 candidates",
    )
    accepted = _node(fed, policy, honest)
    _announce_to(accepted, fed, honest)
    assert accepted.phase is Phase.ADVERTISING


#: All five members are firms of their own: 4 planned survivors leave 3 honest ones, the
#: quorum of 3 leaves 2, which costs half as much again; a floor of 5 allows rho 1/50.
FLOOR = NodePolicy(noise_floor=Fraction(5))
FEW = {"node-003": Phase.SHARING, "node-004": Phase.SHARING}  # never send a masked input
PLANNED = {"node-004": Phase.SHARING}


def _planned_round(vanish: Mapping[str, Phase], policy: NodePolicy, guard: MemoryGuard) -> _Round:
    fed = _fed()
    catalogue = _policy(fed)
    announce = _announce(fed, ENTRY, WEEK, b"survivors")
    unmasking = _Round(fed, catalogue, announce, guards={ME: guard}, policy=policy, vanish=vanish)
    unmasking.run(Phase.UNMASKING)
    return unmasking


def test_the_costs_of_the_planned_and_the_few_survivors() -> None:
    few = _planned_round(FEW, FLOOR, MemoryGuard())
    planned = _planned_round(PLANNED, FLOOR, MemoryGuard())
    announce, registry, catalogue = few.announce, few.fed.registry, few.catalogue
    assert few.survivors == ("node-000", "node-001", "node-002")
    assert len(planned.survivors) == announce.noise.planned == 4
    at_announce = planned_release_rho(catalogue, announce, registry)
    assert release_rho(catalogue, announce, registry, planned.survivors) == at_announce
    cost = release_rho(catalogue, announce, registry, few.survivors)
    assert cost == at_announce * Fraction(3, 2)  # 2 honest survivors instead of 3
    assert at_announce <= Fraction(1, 50) < cost


def test_too_few_survivors_for_the_noise_floor_are_refused_before_anything_is_revealed() -> None:
    guard = MemoryGuard()
    unmasking = _planned_round(FEW, FLOOR, guard)
    _refused_at_unmask(
        unmasking.nodes[ME],
        unmasking.request,
        guard,
        PrivacyBudgetError,
        r"with 3 survivors the release would cost rho 0\.02\d*, more than this node's noise "
        r"floor allows for one release \(0\.02\)",
        proof=unmasking.proof(),
    )


def test_too_few_survivors_for_the_budget_left_are_refused_before_anything_is_revealed() -> None:
    fed = _fed()
    catalogue, policy = _policy(fed), NodePolicy()
    at_announce = planned_release_rho(
        catalogue, _announce(fed, ENTRY, WEEK, b"survivors"), fed.registry
    )
    guard = MemoryGuard()
    _charge(guard, policy.budget.cap - at_announce, "2026-W48")  # the planned release fits
    unmasking = _planned_round(FEW, policy, guard)
    _refused_at_unmask(
        unmasking.nodes[ME], unmasking.request, guard, PrivacyBudgetError, "past the cap",
        proof=unmasking.proof(),
    )  # fmt: skip


def test_the_planned_survivors_are_answered_and_charged_for_exactly() -> None:
    guard = MemoryGuard()
    unmasking = _planned_round(PLANNED, FLOOR, guard)
    unmasking.run()
    assert unmasking.coordinator.phase is Phase.FINISHED
    assert unmasking.nodes[ME].phase is Phase.FINISHED
    announce, survivors = unmasking.announce, ("node-000", "node-001", "node-002", "node-003")
    (charge,) = guard.charges
    rho = release_rho(unmasking.catalogue, announce, unmasking.fed.registry, survivors)
    assert charge == Charge(announce.round_id, ENTRY.name, YEAR, 4, rho, "2026-W49")
    assert guard.answered(announce.round_id) is not None


def test_the_planned_survivors_fit_a_budget_the_announce_just_fits() -> None:
    fed = _fed()
    catalogue, policy = _policy(fed), NodePolicy()
    at_announce = planned_release_rho(
        catalogue, _announce(fed, ENTRY, WEEK, b"survivors"), fed.registry
    )
    guard = MemoryGuard()
    _charge(guard, policy.budget.cap - at_announce, "2026-W48")
    unmasking = _planned_round(PLANNED, policy, guard)
    unmasking.run()
    assert unmasking.nodes[ME].phase is Phase.FINISHED
    assert guard.spent(YEAR) == policy.budget.cap


# ---- 5. corporate groups ---------------------------------------------------------------------

PAIR = ("node-000", "node-001")  # one corporate group of two sites
TRIO = ("node-000", "node-001", "node-002")


def test_candidates_of_fewer_corporate_groups_than_n_min_are_refused() -> None:
    fed = _fed(TRIO, ("node-003", "node-004"))  # five members, two firms
    policy = _policy(fed)
    announce = _announce(fed, ENTRY, WEEK, b"two-firms")
    _refused_at_announce(
        _node(fed, policy, announce),
        fed,
        announce,
        RefusedError,
        "the 5 candidates belong to 2 corporate groups, fewer than n_min 3",
    )


def test_a_threshold_not_above_the_largest_groups_members_is_refused() -> None:
    fed = _fed(TRIO)  # three firms: one of three sites and two alone
    policy = _policy(fed)
    announce = _announce(fed, ENTRY, WEEK, b"threshold")
    assert announce.threshold == 3
    _refused_at_announce(
        _node(fed, policy, announce),
        fed,
        announce,
        RefusedError,
        "threshold 3 does not exceed the members of the 1 largest corporate groups",
    )
    higher = replace(announce, threshold=4)
    node = _node(fed, policy, higher)
    _announce_to(node, fed, higher)
    assert node.phase is Phase.ADVERTISING


def test_survivors_of_fewer_corporate_groups_than_n_min_are_refused_at_the_unmask() -> None:
    fed = _fed(PAIR)  # four firms among the candidates: the round is announced
    guard = MemoryGuard()
    unmasking = _Round(
        fed, _policy(fed), _announce(fed, ENTRY, WEEK, b"groups"), guards={ME: guard}, vanish=FEW
    )
    unmasking.run(Phase.UNMASKING)
    assert unmasking.survivors == ("node-000", "node-001", "node-002")
    _refused_at_unmask(
        unmasking.nodes[ME],
        unmasking.request,
        guard,
        RefusedError,
        "the 3 survivors belong to 2 corporate groups, fewer than n_min 3",
        proof=unmasking.proof(),
    )


def test_a_group_of_two_among_the_survivors_is_charged_as_two_colluders() -> None:
    fed, plain = _fed(PAIR), _fed()
    catalogue, guard = _policy(fed), MemoryGuard()
    announce = _announce(fed, ENTRY, WEEK, b"pair")
    released = _Round(fed, catalogue, announce, guards={ME: guard})
    released.run()
    assert released.nodes[ME].phase is Phase.FINISHED
    survivors = announce.candidates
    (charge,) = guard.charges
    rho = release_rho(catalogue, announce, fed.registry, survivors)
    assert charge.rho == rho
    assert rho == announce.noise.rho(
        3, 5, colluders=2, group=2, overlap=ENTRY.overlap
    )  # the pair pools its noise
    apart = release_rho(catalogue, announce, plain.registry, survivors)
    assert apart == announce.noise.rho(3, 5, colluders=1, group=1, overlap=ENTRY.overlap)
    assert rho > apart
    # The coordinator of the in-memory driver charges the same for the whole round.
    inputs = {m: _inputs(fed, ENTRY, announce, m) for m in survivors}
    report = run_round(
        fed, announce, inputs, Rng(b"driver"), policy=NodePolicy(), catalogue=catalogue,
        today=TODAY,
    )  # fmt: skip
    result = report.result
    assert result is not None
    assert result.survivors == survivors
    logged = decode_charge(Envelope.from_bytes(report.log[-1]).body)
    assert Fraction(logged.rho) == rho


# ---- 6. the plan check -----------------------------------------------------------------------

#: ENTRY costs rho_planned ~ 0.0147 a release: 53 weekly releases are ~ 0.78 a year, past the
#: default cap of 1/2; twice the sigmas cost a quarter, ~ 0.195 a year; 12 monthly ~ 0.177.
WIDE = replace(
    ENTRY,
    name="weekly-wide",
    noise=replace(ENTRY.noise, sigma="24", presence_sigma="32", concentration_sigma="120"),
)


def _plan_policy() -> Policy:
    return _policy(_fed(), ENTRY, MONTHLY, WIDE)


def test_a_plan_past_the_cap_is_refused_naming_its_entries() -> None:
    assert 53 * ENTRY.rho_planned() > Budget().cap
    with pytest.raises(
        PrivacyBudgetError,
        match=r"policy version 1 plans rho 0\.9\d* a year for the entries this node opted "
        r"into \(weekly-demand-capacity 53 x 0\.01\d*, monthly-demand-capacity 12 x 0\.01\d*\), "
        r"past its cap 0\.5",
    ):
        check_plan(_plan_policy(), [ENTRY.name, MONTHLY.name], Budget())
    with pytest.raises(PrivacyBudgetError, match="weekly-demand-capacity 53 x"):
        check_plan(_plan_policy(), [ENTRY.name], Budget())


def test_a_plan_that_fits_passes_and_entries_not_opted_into_do_not_count() -> None:
    plan = check_plan(_plan_policy(), [WIDE.name, MONTHLY.name, "not-in-the-catalogue"], Budget())
    assert plan.lines == (
        (MONTHLY.name, "monthly", 12, ENTRY.rho_planned()),
        (WIDE.name, "weekly", 53, WIDE.rho_planned()),
    )
    assert plan.total == 12 * ENTRY.rho_planned() + 53 * WIDE.rho_planned() <= Budget().cap
    assert check_plan(_plan_policy(), [], Budget()).total == 0


def test_the_plan_counts_the_windows_of_the_budget_period() -> None:
    quarter = Budget(Fraction(1, 5), "quarter")
    plan = check_plan(_plan_policy(), [WIDE.name, MONTHLY.name], quarter)
    assert [n for _, _, n, _ in plan.lines] == [3, 14]
    with pytest.raises(PrivacyBudgetError, match=r"a quarter .*weekly-demand-capacity 14 x"):
        check_plan(_plan_policy(), [ENTRY.name], quarter)
