"""Group commit of the protocol log (``coordinator/journal.py`` ``GroupCommit``, ``Journal``).

Messages queued while a commit runs go to the log together in the next transaction; each
submitter gets its own receipt, proven against a checkpoint that holds it; the log order is
the order of queueing; a failed commit fails every message of its batch and appends none.
The log is real (SQLite on disk); only ``commit`` is wrapped, to hold a commit in the
worker thread while the test queues more.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.journal import GroupCommit, Journal
from coordinator.log import Committed, ProtocolLog
from scfed import note, tlog, wire
from scfed.checkpoint import parse_checkpoint
from scfed.errors import StorageError
from scfed.tlog_verify import verify_consistency, verify_inclusion
from scfed.wire.envelope import Envelope
from scfed.wire.tasks import Receipt

ORIGIN = "log.test.example/group-commit"
KEY = Ed25519PrivateKey.generate()
_T = TypeVar("_T")


class GatedLog(ProtocolLog):
    """A real log whose ``commit`` records each batch's size and waits for ``gate`` first."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, origin=ORIGIN, key=KEY)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a commit has started
        self.batches: list[int] = []

    def commit(self, datas: Sequence[bytes]) -> Committed:
        self.batches.append(len(datas))
        self.entered.set()
        if not self.gate.wait(20):
            raise AssertionError("the test never opened the gate")
        return super().commit(datas)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[GatedLog]:
    opened = GatedLog(tmp_path / "coordinator.sqlite")
    yield opened
    opened.close()


@pytest.fixture
def journal(log: GatedLog) -> Iterator[Journal]:
    made = Journal(log)
    yield made
    made.close()


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def message(number: int) -> Envelope:
    return Envelope(wire.ADVERTISE_KEYS, b"advertise %d" % number, f"m-{number}", bytes(64))


def data(number: int) -> bytes:
    return message(number).to_bytes()


def verify(log: ProtocolLog, leaf: bytes, receipt: Receipt) -> int:
    """Check a receipt as a node does: signature, then inclusion; the size it proves."""
    checkpoint = parse_checkpoint(note.open_note(receipt.checkpoint, [log.verifier()]).text)
    verify_inclusion(
        tlog.leaf_hash(leaf), receipt.index, checkpoint.size, receipt.inclusion, checkpoint.root
    )
    assert log.entry(receipt.index) == leaf
    return checkpoint.size


async def acknowledged(journal: Journal, number: int) -> Receipt:
    return await asyncio.shield(journal.acknowledge(message(number)))


async def started(log: GatedLog) -> None:
    """Until a commit is running in the worker thread (held at the gate)."""
    assert await asyncio.to_thread(log.entered.wait, 20)


def open_gate_soon(log: GatedLog) -> None:
    """Open the gate from another thread while the loop blocks in a synchronous commit."""
    threading.Timer(0.2, log.gate.set).start()


def add_failing_trigger(path: Path) -> None:
    """Make every leaf insert fail inside SQLite, as a full disk would, until dropped."""
    db = sqlite3.connect(path)
    try:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON log_leaves "
            "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
        )
        db.commit()
    finally:
        db.close()


