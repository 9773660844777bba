"""The one error tree of scfed.

Every error names whose fault it is: ``LocalProtocolError`` means we are wrong (a bug or a
misuse of our own state machine), ``RemoteProtocolError`` means a peer sent something that
breaks the protocol. Low-level exceptions are wrapped into these where they cross a module
boundary; gRPC status codes are chosen from them in one place (``coordinator._status``).
"""


class ScfedError(Exception):
    """Root of every error scfed raises on purpose."""


class ConfigError(ScfedError):
    """A configuration file, key file or command-line value is missing or invalid."""


class LocalProtocolError(ScfedError):
    """We tried to do something the protocol does not allow in our current state."""


class MessageError(LocalProtocolError):
    """A protocol message was built with a value the protocol does not allow.

    Messages check themselves on construction (``scfed.wire.messages``). Built by us, the
    fault is ours; a decoder rewraps it as RemoteProtocolError, for then it is the peer's.
    """


class RemoteProtocolError(ScfedError):
    """A peer sent a message that is malformed, out of order or breaks a safety rule."""


class RefusedError(RemoteProtocolError):
    """A node refuses to take part: the request violates its safety rules or its policy.

    The node abandons the round; nothing secret has been or will be revealed for it.
    """


class AbortedError(ScfedError):
    """A round cannot complete (too few participants remain); nothing was unmasked."""


class PermissionDeniedError(RemoteProtocolError):
    """The peer is not allowed to do this (unregistered, not a participant, wrong role)."""


class VerificationError(ScfedError):
    """A signature, certificate, proof or checksum does not verify."""


class PrivacyBudgetError(ScfedError):
    """A release would exceed a privacy budget or asks for less noise than the policy."""


class PrivacyParameterError(ScfedError, ValueError):
    """The caller handed the DP arithmetic a value outside its domain: a sigma, bound,
    t_collude, survivor count, rho, epsilon, delta, privacy unit, level or sampler key.

    The fault is the caller's. A boundary that took the value from a file or a peer rewraps
    it as ConfigError or RemoteProtocolError, which says whose it was; one that reaches a
    servicer unwrapped is ours. Also a ValueError, which is what it is: a value of the
    right type that the function is not defined for.
    """


class ImportRowError(ScfedError):
    """A row of an imported file is invalid; the message names file, line, field and reason."""


class OutOfOrderError(RemoteProtocolError):
    """A peer sent a message the round's current phase does not accept."""


class StorageError(ScfedError):
    """Our own database could not be read or written (disk full, corruption, permissions)."""
