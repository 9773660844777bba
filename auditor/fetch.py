"""Read the protocol log from the coordinator's read-only log service. Network I/O.

The latest checkpoint first, then the entries up to its size, page by page; a large leaf is
stored by content hash and fetched as a blob. Every leaf's SHA-256 must equal its content
hash. Nothing here is trusted: ``auditor.verify.audit`` checks the checkpoint's signature and
that its root commits to exactly these leaves.
"""

from __future__ import annotations

import hashlib

import grpc

from edge.transport import describe
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1.service_pb2_grpc import LogServiceStub
from scfed.checkpoint import parse_checkpoint
from scfed.errors import RemoteProtocolError
from scfed.note_format import parse_note

#: Leaves asked for per GetEntries call; the server may answer with fewer.
PAGE = 256
#: Far beyond any log this design runs; a larger size is not believed.
MAX_LEAVES = 100_000_000
TIMEOUT = 60.0


def fetch_log(stub: LogServiceStub, *, timeout: float = TIMEOUT) -> tuple[list[bytes], bytes]:
    """The leaves up to the latest checkpoint, and that checkpoint's signed note."""
    try:
        checkpoint = stub.GetCheckpoint(spb.CheckpointRequest(), timeout=timeout).note
        size = _size(checkpoint)
        leaves: list[bytes] = []
        while len(leaves) < size:
            count = min(PAGE, size - len(leaves))
            page = stub.GetEntries(
                spb.EntriesRequest(start=len(leaves), count=count), timeout=timeout
            )
            leaves += _page(stub, page, start=len(leaves), count=count, timeout=timeout)
    except grpc.RpcError as exc:
        raise RemoteProtocolError(f"the log service failed: {describe(exc)}") from exc
    return leaves, checkpoint


def _size(checkpoint: bytes) -> int:
    """The size the (not yet verified) checkpoint claims, bounded."""
    text, _ = parse_note(checkpoint)
    size = parse_checkpoint(text).size
    if size > MAX_LEAVES:
        raise RemoteProtocolError(f"the checkpoint claims {size} leaves, over {MAX_LEAVES}")
    return size


def _page(
    stub: LogServiceStub, page: spb.Entries, *, start: int, count: int, timeout: float
) -> list[bytes]:
    """The leaves of one answer, each checked against its content hash."""
    if not page.entries or len(page.entries) > count:
        raise RemoteProtocolError(
            f"asked for {count} entries from {start}, got {len(page.entries)}"
        )
    leaves = []
    for offset, entry in enumerate(page.entries):
        if entry.index != start + offset:
            raise RemoteProtocolError(f"expected entry {start + offset}, got {entry.index}")
        data = entry.data
        if not data:
            data = _blob(stub, entry.content_hash, timeout)
            _check_hash(data, entry.content_hash, entry.index)
        elif entry.content_hash:  # the checkpoint's root covers inline data in any case
            _check_hash(data, entry.content_hash, entry.index)
        leaves.append(data)
    return leaves


def _check_hash(data: bytes, content_hash: bytes, index: int) -> None:
    if hashlib.sha256(data).digest() != content_hash:
        raise RemoteProtocolError(f"entry {index} does not match its content hash")


def _blob(stub: LogServiceStub, content_hash: bytes, timeout: float) -> bytes:
    if len(content_hash) != hashlib.sha256().digest_size:
        raise RemoteProtocolError("an entry's content hash must be 32 bytes")
    return stub.GetBlob(spb.BlobRequest(content_hash=content_hash), timeout=timeout).data
