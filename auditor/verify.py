"""Audit a protocol log: every check docs/architecture.md lists, recorded. Pure, no I/O.

The governance key is the only trust anchor. From it the auditor opens the registries the log
carries, and from those it learns the coordinator's and the members' keys. ``audit`` runs every
check on the whole log and returns the report; it never stops at the first problem, and it
raises nothing for a bad log: ``AuditReport.check()`` raises VerificationError listing the
failures, so a caller cannot mistake a failed audit for a passed one by forgetting a bool.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from fractions import Fraction

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor import market, rounds, unmasking
from auditor import result as results
from auditor.leaves import ReadLog, read_log
from auditor.model import AuditReport, ChargeAudit, Checks, Parameters, RoundAudit, require
from auditor.releases import check_releases
from auditor.shares import check_shares
from scfed import note, tlog, wire
from scfed.checkpoint import Checkpoint, parse_checkpoint
from scfed.dp.ledger import Budget, rho_text
from scfed.errors import ScfedError, VerificationError
from scfed.note_format import parse_note
from scfed.policy import release_window
from scfed.wire.messages import Announce, Result

#: A signed note with its cosignatures is far below this.
MAX_NOTE_BYTES = 1 << 20
_OUTCOMES = {wire.RESULT: "result", wire.ABORT: "abort", None: "in progress"}


def audit(
    leaves: Sequence[bytes],
    *,
    checkpoint: bytes,
    governance_key: bytes,
    origin: str,
    older_checkpoints: Sequence[bytes] = (),
    budget: Budget = Budget(),  # noqa: B008 - frozen, so one shared default is safe
) -> AuditReport:
    """Check the log ``leaves`` (each a signed envelope's bytes, in log order) end to end.

    ``checkpoint`` is the signed note of the log at its full size; ``older_checkpoints`` are
    notes kept earlier (by nodes or witnesses) that the log must still extend. The budget cap
    is the governance-signed policy's when the log carries one, else ``budget``.
    """
    log = read_log(leaves, origin=origin, governance_key=governance_key)
    checks = Checks()
    checks.findings += log.findings
    _checkpoint_checks(
        checks,
        log,
        leaves,
        checkpoint=checkpoint,
        older_checkpoints=older_checkpoints,
        origin=origin,
    )
    views = rounds.group_rounds(log.leaves, log.rejected)
    audited = tuple(audit_round(view) for view in views)
    checks.run("release.recomputed", lambda: check_releases(views))
    checks.run("attest.pledges", lambda: market.check_pledges(log.others))
    checks.run("crisis.reveals", lambda: market.check_reveals(log.others, origin))
    spent = _spent(audited)
    cap = budget if log.policy is None else log.policy.budget
    checks.run("budget.cap", lambda: check_budget(spent, cap))
    checks.run("budget.cadence", lambda: check_cadence(audited))
    totals = tuple((period, rho_text(rho)) for period, rho in spent.items())
    return AuditReport(len(leaves), audited, tuple(checks.findings), totals)


# ---- the log as a whole --------------------------------------------------------------------


def _checkpoint_checks(
    checks: Checks,
    log: ReadLog,
    leaves: Sequence[bytes],
    *,
    checkpoint: bytes,
    older_checkpoints: Sequence[bytes],
    origin: str,
) -> None:
    """The checkpoint commits to the leaves, and the log extends every older checkpoint."""
    hashes = [tlog.leaf_hash(data) for data in leaves]
    checks.run("log.checkpoint", lambda: check_checkpoint(checkpoint, log, hashes, origin))
    for number, older in enumerate(older_checkpoints, 1):
        check = functools.partial(check_older, older, number, log, hashes, origin)
        checks.run("log.consistency", check)
    if not older_checkpoints:
        checks.run("log.consistency", lambda: "no older checkpoint was given to compare")


def _open_checkpoint(data: bytes, log: ReadLog, size: int, origin: str) -> Checkpoint:
    """The checkpoint in ``data``, signed by the coordinator key in force after ``size`` leaves."""
    if len(data) > MAX_NOTE_BYTES:
        raise VerificationError(f"the note is {len(data)} bytes, not a checkpoint")
    registry = log.registry_at(size)
    if registry is None:
        raise VerificationError(f"no registry is in force at size {size} to name a coordinator key")
    key = Ed25519PublicKey.from_public_bytes(registry.coordinator_key)
    opened = note.open_note(data, [note.Verifier.ed25519(origin, key)])
    checkpoint = parse_checkpoint(opened.text)
    if checkpoint.origin != origin:
        raise VerificationError(f"the checkpoint is of log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


def _claimed_size(data: bytes) -> int:
    """The size a note claims, read before its signature is checked (only to pick the key)."""
    text, _ = parse_note(data)
    return parse_checkpoint(text).size


def check_checkpoint(data: bytes, log: ReadLog, hashes: Sequence[bytes], origin: str) -> str:
    """The checkpoint is signed by the coordinator and commits to exactly these leaves."""
    checkpoint = _open_checkpoint(data, log, len(hashes), origin)
    if checkpoint.size != len(hashes):
        raise VerificationError(
            f"the checkpoint is of size {checkpoint.size}, the log has {len(hashes)} leaves"
        )
    if checkpoint.root != tlog.root_hash(hashes):
        raise VerificationError(
            f"the checkpoint's root is not the root of the {len(hashes)} leaves"
        )
    return f"signed by the coordinator; size {checkpoint.size} and root match the leaves"


def check_older(
    data: bytes, number: int, log: ReadLog, hashes: Sequence[bytes], origin: str
) -> str:
    """An older checkpoint verifies and its root is the root of the log's prefix of its size."""
    what = f"older checkpoint {number}"
    try:
        size = _claimed_size(data)
        if size > len(hashes):
            raise VerificationError(
                f"it is of size {size}, the log has only {len(hashes)} leaves: "
                "the log was truncated or forked"
            )
        checkpoint = _open_checkpoint(data, log, size, origin)
    except ScfedError as exc:
        raise VerificationError(f"{what}: {exc}") from None
    if checkpoint.root != tlog.root_hash(hashes[:size]):
        fork = (
            "same size, another root: the log forked"
            if size == len(hashes)
            else "a leaf among them was rewritten, or the log forked"
        )
        raise VerificationError(
            f"{what} (size {size}) has a root the log's first {size} leaves do not give: {fork}"
        )
    return f"{what} (size {size}) is a prefix of the log"


def _spent(audited: Sequence[RoundAudit]) -> dict[str, Fraction]:
    """Rho per period: each charged release at the cost the rule gives."""
    spent: dict[str, Fraction] = {}
    for entry in audited:
        if entry.charge is not None and entry.charge.rule is not None:
            period = entry.charge.period
            spent[period] = spent.get(period, Fraction(0)) + Fraction(entry.charge.rule)
    return spent


def check_budget(spent: dict[str, Fraction], budget: Budget) -> str:
    over = [
        f"period {period} spent rho {rho_text(rho)} ({float(rho):.6g}), "
        f"over the cap {float(budget.cap):.6g}"
        for period, rho in spent.items()
        if rho > budget.cap
    ]
    if over:
        raise VerificationError("; ".join(over))
    listed = ", ".join(f"{period}: {float(rho):.6g}" for period, rho in spent.items())
    return (
        f"within the cap {float(budget.cap):.6g} per {budget.period} ({listed or 'nothing spent'})"
    )


def check_cadence(audited: Sequence[RoundAudit]) -> str:
    """No catalogue entry is released twice in one cadence window (README, Differential privacy):
    every round with a logged result counts, aborted rounds and rounds in progress do not."""
    released: dict[tuple[str, str, str], list[str]] = {}
    for entry in audited:
        if entry.outcome == "result" and entry.query is not None and entry.window:
            key = (entry.query, entry.cadence, entry.window)
            released.setdefault(key, []).append(entry.round_id)
    problems = [
        f"{query} released {_times(len(ids))} in its {cadence} window {window} "
        f"(rounds {rounds.names([_short_id(i) for i in ids])})"
        for (query, cadence, window), ids in released.items()
        if len(ids) > 1
    ]
    releases = sum(len(ids) for ids in released.values())
    return require(
        problems,
        f"each catalogue entry released at most once per cadence window "
        f"({_count(releases, 'catalogue release')} in {_count(len(released), 'window')})",
    )


def _times(count: int) -> str:
    return "twice" if count == 2 else f"{count} times"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _short_id(round_id: str) -> str:
    """A round id as people compare it: its first 8 bytes in hex."""
    return round_id[:16]


# ---- one round -----------------------------------------------------------------------------


def audit_round(view: rounds.RoundView) -> RoundAudit:
    """Run every check of one round."""
    checks = Checks()
    checks.run("round.single_announce", lambda: rounds.check_single_announce(view))
    announce, announce_leaf = view.announce, view.announce_leaf
    if announce is None or announce_leaf is None:
        return _entry(view, None, checks, recomputed=None)  # nothing to check against
    checks.run("round.parameters", lambda: rounds.check_parameters(announce, announce_leaf))
    checks.run(
        "round.candidates_registered",
        lambda: rounds.check_candidates_registered(announce, announce_leaf),
    )
    checks.run("round.announce_hash", lambda: rounds.check_announce_hash(view, announce_leaf))
    checks.run("round.signers", lambda: rounds.check_signers(view, announce))
    checks.run("round.graph", lambda: rounds.check_graph(view, announce))
    checks.run("round.no_equivocation", lambda: rounds.check_no_equivocation(view))
    checks.run("round.phase_order", lambda: rounds.check_phase_order(view))
    checks.run("round.refusals", lambda: rounds.check_refusals(view, announce))
    checks.run("round.outcome", lambda: rounds.check_outcome(view))
    responses = _unmasking_checks(view, announce, checks)
    recomputed = _outcome_checks(view, announce, responses, checks)
    return _entry(view, announce, checks, recomputed=recomputed)


def _unmasking_checks(
    view: rounds.RoundView, announce: Announce, checks: Checks
) -> unmasking.Responses:
    """The unmask request's checks, when one is logged; the valid responses to it."""
    request, leaf = view.request, view.request_leaf
    if request is None or leaf is None:
        return []
    checks.run("unmask.single_request", lambda: unmasking.check_single_request(view))
    checks.run("unmask.disjoint", lambda: unmasking.check_disjoint(request))
    checks.run("unmask.survivors", lambda: unmasking.check_survivors(view, request))
    checks.run("unmask.dropped", lambda: unmasking.check_dropped(view, request))
    checks.run("unmask.quorum", lambda: unmasking.check_quorum(announce, request, leaf))
    checks.run("unmask.responses", lambda: unmasking.check_responses(view, request))
    checks.run(
        "unmask.no_double_input", lambda: unmasking.check_no_double_input(view, announce, request)
    )
    return unmasking.valid_responses(view, request)


def _outcome_checks(
    view: rounds.RoundView, announce: Announce, responses: unmasking.Responses, checks: Checks
) -> bool | None:
    """The result's or the abort's checks, and the charge's; whether the result recomputed."""
    outcome, request = view.outcome_leaf, view.request
    if outcome is not None and outcome.type == wire.ABORT:
        checks.run("abort.nothing_unmasked", lambda: unmasking.check_abort(view))
    checks.run("charge.present", lambda: results.check_charge_present(view))
    if request is not None:
        checks.run(
            "release.charged",
            lambda: results.check_release_charged(view, announce, request, responses),
        )
    if outcome is None or outcome.type != wire.RESULT:
        return None
    result = rounds.message(outcome, Result)
    checks.run("result.survivors", lambda: results.check_result_survivors(result, request))
    recomputed = checks.run(
        "result.recomputed",
        lambda: results.check_recomputed(view, announce, request, responses),
    )
    if request is not None:
        checks.run("result.shares_consistent", lambda: check_shares(responses, announce, request))
    if view.charge is not None:
        checks.run("charge.matches", lambda: results.check_charge_matches(view, result))
        checks.run("charge.rho", lambda: results.check_charge_rho(view, announce, result))
    return recomputed


def _entry(
    view: rounds.RoundView, announce: Announce | None, checks: Checks, *, recomputed: bool | None
) -> RoundAudit:
    request = view.request
    cadence, window = _window(view, announce)
    return RoundAudit(
        round_id=view.round_id.hex(),
        query=None if announce is None else announce.query,
        cadence=cadence,
        window=window,
        parameters=None if announce is None else _parameters(announce),
        candidates=() if announce is None else announce.candidates,
        survivors=() if request is None else request.survivors,
        dropped=() if request is None else request.dropped,
        outcome=_OUTCOMES[view.outcome_leaf.type if view.outcome_leaf else None],
        recomputed=recomputed,
        charge=_charge(view, announce),
        findings=tuple(checks.findings),
    )


def _window(view: rounds.RoundView, announce: Announce | None) -> tuple[str, str]:
    """The cadence of the round's signed entry and the window it releases in; ("", "") for
    an ad-hoc round or one whose entry the policy in force does not sign."""
    leaf = view.announce_leaf
    if announce is None or leaf is None or leaf.policy is None or not announce.week:
        return "", ""
    entry = leaf.policy.entry(announce.query)
    if entry is None:
        return "", ""
    try:
        return entry.cadence, release_window(leaf.policy, announce)
    except (ScfedError, ValueError):
        return "", ""


def _parameters(announce: Announce) -> Parameters:
    noise = announce.noise
    return Parameters(
        dim=announce.dim,
        threshold=announce.threshold,
        n_min=announce.n_min,
        registry_version=announce.registry_version,
        sigma=noise.sigma,
        t_collude=noise.t_collude,
        unit=noise.unit,
        bound=noise.bound,
        grid=noise.grid,
    )


def _charge(view: rounds.RoundView, announce: Announce | None) -> ChargeAudit | None:
    """The logged charge and, for a published result, the rho the rule gives it."""
    charge = view.charge
    if charge is None:
        return None
    return ChargeAudit(charge.period, charge.rho, _rule(view, announce))


def _rule(view: rounds.RoundView, announce: Announce | None) -> str | None:
    """The rho the rule gives a published result; None when there is none or no price."""
    outcome, leaf = view.outcome_leaf, view.announce_leaf
    if announce is None or leaf is None or outcome is None or outcome.type != wire.RESULT:
        return None
    try:
        survivors = rounds.message(outcome, Result).survivors
        return rho_text(results.rule_rho(leaf, announce, survivors))
    except VerificationError:
        return None
