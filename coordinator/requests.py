"""An operator's round request turned into the announce, every bound checked. Pure.

An ad-hoc round lists its cells and brings its noise. A catalogue round names an entry of
the governance-signed policy; its cells, noise and minimum number of contributors come from
the entry and the week, so the operator cannot change them (and every node checks).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta

from protos.scfed.v1 import service_pb2 as spb
from scfed.catalogue import entry_layout_hash, layout
from scfed.errors import PermissionDeniedError, RemoteProtocolError
from scfed.secagg.graph import SEED_BYTES, planned_dropout, rule_graph
from scfed.secagg.node_rules import NodePolicy
from scfed.wire.codec import decode_announce, decode_noise, encode
from scfed.wire.messages import DEFAULT_N_MIN, MAX_LISTED_CELLS, Announce, Registry, layout_hash
from scfed.wire.policy import GRAPHS, Policy

#: Candidates from which a round runs on a SecAgg+ sparse graph by default.
SPARSE_FROM = 100


@dataclass(frozen=True)
class Limits:
    """What this coordinator allows: cells per round and the default phase deadline."""

    max_cells: int
    phase_timeout_ms: int


def announce_for(
    request: spb.StartRoundRequest,
    *,
    registry: Registry,
    policy: Policy | None,
    connected: tuple[str, ...],
    limits: Limits,
    today: date,
) -> Announce:
    """The announce of an operator's request (ad hoc or from the catalogue)."""
    candidates = tuple(sorted(request.candidates or connected))
    for member_id in candidates:
        if registry.member(member_id) is None:
            raise PermissionDeniedError(f"{member_id} is not a registered member")
    if request.entry:
        announce = _catalogue(request, candidates, registry, policy, limits=limits, today=today)
    else:
        announce = _adhoc(request, candidates, registry, limits)
    graph = _wanted_graph(request, policy)
    return decode_announce(encode(_graph(request, graph, announce, registry)))


def _wanted_graph(request: spb.StartRoundRequest, policy: Policy | None) -> str:
    """The operator's graph, else the catalogue entry's; never sparse for an entry that
    governance signed for the complete graph (its nodes would refuse the round)."""
    entry = policy.entry(request.entry) if request.entry and policy is not None else None
    signed = entry.graph if entry is not None else ""
    if signed == "complete" and request.graph == "sparse":
        raise RemoteProtocolError(f"catalogue entry {request.entry} runs on the complete graph")
    return request.graph or signed


def _graph(
    request: spb.StartRoundRequest, graph: str, announce: Announce, registry: Registry
) -> Announce:
    """The announce on ``graph``: the complete graph, or a SecAgg+ sparse graph with the
    degree and threshold the rule gives for its candidates and the dropouts its noise plans
    for, fixed by fresh public randomness. The colluders assumed are a default node's, so
    that such a node accepts the graph. By default (and for a catalogue entry that asks for
    sparse) the round runs sparse from SPARSE_FROM candidates when the rule allows it; an
    operator who asks for sparse where the rule does not allow it is told so."""
    if graph not in GRAPHS:
        raise RemoteProtocolError(f"graph {graph[:20]!r} is not complete or sparse")
    n = len(announce.candidates)
    corrupt = NodePolicy().assumed_corrupt(announce, registry)
    sparse = rule_graph(n, corrupt, planned_dropout(announce))
    default = "sparse" if n >= SPARSE_FROM and not request.threshold else "complete"
    wanted = graph or default
    if wanted == "complete":
        return announce
    if request.threshold:
        raise RemoteProtocolError("on a sparse graph the threshold comes from the SecAgg+ rule")
    if sparse is None:
        if request.graph == "sparse":
            raise RemoteProtocolError(f"no sparse graph meets the rule for {n} candidates")
        return announce
    return replace(
        announce, neighbours=sparse.k, threshold=sparse.threshold, graph_seed=os.urandom(SEED_BYTES)
    )


def _threshold(request: spb.StartRoundRequest, candidates: tuple[str, ...], n_min: int) -> int:
    threshold = request.threshold or len(candidates) // 2 + 1
    if 2 * threshold <= len(candidates):
        raise RemoteProtocolError(
            f"threshold {threshold} must be above half of the {len(candidates)} candidates"
        )
    if len(candidates) < max(threshold, n_min):
        raise RemoteProtocolError(
            f"{len(candidates)} candidates are fewer than max(t={threshold}, n_min={n_min})"
        )
    return threshold


def _adhoc(
    request: spb.StartRoundRequest, candidates: tuple[str, ...], registry: Registry, limits: Limits
) -> Announce:
    cells = tuple(request.cells)
    most = min(limits.max_cells, MAX_LISTED_CELLS)
    if not 1 <= len(cells) <= most:
        raise RemoteProtocolError(f"a round needs 1 to {most} cells, not {len(cells)}")
    repeated = [cell for cell, n in Counter(cells).items() if n > 1]
    if repeated:
        raise RemoteProtocolError(
            f"a round's cells are a set: {repeated[0][:80]!r} is listed more than once"
        )
    n_min = request.n_min or DEFAULT_N_MIN
    threshold = _threshold(request, candidates, n_min)
    if not request.HasField("noise"):
        raise RemoteProtocolError("a round needs noise parameters (sigma, privacy bound)")
    noise = decode_noise(request.noise, n_min, RemoteProtocolError)
    timeout = request.phase_timeout_ms or limits.phase_timeout_ms
    return Announce(
        os.urandom(16), request.query, len(cells), candidates, threshold, n_min,
        registry.version, timeout, layout_hash(cells), noise, cells,
    )  # fmt: skip


def _catalogue(
    request: spb.StartRoundRequest,
    candidates: tuple[str, ...],
    registry: Registry,
    policy: Policy | None,
    *,
    limits: Limits,
    today: date,
) -> Announce:
    entry = None if policy is None else policy.entry(request.entry)
    if entry is None:
        raise RemoteProtocolError(f"the signed catalogue has no entry {request.entry[:64]!r}")
    if request.cells or request.HasField("noise") or request.n_min:
        raise RemoteProtocolError("a catalogue round takes its cells, noise and n_min from it")
    week = _week(request.week, today)
    cells = layout(entry, week)
    if cells.dim > limits.max_cells:
        raise RemoteProtocolError(f"{entry.name} has {cells.dim} cells, over {limits.max_cells}")
    threshold = _threshold(request, candidates, entry.min_contributors)
    timeout = request.phase_timeout_ms or limits.phase_timeout_ms
    noise = replace(entry.noise, planned=entry.planned(len(candidates)))
    return Announce(
        os.urandom(16), entry.name, cells.dim, candidates, threshold, entry.min_contributors,
        registry.version, timeout, entry_layout_hash(entry, week), noise, (), week.isoformat(),
    )  # fmt: skip


def _week(text: str, today: date) -> date:
    """The requested Monday, by default this week's: nodes take part only in a round of
    the current week."""
    current = today - timedelta(days=today.weekday())
    if not text:
        return current
    try:
        week = date.fromisoformat(text)
    except ValueError:
        raise RemoteProtocolError(f"week {text[:20]!r} is not a date") from None
    if week.weekday() != 0:
        raise RemoteProtocolError(f"a round's week starts on a Monday, not {text}")
    if week != current:
        raise RemoteProtocolError(
            f"a catalogue round releases the current week ({current}), not {week}: "
            "nodes refuse any other"
        )
    return week
