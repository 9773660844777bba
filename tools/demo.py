"""A whole federation on this machine, one catalogue round, checked: ``scfed demo``.

Makes a federation of synthetic firms (fabs, OSATs, wafer and materials suppliers, automotive
and industrial buyers in Japan, Taiwan, Korea and the US). Each firm imports its own demand
and capacity files into its node with ``scfed node import`` and opts into the catalogue entry
that governance signed. The demo starts the coordinator and one node process per firm,
optionally kills some nodes mid-round, and runs the entry's round as the operator. Each node
adds its share of discrete Gaussian noise, so the published sums are noisy: the demo prints
each true sum (which only the demo knows) beside the noisy one and its 95% interval and checks
that nearly all intervals cover the truth; then ``scfed coordinator results`` applies the
disclosure rules (suppressing cells with too few firms or one dominant firm) and shows the DCM
traffic light per commodity and week, from the noisy cells only: the Kyushu legacy analog
squeeze turns red. Last, it audits the protocol log as an outside auditor would. Every process
it started is stopped before it returns.
"""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from coordinator.admin_client import AdminClient
from edge.config import load_coordinator_config, load_operator_config, read_governance_key
from edge.transport import secure_channel
from governance.local import (
    coordinator_config,
    enroll_member,
    enroll_operator,
    init_federation,
    sign_catalogue,
)
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.dp.accounting import epsilon
from scfed.errors import ConfigError
from scfed.picture import release, round_of
from scfed.release import unit
from scfed.wire import ABORT, SHARE_KEYS
from scfed.wire.codec import decode_abort, decode_result
from scfed.wire.envelope import Envelope
from scfed.wire.policy import Policy
from tools import demo_data
from tools.processes import Processes, processes, start_coordinator, wait_for

#: 95% intervals miss about 1 in 20: the demo fails when more than 1 + 25% of them miss,
#: which happens by chance about once in 5,000 runs for its 18 published cells.
ALLOWED_MISSES = 0.25
Truth = dict[str, dict[tuple[str, str, dt.date], Decimal]]  # firm -> its own figures


def setup(directory: Path, firms: tuple[demo_data.Firm, ...], start: dt.date) -> Truth:
    """The federation, its firms with their imported data, the signed catalogue, an operator."""
    now = dt.datetime.now(dt.UTC)
    init_federation(directory, "demo", None, "127.0.0.1:0", [], now)
    enroll_operator(directory, "operator", now)
    truth: Truth = {}
    for firm in firms:
        folder = enroll_member(directory, firm.name, None, None, now)
        truth[firm.name] = demo_data.write_firm(folder, firm, start)
        demo_data.opt_in(folder / "node.toml")
        for name in ("demand.csv", "capacity.csv"):
            _scfed("node", "import", "--config", str(folder / "node.toml"), str(folder / name))
    catalogue = directory / "catalogue.toml"
    catalogue.write_text(demo_data.catalogue(), encoding="utf-8")
    sign_catalogue(directory, catalogue)
    return truth


