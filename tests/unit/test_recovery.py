"""Rounds cut short by a stopped coordinator: finished from the log, and audited.

The logs are real in-memory rounds (tests/unit/_audit_support.py) cut where a kill would
cut them. A cut after t unmask responses must be finished with exactly the result and charge
the live round logged; any earlier cut ends in a signed abort; and the auditor fails a log
that released a sum without a result and a charge. The coordinator's start-up recovery is
run on a real store and protocol log in SQLite files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.log import ProtocolLog
from coordinator.recovery import Closed, recover
from coordinator.store import Store
from scfed import wire
from scfed.dp.ledger import parse_rho, period_label
from scfed.errors import LocalProtocolError
from scfed.secagg._table import Phase
from scfed.secagg.recovery import RESTARTED, LogReplay, Recovered
from scfed.wire import envelope as env
from scfed.wire.codec import decode_abort, decode_announce, decode_result
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Abort
from tests.unit._audit_support import (
    WEEK,
    Log,
    assert_caught,
    catalogue_log,
    catalogue_round,
    envelope,
    failed,
    find,
    honest_log,
    resign,
    run_audit,
)
from tests.unit._support import Rng

ALL, DROPOUTS, ABORT, EVERYONE = range(4)


def _indices(log: Log, number: int, type_: str) -> list[int]:
    """Round ``number``'s leaves of one type, in log order."""
    return [i for i in log.round_leaves(number) if envelope(log.leaves[i]).type == type_]


def _announce(log: Log, number: int) -> Envelope:
    return envelope(log.leaves[find(log, number, wire.ANNOUNCE)])


def _round_id(log: Log, number: int) -> bytes:
    return decode_announce(_announce(log, number).body).round_id


def _replay(log: Log, leaves: Sequence[bytes], number: int, period: str) -> Recovered:
    """Replay ``leaves`` and finish round ``number`` as a restarted coordinator would."""
    replay = LogReplay(
        {_round_id(log, number): _announce(log, number)},
        origin=log.origin,
        governance_key=log.governance_key,
        key=log.fed.coordinator_key,
    )
    for index, data in enumerate(leaves):
        replay.read(index, data)
    return replay.finish(_round_id(log, number), period=period)


def _finished(leaves: Sequence[bytes], recovered: Recovered) -> list[bytes]:
    return [*leaves, *(e.to_bytes() for e in recovered.unlogged)]


# ---- the auditor: a release is a release -----------------------------------------------------


def test_the_auditor_fails_a_log_cut_after_t_unmask_responses() -> None:
    log = honest_log()
    responses = _indices(log, EVERYONE, wire.UNMASK_RESPONSE)
    t = decode_announce(_announce(log, EVERYONE).body).threshold
    assert len(responses) > t  # the live round heard every survivor; the log is cut before
    below = run_audit(log, log.leaves[: responses[t - 2] + 1])
    assert below.ok, failed(below)  # t - 1 responses rebuild nothing: a round in progress
    cut = run_audit(log, log.leaves[: responses[t - 1] + 1])
    assert_caught(cut, "release.charged", "uncharged release", f"{t} valid unmask responses")
    assert_caught(cut, "release.charged", "no outcome and no charge")
    assert set(failed(cut)) == {"release.charged"}


def test_the_auditor_fails_a_result_whose_charge_was_cut_off() -> None:
    log = honest_log()
    charge = find(log, EVERYONE, wire.CHARGE)
    report = run_audit(log, log.leaves[:charge])
    assert_caught(report, "release.charged", "uncharged release", "a result and no charge")
    assert_caught(report, "charge.present", "0 different charges")


def test_the_auditor_fails_an_abort_after_a_release() -> None:
    log = honest_log()
    result = find(log, EVERYONE, wire.RESULT)
    announce = _announce(log, EVERYONE)
    body = Abort(_round_id(log, EVERYONE), announce.digest(log.origin), "changed its mind")
    leaves = [*log.leaves[:result], resign(log.fed, wire.ABORT, wire.COORDINATOR, body)]
    assert_caught(run_audit(log, leaves), "release.charged", "uncharged release", "an abort")


