"""``scfed coordinator ...``: the operator's daemon and its admin commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from coordinator.admin_client import AdminClient
from edge.config import load_coordinator_config, load_operator_config
from edge.files import write_public
from edge.lock import state_lock
from protos.scfed.v1 import service_pb2 as spb
from scfed import enrolment
from scfed.cli import backup, party, results, schedule
from scfed.config import OperatorConfig
from scfed.dp.distribution import halfwidth, noise_sd
from scfed.dp.params import DEFAULT_PLAUSIBLE, MAGNITUDE, UNITS, Noise
from scfed.errors import ConfigError, ScfedError
from scfed.wire import RESULT
from scfed.wire.codec import decode_abort, decode_result, noise_to_proto
from scfed.wire.messages import DEFAULT_N_MIN, Result


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("coordinator", help="run the coordinator or operate it")
    commands = parser.add_subparsers(dest="coordinator_command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve nodes and operators over mutual TLS")
    serve.add_argument("--config", type=Path, required=True, help="coordinator.toml")
    serve.add_argument("--listen", help="HOST:PORT, overriding the configuration (port 0: any)")
    serve.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    serve.set_defaults(func=_serve)
    rounds = commands.add_parser("round", help="run rounds (operator certificate required)")
    round_commands = rounds.add_subparsers(dest="round_command", required=True, metavar="COMMAND")
    start = round_commands.add_parser("start", help="run one round and print its result")
    _operator_arguments(start)
    start.add_argument("--query", required=True, help="name of the query")
    start.add_argument("--entry", help="a catalogue entry: cells and noise come from it")
    start.add_argument("--week", help="a catalogue round's first Monday (default: next)")
    start.add_argument("--cells-file", type=Path, help="ad hoc: one cell key per line")
    start.add_argument("--candidates", nargs="*", default=[], help="members (default: connected)")
    start.add_argument("--threshold", type=int, default=0, help="Shamir t (default: n/2 + 1)")
    start.add_argument(
        "--graph", choices=("complete", "sparse"), default="",
        help="SecAgg+ sparse or the complete graph (default: sparse from 100 candidates)",
    )  # fmt: skip
    start.add_argument("--n-min", type=int, default=0, help="fewest inputs (default: 3)")
    start.add_argument("--phase-timeout-ms", type=int, default=0, help="default: coordinator's")
    start.set_defaults(func=_start_round)
    _noise_arguments(start)
    status = commands.add_parser("status", help="connected nodes, and the latest rounds and why")
    _operator_arguments(status)
    status.set_defaults(func=_status)
    ledger = commands.add_parser("ledger", help="the federation's privacy budget, per period")
    ledger.add_argument("--config", type=Path, required=True, help="coordinator.toml")
    ledger.set_defaults(func=_ledger)
    results.add_command(commands, "coordinator")
    backup.add_commands(commands, "coordinator")
    schedule.add_command(commands)
    party.add_commands(commands, enrolment.KIND_COORDINATOR)


def _noise_arguments(start: argparse.ArgumentParser) -> None:
    noise = start.add_argument_group("noise and privacy unit (README: Differential privacy)")
    noise.add_argument("--sigma", help="ad hoc: total noise sigma, grid units (decimal)")
    noise.add_argument("--bound", type=int, help="ad hoc: privacy radius R or clip C")
    noise.add_argument("--unit", choices=UNITS, default=MAGNITUDE, help="privacy unit")
    noise.add_argument("--grid", default="1", help="one grid unit in the figures' unit")
    noise.add_argument(
        "--plausible", type=int, default=DEFAULT_PLAUSIBLE, help="largest |cell| in grid units"
    )
    noise.add_argument("--t-collude", type=int, default=1, help="colluders assumed (default 1)")


def _operator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="the operator's operator.toml")
    parser.add_argument("--coordinator", help="HOST:PORT, overriding the configuration")


def _serve(args: argparse.Namespace) -> int:
    from coordinator.server import serve

    config = load_coordinator_config(args.config)

    def ready(port: int) -> None:
        if args.port_file is not None:
            write_public(args.port_file, f"{port}\n".encode())

    with state_lock(config.database, "scfed coordinator"):
        asyncio.run(serve(config, args.listen, ready))
    return 0


def read_cells(path: Path) -> list[str]:
    """The non-empty lines of a cells file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read cells from {path}: {exc}") from exc
    cells = [line.strip() for line in lines if line.strip()]
    if len(set(cells)) != len(cells):
        raise ConfigError(f"{path} names a cell twice")
    return cells


