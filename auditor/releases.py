"""Each logged release recomputed from the log's results. Pure.

A release (``round.release``) must publish its own round's logged result (by hash), name the
round's entry, week and survivors, the policy version in force and the entry's recipients,
and carry exactly the picture the log's results give: the entry's results up to the round,
combined, smoothed and disclosed by ``scfed.release.choose``, the function the coordinator
uses. Suppression reasons, contributor bands and derived figures must match exactly; each
figure to a relative 1e-9 (floating point may differ in its last bits between machines).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from auditor.leaves import Leaf
from auditor.rounds import RoundView, message
from scfed import wire
from scfed.errors import VerificationError
from scfed.release import Published, choose, to_publication
from scfed.wire.messages import Publication, Result

#: How far a recomputed figure may differ from the logged one, relative to its size.
RELATIVE = 1e-9


def check_releases(views: Sequence[RoundView]) -> str:
    """VerificationError for the first logged release the log's results do not give."""
    published: list[tuple[Leaf, Published]] = []
    checked = 0
    for view in sorted(views, key=lambda v: v.leaves[0].index):
        announce, outcome = view.announce, view.outcome_leaf
        if announce is not None and outcome is not None and outcome.type == wire.RESULT:
            published.append((outcome, Published(announce, message(outcome, Result))))
        for leaf in view.leaves:
            if leaf.type == wire.RELEASE:
                _check(leaf, view, [p for o, p in published if o.index < leaf.index])
                checked += 1
    return f"{checked} release{'' if checked == 1 else 's'} recomputed from the logged results"


def _check(leaf: Leaf, view: RoundView, results: list[Published]) -> None:
    logged = message(leaf, Publication)
    where = f"the release at leaf {leaf.index}"
    outcome, announce, policy = view.outcome_leaf, view.announce, leaf.policy
    if outcome is None or outcome.type != wire.RESULT or announce is None:
        raise VerificationError(f"{where} publishes a round with no logged result")
    if hashlib.sha256(outcome.data).digest() != logged.result_hash or outcome.index > leaf.index:
        raise VerificationError(f"{where} does not name its round's logged result")
    if policy is None or policy.version != logged.policy_version:
        raise VerificationError(
            f"{where} names policy version {logged.policy_version}, not the one in force"
        )
    chosen = choose(results, announce.round_id.hex(), policy.entry, leaf.registry)
    if chosen is None:
        raise VerificationError(f"{where} publishes no catalogue round of policy {policy.version}")
    expected = to_publication(chosen, logged.result_hash, policy.version)
    _compare(where, logged, expected)


def _compare(where: str, logged: Publication, expected: Publication) -> None:
    head = ("entry", "week", "survivors", "recipients", "derived")
    for name in head:
        if getattr(logged, name) != getattr(expected, name):
            raise VerificationError(f"{where}: its {name} differ from the recomputed release")
    if len(logged.cells) != len(expected.cells):
        raise VerificationError(
            f"{where} has {len(logged.cells)} cells, the log gives {len(expected.cells)}"
        )
    for got, want in zip(logged.cells, expected.cells, strict=True):
        same = (got.component, got.commodity, got.week, got.contributors, got.suppressed) == (
            want.component, want.commodity, want.week, want.contributors, want.suppressed,
        )  # fmt: skip
        if not same or not _close(got.estimate, want.estimate) or not _close(got.trend, want.trend):
            raise VerificationError(
                f"{where}: cell {got.component}|{got.commodity}|{got.week} differs from the "
                "recomputed release"
            )


def _close(got: tuple[float, ...], want: tuple[float, ...]) -> bool:
    return len(got) == len(want) and all(
        math.isclose(a, b, rel_tol=RELATIVE, abs_tol=RELATIVE)
        for a, b in zip(got, want, strict=True)
    )