def test_a_published_and_charged_release_passes() -> None:
    report = run_audit(honest_log())
    checks = {f.check: f for f in report.rounds[DROPOUTS].findings}
    assert checks["release.charged"].passed
    assert "published at leaf" in checks["release.charged"].detail
    # The abort round never reached its unmask request: there was nothing to release.
    assert "release.charged" not in {f.check for f in report.rounds[ABORT].findings}


# ---- finishing a round from its log ----------------------------------------------------------


def test_a_round_cut_after_t_responses_ends_in_the_live_result_and_charge() -> None:
    log = honest_log()
    responses = _indices(log, EVERYONE, wire.UNMASK_RESPONSE)
    t = decode_announce(_announce(log, EVERYONE).body).threshold
    cut = log.leaves[: responses[t - 1] + 1]
    recovered = _replay(log, cut, EVERYONE, "memory")
    live_result = log.leaves[find(log, EVERYONE, wire.RESULT)]
    live_charge = log.leaves[find(log, EVERYONE, wire.CHARGE)]
    assert recovered.outcome.to_bytes() == live_result  # bit for bit, signature included
    assert recovered.charge is not None
    assert recovered.charge.to_bytes() == live_charge
    assert [e.to_bytes() for e in recovered.unlogged] == [live_result, live_charge]
    assert recovered.outcome_index is None
    report = run_audit(log, _finished(cut, recovered))
    assert report.ok, failed(report)
    assert report.rounds[EVERYONE].recomputed is True


def test_phases_closed_at_their_deadlines_replay() -> None:
    # node-003 never shared keys, node-004 never sent its input: two phases ended at their
    # deadlines, which the replay closes where the log shows the next phase began.
    log = honest_log()
    result = find(log, DROPOUTS, wire.RESULT)
    cut = log.leaves[:result]
    recovered = _replay(log, cut, DROPOUTS, "memory")
    assert recovered.outcome.to_bytes() == log.leaves[result]
    assert decode_result(recovered.outcome.body).survivors == ("node-000", "node-001", "node-002")
    report = run_audit(log, _finished(cut, recovered))
    assert report.ok, failed(report)


def test_a_catalogue_round_is_charged_by_the_policy_it_followed() -> None:
    log = catalogue_log(catalogue_round(WEEK, b"one"))
    responses = _indices(log, 0, wire.UNMASK_RESPONSE)
    t = decode_announce(_announce(log, 0).body).threshold
    cut = log.leaves[: responses[t - 1] + 1]
    live_charge = log.leaves[find(log, 0, wire.CHARGE)]
    recovered = _replay(log, cut, 0, period_label("year", WEEK))
    assert recovered.policy is not None
    assert recovered.policy.version == 1
    assert recovered.charge is not None
    assert recovered.charge.to_bytes() == live_charge  # priced by the grouped rule
    assert run_audit(log, _finished(cut, recovered)).ok


@pytest.mark.parametrize(
    ("cut_after", "what"),
    [
        (wire.ANNOUNCE, "the announce"),
        (wire.ADVERTISE_KEYS, "the first advertised keys"),
        (wire.MASKED_INPUT, "the first masked input"),
        (wire.UNMASK_REQUEST, "the unmask request"),
        (wire.UNMASK_RESPONSE, "t - 1 responses"),
    ],
)
def test_a_round_cut_before_t_responses_is_abandoned(cut_after: str, what: str) -> None:
    log = honest_log()
    t = decode_announce(_announce(log, EVERYONE).body).threshold
    indices = _indices(log, EVERYONE, cut_after)
    stop = indices[t - 2] if cut_after == wire.UNMASK_RESPONSE else indices[0]
    cut = log.leaves[: stop + 1]
    recovered = _replay(log, cut, EVERYONE, "memory")
    assert recovered.outcome.type == wire.ABORT, what
    abort = decode_abort(recovered.outcome.body)
    assert abort.reason == RESTARTED
    assert abort.announce_hash == _announce(log, EVERYONE).digest(log.origin)
    env.verify(
        recovered.outcome, log.origin, wire.ABORT, log.fed.registry.coordinator_key
    )  # signed by the coordinator
    assert recovered.charge is None
    assert recovered.unlogged == (recovered.outcome,)
    report = run_audit(log, _finished(cut, recovered))
    assert report.ok, failed(report)
    assert report.rounds[EVERYONE].outcome == "abort"


