"""The in-memory round, timed per phase: ``scfed bench secagg``. A benchmark, not a test.

Every node and the coordinator run in this one process on one core, one after another, so
the wall time is the total work of the round; the result is checked against the plain sum of
what the nodes contributed. Noise is on: each node samples its discrete Gaussian share in the
advertise phase, so that column is, almost entirely, the cost of noise for all N nodes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from scfed.dp.contribution import Ints
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import ScfedError
from scfed.secagg import NodePolicy, Phase
from scfed.secagg.driver import Report, federation, run_round
from scfed.secagg.graph import SEED_BYTES, check_sparse, planned_dropout, rule_graph
from scfed.wire.messages import Announce

PHASES = {"advertising": Phase.ADVERTISING, "sharing": Phase.SHARING, "masking": Phase.MASKING}
#: The README's table: N 10, 50, 100; D 1e3, 1e5; no dropouts or 10%.
GRID = tuple((n, d, f) for n in (10, 50, 100) for d in (1000, 100_000) for f in (0.0, 0.1))


@dataclass(frozen=True)
class Run:
    nodes: int
    dim: int
    dropped: int
    wall: float
    cpu: float
    phases: dict[str, tuple[float, float]]
    bytes_per_node: int


def bench(
    nodes: int, dim: int, dropout: float, after: Phase, sigma: str = "4000", *,
    graph: str = "complete", k: int = 0,
) -> Run:  # fmt: skip
    """Run one in-memory round and check its result against the plain sum."""
    if not 3 <= nodes <= 1000 or not 1 <= dim <= 1_000_000 or not 0 <= dropout < 0.5:
        raise ScfedError("nodes must be 3..1000, dim 1..1e6 and dropout below 0.5")
    fed = federation(nodes, os.urandom)
    members = tuple(sorted(fed.member_keys))
    # The noise is sized for the survivors, which is also what a sparse graph is chosen for.
    planned = nodes - int(nodes * dropout) if graph == "sparse" else 0
    noise = Noise(sigma, 1, MAGNITUDE, 1000, "1", 2**40, planned=planned)
    try:
        noise.check(3)
    except ValueError as exc:
        raise ScfedError(f"--sigma: {exc}") from None
    announce = Announce(
        os.urandom(16), "bench", dim, members, nodes // 2 + 1, 3, 1, 60_000, bytes(32), noise
    )
    announce, policy = _on_graph(announce, graph, k)
    inputs = {m: _random_input(dim) for m in members}
    vanish = dict.fromkeys(members[: int(nodes * dropout)], after)
    report = run_round(
        fed, announce, inputs, os.urandom, vanish_after=vanish, clock=_clock, policy=policy
    )
    _check(report)
    phases = {k: (c.wall, c.cpu) for k, c in report.phases.items()}
    survivors = [m for m in members if m not in vanish]
    return Run(
        nodes,
        dim,
        len(vanish),
        sum(w for w, _ in phases.values()),
        sum(c for _, c in phases.values()),
        phases,
        max(report.bytes_per_node[m] for m in survivors),
    )


def _on_graph(announce: Announce, graph: str, k: int) -> tuple[Announce, NodePolicy]:
    """The announce on the chosen graph, and the policy its nodes hold. A degree given by
    ``k`` (say Flower's, to compare) may be below the rule for 1/20 colluders: the
    benchmark's nodes then assume only the noise's one colluder."""
    policy = NodePolicy(adhoc=True)
    if graph == "complete":
        return announce, policy
    n = len(announce.candidates)
    dropout = planned_dropout(announce)
    rule = rule_graph(n, policy.sparse_corrupt, dropout)
    if k:
        policy = NodePolicy(adhoc=True, sparse_corrupt=Fraction(0))
        t = _threshold_for(n, k, dropout)
    elif rule is None:
        raise ScfedError(f"no sparse graph meets the rule for {n} nodes")
    else:
        k, t = rule.k, rule.threshold
    seed = os.urandom(SEED_BYTES)
    return replace(announce, neighbours=k, threshold=t, graph_seed=seed), policy


def _threshold_for(n: int, k: int, dropout: Fraction) -> int:
    """The smallest t the nodes accept with degree ``k`` when they assume only the one
    colluder of the noise (t_collude 1): the benchmark's way to run at a given k."""
    for t in range(k // 2 + 1, k + 2):
        try:
            check_sparse(n, k, t, Fraction(1, n), dropout)
        except ValueError:
            continue
        return t
    raise ScfedError(f"--k {k}: no threshold meets the rule for {n} nodes")


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _random_input(dim: int) -> Ints:
    """Random 24-bit figures, so sums of many nodes stay readable."""
    vector = np.frombuffer(os.urandom(8 * dim), dtype=np.uint64) >> np.uint64(40)
    return vector.astype(np.int64)


def _check(report: Report) -> None:
    result = report.result
    if result is None:
        raise ScfedError("the benchmark round aborted")
    contributed = [report.contributions[m] for m in result.survivors]
    expected = np.sum(contributed, axis=0, dtype=np.int64)
    if not np.array_equal(np.frombuffer(result.sums, dtype="<i8"), expected):
        raise ScfedError("the benchmark round produced a wrong sum")


def row(run: Run) -> str:
    """The run as a row of the README's table (``HEADER``)."""
    cells = [f"{run.phases.get(p, (0.0, 0.0))[0]:.2f}" for p in (*PHASES, "unmasking")]
    noise = run.phases.get("advertising", (0.0, 0.0))[0]
    return (
        f"| {run.nodes} | {run.dim:,} | {run.dropped} | {run.wall:.2f} | {run.cpu:.2f} | "
        f"{run.wall - noise:.2f} | " + " | ".join(cells) + f" | {run.bytes_per_node / 1e6:.2f} |"
    )


HEADER = (
    "| N | D | dropped | wall s | CPU s | wall s without advertise | advertise s (noise) "
    "| share s | mask s | unmask s | MB/node |\n"
    "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)
