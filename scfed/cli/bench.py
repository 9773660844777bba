"""``scfed bench ...``: the benchmarks, which live in ``tools``. Benchmarks, not tests.

``secagg`` times an in-memory round per phase (``tools.bench_secagg``), ``tlog`` the
protocol log at scale (``tools.bench_tlog``), ``import`` and ``vector`` a node's data work
(``tools.bench_import``, ``tools.bench_data``), ``picture`` how often the published traffic
lights are right (``tools.bench_picture``), ``audit`` the audit of many rounds
(``tools.bench_audit``), ``noise`` the exact discrete Gaussian sampler against its floor
(``tools.bench_noise``) and ``deploy`` a federation of real processes over loopback mutual
TLS, its nodes' start-up and one round (``tools.bench_deploy``). This module parses the
arguments and prints the tables; each benchmark is imported when it runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scfed.errors import ConfigError


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("bench", help="benchmarks")
    kinds = parser.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    _add_secagg(kinds)
    _add_tlog(kinds)
    imports = kinds.add_parser("import", help="time importing a large CSV file into a node")
    imports.add_argument("--rows", type=float, default=1e6)
    imports.set_defaults(func=_import)
    vector = kinds.add_parser("vector", help="time a node's vector for a large catalogue entry")
    vector.add_argument("--cells", type=float, default=1e5)
    vector.set_defaults(func=_vector)
    _add_picture(kinds)
    audit = kinds.add_parser("audit", help="time scfed audit verify on a log of many rounds")
    audit.add_argument("--rounds", type=int, default=100)
    audit.add_argument("--nodes", type=int, default=50)
    audit.add_argument("--dim", type=float, default=1e4, help="cells per round (1e4)")
    audit.add_argument(
        "--graph", choices=("complete", "sparse"), default="complete",
        help="the rounds' graph: complete, or SecAgg+ with the rule's k and t",
    )  # fmt: skip
    audit.set_defaults(func=_audit)
    _add_noise(kinds)
    _add_deploy(kinds)
    dashboard = kinds.add_parser(
        "dashboard", help="time each dashboard page over a year of releases, beside its floor"
    )
    dashboard.add_argument("--commodities", type=int, default=100, help="(default 100)")
    dashboard.add_argument("--weeks", type=int, default=52, help="weekly releases (52)")
    dashboard.set_defaults(func=_dashboard)


def _add_secagg(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tools.bench_secagg import PHASES

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
    secagg.add_argument(
        "--graph", choices=("complete", "sparse"), default="complete",
        help="the complete graph, or SecAgg+ with k and t from the rule (default complete)",
    )  # fmt: skip
    secagg.add_argument(
        "--k", type=int, default=0, help="sparse: this degree instead of the rule's (even)"
    )
    secagg.add_argument("--json", action="store_true", help="one JSON object per run")
    secagg.add_argument(
        "--grid", action="store_true", help="README table: N 10/50/100, D 1e3/1e5, 0/10%%"
    )
    secagg.set_defaults(func=_secagg)


def _add_tlog(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = kinds.add_parser(
        "tlog", help="time the protocol log: appends, group commit, proofs, checkpoints"
    )
    parser.add_argument("--leaves", type=float, default=1e6, help="log size to build (1e6)")
    parser.add_argument(
        "--appends", type=int, default=1000, help="timed appends, per way of appending (1000)"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="directory for the database (default: a temp dir)"
    )
    parser.set_defaults(func=_tlog)


def _add_picture(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    picture = kinds.add_parser("picture", help="how often the published traffic lights are right")
    picture.add_argument("--draws", type=int, default=100, help="noise draws (default 100)")
    picture.add_argument("--releases", type=int, default=52, help="weekly releases (52)")
    picture.add_argument("--seed", type=int, default=2026, help="the synthetic federation's seed")
    picture.add_argument(
        "--dropouts", type=int, default=0, help="firms down in a week, at most (default 0)"
    )
    picture.add_argument("--fred", type=Path, help="folder of the FRED CSV files")
    picture.add_argument("--json", action="store_true", help="the table as JSON")
    picture.set_defaults(func=_picture)


def _add_noise(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    noise = kinds.add_parser(
        "noise", help="time the exact discrete Gaussian sampler against its floor"
    )
    noise.add_argument("--cells", type=float, default=1e5, help="draws per sample (1e5)")
    noise.add_argument(
        "--sigma2",
        action="append",
        metavar="P/Q",
        help="sigma^2 to time, repeatable (default: 4, 9/4, 800, 90000, 8000000)",
    )
    noise.add_argument("--repeat", type=int, default=20, help="timed runs, the fastest kept")
    noise.add_argument("--json", action="store_true", help="one JSON object per sigma^2")
    noise.set_defaults(func=_noise)


def _add_deploy(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = kinds.add_parser(
        "deploy", help="start a federation of node processes on loopback and time one round"
    )
    deploy.add_argument("--nodes", type=int, default=100, help="node processes (100)")
    deploy.add_argument("--dim", type=float, default=1e4, help="cells of the round (1e4)")
    deploy.add_argument(
        "--graph", choices=("complete", "sparse"), default="",
        help="the round's graph (default: the coordinator's, sparse from 100 candidates)",
    )  # fmt: skip
    deploy.add_argument("--json", action="store_true", help="the run as one JSON object")
    deploy.set_defaults(func=_deploy)


def _secagg(args: argparse.Namespace) -> int:
    from tools.bench_secagg import GRID, HEADER, PHASES, bench, row, summary

    after = PHASES[args.dropout_after]
    grid = GRID if args.grid else ((args.nodes, int(args.dim), args.dropout),)
    if not args.json:
        print(HEADER)
    for nodes, dim, dropout in grid:
        run = bench(nodes, dim, dropout, after, args.sigma, graph=args.graph, k=args.k)
        print(json.dumps(summary(run)) if args.json else row(run), flush=True)
    return 0


def _tlog(args: argparse.Namespace) -> int:
    from tools.bench_tlog import run, table

    leaves, appends = int(args.leaves), args.appends
    if not 1 <= leaves <= 100_000_000 or not 1 <= appends <= 100_000:
        raise ConfigError("--leaves must be 1..1e8 and --appends 1..1e5")
    print(table(run(args.dir, leaves, appends)))
    return 0


def _import(args: argparse.Namespace) -> int:
    from tools.bench_import import bench_import

    seconds = bench_import(int(args.rows))
    print(f"| CSV rows | import s |\n|--:|--:|\n| {int(args.rows):,} | {seconds:.1f} |")
    return 0


def _vector(args: argparse.Namespace) -> int:
    from tools.bench_data import HORIZON, bench_vector

    timed = bench_vector(int(args.cells))
    print("| cells | commodities x weeks | vector s |\n|--:|--:|--:|")
    print(f"| {timed.cells:,} | {timed.commodities} x {HORIZON} | {timed.seconds:.2f} |")
    return 0


def _picture(args: argparse.Namespace) -> int:
    from tools.bench_picture import default_fred, measure

    fred = args.fred or default_fred()
    if args.draws < 1 or not 1 <= args.releases <= 57 or not 0 <= args.dropouts <= 3:
        raise ConfigError("--draws must be at least 1, --releases 1 to 57, --dropouts 0 to 3")
    started = time.perf_counter()
    tally = measure(
        fred, draws=args.draws, releases=args.releases, seed=args.seed, dropouts=args.dropouts
    )
    seconds = time.perf_counter() - started
    print(json.dumps(tally.summary(), indent=2) if args.json else tally.table(seconds))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from tools.bench_audit import bench_audit

    built, audited, leaves = bench_audit(args.rounds, args.nodes, int(args.dim), args.graph)
    print(
        "| rounds | nodes | D | graph | leaves | build the log s | audit s |\n"
        "|--:|--:|--:|--|--:|--:|--:|"
    )
    print(
        f"| {args.rounds} | {args.nodes} | {int(args.dim):,} | {args.graph} | {leaves:,} "
        f"| {built:.1f} | {audited:.1f} |"
    )
    return 0


def _noise(args: argparse.Namespace) -> int:
    from tools.bench_noise import DEFAULT_SIGMA2, HEADER, bench, parse_sigma2, row

    sigma2s = [parse_sigma2(text) for text in args.sigma2 or DEFAULT_SIGMA2]
    if not args.json:
        print(HEADER)
    for sigma2 in sigma2s:
        run = bench(int(args.cells), sigma2, args.repeat)
        print(json.dumps(run.summary()) if args.json else row(run), flush=True)
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from tools.bench_deploy import HEADER, bench_deploy, row, summary

    run = bench_deploy(args.nodes, int(args.dim), args.graph)
    print(json.dumps(summary(run)) if args.json else f"{HEADER}\n{row(run)}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    import tempfile

    from tools.bench_dashboard import bench, table

    if not 1 <= args.commodities <= 200 or not 1 <= args.weeks <= 104:
        raise ConfigError("--commodities must be 1..200 and --weeks 1..104")
    with tempfile.TemporaryDirectory(prefix="scfed-bench-") as directory:
        count, floor, startup, pages = bench(Path(directory), args.commodities, args.weeks)
    print(table(count, args.commodities, floor, startup, pages))
    return 0
