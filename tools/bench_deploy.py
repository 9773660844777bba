"""A whole federation deployed on this machine and one round over it: ``scfed bench deploy``.

In a temporary directory (deleted at the end) it makes a real federation with the library
functions: governance, the coordinator, one operator and N members ``fab-000``..., each with
an ad-hoc figures file of D cells and ad-hoc rounds allowed in its node.toml. Then it measures
what deploying costs, with real processes over mutual TLS on loopback:

- node import s: the fastest of a few runs of a fresh Python process that imports what
  ``scfed node serve`` imports before it opens its connection (the command line as ``main``
  builds it for ``node serve``, ``node.daemon`` and ``edge.transport``), interpreter
  start-up included;
- one node to connected s: the fastest, over a few tries, of the time from spawning one
  ``scfed node serve`` process until the coordinator's status lists it connected, with the
  coordinator already running and no other node;
- all connected s: the time from spawning all N node processes at once until the
  coordinator lists all N connected (each process imports, loads its keys and store, and
  handshakes; on this 2-core machine the N processes share two cores), and the CPU seconds
  a node and the coordinator had used by then;
- round s: the wall time of one ad-hoc round from the operator's StartRound request to its
  signed outcome, which must be a result whose sums are the plaintext sums of the survivors'
  figures plus their noise (no cell 7 standard deviations off); and the CPU seconds the
  coordinator and all the nodes spent in that round, read from /proc/PID/stat. The noise is
  planned for all N nodes to survive (each adds about N_Z(0, 800)), so the coordinator's
  default graph is a SecAgg+ sparse one from 100 nodes; ``--graph sparse`` works from 20
  (below, the nodes refuse the graph the coordinator's rule gives, as they count a colluder
  among the corrupt).

Every process it started is stopped before it returns (``tools.processes``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from auditor.fetch import fetch_log
from coordinator.admin_client import AdminClient
from edge.config import load_operator_config
from edge.transport import secure_channel
from governance.local import enroll_member, enroll_operator, init_federation
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.config import OperatorConfig
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import ConfigError, RemoteProtocolError, ScfedError
from scfed.wire import ANNOUNCE, RESULT
from scfed.wire.codec import decode_abort, decode_announce, decode_result, noise_to_proto
from scfed.wire.envelope import Envelope
from scfed.wire.messages import DEFAULT_N_MIN, MAX_LISTED_CELLS, MAX_PARTICIPANTS
from tools.processes import Processes, processes, start_coordinator

#: Each node adds about N_Z(0, 800), as in the integration tests, here with noise planned
#: for all N to survive: noise planned for n_min (3) plans for all but 3 to drop out, which
#: no SecAgg+ sparse graph tolerates, so every round would run on the complete graph.
SIGMA_L2 = 800
#: What a ``scfed node serve`` process imports before its daemon starts: the command line
#: as ``main`` builds it for ``node serve``, and the modules ``serve`` imports.
NODE_IMPORTS = (
    "import contextlib, scfed.cli as c, node.daemon, edge.transport\n"
    "with contextlib.suppress(SystemExit): c.main(['node', 'serve', '--help'])"
)
#: The fastest of this many runs is kept: another job on the machine only adds time.
IMPORT_RUNS = 7
ONE_NODE_RUNS = 5
#: Status polls: often for one node, less for many, so that polling costs the coordinator
#: little of the CPU the nodes starting up need.
POLL_S = 0.01
MANY_POLL_S = 0.1
#: Time allowed for nodes to connect: this plus a second per node.
CONNECT_SLACK_S = 30.0
PHASE_TIMEOUT_MS = 120_000
HEADER = (
    "| N | D | graph | node import s | one node to connected s | all connected s | round s "
    "| coordinator round CPU s | nodes round CPU s |\n"
    "|--:|--:|--|--:|--:|--:|--:|--:|--:|"
)


@dataclass(frozen=True)
class Deploy:
    """One deployment benchmark; seconds unless named otherwise."""

    nodes: int
    dim: int
    graph: str  # as the round ran: "complete" or "sparse k=K"
    python_s: float  # a bare interpreter, for scale
    node_import_s: float
    one_node_connected_s: float
    all_connected_s: float
    node_start_cpu_s: float  # a node's CPU seconds from spawn until all were connected, mean
    coordinator_start_cpu_s: float  # the coordinator's, from its start until then
    round_s: float
    outcome: str  # the round's outcome: always round.result, checked (an abort raises)
    survivors: int
    coordinator_round_cpu_s: float
    nodes_round_cpu_s: float
    setup_s: float
    directory: str  # deleted when the benchmark returns


@dataclass(frozen=True)
class Startup:
    """Node start-up: one node alone (fastest), then all at once; a node's CPU by then."""

    one_node_s: float
    all_connected_s: float
    node_cpu_s: float
    coordinator_cpu_s: float


