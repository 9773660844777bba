"""``scfed bench secagg``: the in-memory round, timed per phase. Benchmarks, not tests.

Every node and the coordinator run in this one process on one core, one after another, so
the wall time is the total work of the round; the result is checked against the plain sum of
what the nodes contributed. Noise is on: each node samples its discrete Gaussian share in the
advertise phase, so that column is, almost entirely, the cost of noise for all N nodes.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass

import numpy as np

from scfed.cli import bench_data, bench_picture, bench_tlog
from scfed.dp.contribution import Ints
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import ScfedError
from scfed.messages import Announce
from scfed.secagg import Phase
from scfed.secagg.driver import Report, federation, run_round

PHASES = {"advertising": Phase.ADVERTISING, "sharing": Phase.SHARING, "masking": Phase.MASKING}


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("bench", help="benchmarks")
    kinds = parser.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    secagg = kinds.add_parser("secagg", help="time an in-memory secure-aggregation round")
    secagg.add_argument("--nodes", type=int, default=100)
    secagg.add_argument("--dim", type=float, default=1e5, help="cells per vector (1e5 works)")
    secagg.add_argument("--dropout", type=float, default=0.0, help="fraction of nodes that vanish")
    secagg.add_argument(
        "--dropout-after", choices=sorted(PHASES), default="sharing", help="when they vanish"
    )
    secagg.add_argument(
        "--sigma", default="4000", help="total noise sigma in grid units (default 4000, R 1000)"
    )
    secagg.add_argument("--json", action="store_true", help="one JSON object per run")
    secagg.add_argument(
        "--grid", action="store_true", help="README table: N 10/50/100, D 1e3/1e5, 0/10%%"
    )
    secagg.set_defaults(func=_secagg)
    bench_tlog.add_benchmark(kinds)
    bench_data.add_benchmarks(kinds)
    bench_picture.add_benchmark(kinds)
    audit = kinds.add_parser("audit", help="time scfed audit verify on a log of many rounds")
    audit.add_argument("--rounds", type=int, default=100)
    audit.add_argument("--nodes", type=int, default=50)
    audit.add_argument("--dim", type=float, default=1e4, help="cells per round (1e4)")
    audit.set_defaults(func=_audit)


@dataclass(frozen=True)
class Run:
    nodes: int
    dim: int
    dropped: int
    wall: float
    cpu: float
    phases: dict[str, tuple[float, float]]
    bytes_per_node: int


def bench(nodes: int, dim: int, dropout: float, after: Phase, sigma: str = "4000") -> Run:
    """Run one in-memory round and check its result against the plain sum."""
    if not 3 <= nodes <= 1000 or not 1 <= dim <= 1_000_000 or not 0 <= dropout < 0.5:
        raise ScfedError("nodes must be 3..1000, dim 1..1e6 and dropout below 0.5")
    fed = federation(nodes, os.urandom)
    members = tuple(sorted(fed.member_keys))
    noise = Noise(sigma, 1, MAGNITUDE, 1000, "1", 2**40)
    try:
        noise.check(3)
    except ValueError as exc:
        raise ScfedError(f"--sigma: {exc}") from None
    announce = Announce(
        os.urandom(16), "bench", dim, members, nodes // 2 + 1, 3, 1, 60_000, bytes(32), noise
    )
    inputs = {m: _random_input(dim) for m in members}
    vanish = dict.fromkeys(members[: int(nodes * dropout)], after)
    report = run_round(fed, announce, inputs, os.urandom, vanish_after=vanish)
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


def _row(run: Run) -> str:
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


def _secagg(args: argparse.Namespace) -> int:
    after = PHASES[args.dropout_after]
    if args.grid:
        grid = [(n, d, f) for n in (10, 50, 100) for d in (1000, 100_000) for f in (0.0, 0.1)]
    else:
        grid = [(args.nodes, int(args.dim), args.dropout)]
    if not args.json:
        print(HEADER)
    for nodes, dim, dropout in grid:
        run = bench(nodes, dim, dropout, after, args.sigma)
        print(json.dumps(run.__dict__) if args.json else _row(run), flush=True)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from auditor.bench import bench_audit

    built, audited = bench_audit(args.rounds, args.nodes, int(args.dim))
    print("| rounds | nodes | D | build the log s | audit s |\n|--:|--:|--:|--:|--:|")
    print(f"| {args.rounds} | {args.nodes} | {int(args.dim):,} | {built:.1f} | {audited:.1f} |")
    return 0