def test_an_outcome_logged_before_the_stop_is_not_signed_again() -> None:
    log = honest_log()
    result, charge = find(log, EVERYONE, wire.RESULT), find(log, EVERYONE, wire.CHARGE)
    charge_cut = _replay(log, log.leaves[:charge], EVERYONE, "memory")
    assert charge_cut.outcome_index == result
    assert [e.to_bytes() for e in charge_cut.unlogged] == [log.leaves[charge]]
    whole = _replay(log, log.leaves, EVERYONE, "a later period")
    assert whole.unlogged == ()
    assert whole.charge is not None
    assert whole.charge.to_bytes() == log.leaves[charge]
    aborted = _replay(log, log.leaves, ABORT, "memory")
    assert aborted.outcome.to_bytes() == log.leaves[find(log, ABORT, wire.ABORT)]
    assert aborted.unlogged == ()
    assert aborted.charge is None


def test_a_replay_passes_a_witnessing_step_only_on_a_message_of_its_witnesses() -> None:
    # Cosignatures are not leaves: the first masked input shows the masking step had its
    # quorum. node-003 never shared keys, so no masking task went to it: its masked input
    # (signed with its real key) is no such evidence, and the log does not replay.
    log = honest_log()
    first = _indices(log, DROPOUTS, wire.MASKED_INPUT)[0]
    body = envelope(log.leaves[first]).body
    honest = _replay(log, log.leaves[: first + 1], DROPOUTS, "memory")
    assert decode_abort(honest.outcome.body).reason == RESTARTED
    intruder = resign(log.fed, wire.MASKED_INPUT, "node-003", body)
    with pytest.raises(LocalProtocolError, match="node-003 is no witness of witnessing-masking"):
        _replay(log, [*log.leaves[:first], intruder], DROPOUTS, "memory")


def test_a_round_stopped_while_its_unmask_request_was_witnessed_is_abandoned() -> None:
    # The request was logged, then the witnesses were asked to cosign: no node ever got it.
    log = honest_log()
    request = find(log, EVERYONE, wire.UNMASK_REQUEST)
    replay = LogReplay(
        {_round_id(log, EVERYONE): _announce(log, EVERYONE)},
        origin=log.origin,
        governance_key=log.governance_key,
        key=log.fed.coordinator_key,
    )
    for index, data in enumerate(log.leaves[: request + 1]):
        replay.read(index, data)
    machine = replay._rounds[_round_id(log, EVERYONE)].machine
    assert machine.phase is Phase.WITNESSING_UNMASKING
    assert machine.unmask_request is not None
    assert machine.unmask_request.to_bytes() == log.leaves[request]
    recovered = replay.finish(_round_id(log, EVERYONE), period="memory")
    assert decode_abort(recovered.outcome.body).reason == RESTARTED


def test_a_round_that_never_reached_the_log_is_aborted_but_not_logged() -> None:
    log = honest_log()
    announce = _announce(log, EVERYONE)
    recovered = _replay(log, log.leaves[: find(log, EVERYONE, wire.ANNOUNCE)], EVERYONE, "m")
    assert not recovered.announced
    assert recovered.outcome.type == wire.ABORT
    assert recovered.unlogged == ()
    assert decode_abort(recovered.outcome.body).announce_hash == announce.digest(log.origin)


def test_a_log_the_replay_cannot_reproduce_is_refused() -> None:
    log = honest_log()
    key = Ed25519PrivateKey.from_private_bytes(Rng(b"another coordinator")(32))
    other = replace(log.fed, coordinator_key=key)
    with pytest.raises(LocalProtocolError, match="signed by another key"):
        _replay(replace(log, fed=other), log.leaves, EVERYONE, "memory")


# ---- the coordinator's start-up recovery, on SQLite -------------------------------------------


def _coordinator(log: Log, leaves: Sequence[bytes], path: Path) -> tuple[Store, ProtocolLog]:
    """A coordinator database holding ``leaves`` and the round EVERYONE started, unfinished."""
    store = Store(path)
    protocol_log = ProtocolLog(path, origin=log.origin, key=log.fed.coordinator_key)
    protocol_log.append_many(leaves)
    announce = decode_announce(_announce(log, EVERYONE).body)
    store.round_started(announce.round_id, announce.query, 1.0, _announce(log, EVERYONE))
    return store, protocol_log