def _scfed(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scfed", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ConfigError(f"scfed {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def run_demo(directory: Path, n: int, dropouts: int) -> int:
    """The whole demo in ``directory``; the exit code."""
    if not 3 <= n <= len(demo_data.FIRMS) or not 0 <= dropouts < n:
        raise ConfigError(f"--nodes must be 3..{len(demo_data.FIRMS)} and --dropouts below it")
    firms = demo_data.FIRMS[:n]
    names = sorted(f.name for f in firms)
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=today.weekday())  # nodes release the current week only
    truth = setup(directory, firms, start)
    print(f"federation of {n} firms in {directory}; each imported its own files")
    with processes(directory / "logs") as procs:
        port = start_coordinator(directory, procs)
        address = f"127.0.0.1:{port}"
        for name in names:
            config = directory / "members" / name / "node.toml"
            procs.start(name, "node", "serve", "--config", str(config), "--coordinator", address)
        operator = load_operator_config(directory / "operators" / "operator" / "operator.toml")
        with AdminClient(operator, address) as admin:
            connected = lambda: len(admin.status().connected) == n  # noqa: E731
            wait_for(f"{n} nodes to connect", connected, procs, "coordinator")
            print(f"coordinator on {address}; {n} nodes connected")
            outcome = _run_round(admin, procs, names, start, dropouts)
        code = _report(directory, outcome, truth, start, n=n, dropouts=dropouts)
        member = _member_view(directory, procs, outcome)
        code = max(code, audit_log(directory, address))
    _where(directory, member)
    return code


def setup_only(directory: Path, n: int) -> int:
    """The federation of ``n`` firms in ``directory``, set up and imported as the demo does,
    but nothing started: for daemons run elsewhere (``compose.yaml``); the exit code."""
    if not 3 <= n <= len(demo_data.FIRMS):
        raise ConfigError(f"--nodes must be 3..{len(demo_data.FIRMS)}")
    today = dt.datetime.now(dt.UTC).date()
    firms = demo_data.FIRMS[:n]
    setup(directory, firms, today - dt.timedelta(days=today.weekday()))
    print(f"federation of {n} firms in {directory}; each imported its own files")
    print(f"  coordinator: {coordinator_config(directory)}")
    for name in sorted(f.name for f in firms):
        print(f"  member {name}: {directory / 'members' / name / 'node.toml'}")
    print(f"  operator: {directory / 'operators' / 'operator' / 'operator.toml'}")
    print(f"  catalogue entry to run: {demo_data.ENTRY}")
    return 0


def _member_view(directory: Path, procs: Processes, outcome: Envelope) -> str | None:
    """A Kyushu member still running that received the release, after it shows it; None if
    the round published nothing."""
    if outcome.type == ABORT:
        return None
    kyushu = [f.name for f in demo_data.FIRMS if demo_data.KYUSHU_ANALOG in f.capacity]
    member = next(n for n in kyushu if n in procs.running and procs.running[n].poll() is None)
    config = str(directory / "members" / member / "node.toml")
    kept = lambda: demo_data.ENTRY in _scfed("node", "results", "--config", config, "--list")  # noqa: E731
    wait_for(f"{member} to receive the release", kept, procs, member)
    print(f"\n$ scfed node results --config {config}   (the release as {member} received it)")
    shown = _scfed("node", "results", "--config", config).splitlines()
    print("\n".join([*shown[:2], "...", *[line for line in shown if "light:" in line]]))
    return member


def _where(directory: Path, member: str | None) -> None:
    """Tell the user where the federation is kept, and how to look at its release."""
    print(f"\nthe federation, its logs and the release are kept in {directory}")
    print(f"  results.csv and results.json: {directory}")
    if member is not None:
        config = directory / "members" / member / "node.toml"
        print(f"  open the dashboard as {member}: scfed dashboard --config {config}")
    print(f"  remove it when you are done: rm -r {directory}")


def _run_round(
    admin: AdminClient, procs: Processes, names: list[str], start: dt.date, dropouts: int
) -> Envelope:
    victims = secrets.SystemRandom().sample(names, dropouts)
    done = threading.Event()
    watcher = threading.Thread(target=_kill_after_sharing, args=(procs, victims, done))
    watcher.start()
    request = spb.StartRoundRequest(
        query=demo_data.ENTRY,
        entry=demo_data.ENTRY,
        week=start.isoformat(),
        candidates=names,
        phase_timeout_ms=2_000 if dropouts else 20_000,
    )
    started = time.perf_counter()
    try:
        _, outcome = admin.start_round(request, timeout=120)
    finally:
        done.set()
        watcher.join()
    print(f"round {demo_data.ENTRY} finished in {time.perf_counter() - started:.2f} s")
    return outcome


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


def _report(
    directory: Path, outcome: Envelope, truth: Truth, start: dt.date, *, n: int, dropouts: int
) -> int:
    if outcome.type == ABORT:
        must = n - dropouts < max(n // 2 + 1, demo_data.K)
        print(f"the round aborted without unmasking anything: {decode_abort(outcome.body).reason}")
        print("as it must with so few nodes left" if must else "MISMATCH: it should have completed")
        return 0 if must else 1
    policy = _policy(directory)
    entry = policy.entry(demo_data.ENTRY)
    if entry is None:
        raise ConfigError("the signed catalogue lost the demo's entry")
    result = decode_result(outcome.body)
    m = len(result.survivors)
    sums = np.frombuffer(result.sums, dtype="<i8").astype(np.int64)
    planned = entry.planned(n)
    cells = release(entry, [round_of(entry, start, sums, m, planned=planned)])
    covered = total = 0
    print(f"\n{'cell':<66} {'true':>8} {'noisy':>8}  {'95% interval':<18}  unit")
    for cell in cells:
        if cell.estimate is None:
            continue
        key = (cell.component, cell.commodity, cell.week)
        true = int(sum((truth[f].get(key, Decimal(0)) for f in result.survivors), Decimal(0)))
        inside = cell.estimate.low <= true <= cell.estimate.high
        covered, total = covered + inside, total + 1
        name = f"{cell.component} {cell.commodity} {cell.week}"
        interval = f"[{cell.estimate.low:,.0f}, {cell.estimate.high:,.0f}]"
        measure = unit(entry.metric, cell.component, cell.commodity)
        print(
            f"{name:<66} {true:>8,} {cell.estimate.value:>8,.0f}  {interval:<18}  {measure}"
            f"{'' if inside else '  NO'}"
        )
    noise = replace(entry.noise, planned=planned)  # the demo's firms are their own groups
    return _coverage(
        directory, covered, total, noise.rho(entry.min_contributors, m, overlap=entry.overlap)
    )


def _coverage(directory: Path, covered: int, total: int, rho: Fraction) -> int:
    print(
        f"\n{covered} of {total} published intervals cover the true sum, which no party "
        f"of the federation ever saw; the release cost each contributor rho {float(rho):.4g} "
        f"(epsilon {epsilon(rho, 1e-9):.3g} at delta 1e-9)"
    )
    config = directory / "coordinator" / "coordinator.toml"
    print("\n$ scfed coordinator results")
    print(_scfed("coordinator", "results", "--config", str(config), "--out", str(directory)))
    if total - covered > 1 + ALLOWED_MISSES * total:
        print(f"MISMATCH: {total - covered} of {total} intervals miss the truth")
        return 1
    return 0


def _policy(directory: Path) -> Policy:
    from edge.config import read_policy_file

    config = load_coordinator_config(coordinator_config(directory))
    governance = read_governance_key(config.governance_key)
    return read_policy_file(config.policy, config.origin, governance)[0]


def audit_log(directory: Path, address: str) -> int:
    """Audit the federation's protocol log as an outside auditor would; the exit code."""
    from auditor.fetch import fetch_log
    from auditor.report import text
    from auditor.verify import audit

    operator = load_operator_config(directory / "operators" / "operator" / "operator.toml")
    with secure_channel(operator.tls, address, operator.server_name) as channel:
        entries, checkpoint = fetch_log(rpc.LogServiceStub(channel))
    config = load_coordinator_config(coordinator_config(directory))
    report = audit(
        entries,
        checkpoint=checkpoint,
        governance_key=read_governance_key(config.governance_key),
        origin=config.origin,
    )
    print(f"\naudit of the protocol log ({len(entries)} signed messages):")
    print(text(report))
    return 0 if report.ok else 1
