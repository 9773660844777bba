"""The coordinator's read-only LogService: checkpoints, proofs, entries and blobs. Does I/O.

A thin servicer over ``ProtocolLog``: each method runs in the frame of ``_status.served``,
which lets ``authorize`` admit the caller and turns errors into status codes; the method
checks every request value against the log as it stands (a value out of range is the peer's
fault, ``RemoteProtocolError``, answered INVALID_ARGUMENT), calls the log and encodes the
answer.

Answers are bounded: GetEntries lists at most ``MAX_ENTRIES`` leaves and ``MAX_ANSWER_BYTES``
of inline data; a leaf larger than ``MAX_INLINE_BYTES`` is listed with its content hash and
empty data, and fetched on its own with GetBlob.
"""

from __future__ import annotations

from collections.abc import Callable

from coordinator._status import Context, served
from coordinator.log import ProtocolLog
from protos.scfed.v1 import service_pb2 as spb
from scfed.errors import RemoteProtocolError
from scfed.tlog import HASH_SIZE

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_ENTRIES",
    "MAX_INLINE_BYTES",
    "Authorize",
    "Context",
    "LogService",
]

MAX_ENTRIES = 1000
MAX_INLINE_BYTES = 64 * 1024
MAX_ANSWER_BYTES = 4 * 1024 * 1024

Authorize = Callable[[Context], None]
"""Returns when the caller may read the log; raises a ScfedError (PermissionDeniedError) if not."""


class LogService:
    """The protocol log, read-only, for members, operators and auditors."""

    def __init__(self, log: ProtocolLog, authorize: Authorize) -> None:
        self._log, self._authorize = log, authorize

    def _reader(self, context: Context) -> None:
        self._authorize(context)

    @served(_reader)
    async def GetCheckpoint(  # noqa: N802 - gRPC method name
        self, request: spb.CheckpointRequest, context: Context, reader: None
    ) -> spb.SignedCheckpoint:
        return spb.SignedCheckpoint(note=self._log.checkpoint())

    @served(_reader)
    async def GetInclusionProof(  # noqa: N802 - gRPC method name
        self, request: spb.ProofRequest, context: Context, reader: None
    ) -> spb.Proof:
        size = _tree_size("tree size", request.second, 1, self._log.size)
        if request.first >= size:
            raise RemoteProtocolError(
                f"leaf index {request.first} is out of range for tree size {size}"
            )
        return spb.Proof(hashes=self._log.inclusion_proof(request.first, size))

    @served(_reader)
    async def GetConsistencyProof(  # noqa: N802 - gRPC method name
        self, request: spb.ProofRequest, context: Context, reader: None
    ) -> spb.Proof:
        size2 = _tree_size("size2", request.second, 1, self._log.size)
        size1 = _tree_size("size1", request.first, 1, size2)
        return spb.Proof(hashes=self._log.consistency_proof(size1, size2))

    @served(_reader)
    async def GetEntries(  # noqa: N802 - gRPC method name
        self, request: spb.EntriesRequest, context: Context, reader: None
    ) -> spb.Entries:
        size = self._log.size
        start = _tree_size("start", request.start, 0, size)
        if request.count == 0:
            raise RemoteProtocolError("count must be at least 1")
        stop = start + min(request.count, MAX_ENTRIES, size - start)
        listed = self._log.listing(
            start, stop, inline_max=MAX_INLINE_BYTES, max_bytes=MAX_ANSWER_BYTES
        )
        return spb.Entries(
            entries=[
                spb.Entry(index=e.index, content_hash=e.content_hash, data=e.data or b"")
                for e in listed
            ]
        )

    @served(_reader)
    async def GetBlob(  # noqa: N802 - gRPC method name
        self, request: spb.BlobRequest, context: Context, reader: None
    ) -> spb.Blob:
        if len(request.content_hash) != HASH_SIZE:
            raise RemoteProtocolError(
                f"a content hash is {HASH_SIZE} bytes, got {len(request.content_hash)}"
            )
        data = self._log.find_blob(request.content_hash)
        if data is None:
            raise RemoteProtocolError(f"no such blob: {request.content_hash.hex()}")
        return spb.Blob(data=data)


def _tree_size(what: str, value: int, low: int, high: int) -> int:
    """A request's number, which must lie in ``low..high`` (``high`` from the log's size)."""
    if not low <= value <= high:
        raise RemoteProtocolError(f"{what} {value} is out of range {low}..{high} of this log")
    return value
