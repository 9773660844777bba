"""The governance-signed registry and policy a node holds: verified, kept, and only ever
replaced by a newer version. Does I/O (through the node's store).

Versions go forward for good (``scfed.versions``). Each version the node accepts is kept in
its store with its envelope before the node acts on it, and the newest of each kind is opened
again when the node starts, before the coordinator has sent anything. So neither a restart nor
a coordinator that replays an old envelope can make the node take back an older registry
(which could re-admit a removed member) or an older policy (which could lower the witness
quorum): it is refused with RefusedError naming the version held and when it was accepted, as
is another body signed as the version held (governance equivocating).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from node.store import Accepted, NodeStore
from scfed import wire
from scfed.errors import RefusedError, RemoteProtocolError, ScfedError, StorageError
from scfed.policy import open_policy
from scfed.registry import open_registry
from scfed.versions import Held, Versioned, check_forward
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.policy import Policy

_V = TypeVar("_V", bound=Versioned)
_Open = Callable[[Envelope, str, bytes], _V]


class SignedVersions:
    """Opens each signed registry and policy, refuses one older than the newest accepted,
    and keeps each newer one in the node's store."""

    def __init__(self, store: NodeStore, origin: str, governance_key: bytes) -> None:
        self._store, self._origin, self._governance_key = store, origin, governance_key

    def stored_registry(self) -> Registry | None:
        """The newest registry this node accepted before, verified again; None if none."""
        stored = self._stored(wire.REGISTRY, open_registry)
        return None if stored is None else stored[0]

    def signed_registry(self) -> tuple[Registry, Envelope] | None:
        """As ``stored_registry``, with the governance-signed envelope it came in."""
        return self._stored(wire.REGISTRY, open_registry)

    def stored_policy(self) -> Policy | None:
        """The newest policy this node accepted before, verified again; None if none."""
        stored = self._stored(wire.POLICY, open_policy)
        return None if stored is None else stored[0]

    def accept_registry(self, envelope: Envelope) -> Registry:
        """The registry in ``envelope``, kept if it is newer; RefusedError if it goes back."""
        return self._accept(wire.REGISTRY, envelope, open_registry)

    def accept_policy(self, envelope: Envelope) -> Policy:
        """The policy in ``envelope``, kept if it is newer; RefusedError if it goes back."""
        return self._accept(wire.POLICY, envelope, open_policy)

    def _accept(self, kind: str, envelope: Envelope, open_: _Open[_V]) -> _V:
        value = open_(envelope, self._origin, self._governance_key)
        if check_forward(self._held(kind), value.version, envelope.body):
            self._store.accept(kind, value.version, envelope)
        return value

    def _held(self, kind: str) -> Held | None:
        newest = self._newest(kind)
        if newest is None:
            return None
        accepted, envelope = newest
        return Held(kind, accepted.version, envelope.body, f"accepted on {_when(accepted)}")

    def _stored(self, kind: str, open_: _Open[_V]) -> tuple[_V, Envelope] | None:
        newest = self._newest(kind)
        if newest is None:
            return None
        accepted, envelope = newest
        try:
            value = open_(envelope, self._origin, self._governance_key)
        except ScfedError as exc:
            raise StorageError(f"the {kind} this node accepted no longer verifies: {exc}") from exc
        if value.version != accepted.version:
            raise StorageError(f"the stored {kind} is not version {accepted.version}")
        return value, envelope

    def _newest(self, kind: str) -> tuple[Accepted, Envelope] | None:
        accepted = self._store.newest_accepted(kind)
        if accepted is None:
            return None
        try:
            return accepted, Envelope.from_bytes(accepted.envelope)
        except RemoteProtocolError as exc:
            raise StorageError(f"the stored {kind} is not an envelope: {exc}") from exc


def held_registry(database: Path, origin: str, governance_key: bytes) -> tuple[Registry, Envelope]:
    """The newest registry the node accepted, verified again; RefusedError before the node
    has held one (it gets one when it first connects)."""
    store = NodeStore(database)
    try:
        held = SignedVersions(store, origin, governance_key).signed_registry()
    finally:
        store.close()
    if held is None:
        raise RefusedError("the node holds no registry yet: start it once (scfed node serve)")
    return held


def _when(accepted: Accepted) -> str:
    return datetime.fromtimestamp(accepted.accepted_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
