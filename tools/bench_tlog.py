"""``scfed bench tlog``: the coordinator's protocol log at scale, timed. A benchmark, not a test.

Builds a log of ``--leaves`` random 200-byte envelopes in big batches, then times what the
coordinator does per acknowledged message: append one leaf (one durable transaction, as the
daemon commits: WAL, synchronous=FULL) and produce its inclusion proof against the new size.
For comparison it times the same work with the appends batched per transaction, then the
signing of a checkpoint for a new size. Does I/O: the database goes to ``--dir`` or to a
temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed.errors import ConfigError

if TYPE_CHECKING:
    from coordinator.log import ProtocolLog

ENVELOPE_BYTES = 200
BUILD_BATCH = 100_000
BATCHED_PER_TRANSACTION = 100
ORIGIN = "bench.scfed.example/log"


def add_benchmark(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``tlog`` on the ``scfed bench`` subcommands."""
    parser = kinds.add_parser("tlog", help="time the protocol log: append, proofs, checkpoints")
    parser.add_argument("--leaves", type=float, default=1e6, help="log size to build (1e6)")
    parser.add_argument("--appends", type=int, default=1000, help="timed appends (1000)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="directory for the database (default: a temp dir)"
    )
    parser.set_defaults(func=_run)


@dataclass(frozen=True)
class Timings:
    leaves: int
    build_s: float
    durable_ms: list[float]  # one append and its proof, per leaf
    batched_ms: float  # the same per leaf, appends committed BATCHED_PER_TRANSACTION at a time
    proof_ms: list[float]
    checkpoint_ms: list[float]
    proof_hashes: int


def _run(args: argparse.Namespace) -> int:
    leaves, appends = int(args.leaves), args.appends
    if not 1 <= leaves <= 100_000_000 or not 1 <= appends <= 100_000:
        raise ConfigError("--leaves must be 1..1e8 and --appends 1..1e5")
    with ExitStack() as stack:
        directory = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        path = directory / "tlog-bench.sqlite"
        if path.exists():
            raise ConfigError(f"{path} exists; the benchmark builds a fresh log")
        stack.callback(_remove_database, path)
        print(_table(bench(path, leaves, appends)))
    return 0


def bench(path: Path, leaves: int, appends: int) -> Timings:
    """Build a log of ``leaves`` leaves at ``path`` and time it (see the module docstring)."""
    from coordinator.log import ProtocolLog

    log = ProtocolLog(path, origin=ORIGIN, key=Ed25519PrivateKey.generate())
    try:
        started = time.perf_counter()
        for done in range(0, leaves, BUILD_BATCH):
            log.append_many(_envelopes(min(BUILD_BATCH, leaves - done)))
        build = time.perf_counter() - started
        durable = [_timed(lambda: _append_and_prove(log)) for _ in range(appends)]
        batched = _batched(log, appends)
        proofs = [_timed(lambda: log.inclusion_proof(leaves // 3, log.size)) for _ in range(100)]
        checkpoints = _checkpoints(log, 100)
        hashes = len(log.inclusion_proof(leaves // 3, log.size))
    finally:
        log.close()
    return Timings(leaves, build, durable, batched, proofs, checkpoints, hashes)


def _envelopes(count: int) -> list[bytes]:
    blob = os.urandom(ENVELOPE_BYTES * count)
    return [blob[i : i + ENVELOPE_BYTES] for i in range(0, len(blob), ENVELOPE_BYTES)]


def _append_and_prove(log: ProtocolLog) -> None:
    index = log.append(os.urandom(ENVELOPE_BYTES))
    log.inclusion_proof(index, index + 1)


def _batched(log: ProtocolLog, appends: int) -> float:
    """Milliseconds per leaf when appends are committed in batches, each leaf then proved."""
    started = time.perf_counter()
    for done in range(0, appends, BATCHED_PER_TRANSACTION):
        indices = log.append_many(_envelopes(min(BATCHED_PER_TRANSACTION, appends - done)))
        size = indices[-1] + 1
        for index in indices:
            log.inclusion_proof(index, size)
    return (time.perf_counter() - started) * 1e3 / appends


def _checkpoints(log: ProtocolLog, count: int) -> list[float]:
    """Milliseconds to make the checkpoint of a size never signed before: root, sign, store."""
    timings = []
    for _ in range(count):
        log.append(os.urandom(ENVELOPE_BYTES))
        timings.append(_timed(log.checkpoint))
    return timings


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1e3


def _p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.99))]


def _table(t: Timings) -> str:
    rows = [
        ("leaves", f"{t.leaves:,}"),
        ("build (append_many, 100k per transaction)", f"{t.build_s:.1f} s"),
        (
            "append + inclusion proof, one durable transaction each",
            f"median {statistics.median(t.durable_ms):.3f} ms, p99 {_p99(t.durable_ms):.3f} ms",
        ),
        (
            f"append + inclusion proof, {BATCHED_PER_TRANSACTION} appends per transaction",
            f"{t.batched_ms:.3f} ms per leaf",
        ),
        ("inclusion proof alone", f"median {statistics.median(t.proof_ms):.3f} ms"),
        (
            "checkpoint of a new size (root, sign, store)",
            f"median {statistics.median(t.checkpoint_ms):.3f} ms",
        ),
        ("inclusion proof length", f"{t.proof_hashes} hashes"),
    ]
    return "\n".join(["| measure | value |", "|---|--:|", *(f"| {k} | {v} |" for k, v in rows)])


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
