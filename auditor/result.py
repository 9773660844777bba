"""A round's published result recomputed from the log, and its budget charge checked. Pure.

The result is recomputed with the coordinator's own function, ``unmasked_sum``, from the
logged masked inputs (summed in Z_2^64) and the first t valid responses in sorted sender
order, and must equal the published sums bit for bit. The charge must be the one the rule
every role applies, ``scfed.policy.release_rho``, for the actual survivors, under the policy
and registry in force at the round's announce: it counts corporate groups as one firm and the
disclosure segments' joint cost. A round whose log holds t valid unmask responses has
released its sum whatever became of it, so it must have a result and a charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from auditor.leaves import Leaf
from auditor.rounds import RoundView, distinct, message, names
from auditor.unmasking import Responses
from scfed import wire
from scfed.dp.ledger import parse_rho, rho_text
from scfed.errors import PrivacyParameterError, RemoteProtocolError, VerificationError
from scfed.masking import Vector
from scfed.policy import release_rho
from scfed.secagg.unmask import short_of_shares, unmasked_sum
from scfed.wire.messages import AdvertiseKeys, Announce, MaskedInput, Result, UnmaskRequest


def check_result_survivors(result: Result, request: UnmaskRequest | None) -> str:
    if request is None:
        raise VerificationError("a result is published but no unmask request is logged")
    if result.survivors != request.survivors:
        added = sorted(set(result.survivors) - set(request.survivors))
        missing = sorted(set(request.survivors) - set(result.survivors))
        raise VerificationError(
            f"the result's survivors differ from the request's: added {names(added) or 'none'}, "
            f"left out {names(missing) or 'none'}"
        )
    return f"the result names the request's {len(result.survivors)} survivors"


def masked_total(view: RoundView, announce: Announce, request: UnmaskRequest) -> Vector:
    """The uint64 (wrapping) sum of the survivors' masked vectors."""
    total = np.zeros(announce.dim, dtype=np.uint64)
    for survivor in request.survivors:
        leaf = view.nodes[wire.MASKED_INPUT].get(survivor)
        if leaf is None:
            raise VerificationError(f"cannot recompute: {survivor} logged no masked input")
        vector = message(leaf, MaskedInput).vector
        if len(vector) != 8 * announce.dim:
            raise VerificationError(f"cannot recompute: {survivor}'s masked input is mis-sized")
        np.add(total, np.frombuffer(vector, dtype="<u8"), out=total)
    return total


def _advertised(view: RoundView, request: UnmaskRequest) -> dict[str, AdvertiseKeys]:
    """The advertised keys removing a dropped node's pair masks needs, all of them logged."""
    adverts = {
        m: message(leaf, AdvertiseKeys) for m, leaf in view.nodes[wire.ADVERTISE_KEYS].items()
    }
    if request.dropped:
        missing = [m for m in (*request.dropped, *request.survivors) if m not in adverts]
        if missing:
            raise VerificationError(f"cannot recompute: no keys advertised by {names(missing)}")
    return adverts


def recompute(
    view: RoundView, announce: Announce, request: UnmaskRequest, responses: Responses
) -> bytes:
    """The sums the coordinator had to publish, as little-endian int64 bytes."""
    if len(responses) < announce.threshold:
        raise VerificationError(
            f"cannot recompute: {len(responses)} valid responses, t = {announce.threshold}"
        )
    short = short_of_shares(announce, request, responses)
    if short:
        raise VerificationError(f"cannot recompute: {short}")
    total = masked_total(view, announce, request)
    unmasked = unmasked_sum(announce, _advertised(view, request), total, request, responses)
    return unmasked.view("<i8").tobytes()


def check_recomputed(
    view: RoundView, announce: Announce, request: UnmaskRequest | None, responses: Responses
) -> str:
    """The published sums equal, bit for bit, the sums recomputed from the log."""
    result_leaf = view.outcome_leaf
    if result_leaf is None or request is None:
        raise VerificationError("cannot recompute: no unmask request is logged")
    published = message(result_leaf, Result).sums
    recomputed = recompute(view, announce, request, responses)
    if published != recomputed:
        raise VerificationError(_difference(published, recomputed))
    return f"{announce.dim} sums recomputed bit for bit from {len(request.survivors)} inputs"


