"""Releases: a catalogue round's picture, signed, logged and sent to its recipients. I/O.

After a catalogue round's result (and its charge) the coordinator combines it with the
entry's earlier results (``scfed.release.choose``), applies the disclosure rules, signs the
release (type "round.release"), logs it and pushes it, with its receipt, to the connected
nodes of the members the entry names as recipients. A node that connects later names the
log index it holds releases up to and is sent the ones it may receive after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.journal import Journal
from coordinator.store import Store
from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.release import Published, choose, to_publication
from scfed.wire import envelope as env
from scfed.wire.codec import decode_announce, decode_release, decode_result, encode
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce, Registry
from scfed.wire.policy import Policy
from scfed.wire.tasks import task_to_proto

if TYPE_CHECKING:
    from coordinator.rounds import Hub

log = logging.getLogger("scfed.coordinator")


class Releases:
    """Builds, logs and delivers the releases of catalogue rounds."""

    def __init__(self, store: Store, journal: Journal, key: Ed25519PrivateKey, hub: Hub) -> None:
        self._store, self._journal, self._key, self._hub = store, journal, key, hub

    def publish(
        self, announce: Announce, outcome: Envelope, registry: Registry, policy: Policy | None
    ) -> int | None:
        """Log the release of a catalogue round's result and send it to its recipients'
        connected nodes; its log index, or None for an abort or an ad-hoc round."""
        entry = policy.entry(announce.query) if policy is not None and announce.week else None
        if outcome.type != wire.RESULT or entry is None or policy is None:
            return None
        published = [
            Published(decode_announce(a.body), decode_result(o.body))
            for a, o in self._store.results_of(announce.query)
        ]
        chosen = choose(published, announce.round_id.hex(), policy.entry, registry)
        if chosen is None:
            raise AssertionError("a logged catalogue result has a release")
        result_hash = hashlib.sha256(outcome.to_bytes()).digest()
        body = to_publication(chosen, result_hash, policy.version)
        signed = env.seal(self._key, wire.RELEASE, wire.COORDINATOR, registry.origin, encode(body))
        index = self._journal.record(signed)
        self._store.release_logged(index, body.round_id, body.entry, body.week, signed)
        sent = [m for m in self._hub.connected if body.entitles(m)]
        task = task_to_proto(signed, self._journal.receipt(index))
        for member_id in sent:
            self._hub.push(member_id, task)
        log.info(
            "round %s: release of %s for the week of %s logged at %d, sent to %d nodes",
            announce.round_id.hex(), entry.name, body.week, index, len(sent),
        )  # fmt: skip
        return index

    def catch_up(self, member_id: str, queue: asyncio.Queue[spb.Task | None], start: int) -> int:
        """Queue for a node that connects the releases its member may receive from log
        index ``start`` on; how many."""
        count = 0
        for index, signed in self._store.releases_from(start):
            if decode_release(signed.body).entitles(member_id):
                queue.put_nowait(task_to_proto(signed, self._journal.receipt(index)))
                count += 1
        return count
