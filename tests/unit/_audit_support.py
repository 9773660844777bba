"""Real protocol logs for the auditor's tests, and what a malicious coordinator does to them.

``honest_log`` runs four in-memory rounds of one federation (all survive; dropouts; an abort;
every member a candidate) and concatenates their leaves after one governance-signed registry.
The forging helpers re-sign changed messages with the coordinator's real key, or a member's,
as an attacker holding that key could. Nothing here opens a socket; ``write_log_dir`` writes
an exported log directory for the command-line tests. ``run_audit`` audits a log under a fresh
checkpoint and ``assert_caught`` asserts the named finding failed for the reason given.

``catalogue_round`` runs a round of one signed catalogue entry (weekly cadence) with the real
node and coordinator machines, each node opted into the entry and dated in the round's week,
in a federation where two members belong to one corporate group; ``catalogue_log`` puts such
rounds after the governance-signed registry and policy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor import AuditReport, Finding, audit
from scfed import note, tlog, wire
from scfed.checkpoint import Checkpoint
from scfed.dp.contribution import Ints
from scfed.dp.ledger import Budget, period_label
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import VerificationError
from scfed.policy import seal_policy
from scfed.secagg import Identity, MemoryGuard, NodePolicy, NodeRound
from scfed.secagg._table import Phase
from scfed.secagg.coordinator import CoordinatorRound
from scfed.secagg.driver import (
    Federation,
    MemoryLog,
    Witness,
    federation,
    run_round,
    witness_step,
)
from scfed.wire import envelope as env
from scfed.wire.codec import encode
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce, Domain, Member
from scfed.wire.policy import CatalogueEntry, Policy
from tests.unit._support import (
    Rng,
    catalogue_inputs,
    deliver,
    entry_announce,
    int64_vector,
    make_announce,
    witnessed_task,
)

DIM = 4


@dataclass(frozen=True)
class Log:
    fed: Federation
    leaves: tuple[bytes, ...]
    #: Where each round's leaves start, in order: all survive, dropouts, abort, everyone.
    starts: tuple[int, ...]

    @property
    def origin(self) -> str:
        return self.fed.registry.origin

    @property
    def governance_key(self) -> bytes:
        return self.fed.governance_key.public_key().public_bytes_raw()

    def round_leaves(self, number: int) -> range:
        stops = (*self.starts[1:], len(self.leaves))
        return range(self.starts[number], stops[number])


def _round(
    fed: Federation,
    candidates: tuple[str, ...],
    seed: bytes,
    vanish: dict[str, Phase] | None = None,
) -> list[bytes]:
    threshold = len(candidates) // 2 + 1  # nodes refuse t <= n / 2
    announce = make_announce(fed, candidates, threshold, 3, dim=DIM, round_seed=seed)
    inputs = {m: int64_vector(seed + m.encode(), DIM) for m in candidates}
    return run_round(fed, announce, inputs, Rng(b"run:" + seed), vanish_after=vanish).log


@functools.cache
def honest_log() -> Log:
    """Four rounds of six members: all five candidates survive; node-003 vanishes after
    advertising and node-004 after sharing keys (dropped); three vanish and the round aborts;
    all six take part, so six responses answer a t = 4 request."""
    fed = federation(6, Rng(b"audit-federation"))
    five = tuple(sorted(fed.member_keys))[:5]
    logs = [
        _round(fed, five, b"all"),
        _round(fed, five, b"dropouts", {"node-003": Phase.ADVERTISING, "node-004": Phase.SHARING}),
        _round(fed, five, b"abort", dict.fromkeys(five[2:], Phase.ADVERTISING)),
        _round(fed, tuple(sorted(fed.member_keys)), b"everyone"),
    ]
    leaves, starts = [logs[0][0]], []
    for log in logs:
        starts.append(len(leaves))
        leaves += log[1:]
    return Log(fed, tuple(leaves), tuple(starts))


def run_audit(
    log: Log,
    leaves: list[bytes] | tuple[bytes, ...] | None = None,
    *,
    older: tuple[bytes, ...] = (),
    budget: Budget | None = None,
) -> AuditReport:
    """Audit ``leaves`` (the log's own by default) under a fresh, honest checkpoint of them."""
    leaves = log.leaves if leaves is None else leaves
    return audit(
        leaves,
        checkpoint=checkpoint(log.fed, leaves),
        governance_key=log.governance_key,
        origin=log.origin,
        older_checkpoints=older,
        budget=budget or Budget(),
    )


def failed(report: AuditReport) -> dict[str, list[str]]:
    """Failed check name -> reasons, across the log and every round."""
    found: dict[str, list[str]] = {}
    findings: list[Finding] = list(report.findings)
    for entry in report.rounds:
        findings += entry.findings
    for finding in findings:
        if not finding.passed:
            found.setdefault(finding.check, []).append(finding.detail)
    return found


def assert_caught(report: AuditReport, check: str, *words: str) -> None:
    reasons = failed(report).get(check)
    assert reasons, f"{check} passed; failures: {failed(report)}"
    assert any(all(w in r for w in words) for r in reasons), reasons
    with pytest.raises(VerificationError, match=check.replace(".", r"\.")):
        report.check()


def checkpoint(fed: Federation, leaves: Sequence[bytes], size: int | None = None) -> bytes:
    """The coordinator-signed checkpoint of the first ``size`` leaves (all by default)."""
    size = len(leaves) if size is None else size
    root = tlog.root_hash([tlog.leaf_hash(leaf) for leaf in leaves[:size]])
    text = Checkpoint(fed.registry.origin, size, root).format()
    return note.sign_note(text, [note.Signer(fed.registry.origin, fed.coordinator_key)])


def envelope(data: bytes) -> Envelope:
    return Envelope.from_bytes(data)


def find(log: Log, number: int, type_: str, signer: str | None = None) -> int:
    """The index of round ``number``'s first leaf of this type (and signer)."""
    for index in log.round_leaves(number):
        sealed = envelope(log.leaves[index])
        if sealed.type == type_ and signer in (None, sealed.signer):
            return index
    raise AssertionError(f"round {number} has no {type_} from {signer}")


def resign(fed: Federation, type_: str, signer: str, body: Domain | bytes) -> bytes:
    """A message signed with the real key of ``signer`` (the coordinator's, or a member's)."""
    key = fed.coordinator_key if signer == wire.COORDINATOR else fed.member_keys[signer]
    raw = body if isinstance(body, bytes) else encode(body)
    return env.seal(key, type_, signer, fed.registry.origin, raw).to_bytes()


def forge(log: Log, index: int, change: Callable[[Envelope], Domain]) -> list[bytes]:
    """The log's leaves with leaf ``index`` changed and re-signed by its own signer's key."""
    sealed = envelope(log.leaves[index])
    leaves = list(log.leaves)
    leaves[index] = resign(log.fed, sealed.type, sealed.signer, change(sealed))
    return leaves


def sybil_log() -> Log:
    """A round in which the coordinator invented node-999: a member its own registry lists
    but the governance-signed registry does not; everything else is a real round."""
    base = honest_log().fed
    key = Ed25519PrivateKey.from_private_bytes(Rng(b"sybil")(32))
    sybil = Member("node-999", "node-999", key.public_key().public_bytes_raw(), bytes(32), "x")
    registry = replace(base.registry, members=(*base.registry.members, sybil))
    fed = Federation(
        registry, {**base.member_keys, "node-999": key}, base.coordinator_key, base.governance_key
    )
    candidates = ("node-000", "node-001", "node-002", "node-999")
    log = _round(fed, candidates, b"sybil")
    leaves = [base.signed_registry.to_bytes(), *log[1:]]
    return Log(base, tuple(leaves), (1,))


def substitute(value: bytes) -> bytes:
    """Different bytes of the same length."""
    return bytes([value[0] ^ 1]) + value[1:]


def shifted_sums(sums: bytes) -> bytes:
    """The sums with the first one changed by one."""
    values = np.frombuffer(sums, dtype="<i8").copy()
    values[0] += 1
    return values.tobytes()


def write_log_dir(path: Path, leaves: Sequence[bytes], note_bytes: bytes) -> None:
    """An exported log directory: ``checkpoint`` the note, ``entries`` length-prefixed leaves."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "checkpoint").write_bytes(note_bytes)
    (path / "entries").write_bytes(b"".join(len(x).to_bytes(4, "big") + x for x in leaves))


# ---- catalogue rounds ------------------------------------------------------------------------

#: The Monday of ISO week 2026-W49, and the Monday after it.
WEEK = date(2026, 11, 30)
NEXT_WEEK = WEEK + timedelta(weeks=1)
KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
ENTRY = CatalogueEntry(
    name="weekly-demand-capacity",
    purpose="where demand will exceed capacity",
    metric="demand-capacity",
    commodities=(KYUSHU,),
    horizon_weeks=1,
    noise=Noise(
        "12",
        1,
        MAGNITUDE,
        1,
        "1",
        10**6,
        disclosure=True,
        presence_sigma="16",
        concentration_sigma="60",
    ),
    min_contributors=3,
    dominance="0.6",
    presence_threshold=10,
    concentration_scale=1000,
    recipients=("members",),
)
#: node-000 and node-001 are sites of one corporate group: one firm.
GROUPED = ("node-000", "node-001")


@functools.cache
def catalogue_federation() -> Federation:
    """Five members, two of them in corporate group "acme"."""
    base = federation(5, Rng(b"catalogue-federation"))
    members = tuple(
        replace(m, corporate_group="acme") if m.member_id in GROUPED else m
        for m in base.registry.members
    )
    registry = replace(base.registry, members=members)
    return Federation(registry, base.member_keys, base.coordinator_key, base.governance_key)


def catalogue_policy(fed: Federation) -> Policy:
    return Policy(fed.registry.origin, 1, "2026.1", "1", "year", (ENTRY,))


def catalogue_announce(fed: Federation, policy: Policy, week: date, seed: bytes) -> Announce:
    """The announce a coordinator makes for a round of the policy's entry in ``week``."""
    return entry_announce(fed, policy.entries[0], week, seed)


def _figures(fed: Federation, announce: Announce, member: str) -> Ints:
    return catalogue_inputs(fed, ENTRY, announce, member)


@functools.cache
def catalogue_round(day: date, seed: bytes, *, abort: bool = False) -> tuple[bytes, ...]:
    """The leaves of one round of ENTRY on ``day`` (its week's round), every node dated
    ``day``; with ``abort``, three nodes vanish after advertising and the round aborts."""
    fed = catalogue_federation()
    policy = catalogue_policy(fed)
    announce = catalogue_announce(fed, policy, day - timedelta(days=day.weekday()), seed)
    candidates = announce.candidates
    vanish = dict.fromkeys(candidates[2:], Phase.ADVERTISING) if abort else {}
    period = period_label("year", day)
    nodes = {
        m: NodeRound(
            Identity(m, fed.member_keys[m], fed.registry),
            NodePolicy(),
            MemoryGuard(),
            Rng(b"node:" + seed + m.encode()),
            period=period,
            catalogue=policy,
            opt_in=(ENTRY.name,),
            today=day,
        )
        for m in candidates
    }
    coordinator = CoordinatorRound(announce, fed.registry, fed.coordinator_key, policy=policy)
    log, cosigned = MemoryLog(fed), b""
    witnesses = {m: Witness(m, fed.member_keys[m], fed.registry) for m in candidates}
    pending = coordinator.start()
    while pending or coordinator.witnessing:
        if coordinator.witnessing:
            present = {m: w for m, w in witnesses.items() if vanish.get(m) is not nodes[m].phase}
            pending, cosigned = witness_step(coordinator, log, present)
            continue
        log.coordinator_messages(pending)
        replies = []
        for out in pending:
            node = nodes[out.to]
            if vanish.get(out.to) is node.phase:
                continue
            if isinstance(out.task, Envelope) and out.task.type in (wire.RESULT, wire.ABORT):
                node.on_outcome(out.task)
                continue
            proof = (
                witnesses[out.to].proof(cosigned, log, node) if witnessed_task(out.task) else None
            )
            replies.append(
                (out.to, deliver(node, out.task, _figures(fed, announce, out.to), proof))
            )
        pending = []
        for member, reply in replies:
            pending += coordinator.receive(member, reply)
            log.append(reply)
        if not pending and not coordinator.phase.terminal and not coordinator.witnessing:
            pending = coordinator.close()  # what the phase deadline would do
    charge = coordinator.charge(period, policy)
    if charge is not None:
        log.append(charge)
    return tuple(log.leaves[1:])  # the registry leaf comes first in ``catalogue_log``


def catalogue_log(*rounds: Sequence[bytes]) -> Log:
    """The governance-signed registry and policy, then each round's leaves in turn."""
    fed = catalogue_federation()
    signed = seal_policy(catalogue_policy(fed), fed.governance_key)
    leaves, starts = [fed.signed_registry.to_bytes(), signed.to_bytes()], []
    for round_leaves in rounds:
        starts.append(len(leaves))
        leaves += round_leaves
    return Log(fed, tuple(leaves), tuple(starts))
