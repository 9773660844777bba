"""The in-memory round, timed per phase: ``scfed bench secagg``. A benchmark, not a test.

Every node and the coordinator run in this one process on one core, one after another, so
the wall time is the total work of the round; the result is checked against the plain sum of
what the nodes contributed. Noise is on: each node samples its discrete Gaussian share in the
advertise phase, so that column is, almost entirely, the cost of noise for all N nodes.

The same run measures the round's floor: the masking floor, every mask expansion the round
made (counted as it ran, nodes' and coordinator's) timed as bare AES-128-CTR expansions of
D cells added into one vector with numpy, plus one node's noise floor for its segments
(``tools.bench_noise.floor``). It also weighs the coordinator's state after every step
(numpy arrays, bytes and the containers and objects holding them) and reports the peak.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any
from unittest import mock

import numpy as np

from scfed import masking
from scfed.dp import sampler
from scfed.dp.contribution import Ints
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import ScfedError
from scfed.secagg import CoordinatorRound, NodePolicy, Phase, unmask
from scfed.secagg.driver import Report, federation, run_round
from scfed.secagg.graph import SEED_BYTES, check_sparse, planned_dropout, rule_graph
from scfed.wire.messages import Announce
from tools import bench_noise

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
    expansions: int = 0
    masking_floor: float = 0.0
    noise_floor: float = 0.0
    coordinator_bytes: int = 0
    per_dropped: float = 0.0  # the coordinator's seconds for each dropped node

    @property
    def floor(self) -> float:
        """The masking floor plus one node's noise floor, in seconds."""
        return self.masking_floor + self.noise_floor

    @property
    def ratio(self) -> float:
        return self.wall / self.floor if self.floor else 0.0


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
    announce, policy = on_graph(announce, graph, k)
    inputs = {m: _random_input(dim) for m in members}
    vanish = dict.fromkeys(members[: int(nodes * dropout)], after)
    peak = [0]

    def weigh(coordinator: CoordinatorRound) -> None:
        peak[0] = max(peak[0], retained_bytes(coordinator))

    with _counting_expansions() as expansions, _timing_dropped() as per_dropped:
        report = run_round(
            fed, announce, inputs, os.urandom,
            vanish_after=vanish, clock=_clock, policy=policy, inspect=weigh,
        )  # fmt: skip
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
        expansions[0],
        masking_floor(expansions[0], dim),
        noise_floor(announce),
        peak[0],
        per_dropped[0] if per_dropped else 0.0,
    )


@contextmanager
def _counting_expansions() -> Iterator[list[int]]:
    """Count the mask expansions made while it is entered."""
    count, expand = [0], masking.Expander.expand

    def counted(expander: masking.Expander, key: bytes) -> masking.Vector:
        count[0] += 1
        return expand(expander, key)

    with mock.patch.object(masking.Expander, "expand", counted):
        yield count


@contextmanager
def _timing_dropped() -> Iterator[list[float]]:
    """The coordinator's seconds per dropped node: removing its pairwise masks (agreements,
    key check, expansions) and rebuilding one secret from its shares, which are timed
    while entered; [mean seconds] once it exits, [] if no node dropped."""
    removals: list[float] = []
    rebuilt = [0.0, 0]
    remove, rebuild = unmask._remove_pair_masks, unmask._rebuild

    def timed_remove(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        remove(*args, **kwargs)
        removals.append(time.perf_counter() - started)

    def timed_rebuild(announce: Announce, held: Any, owners: Sequence[str]) -> list[bytes]:
        started = time.perf_counter()
        secrets = rebuild(announce, held, owners)
        rebuilt[0] += time.perf_counter() - started
        rebuilt[1] += len(owners)
        return secrets

    mean: list[float] = []
    with (
        mock.patch.object(unmask, "_remove_pair_masks", timed_remove),
        mock.patch.object(unmask, "_rebuild", timed_rebuild),
    ):
        yield mean
    if removals:
        mean.append(sum(removals) / len(removals) + rebuilt[0] / max(rebuilt[1], 1))


def masking_floor(expansions: int, dim: int, sample: int = 64) -> float:
    """Seconds for ``expansions`` bare mask expansions of ``dim`` cells, each added into
    one vector: the fastest of three blocks of ``sample``, scaled to the count."""
    if not expansions:
        return 0.0
    expander, total = masking.Expander(dim), np.zeros(dim, dtype=np.uint64)
    keys = [os.urandom(16) for _ in range(sample)]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for key in keys:
            np.add(total, expander.expand(key), out=total)
        best = min(best, time.perf_counter() - started)
    return best * expansions / sample


def noise_floor(announce: Announce) -> float:
    """Seconds of one node's noise floor: ``bench_noise.floor`` for each of its segments
    at the consumption the sampler shows for it, the fastest of three."""
    total = 0.0
    for segment in announce.noise.segments(announce.dim, announce.n_min):
        sigma2 = Fraction(segment.sigma_l2)
        used = bench_noise.consumption(segment.cells, sigma2)
        params, zeros = sampler._params(sigma2), bytes(used.stream_bytes + 16)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            bench_noise.floor(used, segment.cells, params, zeros)
            times.append(time.perf_counter() - started)
        total += min(times)
    return total


def retained_bytes(root: object) -> int:
    """What ``root`` holds: numpy arrays by their buffers, bytes and strings, and the
    containers and objects (``__dict__`` or slots) that hold them, each counted once."""
    seen: set[int] = set()
    stack, total = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type) or callable(obj):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, np.ndarray):
            total += obj.nbytes if obj.base is not None else 0  # getsizeof counts owned data
        elif isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            stack += list(obj)
        elif not isinstance(obj, bytes | str | int | float | bytearray | memoryview):
            stack += list(getattr(obj, "__dict__", {}).values())
            slots = getattr(type(obj), "__slots__", ())
            stack += [getattr(obj, n) for n in slots if hasattr(obj, n)]
    return total


def on_graph(announce: Announce, graph: str, k: int) -> tuple[Announce, NodePolicy]:
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
        f"{run.floor:.2f} | {run.ratio:.1f} | {run.wall - noise:.2f} | "
        + " | ".join(cells)
        + f" | {run.bytes_per_node / 1e6:.2f} | {run.coordinator_bytes / 1e6:.0f} "
        f"| {run.per_dropped * 1e3:.1f} |"
    )


def summary(run: Run) -> dict[str, object]:
    """The run as JSON-ready values."""
    return {**run.__dict__, "floor": run.floor, "ratio": run.ratio}


HEADER = (
    "| N | D | dropped | wall s | CPU s | floor s | ratio | wall s without advertise "
    "| advertise s (noise) | share s | mask s | unmask s | MB/node | coordinator MB "
    "| ms per dropped |\n"
    "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)
