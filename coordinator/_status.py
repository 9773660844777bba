"""The one place where errors become gRPC status codes, and calls end with them.

Every servicer method runs inside one frame, ``served(authorise)``: the frame admits the
caller with ``authorise`` (which returns who the caller is, or raises), runs the method with
that caller, and ends the call with a status if anything is raised, also after a streaming
method's first answer. A ``ScfedError`` says whose fault it is, and the peer is told what
went wrong with the status ``status_for`` chooses. An error that is ours (INTERNAL: any
other exception, or a ScfedError no peer caused) is logged once with its traceback and the
peer learns only ``INTERNAL_DETAIL``, never the exception's text. Logs to the coordinator's
log; no other I/O.
"""

from __future__ import annotations

import functools
import inspect
import logging
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from contextlib import aclosing
from typing import Any, Generic, NoReturn, TypeVar, overload

import grpc

from scfed.errors import (
    AbortedError,
    ConfigError,
    OutOfOrderError,
    PermissionDeniedError,
    PrivacyBudgetError,
    RefusedError,
    RemoteProtocolError,
    ScfedError,
    VerificationError,
)

__all__ = ["INTERNAL_DETAIL", "Context", "fail", "is_served", "served", "status_for"]

Context = grpc.aio.ServicerContext[Any, Any]

#: All a peer learns of an error that is ours.
INTERNAL_DETAIL = "internal error; see the coordinator's log"

# Most specific first: the first matching class decides.
_CODES: tuple[tuple[type[ScfedError], grpc.StatusCode], ...] = (
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (OutOfOrderError, grpc.StatusCode.FAILED_PRECONDITION),
    (RefusedError, grpc.StatusCode.FAILED_PRECONDITION),
    (VerificationError, grpc.StatusCode.UNAUTHENTICATED),
    (RemoteProtocolError, grpc.StatusCode.INVALID_ARGUMENT),
    (AbortedError, grpc.StatusCode.ABORTED),
    (PrivacyBudgetError, grpc.StatusCode.FAILED_PRECONDITION),
    (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
)


def status_for(error: ScfedError) -> grpc.StatusCode:
    """The status code that tells a peer what went wrong; INTERNAL when it was our fault."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


_log = logging.getLogger("scfed.coordinator")


async def fail(context: Context, exc: ScfedError) -> NoReturn:
    """End the call with the status for ``exc`` and log the refusal; an error of ours (INTERNAL)
    is logged with its traceback, and its text is not told to the peer."""
    code = status_for(exc)
    if code is grpc.StatusCode.INTERNAL:
        await _fail_internal(context, exc)
    _log.warning("refused %s: %s: %s", context.peer(), code.name, exc)
    await context.abort(code, str(exc))
    raise AssertionError("abort returns only by raising")


async def _fail_internal(context: Context, exc: BaseException) -> NoReturn:
    """End the call with INTERNAL and the generic detail; the traceback goes to our log."""
    _log.exception("internal error answering %s", context.peer(), exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_DETAIL)
    raise AssertionError("abort returns only by raising")


async def _answer(context: Context, exc: Exception) -> NoReturn:
    """End the call for an exception raised inside the frame."""
    if isinstance(exc, ScfedError):
        await fail(context, exc)
    await _fail_internal(context, exc)


S = TypeVar("S")  # the servicer
C = TypeVar("C")  # who the caller is, as its servicer's ``authorise`` says
Q = TypeVar("Q")  # the request
R = TypeVar("R")  # the answer, or each answer of a stream

_SERVED: weakref.WeakSet[Callable[..., object]] = weakref.WeakSet()


def is_served(method: object) -> bool:
    """Whether ``method`` (a function or a bound method) runs inside the frame."""
    return getattr(method, "__func__", method) in _SERVED


class _Frame(Generic[S, C]):
    """Wraps a servicer method ``(self, request, context, caller)`` into the gRPC method
    ``(self, request, context)`` that admits the caller first and answers errors."""

    def __init__(self, authorise: Callable[[S, Context], C]) -> None:
        self._authorise = authorise

    @overload
    def __call__(
        self, method: Callable[[S, Q, Context, C], AsyncGenerator[R, None]]
    ) -> Callable[[S, Q, Context], AsyncGenerator[R, None]]: ...

    @overload
    def __call__(
        self, method: Callable[[S, Q, Context, C], Awaitable[R]]
    ) -> Callable[[S, Q, Context], Coroutine[Any, Any, R]]: ...

    def __call__(self, method: Callable[..., Any]) -> Callable[..., Any]:
        framed = (
            self._streaming(method) if inspect.isasyncgenfunction(method) else self._unary(method)
        )
        _SERVED.add(framed)
        return framed

    def _unary(
        self, method: Callable[[S, Q, Context, C], Awaitable[R]]
    ) -> Callable[[S, Q, Context], Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def unary(servicer: S, request: Q, context: Context) -> R:
            try:
                return await method(servicer, request, context, self._authorise(servicer, context))
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _answer(context, exc)

        return unary

    def _streaming(
        self, method: Callable[[S, Q, Context, C], AsyncGenerator[R, None]]
    ) -> Callable[[S, Q, Context], AsyncGenerator[R, None]]:
        @functools.wraps(method)
        async def streaming(servicer: S, request: Q, context: Context) -> AsyncGenerator[R, None]:
            try:
                caller = self._authorise(servicer, context)
                # Closed with the call, so the method's own cleanup runs when the call ends.
                async with aclosing(method(servicer, request, context, caller)) as answers:
                    async for answer in answers:
                        yield answer
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _answer(context, exc)

        return streaming


def served(authorise: Callable[[S, Context], C]) -> _Frame[S, C]:
    """The frame for a servicer method whose callers ``authorise`` admits.

    ``authorise(servicer, context)`` returns who the caller is, handed to the method as its
    fourth argument, or raises a ScfedError (PermissionDeniedError) before the method runs.
    """
    return _Frame(authorise)
