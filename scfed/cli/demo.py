"""``scfed demo``: a whole federation on this machine, one round, checked.

Makes a federation, starts the coordinator and one node process per member with synthetic
weekly demand and capacity figures, optionally kills some nodes mid-round, runs one round as
the operator, prints the aggregate and checks it against the plaintext sum, which only the
demo knows. Every process it started is stopped before it returns.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protos.scfed.v1 import service_pb2 as spb
from scfed.cli.coordinator import AdminClient
from scfed.cli.federation import enroll_member, enroll_operator, init_federation
from scfed.config import load_operator_config
from scfed.envelope import ABORT, SHARE_KEYS, Envelope
from scfed.errors import ConfigError, ScfedError
from scfed.messages import Result, decode_abort, decode_result

FIRMS = (
    "fab-kumamoto", "fab-hsinchu", "fab-pyeongtaek", "osat-penang", "osat-kaohsiung",
    "wafer-niigata", "materials-ulsan", "auto-nagoya", "auto-detroit", "industrial-munich",
    "fab-dresden", "osat-cavite",
)  # fmt: skip
COMMODITIES = ("logic-28nm", "analog-180nm", "dram-1x")
WEEKS = 4
START_TIMEOUT_S = 30.0


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("demo", help="run a whole federation on this machine")
    parser.add_argument("--nodes", type=int, default=6, help="member nodes to start (3..40)")
    parser.add_argument("--dropouts", type=int, default=0, help="nodes to kill mid-round")
    parser.add_argument("--dir", type=Path, help="federation folder (default: a temporary one)")
    parser.set_defaults(func=_demo)


def member_names(n: int) -> list[str]:
    """Realistic names for the first members, numbered ones after."""
    return sorted(FIRMS[i] if i < len(FIRMS) else f"member-{i:02d}" for i in range(n))


def demo_cells(today: dt.date) -> list[str]:
    """demand/capacity x commodity x the next ISO weeks."""
    monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=1)
    weeks = [(monday + dt.timedelta(weeks=w)).isocalendar() for w in range(WEEKS)]
    labels = [f"{y}-W{w:02d}" for y, w, _ in weeks]
    return [f"{m}/{c}/{w}" for c in COMMODITIES for w in labels for m in ("demand", "capacity")]


def synthetic_figures(cells: list[str]) -> dict[str, int]:
    """One firm's weekly figures in wafers: a base level per commodity, varying by week."""
    figures = {}
    for cell in cells:
        metric, commodity, _ = cell.split("/")
        if secrets.randbelow(4) == 0:
            continue  # not every firm is in every commodity
        base = 800 + 400 * COMMODITIES.index(commodity) + secrets.randbelow(600)
        figures[cell] = base + (200 if metric == "capacity" else 0) + secrets.randbelow(150)
    return figures