@dataclass(frozen=True)
class Timed:
    """One checked round: wall seconds, survivors, CPU seconds spent in it."""

    seconds: float
    outcome: str
    survivors: int
    coordinator_cpu_s: float
    nodes_cpu_s: float


@dataclass(frozen=True)
class Federation:
    """The federation on disk: its folder, members, cells and each member's figures."""

    directory: Path
    names: list[str]
    cells: list[str]
    figures: NDArray[np.int64]  # members x cells

    def operator(self) -> OperatorConfig:
        return load_operator_config(self.directory / "operators/operator/operator.toml")


def bench_deploy(nodes: int, dim: int, graph: str = "") -> Deploy:
    """Deploy N nodes with D cells each, run one round, stop everything; the measurements."""
    if not 3 <= nodes <= MAX_PARTICIPANTS or not 1 <= dim <= MAX_LISTED_CELLS:
        raise ConfigError(f"--nodes must be 3..{MAX_PARTICIPANTS} and --dim 1..{MAX_LISTED_CELLS}")
    if graph not in ("", "complete", "sparse"):
        raise ConfigError(f"--graph {graph!r} is not complete or sparse")
    with tempfile.TemporaryDirectory(prefix="scfed-bench-deploy-") as folder:
        started = time.perf_counter()
        fed = setup(Path(folder) / "federation", nodes, dim)
        setup_s = time.perf_counter() - started
        python_s = fastest_process_s("pass", IMPORT_RUNS)
        import_s = fastest_process_s(NODE_IMPORTS, IMPORT_RUNS)
        with processes(Path(folder) / "logs") as procs:
            address = f"127.0.0.1:{start_coordinator(fed.directory, procs)}"
            with AdminClient(fed.operator(), address) as admin:
                up = _start_nodes(fed, procs, admin, address)
                timed = _timed_round(fed, procs, admin, graph)
            ran_on = _graph_of(fed.operator(), address)
    return Deploy(
        nodes=nodes, dim=dim, graph=ran_on, python_s=python_s, node_import_s=import_s,
        one_node_connected_s=up.one_node_s, all_connected_s=up.all_connected_s,
        node_start_cpu_s=up.node_cpu_s, coordinator_start_cpu_s=up.coordinator_cpu_s,
        round_s=timed.seconds, outcome=timed.outcome, survivors=timed.survivors,
        coordinator_round_cpu_s=timed.coordinator_cpu_s, nodes_round_cpu_s=timed.nodes_cpu_s,
        setup_s=setup_s, directory=folder,
    )  # fmt: skip


