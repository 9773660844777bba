"""The operator's side of the admin service: a client that starts rounds and asks for the
coordinator's status. Does I/O (a mutual-TLS gRPC channel).

Used by ``scfed coordinator round`` and ``status``, by the demo and by the integration tests;
a call that fails becomes ``RemoteProtocolError`` saying whether the coordinator could not be
reached or refused.
"""

from __future__ import annotations

import grpc

from edge.transport import call_failed, secure_channel
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.config import OperatorConfig
from scfed.wire.envelope import Envelope


class AdminClient:
    """The operator's connection to the coordinator's admin service."""

    def __init__(self, config: OperatorConfig, address: str | None = None) -> None:
        self._target = address or config.coordinator
        self._channel = secure_channel(config.tls, self._target, config.server_name)
        self._stub = rpc.AdminServiceStub(self._channel)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._channel.close()

    def status(self, timeout: float = 10.0) -> spb.CoordinatorStatus:
        """Who is connected and where the latest round stands."""
        try:
            return self._stub.Status(spb.StatusRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise call_failed(exc, self._target) from exc

    def crisis_status(self, timeout: float = 10.0) -> list[str]:
        """Crisis mode without identities: a line per crisis, commodity and week."""
        try:
            return list(self._stub.CrisisStatus(spb.StatusRequest(), timeout=timeout).lines)
        except grpc.RpcError as exc:
            raise call_failed(exc, self._target) from exc

    def start_round(self, request: spb.StartRoundRequest, timeout: float) -> tuple[bytes, Envelope]:
        """Run a round; its id and signed outcome."""
        try:
            answer = self._stub.StartRound(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise call_failed(exc, self._target) from exc
        return answer.round_id, Envelope.from_proto(answer.outcome)
