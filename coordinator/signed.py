"""The governance-signed files the coordinator serves, never older than what it logged or
loaded. Does I/O (the files, and the protocol log's database).

Registry and policy versions only go forward (``scfed.versions``). Every registry and policy
the coordinator used is in its protocol log, so at start the newest of each kind there is the
floor; each version loaded since raises it. At start, a file below the floor, or another body
signed as the version at the floor, is a ConfigError: the coordinator does not start. A file
that changes to such a version while it runs is refused with an error naming the file, and the
version loaded before stays in service.

The log grows without bound and its leaves can be megabytes, so it is read once: what start-up
found and how far it read are kept in the log's database (``SCHEMA``), and the next start reads
on from there. That record is only ever raised; the log is its source.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from coordinator.log import ProtocolLog
from edge.config import read_policy_file, read_registry_file
from edge.storage import fetch, open_database, transaction
from scfed import wire
from scfed.config import CoordinatorConfig
from scfed.errors import ConfigError, RefusedError, RemoteProtocolError, StorageError
from scfed.versions import Held, Versioned, check_forward
from scfed.wire.codec import decode_registry
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.policy import Policy, decode_policy

log = logging.getLogger("scfed.coordinator")
_T = TypeVar("_T", bound=Versioned)

SCHEMA = """
CREATE TABLE IF NOT EXISTS logged_versions (
    kind TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    leaf INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS logged_versions_read (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL
)
"""

#: Leaves up to this size are read in pages; a larger one (a long masked vector) on its own.
_INLINE_BYTES = 1 << 20
_VERSIONS: dict[str, Callable[[bytes], int]] = {
    wire.REGISTRY: lambda body: decode_registry(body).version,
    wire.POLICY: lambda body: decode_policy(body).version,
}


class SignedFile(Generic[_T]):
    """A governance-signed file on disk, verified on load and re-read when it changes; a
    version below ``floor`` (or below one loaded before) is never served."""

    def __init__(
        self, path: Path, read: Callable[[Path], tuple[_T, Envelope]], floor: Held | None = None
    ) -> None:
        self._path, self._read, self._held = path, read, floor
        self._stamp: tuple[int, int] | None = None
        self._loaded: tuple[_T, Envelope] | None = None

    def load(self) -> tuple[_T, Envelope]:
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._loaded is None or stamp != self._stamp:
            self._take(self._read(self._path))
            self._stamp = stamp
        if self._loaded is None:
            raise AssertionError("a loaded file holds a value")
        return self._loaded

    def load_if_present(self) -> tuple[_T, Envelope] | None:
        """As ``load``, or None while the file does not exist (a federation without one)."""
        return self.load() if self._path.exists() else None

    def _take(self, loaded: tuple[_T, Envelope]) -> None:
        value, signed = loaded
        try:
            newer = check_forward(self._held, value.version, signed.body)
        except RefusedError as exc:
            if self._loaded is None:
                raise ConfigError(f"{self._path}: {exc}") from None  # start-up: do not serve
            kept = self._loaded[0].version
            log.error("REFUSED %s: %s; still serving version %d", self._path, exc, kept)
            return
        if newer:
            self._held = Held(signed.type, value.version, signed.body, "loaded before")
        self._loaded = loaded


class RegistryFile(SignedFile[Registry]):
    """The signed member registry, which a coordinator cannot run without; one that names
    another log key than ``key`` (the coordinator's) is never served."""

    def __init__(
        self,
        path: Path,
        origin: str,
        governance_key: bytes,
        floor: Held | None = None,
        key: bytes | None = None,
    ) -> None:
        def read(p: Path) -> tuple[Registry, Envelope]:
            registry, signed = read_registry_file(p, origin, governance_key)
            if key is not None and registry.coordinator_key != key:
                raise RefusedError(
                    f"registry version {registry.version} names another coordinator log key "
                    "than this coordinator's; install it with 'scfed coordinator install' "
                    "and restart the coordinator"
                )
            return registry, signed

        super().__init__(path, read, floor)

    def registry(self) -> Registry:
        return self.load()[0]


def signed_files(
    config: CoordinatorConfig, governance_key: bytes, floors: dict[str, Held], key: bytes
) -> tuple[RegistryFile, SignedFile[Policy]]:
    """The registry and policy files, loaded once now above the newest versions the protocol
    log holds (``floors``, from ``logged_versions``): ConfigError for a file on disk that is
    older, or for a registry naming another log key than ``key``."""
    registry = RegistryFile(
        config.registry, config.origin, governance_key, floors.get(wire.REGISTRY), key
    )
    policy = SignedFile(
        config.policy,
        lambda p: read_policy_file(p, config.origin, governance_key),
        floors.get(wire.POLICY),
    )
    registry.load()
    policy.load_if_present()
    return registry, policy


def logged_versions(protocol_log: ProtocolLog, database: Path) -> dict[str, Held]:
    """The newest registry and policy in the protocol log, by envelope type: what earlier
    starts found (kept in ``database``), and the leaves logged since."""
    db = open_database(database, SCHEMA)
    try:
        found, start = _kept(db)
        size = protocol_log.size
        for index, data in _leaves(protocol_log, min(start, size), size):
            _note(found, index, data)
        _keep(db, found, max(start, size))
    finally:
        db.close()
    return {kind: held for kind, (held, _) in found.items()}


_Found = dict[str, tuple[Held, int]]  # type -> (newest version, its leaf index)


def _note(found: _Found, index: int, data: bytes) -> None:
    """Keep leaf ``index`` in ``found`` if it is a registry or policy newer than the one there."""
    try:
        envelope = Envelope.from_bytes(data)
        version = _VERSIONS[envelope.type](envelope.body) if envelope.type in _VERSIONS else None
    except RemoteProtocolError:
        return  # logged only after it verified; nothing else here is governance-signed
    held = found.get(envelope.type)
    if version is not None and (held is None or version > held[0].version):
        found[envelope.type] = (_held(envelope.type, version, envelope.body, index), index)


def _held(kind: str, version: int, body: bytes, leaf: int) -> Held:
    return Held(kind, version, body, f"logged at leaf {leaf} of the protocol log")


def _leaves(protocol_log: ProtocolLog, start: int, stop: int) -> Iterator[tuple[int, bytes]]:
    while start < stop:
        page = protocol_log.listing(
            start, stop, inline_max=_INLINE_BYTES, max_bytes=4 * _INLINE_BYTES
        )
        for item in page:
            yield item.index, protocol_log.entry(item.index) if item.data is None else item.data
        start = page[-1].index + 1


def _kept(db: sqlite3.Connection) -> tuple[_Found, int]:
    found: _Found = {}
    query = "SELECT kind, version, leaf, body FROM logged_versions"
    for kind, version, leaf, body in fetch(db, query):
        if not (isinstance(kind, str) and isinstance(version, int) and isinstance(leaf, int)
                and isinstance(body, bytes)):  # fmt: skip
            raise StorageError("the record of logged versions holds a value of the wrong type")
        found[kind] = (_held(kind, version, body, leaf), leaf)
    rows = fetch(db, "SELECT size FROM logged_versions_read WHERE id = 1")
    size = rows[0][0] if rows else 0
    if not isinstance(size, int):
        raise StorageError("the record of logged versions holds a value of the wrong type")
    return found, size


def _keep(db: sqlite3.Connection, found: _Found, size: int) -> None:
    with transaction(db):
        db.executemany(
            "INSERT OR REPLACE INTO logged_versions VALUES (?, ?, ?, ?)",
            [(kind, held.version, leaf, held.body) for kind, (held, leaf) in found.items()],
        )
        db.execute("INSERT OR REPLACE INTO logged_versions_read VALUES (1, ?)", (size,))


def logged_log_key(floors: dict[str, Held]) -> bytes | None:
    """The coordinator log key named by the newest registry in the log: the key that signed
    its latest checkpoint, which a coordinator whose key was rotated since may continue."""
    held = floors.get(wire.REGISTRY)
    return None if held is None else decode_registry(held.body).coordinator_key
