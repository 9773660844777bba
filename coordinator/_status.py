"""The one place where scfed errors become gRPC status codes, and calls end with them."""

from __future__ import annotations

import logging
from typing import NoReturn

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


async def fail(context: grpc.aio.ServicerContext[object, object], exc: ScfedError) -> NoReturn:
    """End the call with the status for ``exc``, and log the refusal."""
    code = status_for(exc)
    _log.warning("refused %s: %s: %s", context.peer(), code.name, exc)
    await context.abort(code, str(exc))
    raise AssertionError("abort returns only by raising")
