"""``scfed demo``: a whole federation on this machine, one round, checked.

Makes a federation, starts the coordinator and one node process per member with synthetic
weekly demand and capacity figures, optionally kills some nodes mid-round, and runs one round
as the operator. Each node adds its share of discrete Gaussian noise, so the published sums
are noisy: the demo prints each true sum (which only the demo knows) beside the noisy one and
its 95% interval, checks that nearly all intervals cover the truth, and derives the demand
and capacity gap and the DCM traffic light from the noisy cells. Every process it started is
stopped before it returns. Last, it audits the protocol log as an outside auditor would,
from the coordinator's log service with the governance key as the only trust anchor.
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
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.cli.coordinator import AdminClient
from scfed.cli.federation import enroll_member, enroll_operator, init_federation
from scfed.config import load_federation_config, load_operator_config, read_governance_key
from scfed.dp.accounting import epsilon
from scfed.dp.distribution import Estimate, cell_estimate, difference, traffic_light
from scfed.dp.params import MAGNITUDE, Noise
from scfed.envelope import ABORT, SHARE_KEYS, Envelope
from scfed.errors import ConfigError, ScfedError
from scfed.messages import Result, decode_abort, decode_result, noise_to_proto
from scfed.transport import secure_channel

FIRMS = (
    "fab-kumamoto", "fab-hsinchu", "fab-pyeongtaek", "osat-penang", "osat-kaohsiung",
    "wafer-niigata", "materials-ulsan", "auto-nagoya", "auto-detroit", "industrial-munich",
    "fab-dresden", "osat-cavite",
)  # fmt: skip
COMMODITIES = ("logic-28nm", "analog-180nm", "dram-1x")
METRICS = ("demand", "capacity-actual", "capacity-max")
WEEKS = 4
START_TIMEOUT_S = 30.0
N_MIN = 3
#: Magnitude privacy: any firm's figures are hidden to +/- 100 wafers (L2 over the cells).
NOISE = Noise(sigma="400", t_collude=1, unit=MAGNITUDE, bound=100, grid="1", plausible=10**6)
#: Fewest intervals that must cover their true sum; 95% intervals miss about 1 in 20.
COVERAGE = 0.8


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
    """demand / actual / maximum capacity x commodity x the next ISO weeks."""
    monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=1)
    weeks = [(monday + dt.timedelta(weeks=w)).isocalendar() for w in range(WEEKS)]
    labels = [f"{y}-W{w:02d}" for y, w, _ in weeks]
    return [f"{m}/{c}/{w}" for c in COMMODITIES for w in labels for m in METRICS]


def synthetic_figures(cells: list[str]) -> dict[str, int]:
    """One firm's weekly figures in wafers: a base level per commodity, varying by week.

    Legacy analog demand climbs week by week past the capacity: the squeeze to be seen.
    """
    figures = {}
    for cell in cells:
        metric, commodity, week = cell.split("/")
        if secrets.randbelow(4) == 0:
            continue  # not every firm is in every commodity
        base = 800 + 400 * COMMODITIES.index(commodity) + secrets.randbelow(600)
        if metric == "demand" and commodity == "analog-180nm":
            base += 250 * (int(week[-2:]) % WEEKS)
        extra = {"demand": 0, "capacity-actual": 300, "capacity-max": 600}[metric]
        figures[cell] = base + extra + secrets.randbelow(150)
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
        code = _report(outcome, figures, cells, n, dropouts)
        return max(code, audit_log(directory, address))


def audit_log(directory: Path, address: str) -> int:
    """Audit the federation's protocol log as an outside auditor would; the exit code."""
    from auditor.fetch import fetch_log
    from auditor.report import text
    from auditor.verify import audit

    operator = load_operator_config(directory / "operators" / "operator" / "operator.toml")
    with secure_channel(operator.tls, address, operator.server_name) as channel:
        entries, checkpoint = fetch_log(rpc.LogServiceStub(channel))
    report = audit(
        entries,
        checkpoint=checkpoint,
        governance_key=read_governance_key(directory / "governance" / "governance.pub"),
        origin=load_federation_config(directory / "federation.toml").origin,
    )
    print(f"\naudit of the protocol log ({len(entries)} signed messages):")
    print(text(report))
    return 0 if report.ok else 1


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
        n_min=N_MIN,
        phase_timeout_ms=2_000 if dropouts else 20_000,
        noise=noise_to_proto(NOISE),
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
        must = n - dropouts < max(n // 2 + 1, N_MIN)
        print(f"the round aborted without unmasking anything: {decode_abort(outcome.body).reason}")
        print("as it must with so few nodes left" if must else "MISMATCH: it should have completed")
        return 0 if must else 1
    result = decode_result(outcome.body)
    truth = {c: sum(figures[m].get(c, 0) for m in result.survivors) for c in cells}
    estimates = _estimates(result, cells)
    print(cell_table(estimates, truth))
    print()
    print(light_table(estimates, len(result.survivors)))
    return _coverage(estimates, truth, len(result.survivors))


def _estimates(result: Result, cells: list[str]) -> dict[str, Estimate]:
    sums = [int(v) for v in np.frombuffer(result.sums, dtype="<i8")]
    m, sigma_l2 = len(result.survivors), NOISE.local_variance(N_MIN)
    return {c: cell_estimate(v, sigma_l2=sigma_l2, m=m) for c, v in zip(cells, sums, strict=True)}


def cell_table(estimates: dict[str, Estimate], truth: dict[str, int]) -> str:
    """Each cell's true sum beside its noisy sum and 95% interval."""
    lines = [
        f"{'cell':<34} {'true':>7} {'noisy':>7}  {'95% interval':<17} covered",
        "-" * 76,
    ]
    for cell, e in estimates.items():
        inside = e.low <= truth[cell] <= e.high
        interval = f"[{e.low:,.0f}, {e.high:,.0f}]"
        lines.append(
            f"{cell:<34} {truth[cell]:>7,} {e.value:>7,}  {interval:<17} "
            + ("yes" if inside else "NO")
        )
    return "\n".join(lines)


def light_table(estimates: dict[str, Estimate], m: int) -> str:
    """Demand against capacity per commodity and week, from the noisy cells only."""
    sigma_l2 = NOISE.local_variance(N_MIN)
    rows = sorted({tuple(c.split("/")[1:]) for c in estimates})
    lines = [
        f"{'commodity':<14} {'week':<9} {'demand':>7} {'actual':>7} {'max':>7} "
        f"{'demand - actual (95%)':>24}  light",
        "-" * 84,
    ]
    for commodity, week in rows:
        demand, actual, top = (estimates[f"{x}/{commodity}/{week}"] for x in METRICS)
        gap = difference(int(demand.value), int(actual.value), sigma_l2=sigma_l2, m_a=m, m_b=m)
        light, certain = traffic_light(demand, actual, top)
        span = f"{gap.value:,} [{gap.low:,.0f}, {gap.high:,.0f}]"
        lines.append(
            f"{commodity:<14} {week:<9} {demand.value:>7,} {actual.value:>7,} {top.value:>7,} "
            f"{span:>24}  {light}{'' if certain else ' (uncertain)'}"
        )
    return "\n".join(lines)


def _coverage(estimates: dict[str, Estimate], truth: dict[str, int], m: int) -> int:
    covered = sum(e.low <= truth[c] <= e.high for c, e in estimates.items())
    rho = NOISE.rho(N_MIN, m)
    print(
        f"\n{covered} of {len(estimates)} intervals cover the true sum, which no party of the "
        f"federation ever saw; this release cost each contributor rho {float(rho):.4g} "
        f"(epsilon {epsilon(rho, 1e-9):.3g} at delta 1e-9)"
    )
    if covered < COVERAGE * len(estimates):
        print(f"MISMATCH: fewer than {COVERAGE:.0%} of the intervals cover the truth")
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        return run_demo(args.dir, args.nodes, args.dropouts)
    with tempfile.TemporaryDirectory(prefix="scfed-demo-") as directory:
        return run_demo(Path(directory), args.nodes, args.dropouts)
