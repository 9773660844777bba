"""The servicers' one error frame, on a real gRPC server on loopback.

A small NodeService-shaped servicer is served by ``add_services`` like the coordinator's own,
each of its methods inside ``served``: what it raises is chosen by the request, and who may
call it by the metadata the client sends. Each test runs its own server on 127.0.0.1, port 0,
without TLS (who the caller is comes from metadata here, not from a certificate).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from coordinator._status import INTERNAL_DETAIL, Context, served
from coordinator._wire import add_services
from protos.scfed.v1 import messages_pb2 as pb
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed.errors import (
    AbortedError,
    ConfigError,
    LocalProtocolError,
    OutOfOrderError,
    PermissionDeniedError,
    PrivacyBudgetError,
    PrivacyParameterError,
    RefusedError,
    RemoteProtocolError,
    ScfedError,
    StorageError,
    VerificationError,
)

pytestmark = pytest.mark.integration

MEMBER = (("caller", "member-a"),)

# What Probe raises, by the request's envelope type or registry version.
REFUSALS: list[tuple[ScfedError, grpc.StatusCode]] = [
    (PermissionDeniedError("not a participant of this round"), grpc.StatusCode.PERMISSION_DENIED),
    (OutOfOrderError("round.unmask is out of order in phase masking"),
     grpc.StatusCode.FAILED_PRECONDITION),
    (RefusedError("the node refuses the round"), grpc.StatusCode.FAILED_PRECONDITION),
    (VerificationError("the signature does not verify"), grpc.StatusCode.UNAUTHENTICATED),
    (RemoteProtocolError("the body is not a MaskedInput"), grpc.StatusCode.INVALID_ARGUMENT),
    (AbortedError("too few survivors"), grpc.StatusCode.ABORTED),
    (PrivacyBudgetError("the release exceeds the budget"), grpc.StatusCode.FAILED_PRECONDITION),
    (ConfigError("no policy is installed"), grpc.StatusCode.FAILED_PRECONDITION),
]  # fmt: skip
OURS: list[Exception] = [
    KeyError("member-b's figure for cell 7"),
    RuntimeError("the hub lost the queue of member-b"),
    StorageError("the coordinator database is locked"),
    LocalProtocolError("unmasking twice in one round"),
    PrivacyParameterError("sigma must be positive, got -1"),  # reached us unwrapped
]
RAISED: dict[str, Exception] = {type(e).__name__: e for e, _ in REFUSALS} | {
    type(e).__name__: e for e in OURS
}
STREAM_FAILURES: list[Exception] = [RemoteProtocolError("a bad registry"), RuntimeError("boom")]


class Probe:
    """Answers, or raises what the request names, and records which methods ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.closed = False

    def _caller(self, context: Context) -> str:
        caller = str(dict(context.invocation_metadata() or ()).get("caller", ""))
        if caller != "member-a":
            raise PermissionDeniedError(f"{caller!r} is not a member")
        return caller

    @served(_caller)
    async def Submit(  # noqa: N802 - gRPC method name
        self, request: pb.Envelope, context: Context, caller: str
    ) -> spb.Ack:
        self.ran.append("Submit")
        if request.type in RAISED:
            raise RAISED[request.type]
        return spb.Ack(envelope_hash=caller.encode())

    @served(_caller)
    async def Subscribe(  # noqa: N802 - gRPC method name
        self, request: spb.SubscribeRequest, context: Context, caller: str
    ) -> AsyncGenerator[spb.Task, None]:
        self.ran.append("Subscribe")
        try:
            yield spb.Task(registry=pb.Envelope(type="first", signer=caller))
            raise STREAM_FAILURES[request.registry_version]
        finally:
            self.closed = True

    @served(_caller)
    async def Cosign(  # noqa: N802 - gRPC method name
        self, request: spb.Cosignature, context: Context, caller: str
    ) -> spb.CosignAck:
        return spb.CosignAck()

    @served(_caller)
    async def CrisisInbox(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisInboxRequest, context: Context, caller: str
    ) -> spb.CrisisInboxReply:
        return spb.CrisisInboxReply()

    @served(_caller)
    async def CrisisAnswer(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisAnswerRequest, context: Context, caller: str
    ) -> spb.Ack:
        return spb.Ack()


