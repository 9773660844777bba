"""The releases a config may see, each verified before it is shown. Does I/O.

A node's config (``node.toml``) sees the releases its node received and kept, each verified
again against the coordinator key and log checkpoint it was received with, and the alerts
they raised. The coordinator's config sees every release it logged, each verified against
the coordinator key of its registry. ``scfed node results``, ``scfed coordinator results``
and ``scfed dashboard`` read through here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from edge.config import kind_of
from scfed.release import Alert, Release

Load = Callable[[], tuple[Sequence[Release], Sequence[Alert]]]


def loader(config: Path) -> tuple[Load, str]:
    """The function that reads and verifies what ``config`` may see, and who that is."""
    if kind_of(config) == "node":
        return _node(config)
    return _coordinator(config)


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

    def load() -> tuple[Sequence[Release], Sequence[Alert]]:
        registry, _ = read_registry_file(config.registry, config.origin, governance)
        policy, _ = read_policy_file(config.policy, config.origin, governance)
        out = []
        for index, signed in read_releases(config.database):
            verify(signed, config.origin, wire.RELEASE, registry.coordinator_key)
            body = decode_release(signed.body)
            entry = policy.entry(body.entry)
            if entry is not None:
                out.append(from_publication(body, entry, index))
        return out, ()

    return load, "the operator"
