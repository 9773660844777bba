"""Our servicers on the gRPC server, with requests that do not parse answered as the peer's fault.

gRPC's generated registration parses a request with ``FromString``, and a parse failure never
reaches our code: gRPC answers UNKNOWN. So the generator keeps only the client side
(``scripts/gen_protos.py``) and the handlers are built here from the service descriptors, with
a deserializer that turns bad bytes into a ``Malformed``
marker; the handler answers the marker with a ``RemoteProtocolError``, so the status
(INVALID_ARGUMENT) and its detail come from ``_status`` like every other refusal. Every
method served must run inside the frame of ``_status.served``, which authorises its caller
and answers its errors; a servicer with a method outside it is refused at start-up. No I/O.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message

from coordinator._status import fail, is_served
from protos.scfed.v1 import service_pb2 as spb
from scfed.errors import RemoteProtocolError

Context = grpc.aio.ServicerContext[Any, Any]
Unary = Callable[[Any, Context], Awaitable[Message]]
Streaming = Callable[[Any, Context], AsyncGenerator[Message, None]]


@dataclass(frozen=True)
class Malformed:
    """Request bytes that are not a valid message of the method's request type."""

    type_name: str
    reason: str

    def error(self, method: str) -> RemoteProtocolError:
        return RemoteProtocolError(
            f"malformed request to {method}: not a valid {self.type_name} ({self.reason})"
        )


def add_services(server: grpc.aio.Server, servicers: Mapping[str, object]) -> None:
    """Serve each servicer (by service name in service.proto) with tolerant parsing."""
    for name, servicer in servicers.items():
        service = spb.DESCRIPTOR.services_by_name[name]
        handlers = {method.name: _handler(method, servicer) for method in service.methods}
        generic = grpc.method_handlers_generic_handler(service.full_name, handlers)
        server.add_generic_rpc_handlers((generic,))


def _handler(method: MethodDescriptor, servicer: object) -> grpc.RpcMethodHandler[Any, Any]:
    parse = _tolerant(message_factory.GetMessageClass(method.input_type))
    encode = message_factory.GetMessageClass(method.output_type).SerializeToString
    path = f"/{method.containing_service.full_name}/{method.name}"
    behaviour = getattr(servicer, method.name)
    if not is_served(behaviour):
        raise TypeError(f"{path}: the servicer method does not run inside _status.served")
    if method.client_streaming:
        raise TypeError(f"{path}: client streaming is not served here")
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(_streaming(path, behaviour), parse, encode)
    return grpc.unary_unary_rpc_method_handler(_unary(path, behaviour), parse, encode)


def _tolerant(message: type[Message]) -> Callable[[bytes], Message | Malformed]:
    def parse(data: bytes) -> Message | Malformed:
        try:
            return message.FromString(data)
        except (DecodeError, RecursionError) as exc:
            name = message.DESCRIPTOR.full_name
            reason = str(exc).removeprefix(f"Error parsing message with type '{name}': ")
            return Malformed(name, reason or type(exc).__name__)

    return parse


def _unary(path: str, behaviour: Unary) -> Unary:
    async def handle(request: Any, context: Context) -> Message:
        if isinstance(request, Malformed):
            await fail(context, request.error(path))
        return await behaviour(request, context)

    return handle


def _streaming(path: str, behaviour: Streaming) -> Streaming:
    async def handle(request: Any, context: Context) -> AsyncGenerator[Message, None]:
        if isinstance(request, Malformed):
            await fail(context, request.error(path))
        async with aclosing(behaviour(request, context)) as answers:
            async for answer in answers:
                yield answer

    return handle