@asynccontextmanager
async def serving(probe: Probe) -> AsyncIterator[rpc.NodeServiceAsyncStub]:
    server = grpc.aio.server()
    add_services(server, {"NodeService": probe})
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield rpc.NodeServiceStub(channel)
    finally:
        await server.stop(None)


def run(scenario: Callable[[Probe, rpc.NodeServiceAsyncStub], Coroutine[Any, Any, None]]) -> Probe:
    """Run ``scenario`` against a fresh Probe served on loopback; return the Probe."""
    probe = Probe()

    async def main() -> None:
        async with serving(probe) as stub:
            await scenario(probe, stub)

    asyncio.run(main())
    return probe


async def refusal(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


@pytest.mark.parametrize(("error", "code"), REFUSALS, ids=[type(e).__name__ for e, _ in REFUSALS])
def test_a_scfed_error_ends_the_call_with_its_status_and_says_why(
    error: ScfedError, code: grpc.StatusCode
) -> None:
    async def scenario(probe: Probe, stub: rpc.NodeServiceAsyncStub) -> None:
        refused = await refusal(
            stub.Submit(pb.Envelope(type=type(error).__name__), metadata=MEMBER)
        )
        assert (refused.code(), refused.details()) == (code, str(error))

    run(scenario)


@pytest.mark.parametrize("error", OURS, ids=lambda e: type(e).__name__)
def test_an_error_of_ours_is_internal_tells_the_peer_nothing_and_logs_one_traceback(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(probe: Probe, stub: rpc.NodeServiceAsyncStub) -> None:
        refused = await refusal(
            stub.Submit(pb.Envelope(type=type(error).__name__), metadata=MEMBER)
        )
        assert (refused.code(), refused.details()) == (grpc.StatusCode.INTERNAL, INTERNAL_DETAIL)
        ack = await stub.Submit(pb.Envelope(type="fine"), metadata=MEMBER)
        assert ack.envelope_hash == b"member-a"  # and the server serves on

    with caplog.at_level(logging.INFO, logger="scfed.coordinator"):
        run(scenario)
    logged = [r for r in caplog.records if r.name == "scfed.coordinator"]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[1] is error
    assert "Traceback" in caplog.text
    assert "in Submit" in caplog.text


@pytest.mark.parametrize(
    ("failure", "code", "details"),
    [
        (0, grpc.StatusCode.INVALID_ARGUMENT, "a bad registry"),
        (1, grpc.StatusCode.INTERNAL, INTERNAL_DETAIL),
    ],
    ids=["peer's fault", "ours"],
)
def test_a_stream_failing_after_its_first_answer_ends_with_the_status_of_its_error(
    failure: int, code: grpc.StatusCode, details: str
) -> None:
    async def scenario(probe: Probe, stub: rpc.NodeServiceAsyncStub) -> None:
        call = stub.Subscribe(spb.SubscribeRequest(registry_version=failure), metadata=MEMBER)
        first = await call.read()
        assert isinstance(first, spb.Task)
        assert first.registry.signer == "member-a"
        ended = await refusal(call.read())
        assert (ended.code(), ended.details()) == (code, details)
        assert probe.closed

    run(scenario)


@pytest.mark.parametrize("metadata", [(), (("caller", "mallory"),)], ids=["anonymous", "stranger"])
def test_an_unauthorised_caller_is_refused_before_any_method_runs(
    metadata: tuple[tuple[str, str], ...],
) -> None:
    async def scenario(probe: Probe, stub: rpc.NodeServiceAsyncStub) -> None:
        unary = await refusal(stub.Submit(pb.Envelope(type="fine"), metadata=metadata))
        stream = stub.Subscribe(spb.SubscribeRequest(), metadata=metadata)
        streaming = await refusal(stream.read())
        for refused in (unary, streaming):
            assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
            assert "is not a member" in (refused.details() or "")

    assert run(scenario).ran == []
