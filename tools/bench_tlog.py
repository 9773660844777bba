"""The coordinator's protocol log at scale, timed: ``scfed bench tlog``. Not a test.

Builds a log of ``leaves`` random 200-byte envelopes in big batches, then times what the
coordinator does per acknowledged message: append one leaf (one durable transaction, as the
daemon commits: WAL, synchronous=FULL) and produce its inclusion proof against the new size.
For comparison it times the same work with the appends batched per transaction, then the
signing of a checkpoint for a new size. Last, durable appends per second through the
coordinator's group commit (``coordinator.journal.GroupCommit``, the path every Submit
takes): 1, 10 and 100 submitters at once, each queueing its next message as soon as its
receipt (leaf, fresh checkpoint, inclusion proof) is back, so what queues during a commit is
committed together in the next. Does I/O: the database goes to the directory given or to a
temporary one.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.journal import GroupCommit
from coordinator.log import ProtocolLog
from scfed.errors import ConfigError

ENVELOPE_BYTES = 200
BUILD_BATCH = 100_000
BATCHED_PER_TRANSACTION = 100
ORIGIN = "bench.scfed.example/log"
#: Concurrent submitters through the group commit: alone, then batches of about 10 and 100.
SUBMITTERS = (1, 10, 100)


@dataclass(frozen=True)
class GroupRun:
    """Durable appends through the group commit with ``submitters`` waiting at once."""

    submitters: int
    per_second: float  # acknowledged appends, each with its own receipt
    batches: int  # transactions (one fsync each) they took


@dataclass(frozen=True)
class Timings:
    leaves: int
    build_s: float
    durable_ms: list[float]  # one append and its proof, per leaf
    batched_ms: float  # the same per leaf, appends committed BATCHED_PER_TRANSACTION at a time
    proof_ms: list[float]
    checkpoint_ms: list[float]
    proof_hashes: int
    groups: tuple[GroupRun, ...]  # durable appends per second through the group commit


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
        groups = tuple(_group_commit(log, appends, n) for n in SUBMITTERS)
    finally:
        log.close()
    return Timings(leaves, build, durable, batched, proofs, checkpoints, hashes, groups)


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


def _group_commit(log: ProtocolLog, appends: int, submitters: int) -> GroupRun:
    """``appends`` durable appends through the group commit, ``submitters`` at a time."""
    return asyncio.run(_submitting(log, appends, submitters))


async def _submitting(log: ProtocolLog, appends: int, submitters: int) -> GroupRun:
    group = GroupCommit(log)
    pending = iter(_envelopes(appends))
    checkpoints: set[bytes] = set()  # receipts come with one fresh checkpoint per transaction

    async def submitter() -> None:
        for data in pending:  # shared: each takes the next message once its last is durable
            checkpoints.add((await group.enqueue(data)).checkpoint)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(submitter() for _ in range(submitters)))
    finally:
        group.close()
    elapsed = time.perf_counter() - started
    return GroupRun(submitters, appends / elapsed, len(checkpoints))


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
        *(_group_row(g) for g in t.groups),
    ]
    return "\n".join(["| measure | value |", "|---|--:|", *(f"| {k} | {v} |" for k, v in rows)])


def _group_row(run: GroupRun) -> tuple[str, str]:
    who = "1 submitter" if run.submitters == 1 else f"{run.submitters} submitters at once"
    return (
        f"durable appends with receipts through the group commit, {who}",
        f"{run.per_second:,.0f} per s ({run.batches} transactions)",
    )


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
