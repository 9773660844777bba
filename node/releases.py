"""The releases a node receives: verified, kept, read back and alerted on. Does I/O.

A release arrives on the node's connection with its receipt. The node has checked the
receipt against its view of the log (``node.logcheck``); here it checks the coordinator's
signature, that its member is among the release's recipients, that it names a catalogue
entry of a policy this node accepted and that entry's recipients (the coordinator cannot
widen them), keeps the release with its receipt and the key that
verified it, and raises an alert for each commodity-week the release turns orange or red,
or worsens, against the entry's previous release (``scfed.release.alerts``). Alerts are
logged and, where the node's config asks, POSTed to a webhook or given to a command, as
JSON. Reading (``scfed node results``, the dashboard) verifies each kept release again
before it is shown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.storage import fetch_read_only, transaction
from node.store import NodeStore
from scfed import wire
from scfed.errors import RefusedError, ScfedError, StorageError
from scfed.policy import open_policy
from scfed.release import Alert, Release, alerts, from_publication, verify_release
from scfed.tlog import HASH_SIZE
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.policy import Policy
from scfed.wire.tasks import Receipt

log = logging.getLogger("scfed.node")

#: How long an alert's webhook or command may take.
ALERT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Received:
    """What a node's store holds: its releases, verified again, and their alerts."""

    releases: tuple[Release, ...]
    alerts: tuple[Alert, ...]


def keep_release(
    store: NodeStore,
    envelope: Envelope,
    receipt: Receipt,
    registry: Registry,
    *,
    member_id: str,
    policies: dict[int, Policy],
) -> list[Alert]:
    """Keep a release whose receipt checked out; the alerts it raises. RefusedError if it
    is not for this member or names no entry this node knows."""
    data = envelope.to_bytes()
    key = registry.coordinator_key
    body = verify_release(
        data, receipt.index, receipt.checkpoint, receipt.inclusion, origin=registry.origin,
        coordinator_key=key,
    )  # fmt: skip
    if not body.entitles(member_id):
        raise RefusedError(f"a release of {body.entry} for {', '.join(body.recipients)}, not us")
    policy = policies.get(body.policy_version)
    entry = policy.entry(body.entry) if policy is not None else None
    if entry is None:
        raise RefusedError(f"a release of {body.entry!r}, in no policy this node accepted")
    if body.recipients != entry.recipients:
        raise RefusedError(
            f"a release of {body.entry} for {', '.join(body.recipients)}: the signed entry "
            f"names {', '.join(entry.recipients)}"
        )
    release = from_publication(body, entry, receipt.index)
    previous = _previous(store.database, registry.origin, release, policies)
    raised = alerts(release, previous)
    with transaction(store.connection) as db:
        db.execute(
            "INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (receipt.index, body.round_id, body.entry, body.week, data, receipt.checkpoint,
             b"".join(receipt.inclusion), key, time.time()),
        )  # fmt: skip
        db.executemany(
            "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?)",
            [(a.log_index, a.commodity, a.week.isoformat(), json.dumps(a.as_json()))
             for a in raised],
        )  # fmt: skip
    return raised


def _previous(
    database: Path, origin: str, release: Release, policies: dict[int, Policy]
) -> Release | None:
    earlier = [
        r
        for r in _verified(database, origin, policies, release.entry.name)
        if r.log_index < release.log_index
    ]
    return max(earlier, key=lambda r: r.log_index, default=None)


def received(database: Path, origin: str, governance_key: bytes) -> Received:
    """Every release a node's store holds, each verified again, and the alerts they raised,
    newest first. Read-only: a running daemon may hold the store."""
    policies = accepted_policies(database, origin, governance_key)
    releases = tuple(_verified(database, origin, policies, None))
    rows = fetch_read_only(database, "SELECT alert FROM alerts ORDER BY log_index DESC")
    return Received(releases, tuple(_alert(json.loads(str(row[0]))) for row in rows))


def accepted_policies(database: Path, origin: str, governance_key: bytes) -> dict[int, Policy]:
    """Every policy version the node accepted, verified with the governance key."""
    sql = "SELECT envelope FROM signed_versions WHERE kind = ? ORDER BY version"
    rows = fetch_read_only(database, sql, (wire.POLICY,))
    opened = [
        open_policy(Envelope.from_bytes(_blob(row[0])), origin, governance_key) for row in rows
    ]
    return {p.version: p for p in opened}


def _verified(
    database: Path, origin: str, policies: dict[int, Policy], entry: str | None
) -> list[Release]:
    sql = (
        "SELECT log_index, envelope, checkpoint, inclusion, coordinator_key FROM releases "
        "WHERE ? IS NULL OR entry = ? ORDER BY log_index"
    )
    rows = fetch_read_only(database, sql, (entry, entry))
    return [_opened(origin, policies, *row) for row in rows]


#: Releases verified in this process, by what was verified: a store is read again for every
#: page of the dashboard, and only a row not seen before costs a verification.
_VERIFIED: dict[bytes, Release] = {}


def _opened(origin: str, policies: dict[int, Policy], *row: object) -> Release:
    index, data, checkpoint, inclusion, key = int(str(row[0])), *(_blob(v) for v in row[1:])
    fields = (origin.encode(), data, checkpoint, inclusion, key)
    digest = b"".join(hashlib.sha256(f).digest() for f in fields) + index.to_bytes(8, "big")
    cached = _VERIFIED.get(digest)
    if cached is not None:
        return cached
    hashes = [inclusion[i : i + HASH_SIZE] for i in range(0, len(inclusion), HASH_SIZE)]
    body = verify_release(data, index, checkpoint, hashes, origin=origin, coordinator_key=key)
    policy = policies.get(body.policy_version)
    catalogue_entry = policy.entry(body.entry) if policy is not None else None
    if catalogue_entry is None:
        raise StorageError(f"a kept release of {body.entry!r} names no accepted policy")
    release = from_publication(body, catalogue_entry, index)
    _VERIFIED[digest] = release
    return release


def _alert(document: dict[str, object]) -> Alert:
    from datetime import date

    return Alert(
        str(document["entry"]), str(document["round"]), int(str(document["log_index"])),
        str(document["commodity"]), date.fromisoformat(str(document["week"])),
        str(document["before"] or ""), str(document["light"]),
    )  # fmt: skip


def _blob(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StorageError("the node database holds a value of the wrong type")
    return value


def notify(raised: Sequence[Alert], webhook: str, command: str) -> None:
    """Log each alert, and hand it to the configured webhook and command as JSON; a
    failure to deliver is logged and loses nothing (the alert stays in the store)."""
    for alert in raised:
        document = json.dumps(alert.as_json(), sort_keys=True).encode("utf-8")
        log.warning(
            "ALERT: %s %s week of %s: %s (was %s)",
            alert.entry, alert.commodity, alert.week, alert.light, alert.before or "not shown",
        )  # fmt: skip
        if webhook:
            _post(webhook, document)
        if command:
            _run(command, document)


def _post(url: str, document: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310 - the node's own config names the URL
        url, data=document, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=ALERT_TIMEOUT_S) as answer:  # noqa: S310
            answer.read(1024)
    except OSError as exc:
        log.error("the alert webhook %s failed: %s", url, exc)


def _run(command: str, document: bytes) -> None:
    try:
        subprocess.run(
            [command], input=document, timeout=ALERT_TIMEOUT_S, check=True, capture_output=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.error("the alert command %s failed: %s", command, exc)


__all__ = ["Received", "ScfedError", "accepted_policies", "keep_release", "notify", "received"]
