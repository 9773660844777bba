"""Catalogue releases: each is charged by the one rule, and an entry is released at most once
per cadence window.

The rounds are real: nodes opted into the signed entry, dated in the round's week, in a
federation where two members are one corporate group (so the rule's groups matter).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from fractions import Fraction

from scfed import wire
from scfed.dp.ledger import parse_rho, rho_text
from scfed.policy import release_rho
from scfed.wire import envelope as env
from scfed.wire.codec import decode_announce, decode_charge
from scfed.wire.messages import ReleaseCharge
from tests.unit._audit_support import (
    ENTRY,
    NEXT_WEEK,
    WEEK,
    assert_caught,
    catalogue_federation,
    catalogue_log,
    catalogue_policy,
    catalogue_round,
    envelope,
    failed,
    find,
    forge,
    run_audit,
)

WEDNESDAY = WEEK + timedelta(days=2)


def test_one_release_per_window_passes_and_is_charged_by_the_rule() -> None:
    log = catalogue_log(catalogue_round(WEEK, b"one"))
    report = run_audit(log)
    assert failed(report) == {}
    (entry,) = report.rounds
    assert (entry.query, entry.cadence, entry.window) == (ENTRY.name, "weekly", "2026-W49")
    assert entry.outcome == "result"
    fed = catalogue_federation()
    announce = decode_announce(envelope(log.leaves[find(log, 0, wire.ANNOUNCE)]).body)
    rule = release_rho(catalogue_policy(fed), announce, fed.registry, entry.survivors)
    assert entry.charge is not None
    assert entry.charge.logged == entry.charge.rule == rho_text(rule)
    old = announce.noise.rho(announce.n_min, len(entry.survivors))
    assert old < rule  # one corporate group pools two members' noise: the old rule undercharges
    (cadence,) = [f for f in report.findings if f.check == "budget.cadence"]
    assert "1 catalogue release in 1 window" in cadence.detail


def test_a_charge_by_the_old_rule_is_caught() -> None:
    log = catalogue_log(catalogue_round(WEEK, b"one"))
    announce = decode_announce(envelope(log.leaves[find(log, 0, wire.ANNOUNCE)]).body)

    def old_rule(sealed: env.Envelope) -> ReleaseCharge:
        charge = decode_charge(sealed.body)
        return replace(charge, rho=rho_text(announce.noise.rho(announce.n_min, charge.survivors)))

    report = run_audit(log, forge(log, find(log, 0, wire.CHARGE), old_rule))
    assert_caught(report, "charge.rho", "undercharged", "5 survivors")


def test_two_releases_in_one_window_fail_naming_the_entry_window_and_rounds() -> None:
    log = catalogue_log(catalogue_round(WEEK, b"one"), catalogue_round(WEDNESDAY, b"two"))
    report = run_audit(log)
    assert all(entry.ok for entry in report.rounds)  # each round on its own is sound
    assert set(failed(report)) == {"budget.cadence"}
    first, second = (entry.round_id[:16] for entry in report.rounds)
    assert_caught(
        report,
        "budget.cadence",
        f"{ENTRY.name} released twice in its weekly window 2026-W49 (rounds {first}, {second})",
    )
    spent = sum((parse_rho(e.charge.rule or "") for e in report.rounds if e.charge), Fraction(0))
    assert report.spent == (("2026", rho_text(spent)),)  # both releases still count


def test_three_releases_in_one_window_are_counted() -> None:
    rounds = (catalogue_round(WEEK, b"one"), catalogue_round(WEDNESDAY, b"two"))
    log = catalogue_log(*rounds, catalogue_round(WEEK + timedelta(days=4), b"three"))
    assert_caught(run_audit(log), "budget.cadence", "released 3 times", "2026-W49")


def test_an_aborted_round_and_its_retry_in_the_window_pass() -> None:
    aborted = catalogue_round(WEEK, b"aborted", abort=True)
    log = catalogue_log(aborted, catalogue_round(WEDNESDAY, b"retry"))
    report = run_audit(log)
    assert failed(report) == {}
    assert [entry.outcome for entry in report.rounds] == ["abort", "result"]
    assert [entry.window for entry in report.rounds] == ["2026-W49", "2026-W49"]


def test_one_release_in_each_of_two_windows_passes() -> None:
    log = catalogue_log(catalogue_round(WEEK, b"one"), catalogue_round(NEXT_WEEK, b"next"))
    report = run_audit(log)
    assert failed(report) == {}
    assert [entry.window for entry in report.rounds] == ["2026-W49", "2026-W50"]
