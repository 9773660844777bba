"""A member's unary calls to the coordinator, outside rounds: figures, pledges and crisis
posts submitted, the crisis inbox and answers, and the log's checkpoint and proofs. Does I/O
(a mutual-TLS gRPC channel with the node's own certificate).

The commands of ``scfed attest`` and ``scfed crisis`` use it beside a running node daemon; a
failed call becomes ``RemoteProtocolError`` saying whether the coordinator could not be
reached or refused, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc

from edge.transport import call_failed, secure_channel
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.config import NodeConfig
from scfed.errors import RemoteProtocolError
from scfed.wire.envelope import Envelope
from scfed.wire.tasks import Receipt, receipt_from_proto

_T = TypeVar("_T")
TIMEOUT = 30.0
#: The coordinator answered and said no: what was sent is not logged.
_REFUSALS = frozenset({
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
})  # fmt: skip


class RefusedCallError(RemoteProtocolError):
    """The coordinator refused the call: nothing of it was logged. Any other failure (the
    coordinator unreachable, a deadline) leaves open whether a submitted message was."""


class MemberClient:
    """The node's member speaking to the coordinator for itself."""

    def __init__(self, config: NodeConfig, address: str | None = None) -> None:
        self._target = address or config.coordinator
        self._channel = secure_channel(config.tls, self._target, config.server_name)
        self._node = rpc.NodeServiceStub(self._channel)
        self._log = rpc.LogServiceStub(self._channel)

    def __enter__(self) -> MemberClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._channel.close()

    def _call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except grpc.RpcError as exc:
            error = call_failed(exc, self._target)
            if isinstance(exc, grpc.Call) and exc.code() in _REFUSALS:
                raise RefusedCallError(str(error)) from exc
            raise error from exc

    def submit(self, envelope: Envelope) -> Receipt:
        """Submit a signed message; the receipt of what the coordinator logged for it."""
        ack = self._call(lambda: self._node.Submit(envelope.to_proto(), timeout=TIMEOUT))
        if not ack.HasField("receipt"):
            raise RemoteProtocolError("the coordinator answered without a receipt")
        return receipt_from_proto(ack.receipt)

    def inbox(self) -> list[spb.CrisisItem]:
        reply = self._call(
            lambda: self._node.CrisisInbox(spb.CrisisInboxRequest(), timeout=TIMEOUT)
        )
        return list(reply.items)

    def answer(self, match_id: bytes, accept: bool, signature: bytes) -> Receipt:
        request = spb.CrisisAnswerRequest(match_id=match_id, accept=accept, signature=signature)
        ack = self._call(lambda: self._node.CrisisAnswer(request, timeout=TIMEOUT))
        return receipt_from_proto(ack.receipt)

    def checkpoint(self) -> bytes:
        """The log's latest signed checkpoint (verify it before use)."""
        answer = self._call(
            lambda: self._log.GetCheckpoint(spb.CheckpointRequest(), timeout=TIMEOUT)
        )
        return answer.note

    def inclusion(self, index: int, size: int) -> tuple[bytes, ...]:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` (verify it)."""
        request = spb.ProofRequest(first=index, second=size)
        return tuple(
            self._call(lambda: self._log.GetInclusionProof(request, timeout=TIMEOUT)).hashes
        )

    def consistency(self, size1: int, size2: int) -> tuple[bytes, ...]:
        """The consistency proof between two tree sizes (verify it)."""
        request = spb.ProofRequest(first=size1, second=size2)
        return tuple(
            self._call(lambda: self._log.GetConsistencyProof(request, timeout=TIMEOUT)).hashes
        )

    def entry(self, index: int) -> bytes:
        """The exact bytes of leaf ``index`` (a small one: messages outside rounds)."""
        request = spb.EntriesRequest(start=index, count=1)
        entries = self._call(lambda: self._log.GetEntries(request, timeout=TIMEOUT)).entries
        if len(entries) != 1 or entries[0].index != index or not entries[0].data:
            raise RemoteProtocolError(f"the log did not give leaf {index}")
        return entries[0].data