def _recover(log: Log, store: Store, protocol_log: ProtocolLog) -> list[Closed]:
    return recover(
        store,
        protocol_log,
        origin=log.origin,
        governance_key=log.governance_key,
        key=log.fed.coordinator_key,
        period="memory",
    )


def test_start_up_logs_stores_and_charges_a_release_once(tmp_path: Path) -> None:
    log = honest_log()
    responses = _indices(log, EVERYONE, wire.UNMASK_RESPONSE)
    t = decode_announce(_announce(log, EVERYONE).body).threshold
    cut = log.leaves[: responses[t - 1] + 1]
    store, protocol_log = _coordinator(log, cut, tmp_path / "coordinator.sqlite")
    (closed,) = _recover(log, store, protocol_log)
    assert protocol_log.size == len(cut) + 2
    assert protocol_log.entry(len(cut)) == log.leaves[find(log, EVERYONE, wire.RESULT)]
    assert protocol_log.entry(len(cut) + 1) == log.leaves[find(log, EVERYONE, wire.CHARGE)]
    assert closed.index == len(cut)
    assert closed.outcome.to_bytes() == log.leaves[find(log, EVERYONE, wire.RESULT)]
    assert store.unfinished() == {}
    (charge,) = store.charges
    rule = run_audit(log).rounds[EVERYONE].charge
    assert rule is not None
    assert charge.rho == parse_rho(rule.logged)
    assert (charge.period, charge.survivors) == ("memory", 6)
    assert _recover(log, store, protocol_log) == []  # nothing is finished twice
    assert protocol_log.size == len(cut) + 2
    store.close()
    protocol_log.close()


def test_start_up_after_a_stop_between_log_and_store_reuses_the_log(tmp_path: Path) -> None:
    log = honest_log()
    charge = find(log, EVERYONE, wire.CHARGE)
    store, protocol_log = _coordinator(log, log.leaves[:charge], tmp_path / "coordinator.sqlite")
    (closed,) = _recover(log, store, protocol_log)
    assert protocol_log.size == charge + 1  # only the charge was missing
    assert closed.index == find(log, EVERYONE, wire.RESULT)
    assert len(store.charges) == 1
    store.close()
    protocol_log.close()


def test_a_catalogue_result_finished_at_start_up_is_released_and_audits(tmp_path: Path) -> None:
    from coordinator.journal import Journal
    from coordinator.rounds import Hub, Rounds
    from scfed.dp.ledger import Budget
    from scfed.policy import seal_policy
    from scfed.wire.codec import decode_release
    from tests.unit._audit_support import catalogue_policy

    log = catalogue_log(catalogue_round(WEEK, b"one"))
    responses = _indices(log, 0, wire.UNMASK_RESPONSE)
    t = decode_announce(_announce(log, 0).body).threshold
    cut = log.leaves[: responses[t - 1] + 1]  # stopped after t responses: it must publish
    path = tmp_path / "coordinator.sqlite"
    store = Store(path)
    protocol_log = ProtocolLog(path, origin=log.origin, key=log.fed.coordinator_key)
    protocol_log.append_many(cut)
    announce = decode_announce(_announce(log, 0).body)
    store.round_started(announce.round_id, announce.query, 1.0, _announce(log, 0))
    policy = catalogue_policy(log.fed)
    signed = seal_policy(policy, log.fed.governance_key)
    rounds = Rounds(
        lambda: (log.fed.registry, log.fed.signed_registry), log.fed.coordinator_key, store,
        Hub(), Journal(protocol_log), phase_timeout_ms=1000, max_cells=10**6, budget=Budget(),
        policy=lambda: (policy, signed),
    )  # fmt: skip
    rounds.recover(log.origin, log.governance_key)
    ((index, release),) = store.releases_from(0)
    body = decode_release(release.body)
    assert (body.entry, body.round_id, body.policy_version) == (
        policy.entries[0].name, announce.round_id, 1,
    )  # fmt: skip
    leaves = [protocol_log.entry(i) for i in range(protocol_log.size)]
    assert leaves[index] == release.to_bytes()
    assert run_audit(log, leaves).ok  # the release recomputes from the finished log
    store.close()
    protocol_log.close()
