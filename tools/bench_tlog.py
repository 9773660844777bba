"""The coordinator's protocol log at scale, timed: ``scfed bench tlog``. Not a test.

Builds a log of ``leaves`` random 200-byte envelopes in big batches, then times what the
coordinator does per acknowledged message: append one leaf (one durable transaction, as the
daemon commits: WAL, synchronous=FULL) and produce its inclusion proof against the new size.
For comparison it times the same work with the appends batched per transaction, then the
signing of a checkpoint for a new size. Does I/O: the database goes to the directory given
or to a temporary one.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.log import ProtocolLog
from scfed.errors import ConfigError

ENVELOPE_BYTES = 200
BUILD_BATCH = 100_000
BATCHED_PER_TRANSACTION = 100
ORIGIN = "bench.scfed.example/log"


@dataclass(frozen=True)
class Timings:
    leaves: int
    build_s: float
    durable_ms: list[float]  # one append and its proof, per leaf
    batched_ms: float  # the same per leaf, appends committed BATCHED_PER_TRANSACTION at a time
    proof_ms: list[float]
    checkpoint_ms: list[float]
    proof_hashes: int


def run(directory: Path | None, leaves: int, appends: int) -> Timings:
    """``bench`` on a fresh database in ``directory`` (default: a temporary one), removed
    afterwards."""
    with ExitStack() as stack:
        directory = directory or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        path = directory / "tlog-bench.sqlite"
        if path.exists():
            raise ConfigError(f"{path} exists; the benchmark builds a fresh log")
        stack.callback(_remove_database, path)
        return bench(path, leaves, appends)


def bench(path: Path, leaves: int, appends: int) -> Timings:
    """Build a log of ``leaves`` leaves at ``path`` and time it (see the module docstring)."""
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


def table(t: Timings) -> str:
    """The timings as the README's table."""
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