def result_table(result: Result, cells: list[str], noise: Noise, n_min: int) -> str:
    """A readable table of a round's noisy sums with their 95% intervals, in the figures'
    own unit (grid units times the grid)."""
    sums = np.frombuffer(result.sums, dtype="<i8")
    m, sigma_l2 = len(result.survivors), noise.local_variance(n_min)
    half = halfwidth(sigma_l2, m)
    grid = noise.grid_value
    width = max([len(c) for c in cells] + [4])
    lines = [
        f"noise: {m} shares of N_Z(0, {sigma_l2}) per cell, sd {noise_sd(sigma_l2, m) * grid:.4g}"
        f"; 95% interval +/- {_figure(half * grid)} (grid unit {noise.grid})",
        f"{'cell':<{width}}  {'noisy sum':>20}  {'95% interval':>32}",
        f"{'-' * width}  {'-' * 20}  {'-' * 32}",
    ]
    for cell, value in zip(cells, sums, strict=True):
        low, high = (int(value) - half) * grid, (int(value) + half) * grid
        interval = f"[{_figure(low)}, {_figure(high)}]"
        lines.append(f"{cell:<{width}}  {_figure(int(value) * grid):>20}  {interval:>32}")
    lines.append(f"{m} contributors: {', '.join(result.survivors)}")
    return "\n".join(lines)


def _figure(value: Fraction) -> str:
    """An exact figure on the grid, written as a decimal with thousands separators."""
    if value.denominator == 1:
        return f"{value.numerator:,}"
    return f"{float(value):,.6g}"


def _start_round(args: argparse.Namespace) -> int:
    config = load_operator_config(args.config)
    request = spb.StartRoundRequest(
        query=args.entry or args.query,
        candidates=sorted(args.candidates),
        threshold=args.threshold,
        phase_timeout_ms=args.phase_timeout_ms,
        graph=args.graph,
    )
    if args.entry:
        if args.cells_file or args.sigma or args.bound:
            raise ConfigError("a catalogue round takes its cells and noise from the entry")
        request.entry, request.week = args.entry, args.week or ""
        return _run(config, args, request, None)
    if args.cells_file is None or args.sigma is None or args.bound is None:
        raise ConfigError("an ad-hoc round needs --cells-file, --sigma and --bound")
    cells = read_cells(args.cells_file)
    noise = _noise(args)
    request.cells.extend(cells)
    request.n_min = args.n_min
    request.noise.CopyFrom(noise_to_proto(noise))
    return _run(config, args, request, (cells, noise))


def _run(
    config: OperatorConfig,
    args: argparse.Namespace,
    request: spb.StartRoundRequest,
    adhoc: tuple[list[str], Noise] | None,
) -> int:
    timeout = 5 * (args.phase_timeout_ms or 30_000) / 1000 + 30
    with AdminClient(config, args.coordinator) as admin:
        round_id, outcome = admin.start_round(request, timeout)
    print(f"round {round_id.hex()}: {outcome.type}")
    if outcome.type != RESULT:
        print(f"aborted: {decode_abort(outcome.body).reason}")
        return 2
    if adhoc is None:
        print("the release, with the disclosure rules applied: scfed coordinator results")
        return 0
    cells, noise = adhoc
    result = decode_result(outcome.body)
    if len(result.sums) != 8 * len(cells):
        raise ScfedError("the result does not have one sum per requested cell")
    print(result_table(result, cells, noise, args.n_min or DEFAULT_N_MIN))
    sys.stdout.flush()
    return 0


def _noise(args: argparse.Namespace) -> Noise:
    noise = Noise(args.sigma, args.t_collude, args.unit, args.bound, args.grid, args.plausible)
    try:
        noise.check(args.n_min or DEFAULT_N_MIN)
    except ValueError as exc:
        raise ConfigError(f"noise: {exc}") from None
    return noise


def _ledger(args: argparse.Namespace) -> int:
    from scfed.cli._ledger import show_ledger

    config = load_coordinator_config(args.config)
    return show_ledger(config.database, config.privacy)


def _status(args: argparse.Namespace) -> int:
    with AdminClient(load_operator_config(args.config), args.coordinator) as admin:
        status = admin.status()
    print(f"registry version {status.registry_version}")
    print(f"round running: {status.phase}" if status.phase else "no round running")
    print("latest rounds:" if status.rounds else "no round yet")
    for line in status.rounds:
        print(f"  {line}")
    print(f"{len(status.connected)} connected: {', '.join(status.connected)}")
    for line in status.expiring:
        print(f"warning: {line}")
    return 0
