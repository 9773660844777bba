"""Registry and policy versions only go forward: the one rule node, coordinator and auditor
apply (docs/architecture.md, step 0). Pure, no I/O.

Each party keeps the newest governance-signed version of each kind it has taken (``Held``):
a node the one it accepted, persisted across restarts; the coordinator the newest it logged or
loaded; the auditor the one in force at a leaf. A version below it would take back what
governance changed since (re-admit a removed member, lower the witness quorum), and another
body signed as the same version is governance equivocating; both are refused. The very one held
again is nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from scfed.errors import RefusedError


class Versioned(Protocol):
    """What governance signs with a version: a registry or a policy."""

    @property
    def version(self) -> int: ...


@dataclass(frozen=True)
class Held:
    """The newest signed version of a registry or policy a party has taken."""

    kind: str  # "registry" or "policy", the envelope type
    version: int
    body: bytes  # the signed body: what "the same version" means
    #: Where or when it was taken, completing "version 4 ...": "accepted on 2026-05-04".
    where: str


def check_forward(held: Held | None, version: int, body: bytes) -> bool:
    """Whether a signed ``version`` with this ``body`` is newer than ``held`` (True) or the
    very one held (False); RefusedError if it is older, or another body of the same version."""
    if held is None or version > held.version:
        return True
    if version < held.version:
        raise RefusedError(
            f"{held.kind} version {version} is older than version {held.version} {held.where}"
        )
    if body != held.body:
        raise RefusedError(
            f"{held.kind} version {version} is not the version {version} {held.where}: "
            f"governance signed two different {held.kind} bodies as one version"
        )
    return False