def setup(directory: Path, nodes: int, dim: int) -> Federation:
    """Governance, the coordinator, an operator and the members, each with its figures file."""
    now = dt.datetime.now(dt.UTC)
    init_federation(directory, "bench", None, "127.0.0.1:0", [], now)
    enroll_operator(directory, "operator", now)
    names = [f"fab-{i:03d}" for i in range(nodes)]
    cells = [f"demand/c{j:05d}/2026-W01" for j in range(dim)]
    figures = synthetic_figures(nodes, dim)
    for name, row in zip(names, figures, strict=True):
        folder = enroll_member(directory, name, None, None, now)
        lines = ["cell,value", *(f"{c},{v}" for c, v in zip(cells, row.tolist(), strict=True))]
        (folder / "figures.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        allow_adhoc(folder / "node.toml")
    return Federation(directory, names, cells, figures)


def synthetic_figures(nodes: int, dim: int) -> NDArray[np.int64]:
    """Every member's figure for every cell, 800 to 1699 wafers; deterministic."""
    member = np.arange(nodes, dtype=np.int64)[:, None]
    cell = np.arange(dim, dtype=np.int64)[None, :]
    return 800 + (cell * 37 + member * 101) % 900


def allow_adhoc(node_toml: Path) -> None:
    """The member takes part in ad-hoc rounds, as its own node.toml must say."""
    text = node_toml.read_text(encoding="utf-8")
    if "adhoc = false" not in text:
        raise ScfedError(f"{node_toml} has no 'adhoc = false' to turn on")
    node_toml.write_text(text.replace("adhoc = false", "adhoc = true"), encoding="utf-8")


def fastest_process_s(code: str, runs: int) -> float:
    """The fastest wall time of ``python -c CODE`` in a fresh process, over ``runs``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return min(times)


def _start_nodes(fed: Federation, procs: Processes, admin: AdminClient, address: str) -> Startup:
    """One node alone a few times (the fastest kept), then all N at once, until connected."""
    one_node = min(_one_node(fed, procs, admin, address) for _ in range(ONE_NODE_RUNS))
    started = time.perf_counter()
    for name in fed.names:
        _start_node(fed, procs, name, address)
    wait_connected(admin, procs, fed.names)
    all_connected = time.perf_counter() - started
    node_cpu = statistics.mean(cpu_seconds(procs.running[n].pid) for n in fed.names)
    coordinator = cpu_seconds(procs.running["coordinator"].pid)
    return Startup(one_node, all_connected, node_cpu, coordinator)


def _start_node(fed: Federation, procs: Processes, name: str, address: str) -> None:
    config = fed.directory / "members" / name / "node.toml"
    procs.start(name, "node", "serve", "--config", str(config), "--coordinator", address)


def _one_node(fed: Federation, procs: Processes, admin: AdminClient, address: str) -> float:
    """Seconds from spawning the first member's node until it is listed connected; then
    that node is stopped and gone from the list again."""
    name = fed.names[0]
    started = time.perf_counter()
    _start_node(fed, procs, name, address)
    wait_connected(admin, procs, [name])
    seconds = time.perf_counter() - started
    procs.running[name].terminate()
    procs.running[name].wait(30)
    wait_connected(admin, procs, [])
    return seconds


def connected(admin: AdminClient) -> int:
    """How many nodes the coordinator lists connected (-1 if it does not answer yet)."""
    try:
        return len(admin.status(timeout=5).connected)
    except RemoteProtocolError:
        return -1


def wait_connected(admin: AdminClient, procs: Processes, names: list[str]) -> None:
    """Poll until exactly these nodes' count is connected; fail if the coordinator or one of
    them exits first, or after a generous deadline."""
    deadline = time.monotonic() + CONNECT_SLACK_S + len(names)
    while connected(admin) != len(names):
        for name in ("coordinator", *names):
            if procs.running[name].poll() is not None:
                raise ScfedError(f"{name} exited early:\n{procs.log_text(name)[-2000:]}")
        if time.monotonic() > deadline:
            raise ScfedError(
                f"timed out waiting for {len(names)} nodes; {connected(admin)} connected"
            )
        time.sleep(POLL_S if len(names) <= 1 else MANY_POLL_S)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a running process has used (``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, from the state
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_round(fed: Federation, procs: Processes, admin: AdminClient, graph: str) -> Timed:
    """One ad-hoc round from the operator's request to its outcome, checked; its wall and
    CPU seconds."""
    request = spb.StartRoundRequest(
        query="bench-deploy",
        cells=fed.cells,
        candidates=fed.names,
        phase_timeout_ms=PHASE_TIMEOUT_MS,
        noise=noise_to_proto(noise_for(len(fed.names))),
        graph=graph,
    )
    pids = {name: procs.running[name].pid for name in ("coordinator", *fed.names)}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    _, outcome = admin.start_round(request, timeout=6 * PHASE_TIMEOUT_MS / 1000)
    seconds = time.perf_counter() - started
    spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    if outcome.type != RESULT:
        reason = decode_abort(outcome.body).reason
        raise ScfedError(f"the round aborted: {reason}{_refusal(procs, fed.names)}")
    survivors = check_result(fed, outcome)
    coordinator = spent.pop("coordinator")
    return Timed(seconds, outcome.type, survivors, coordinator, sum(spent.values()))


def noise_for(nodes: int) -> Noise:
    """Noise planned for all ``nodes`` to survive, one colluder: sigma is the smallest whole
    number with sigma^2 / (nodes - 1) >= 800, so each node's variance is 800 or a little more."""
    sigma = math.isqrt(SIGMA_L2 * (nodes - 1) - 1) + 1
    return Noise(str(sigma), 1, MAGNITUDE, 10, "1", 10**6, planned=nodes)


def check_result(fed: Federation, outcome: Envelope) -> int:
    """The number of survivors of a round whose result is their plaintext sum plus noise:
    m draws of N_Z(0, sigma_l^2) a cell, none beyond 7 standard deviations (for 1e4 cells that
    happens by chance with probability below 1e-7). Raise if it is wrong or no result."""
    if outcome.type != RESULT:
        raise ScfedError(f"the round ended with {outcome.type}, not a result")
    result = decode_result(outcome.body)
    rows = [fed.names.index(name) for name in result.survivors]
    noise = np.frombuffer(result.sums, dtype="<i8") - fed.figures[rows].sum(axis=0)
    worst = float(np.max(np.abs(noise)))
    variance = noise_for(len(fed.names)).local_variance(DEFAULT_N_MIN)
    if worst >= 7 * (len(rows) * variance) ** 0.5:
        raise ScfedError(f"the result is off the plaintext sum by {worst:.0f} in a cell")
    return len(rows)


def _refusal(procs: Processes, names: list[str]) -> str:
    """The first refusal a node logged, if any, to say why the round aborted."""
    for name in names:
        for line in procs.log_text(name).splitlines():
            if "REFUSED" in line:
                return f"; {name}: {line}"
    return ""


def _graph_of(operator: OperatorConfig, address: str) -> str:
    """The graph the round ran on, from its announce in the protocol log."""
    with secure_channel(operator.tls, address, operator.server_name) as channel:
        leaves, _ = fetch_log(rpc.LogServiceStub(channel))
    for leaf in leaves:
        envelope = Envelope.from_bytes(leaf)
        if envelope.type == ANNOUNCE:
            k = decode_announce(envelope.body).neighbours
            return f"sparse k={k}" if k else "complete"
    raise ScfedError("the protocol log has no announce")


def row(run: Deploy) -> str:
    """The run's line of the Markdown table under HEADER."""
    return (
        f"| {run.nodes} | {run.dim:,} | {run.graph} | {run.node_import_s:.2f} "
        f"| {run.one_node_connected_s:.2f} | {run.all_connected_s:.2f} | {run.round_s:.2f} "
        f"| {run.coordinator_round_cpu_s:.2f} | {run.nodes_round_cpu_s:.2f} |"
    )


def summary(run: Deploy) -> dict[str, object]:
    """The run as one JSON-ready object."""
    return asdict(run)
