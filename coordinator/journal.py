"""The coordinator's rounds written into the protocol log, with receipts and witnesses.

Edge code (does I/O through the log's SQLite database). Every protocol message enters the
log as its exact signed bytes, once: node messages as the round accepts them, the
coordinator's own (registry, announce, unmask request, outcome, budget charge) before they
are sent. A receipt is the message's leaf index and an inclusion proof against a freshly
signed checkpoint. Before a privacy-critical step the checkpoint is first cosigned by the
round's nodes, who are the federation's witnesses: the journal verifies and keeps each
cosignature line, and the round machine counts who cosigned which checkpoint.

Node messages are group-committed (``GroupCommit``): those the round accepts while a commit
is running wait in acceptance order and go to the log together in the next transaction, with
one fsync and one fresh checkpoint that every receipt of the batch is proven against. The
coordinator's own messages, and the checkpoint a witnessing step asks to cosign, are logged
at once instead, after every node message queued before them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coordinator.log import Committed, ProtocolLog
from scfed import note
from scfed.errors import PermissionDeniedError, RemoteProtocolError, StorageError
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.tasks import Receipt

__all__ = ["MAX_COSIGNATURE_LINE", "GroupCommit", "Journal"]

#: Cosignature lines are short; anything longer is not one.
MAX_COSIGNATURE_LINE = 512


@dataclass(frozen=True)
class _Waiter:
    """One queued message and the future its submitter waits on for the receipt."""

    data: bytes
    future: asyncio.Future[Receipt]


class GroupCommit:
    """Durable appends in batches: what arrives while a commit runs is committed next, at once.

    The classic group commit. A message is queued; if no commit is running, one starts at the
    next turn of the event loop with whatever is queued, so a lone message waits for nothing.
    The commit runs in a worker thread (``ProtocolLog.commit``: one transaction, one fsync, the
    checkpoint of the new size signed in it), so meanwhile the loop goes on accepting messages,
    which queue for the next commit. Each submitter's future then gets its own receipt; nothing
    is answered before the transaction holding it is durable. A failed commit fails every
    message of its batch with the same ``StorageError``, and none of them is appended.

    Everything but the worker's ``commit`` runs on the event loop. ``commit_now`` and
    ``settle`` let the loop's synchronous code log at once, behind what is queued.
    """

    def __init__(self, log: ProtocolLog) -> None:
        self._log = log
        self._queued: list[_Waiter] = []
        self._running: concurrent.futures.Future[Committed] | None = None  # in the worker
        self._committer: asyncio.Task[None] | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def enqueue(self, data: bytes) -> asyncio.Future[Receipt]:
        """Queue ``data`` behind everything queued before it; the future of its receipt."""
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._queued.append(_Waiter(data, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_queued())
        return future

    def commit_now(self, data: bytes) -> int:
        """Log ``data`` durably before returning, blocking the loop, behind the commit that is
        running and in one transaction with everything queued; its leaf index."""
        committed = self._commit_on_loop([data])
        if committed is None:
            raise AssertionError("a commit with a message committed nothing")
        return committed.size - 1

    def settle(self) -> None:
        """Make everything queued or being committed durable before returning (blocking)."""
        self._commit_on_loop([])

    def close(self) -> None:
        """Let the worker thread go once its commit, if any, is done."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    async def _commit_queued(self) -> None:
        """Commit batch after batch in the worker until nothing is queued, answering each."""
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                running = self._worker().submit(self._log.commit, [w.data for w in batch])
                self._running = running
                try:
                    with contextlib.suppress(Exception):  # answered below from ``running``
                        await asyncio.wrap_future(running)
                finally:
                    concurrent.futures.wait([running])  # only ever waits if we were cancelled
                    self._running = None
                    _answer(batch, running)
        finally:
            self._committer = None

    def _commit_on_loop(self, own: list[bytes]) -> Committed | None:
        """Wait for the running commit, then commit what is queued and ``own`` here."""
        if self._running is not None:
            concurrent.futures.wait([self._running])  # the batch ahead is logged first
        batch, self._queued = self._queued, []
        datas = [w.data for w in batch] + own
        if not datas:
            return None
        try:
            committed = self._log.commit(datas)
        except Exception as exc:
            _fail(batch, len(datas), exc)
            raise
        _resolve(batch, committed)
        return committed

    def _worker(self) -> concurrent.futures.ThreadPoolExecutor:
        """One thread: commits never overlap on the log's connection."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "scfed-log-commit")
        return self._pool


def _answer(batch: list[_Waiter], done: concurrent.futures.Future[Committed]) -> None:
    """Hand each waiter of a finished commit its receipt, or all of them its failure."""
    if done.cancelled():
        _fail(batch, len(batch), StorageError("the coordinator stopped before the commit"))
        return
    error = done.exception()
    if error is None:
        _resolve(batch, done.result())
    else:
        _fail(batch, len(batch), error)


def _resolve(batch: list[_Waiter], committed: Committed) -> None:
    """Each waiter's receipt: its leaf, proven against the checkpoint its batch signed."""
    for offset, waiter in enumerate(batch):
        if not waiter.future.done():
            index = committed.start + offset
            receipt = Receipt(index, committed.checkpoint, committed.proofs[offset])
            waiter.future.set_result(receipt)


