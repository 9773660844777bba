"""The releases a config may see, each verified before it is shown. Does I/O.

A node's config (``node.toml``) sees the releases its node received and kept, each verified
again against the coordinator key and log checkpoint it was received with, and the alerts
they raised. The coordinator's config sees every release it logged, each verified against
the coordinator key of its registry. ``scfed node results``, ``scfed coordinator results``
and ``scfed dashboard`` read through here.

``crises`` reads the crises governance declared, for the dashboard's crisis page: from the
newest policy a node accepted (read-only, verified with the governance key again), or from
the coordinator's policy file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from edge.config import kind_of
from scfed.errors import ConfigError
from scfed.release import Alert, Release
from scfed.wire.policy import Crisis

Load = Callable[[], tuple[Sequence[Release], Sequence[Alert]]]
Crises = Callable[[], Sequence[Crisis]]


def loader(config: Path) -> tuple[Load, str]:
    """The function that reads and verifies what ``config`` may see, and who that is."""
    kind = kind_of(config)
    if kind == "node":
        return _node(config)
    if kind == "coordinator":
        return _coordinator(config)
    raise ConfigError(f"{config}: releases are read with a node's or the coordinator's config")


def _node(path: Path) -> tuple[Load, str]:
    from edge.config import load_node_config, read_governance_key
    from node.releases import received

    config = load_node_config(path)
    governance = read_governance_key(config.governance_key)

    def load() -> tuple[Sequence[Release], Sequence[Alert]]:
        got = received(config.database, config.origin, governance)
        return got.releases, got.alerts

    return load, config.member_id


def _coordinator(path: Path) -> tuple[Load, str]:
    from coordinator.store import read_releases
    from edge.config import (
        load_coordinator_config,
        read_governance_key,
        read_policy_file,
        read_registry_file,
    )
    from scfed import wire
    from scfed.release import from_publication
    from scfed.wire.codec import decode_release
    from scfed.wire.envelope import verify

    config = load_coordinator_config(path)
    governance = read_governance_key(config.governance_key)

    verified: dict[bytes, Release] = {}  # by the bytes verified: each once in this process

    def load() -> tuple[Sequence[Release], Sequence[Alert]]:
        registry, _ = read_registry_file(config.registry, config.origin, governance)
        policy, _ = read_policy_file(config.policy, config.origin, governance)
        out = []
        for index, signed in read_releases(config.database):
            seen = hashlib.sha256(registry.coordinator_key + signed.to_bytes()).digest()
            if seen not in verified:
                verify(signed, config.origin, wire.RELEASE, registry.coordinator_key)
                body = decode_release(signed.body)
                entry = policy.entry(body.entry)
                if entry is None:
                    continue
                verified[seen] = from_publication(body, entry, index)
            out.append(verified[seen])
        return out, ()

    return load, "the operator"


def crises(config: Path) -> Crises:
    """The function that reads the crises declared in the signed policy ``config`` sees."""
    kind = kind_of(config)
    if kind == "node":
        return _node_crises(config)
    if kind == "coordinator":
        return _coordinator_crises(config)
    raise ConfigError(f"{config}: crises are read with a node's or the coordinator's config")


def _node_crises(path: Path) -> Crises:
    from edge.config import load_node_config, read_governance_key
    from edge.storage import fetch_read_only
    from scfed import wire
    from scfed.errors import StorageError
    from scfed.policy import open_policy
    from scfed.wire.envelope import Envelope

    config = load_node_config(path)
    governance = read_governance_key(config.governance_key)
    sql = "SELECT envelope FROM signed_versions WHERE kind = ? ORDER BY version DESC LIMIT 1"
    opened: dict[bytes, tuple[Crisis, ...]] = {}  # by the envelope verified

    def declared() -> Sequence[Crisis]:
        rows = fetch_read_only(config.database, sql, (wire.POLICY,))  # as newest_accepted
        if not rows:
            return ()  # the node has accepted no policy yet
        data = rows[0][0]
        if not isinstance(data, bytes):
            raise StorageError("the node database holds a value of the wrong type")
        if data not in opened:
            policy = open_policy(Envelope.from_bytes(data), config.origin, governance)
            opened.clear()
            opened[data] = policy.crises
        return opened[data]

    return declared


def _coordinator_crises(path: Path) -> Crises:
    from edge.config import load_coordinator_config, read_governance_key, read_policy_file

    config = load_coordinator_config(path)
    governance = read_governance_key(config.governance_key)

    def declared() -> Sequence[Crisis]:
        policy, _ = read_policy_file(config.policy, config.origin, governance)
        return policy.crises

    return declared