def _difference(published: bytes, recomputed: bytes) -> str:
    if len(published) != len(recomputed):
        return f"the result has {len(published) // 8} cells, the round {len(recomputed) // 8}"
    a, b = np.frombuffer(published, dtype="<i8"), np.frombuffer(recomputed, dtype="<i8")
    cells = np.flatnonzero(a != b)
    first = int(cells[0])
    return (
        f"{len(cells)} published sums differ from the recomputed ones; cell {first}: "
        f"published {int(a[first])}, recomputed {int(b[first])}"
    )


def check_release_charged(
    view: RoundView, announce: Announce, request: UnmaskRequest, responses: Responses
) -> str:
    """A release is a release (docs/architecture.md, step 7): once t valid unmask responses
    are logged, anyone holding the log can rebuild the noisy sum, so the round must end in a
    logged result and its charge. An abort passes only if the logged shares rebuild no sum."""
    t, outcome, charge = announce.threshold, view.outcome_leaf, view.charge_leaf
    if len(responses) < t:
        return f"{len(responses)} valid unmask responses, fewer than t = {t}: no sum to rebuild"
    if outcome is not None and outcome.type == wire.RESULT and charge is not None:
        return f"the release is published at leaf {outcome.index} and charged at {charge.index}"
    if outcome is not None and outcome.type == wire.ABORT:
        try:
            recompute(view, announce, request, responses)
        except (VerificationError, RemoteProtocolError) as exc:
            return f"aborted, and the logged shares rebuild no sum: {exc}"
    ended = "no outcome" if outcome is None else _ENDINGS[outcome.type]
    raise VerificationError(
        f"uncharged release: {len(responses)} valid unmask responses are logged (t = {t}), "
        f"enough for anyone holding the log to rebuild the noisy sum, yet the round has "
        f"{ended} and no charge"
    )


_ENDINGS = {wire.RESULT: "a result", wire.ABORT: "an abort"}


# ---- the charge ----------------------------------------------------------------------------


def rule_rho(announce_leaf: Leaf, announce: Announce, survivors: Sequence[str]) -> Fraction:
    """What releasing the sum of ``survivors`` costs each of them, by ``release_rho`` with the
    policy and registry in force at the announce; VerificationError if it cannot be priced."""
    try:
        return release_rho(announce_leaf.policy, announce, announce_leaf.registry, survivors)
    except (PrivacyParameterError, ArithmeticError) as exc:
        raise VerificationError(f"no rho for {len(survivors)} survivors: {exc}") from None


def check_charge_present(view: RoundView) -> str:
    """Exactly one charge after a result, none after an abort or before an outcome."""
    charges = distinct(view.of(wire.CHARGE))
    outcome = view.outcome_leaf
    if outcome is None or outcome.type == wire.ABORT:
        if charges:
            state = "an aborted round" if outcome is not None else "a round without an outcome"
            raise VerificationError(f"{len(charges)} charges logged for {state}")
        return "no charge: nothing was released"
    if len(charges) != 1:
        raise VerificationError(f"{len(charges)} different charges for one result, not one")
    if charges[0].index < outcome.index:
        raise VerificationError(f"the charge (leaf {charges[0].index}) precedes the result")
    return f"one charge, at leaf {charges[0].index}"


def check_charge_matches(view: RoundView, result: Result) -> str:
    charge, charge_leaf, announce_leaf = view.charge, view.charge_leaf, view.announce_leaf
    if charge is None or charge_leaf is None or announce_leaf is None:
        raise VerificationError("no charge refers to the round's announce")
    problems = []
    if charge.round_id != view.round_id or charge.announce_hash != announce_leaf.digest:
        problems.append("it names another round or announce")
    if charge.survivors != len(result.survivors):
        problems.append(
            f"it counts {charge.survivors} survivors, the result names {len(result.survivors)}"
        )
    if problems:
        raise VerificationError(f"the charge at leaf {charge_leaf.index}: {'; '.join(problems)}")
    return f"the charge names this round and its {charge.survivors} survivors"


def check_charge_rho(view: RoundView, announce: Announce, result: Result) -> str:
    charge, announce_leaf = view.charge, view.announce_leaf
    if charge is None or announce_leaf is None:
        raise VerificationError("no charge to check")
    rule = rule_rho(announce_leaf, announce, result.survivors)
    logged = parse_rho(charge.rho)
    if logged != rule:
        raise VerificationError(
            f"the charge logs rho {charge.rho}, the rule gives {rho_text(rule)} for "
            f"{len(result.survivors)} survivors ({'under' if logged < rule else 'over'}charged)"
        )
    return f"rho {rho_text(rule)} for {len(result.survivors)} survivors, as the rule gives"