def _fail(batch: list[_Waiter], count: int, cause: BaseException) -> None:
    """Fail every waiter with one message, each with its own StorageError caused by ``cause``."""
    message = f"the protocol log did not commit a batch of {count} messages: {cause}"
    for waiter in batch:
        if not waiter.future.done():
            error = StorageError(message)
            error.__cause__ = cause
            waiter.future.set_exception(error)


class Journal:
    """Appends messages once each, hands out receipts, and collects cosignatures."""

    def __init__(self, log: ProtocolLog) -> None:
        self.log = log
        self._group = GroupCommit(log)
        self._indices: dict[bytes, int] = {}  # message digest -> leaf index, this process
        self._pending: dict[bytes, asyncio.Future[Receipt]] = {}  # digest -> queued commit

    def acknowledge(self, envelope: Envelope) -> asyncio.Future[Receipt]:
        """Queue a node's message for the next group commit; the future of its receipt,
        done once the message is durable. Await it shielded: it may be shared, since a
        message already logged or queued is not queued again."""
        data = envelope.to_bytes()
        digest = hashlib.sha256(data).digest()
        index = self._indices.get(digest)
        if index is not None:
            done: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
            done.set_result(self.receipt(index))
            return done
        future = self._pending.get(digest)
        if future is None:
            future = self._group.enqueue(data)
            self._pending[digest] = future
            future.add_done_callback(functools.partial(self._committed, digest))
        return future

    def _committed(self, digest: bytes, future: asyncio.Future[Receipt]) -> None:
        """Remember where a queued message went; a failed one may be queued again."""
        failed = future.cancelled() or future.exception() is not None  # marks it retrieved
        if self._pending.get(digest) is not future:
            return  # its round was forgotten meanwhile
        del self._pending[digest]
        if not failed:
            self._indices[digest] = future.result().index

    def record(self, envelope: Envelope) -> int:
        """The leaf index of ``envelope``, one of the coordinator's own messages, appending
        it unless it is already logged: durably before this returns, after every node
        message accepted before it."""
        data = envelope.to_bytes()
        digest = hashlib.sha256(data).digest()
        index = self._indices.get(digest)
        if index is None:
            index = self._group.commit_now(data)
            self._indices[digest] = index
        return index

    def record_once(self, signed: Envelope) -> None:
        """Log a registry or policy version before the first round that uses it, once ever."""
        if self.log.find_blob(hashlib.sha256(signed.to_bytes()).digest()) is None:
            self.record(signed)

    def settle(self) -> None:
        """Make every node message accepted so far durable now, before the round moves on."""
        self._group.settle()

    def receipt(self, index: int, witnessed: tuple[int, bytes] | None = None) -> Receipt:
        """The leaf's receipt against a fresh checkpoint, or a (size, note) already cosigned."""
        size, signed = witnessed or self.log.sized_checkpoint()
        return Receipt(index, signed, tuple(self.log.inclusion_proof(index, size)))

    def checkpoint(self) -> tuple[int, bytes]:
        """The current size and its signed checkpoint, holding every message accepted so far."""
        self._group.settle()
        return self.log.sized_checkpoint()

    def witnessed(self, size: int) -> tuple[int, bytes]:
        """The checkpoint of ``size`` with the cosignatures gathered since it was signed."""
        signed = self.log.checkpoint_at(size)
        if signed is None:
            raise RemoteProtocolError(f"no checkpoint of size {size} was signed")
        return size, signed

    def forget_round(self) -> None:
        """Drop the digests of finished rounds' messages; a new round logs afresh."""
        self._indices.clear()
        self._pending.clear()

    def close(self) -> None:
        """Let the group commit's worker thread go (the log itself stays open)."""
        self._group.close()

    def cosign(self, registry: Registry, member_id: str, size: int, line: str) -> None:
        """Store a member's cosignature of the checkpoint of ``size`` after checking it."""
        member = registry.member(member_id)
        if member is None:
            raise PermissionDeniedError(f"{member_id} is not a registered member")
        if len(line) > MAX_COSIGNATURE_LINE or not 0 < size <= self.log.size:
            raise RemoteProtocolError("a cosignature of no checkpoint this log signed")
        key = Ed25519PublicKey.from_public_bytes(member.identity_key)
        verifier = note.Verifier.cosigner(member_id, key)
        self.log.add_cosignature(size, member_id, line, verifier)