def write_figures(path: Path, figures: dict[str, int]) -> None:
    lines = ["cell,value"] + [f"{cell},{value}" for cell, value in figures.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Processes:
    """The daemons the demo started, stopped for sure on exit."""

    logs: Path
    running: dict[str, subprocess.Popen[bytes]]

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "scfed", *args], stdout=log, stderr=subprocess.STDOUT
            )
        self.running[name] = process
        return process

    def kill(self, name: str) -> None:
        self.running[name].kill()

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self.running.values():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_text(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def processes(logs: Path) -> Iterator[Processes]:
    logs.mkdir(parents=True, exist_ok=True)
    started = Processes(logs, {})
    try:
        yield started
    finally:
        started.stop_all()


def wait_for(what: str, check: Callable[[], bool], procs: Processes, name: str) -> None:
    """Poll ``check`` until it holds; fail if process ``name`` dies or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        if procs.running[name].poll() is not None:
            raise ScfedError(f"{name} exited early:\n{procs.log_text(name)[-2000:]}")
        time.sleep(0.05)
    raise ScfedError(f"timed out waiting for {what}")


def _kill_after_sharing(procs: Processes, victims: list[str], done: threading.Event) -> None:
    """Kill each victim as soon as its key shares were accepted: a mid-round dropout."""
    pending = set(victims)
    while pending and not done.is_set():
        for name in list(pending):
            if f"{SHARE_KEYS} accepted" in procs.log_text(name):
                procs.kill(name)
                pending.discard(name)
                print(f"killed {name} after it shared its keys")
        time.sleep(0.005)


def setup(directory: Path, names: list[str], cells: list[str]) -> dict[str, dict[str, int]]:
    """The federation, its members with their figures, and an operator."""
    now = dt.datetime.now(dt.UTC)
    init_federation(directory, "demo", None, "127.0.0.1:0", [], now)
    enroll_operator(directory, "operator", now)
    figures = {}
    for name in names:
        folder = enroll_member(directory, name, None, None, now)
        figures[name] = synthetic_figures(cells)
        write_figures(folder / "figures.csv", figures[name])
    (directory / "cells.txt").write_text("\n".join(cells) + "\n", encoding="utf-8")
    return figures


def run_demo(directory: Path, n: int, dropouts: int) -> int:
    """The whole demo in ``directory``; the exit code."""
    if not 3 <= n <= 40 or not 0 <= dropouts < n:
        raise ConfigError("--nodes must be 3..40 and --dropouts below --nodes")
    names, cells = member_names(n), demo_cells(dt.date.today())
    figures = setup(directory, names, cells)
    print(f"federation of {n} members in {directory}")
    with processes(directory / "logs") as procs:
        port = start_coordinator(directory, procs)
        address = f"127.0.0.1:{port}"
        for name in names:
            config = directory / "members" / name / "node.toml"
            procs.start(name, "node", "serve", "--config", str(config), "--coordinator", address)
        operator = load_operator_config(directory / "operators" / "operator" / "operator.toml")
        with AdminClient(operator, address) as admin:
            wait_for(
                f"{n} nodes to connect",
                lambda: len(admin.status().connected) == n,
                procs,
                "coordinator",
            )
            print(f"coordinator on {address}; {n} nodes connected")
            outcome = _run_round(admin, procs, names, cells, dropouts)
    return _report(outcome, figures, cells, n, dropouts)


def start_coordinator(directory: Path, procs: Processes) -> int:
    """Start the federation's coordinator on a free loopback port; the port."""
    port_file = directory / "coordinator" / "port"
    config = directory / "coordinator" / "coordinator.toml"
    procs.start(
        "coordinator", "coordinator", "serve", "--config", str(config),
        "--listen", "127.0.0.1:0", "--port-file", str(port_file),
    )  # fmt: skip
    wait_for("the coordinator to listen", port_file.exists, procs, "coordinator")
    return int(port_file.read_text().strip())


def _run_round(
    admin: AdminClient, procs: Processes, names: list[str], cells: list[str], dropouts: int
) -> Envelope:
    victims = secrets.SystemRandom().sample(names, dropouts)
    done = threading.Event()
    watcher = threading.Thread(target=_kill_after_sharing, args=(procs, victims, done))
    watcher.start()
    request = spb.StartRoundRequest(
        query="demo.weekly-demand-capacity",
        cells=cells,
        candidates=names,
        phase_timeout_ms=2_000 if dropouts else 20_000,
    )
    started = time.perf_counter()
    try:
        _, outcome = admin.start_round(request, timeout=120)
    finally:
        done.set()
        watcher.join()
    print(f"round finished in {time.perf_counter() - started:.2f} s: {outcome.type}")
    return outcome


def _report(
    outcome: Envelope, figures: dict[str, dict[str, int]], cells: list[str], n: int, dropouts: int
) -> int:
    if outcome.type == ABORT:
        must = n - dropouts < max(n // 2 + 1, 3)
        print(f"the round aborted without unmasking anything: {decode_abort(outcome.body).reason}")
        print("as it must with so few nodes left" if must else "MISMATCH: it should have completed")
        return 0 if must else 1
    result = decode_result(outcome.body)
    expected = {c: sum(figures[m].get(c, 0) for m in result.survivors) for c in cells}
    print(aggregate_table(result, cells, expected))
    wrong = [c for c, v in zip(cells, _sums(result), strict=True) if v != expected[c]]
    if wrong:
        print(f"MISMATCH in {len(wrong)} cells: {', '.join(wrong[:5])}")
        return 1
    print(f"all {len(cells)} cells equal the plaintext sum of the {len(result.survivors)} "
          "contributors, which no party of the federation ever saw")  # fmt: skip
    return 0


def _sums(result: Result) -> list[int]:
    return [int(v) for v in np.frombuffer(result.sums, dtype="<i8")]


def aggregate_table(result: Result, cells: list[str], expected: dict[str, int]) -> str:
    """Demand against capacity per commodity and week, with the check of each cell."""
    sums = dict(zip(cells, _sums(result), strict=True))
    rows = sorted({tuple(c.split("/")[1:]) for c in cells})
    lines = [
        f"{'commodity':<14} {'week':<9} {'demand':>9} {'capacity':>9} {'gap':>8}  check",
        "-" * 60,
    ]
    for commodity, week in rows:
        demand, capacity = (sums[f"{m}/{commodity}/{week}"] for m in ("demand", "capacity"))
        ok = all(sums[f"{m}/{commodity}/{week}"] == expected[f"{m}/{commodity}/{week}"]
                 for m in ("demand", "capacity"))  # fmt: skip
        lines.append(
            f"{commodity:<14} {week:<9} {demand:>9,} {capacity:>9,} {demand - capacity:>8,}  "
            + ("ok" if ok else "MISMATCH")
        )
    lines.append(f"contributors: {', '.join(result.survivors)}")
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        return run_demo(args.dir, args.nodes, args.dropouts)
    with tempfile.TemporaryDirectory(prefix="scfed-demo-") as directory:
        return run_demo(Path(directory), args.nodes, args.dropouts)
