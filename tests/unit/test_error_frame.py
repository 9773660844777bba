"""The servicers' error frame without a network: a servicer is served only if every one of its
methods runs inside ``served``, and a stream that ends early closes its method at once. How
the frame answers callers, on a real server, is tested in tests/integration/test_error_frame.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from types import SimpleNamespace
from typing import cast

import grpc
import pytest

from coordinator._status import Context, served
from coordinator._wire import _handler, add_services
from protos.scfed.v1 import messages_pb2 as pb
from protos.scfed.v1 import service_pb2 as spb

NODE_SERVICE = spb.DESCRIPTOR.services_by_name["NodeService"]
Streaming = Callable[[spb.SubscribeRequest, Context], AsyncGenerator[spb.Task, None]]


class Framed:
    """Every method inside the frame; Subscribe answers until it is closed."""

    def __init__(self) -> None:
        self.closed = False

    def _anyone(self, context: Context) -> None:
        """Admits every caller."""

    @served(_anyone)
    async def Subscribe(  # noqa: N802 - gRPC method name
        self, request: spb.SubscribeRequest, context: Context, caller: None
    ) -> AsyncGenerator[spb.Task, None]:
        try:
            while True:
                yield spb.Task()
        finally:
            self.closed = True

    @served(_anyone)
    async def Submit(  # noqa: N802 - gRPC method name
        self, request: pb.Envelope, context: Context, caller: None
    ) -> spb.Ack:
        return spb.Ack()

    @served(_anyone)
    async def Cosign(  # noqa: N802 - gRPC method name
        self, request: spb.Cosignature, context: Context, caller: None
    ) -> spb.CosignAck:
        return spb.CosignAck()

    @served(_anyone)
    async def CrisisInbox(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisInboxRequest, context: Context, caller: None
    ) -> spb.CrisisInboxReply:
        return spb.CrisisInboxReply()

    @served(_anyone)
    async def CrisisAnswer(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisAnswerRequest, context: Context, caller: None
    ) -> spb.Ack:
        return spb.Ack()


class OneUnframed(Framed):
    """Cosign outside the frame: no declared authorisation, no error mapping."""

    async def Cosign(  # noqa: N802 - gRPC method name
        self, request: spb.Cosignature, context: Context
    ) -> spb.CosignAck:
        return spb.CosignAck()


async def _serve(servicer: Framed) -> None:
    server = grpc.aio.server()  # never bound to a port
    try:
        add_services(server, {"NodeService": servicer})
    finally:
        await server.stop(None)


def test_a_servicer_with_a_method_outside_the_frame_is_refused_at_start_up() -> None:
    asyncio.run(_serve(Framed()))
    with pytest.raises(TypeError, match=r"^/scfed\.v1\.NodeService/Cosign: .* inside"):
        asyncio.run(_serve(OneUnframed()))


def test_a_stream_ended_after_an_answer_closes_its_method_at_once() -> None:
    servicer = Framed()
    handler = _handler(NODE_SERVICE.methods_by_name["Subscribe"], servicer)
    stream = cast(Streaming, handler.unary_stream)  # what gRPC calls for each Subscribe
    context = cast(Context, SimpleNamespace())  # the frame asks nothing of it unless it fails

    async def scenario() -> None:
        answers = stream(spb.SubscribeRequest(), context)
        assert await anext(answers) == spb.Task()
        await answers.aclose()
        assert servicer.closed  # now, not when the collector finds the method's generator

    asyncio.run(scenario())