def drop_failing_trigger(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("DROP TRIGGER refuse")
        db.commit()
    finally:
        db.close()


def test_a_lone_message_commits_at_once_in_a_batch_of_its_own(log: GatedLog) -> None:
    group = GroupCommit(log)

    async def lone() -> Receipt:
        return await group.enqueue(data(0))

    receipt = run(lone())
    group.close()
    assert log.batches == [1]
    assert receipt.index == 0
    assert verify(log, data(0), receipt) == 1


def test_messages_queued_during_a_commit_share_the_next_one(log: GatedLog) -> None:
    group = GroupCommit(log)
    count = 30

    async def burst() -> list[Receipt]:
        log.gate.clear()
        first = group.enqueue(data(0))
        await started(log)  # the first commit runs alone; the others arrive meanwhile
        rest = [group.enqueue(data(n)) for n in range(1, count)]
        log.gate.set()
        return list(await asyncio.gather(first, *rest))

    receipts = run(burst())
    group.close()
    assert log.batches == [1, count - 1]  # one transaction, one fsync, for all that waited
    assert [r.index for r in receipts] == list(range(count))  # in the order they queued
    sizes = [verify(log, data(n), r) for n, r in enumerate(receipts)]
    assert sizes == [1] + [count] * (count - 1)  # each against a checkpoint that holds it
    assert len({r.checkpoint for r in receipts[1:]}) == 1  # one fresh checkpoint per batch


def test_the_log_order_is_the_order_of_acceptance(journal: Journal, log: GatedLog) -> None:
    """Submitters interleave over many turns of the loop; each queues at its acceptance."""
    accepted: list[int] = []

    async def submitter(number: int) -> tuple[int, Receipt]:
        for _ in range(number % 4):
            await asyncio.sleep(0)
        accepted.append(number)
        return number, await asyncio.shield(journal.acknowledge(message(number)))

    async def everyone() -> list[tuple[int, Receipt]]:
        return list(await asyncio.gather(*(submitter(n) for n in range(40))))

    answered = run(everyone())
    assert [log.entry(i) for i in range(log.size)] == [data(n) for n in accepted]
    for number, receipt in answered:
        verify(log, data(number), receipt)
    assert sum(log.batches) == 40
    assert len(log.batches) < 40  # some waited for a commit and shared the next


def test_a_failed_commit_fails_every_waiter_and_appends_nothing(
    journal: Journal, log: GatedLog, tmp_path: Path
) -> None:
    run(acknowledged(journal, 0))  # one leaf and its checkpoint before
    before = log.sized_checkpoint()
    add_failing_trigger(tmp_path / "coordinator.sqlite")

    async def burst() -> list[BaseException | Receipt]:
        futures = [journal.acknowledge(message(n)) for n in range(1, 6)]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    failures = run(burst())
    assert log.batches == [1, 5]
    assert all(isinstance(f, StorageError) for f in failures)
    assert len({str(f) for f in failures}) == 1  # the same clear error for all of them
    assert "a batch of 5 messages" in str(failures[0])
    assert "the disk is full" in str(failures[0])
    assert log.sized_checkpoint() == before  # no leaf and no checkpoint of the failed batch
    drop_failing_trigger(tmp_path / "coordinator.sqlite")

    async def again() -> list[Receipt]:  # a failed message is queued anew when resubmitted
        return list(await asyncio.gather(*(journal.acknowledge(message(n)) for n in range(1, 6))))

    receipts = run(again())
    assert [r.index for r in receipts] == [1, 2, 3, 4, 5]
    size = verify(log, data(5), receipts[-1])
    proof = log.consistency_proof(before[0], size)
    old = parse_checkpoint(note.open_note(before[1], [log.verifier()]).text)
    verify_consistency(old.size, size, proof, old.root, log.root(size))


def test_a_failed_own_message_fails_the_queued_ones_with_it(
    journal: Journal, log: GatedLog, tmp_path: Path
) -> None:
    add_failing_trigger(tmp_path / "coordinator.sqlite")

    async def own_after_queued() -> asyncio.Future[Receipt]:
        queued = journal.acknowledge(message(1))
        with pytest.raises(StorageError, match="the disk is full"):
            journal.record(message(2))
        await asyncio.sleep(0)
        return queued

    queued = run(own_after_queued())
    assert isinstance(queued.exception(), StorageError)
    assert log.size == 0


def test_the_coordinators_own_message_follows_the_queued_and_running_ones(
    journal: Journal, log: GatedLog
) -> None:
    async def scenario() -> tuple[list[Receipt], int]:
        log.gate.clear()
        running = journal.acknowledge(message(0))
        await started(log)
        queued = journal.acknowledge(message(1))
        open_gate_soon(log)  # record blocks the loop until the running commit is durable
        own = journal.record(message(9))
        assert queued.done()  # committed with the coordinator's message
        return [await running, await queued], own

    (first, second), own = run(scenario())
    assert (first.index, second.index, own) == (0, 1, 2)
    assert log.batches == [1, 2]
    verify(log, data(0), first)
    assert verify(log, data(1), second) == 3  # its checkpoint holds the coordinator's too


def test_a_checkpoint_to_witness_holds_every_accepted_message(
    journal: Journal, log: GatedLog
) -> None:
    async def scenario() -> tuple[int, bytes]:
        futures = [journal.acknowledge(message(n)) for n in range(3)]
        checkpoint = journal.checkpoint()  # synchronous: before the committer ever ran
        assert all(f.done() for f in futures)
        return checkpoint

    size, signed = run(scenario())
    assert size == 3
    assert parse_checkpoint(note.open_note(signed, [log.verifier()]).text).size == 3


def test_a_resubmission_is_logged_once(journal: Journal, log: GatedLog) -> None:
    async def twice() -> tuple[Receipt, Receipt, Receipt]:
        first = journal.acknowledge(message(0))
        assert journal.acknowledge(message(0)) is first  # still queued: the same commit
        one = await asyncio.shield(first)
        two = await asyncio.shield(journal.acknowledge(message(0)))  # logged: a fresh receipt
        return one, await asyncio.shield(first), two

    one, same, later = run(twice())
    assert one.index == same.index == later.index == 0
    assert log.size == 1
    verify(log, data(0), later)


def test_a_submitter_that_gives_up_is_logged_all_the_same(journal: Journal, log: GatedLog) -> None:
    async def scenario() -> None:
        log.gate.clear()
        waiting = asyncio.ensure_future(asyncio.shield(journal.acknowledge(message(0))))
        await started(log)
        waiting.cancel()  # its RPC was cancelled; the round accepted the message already
        log.gate.set()
        journal.settle()

    run(scenario())
    assert log.entry(0) == data(0)
