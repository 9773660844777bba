"""The one place where scfed errors become gRPC status codes."""

from __future__ import annotations

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
