"""``scfed bench dashboard``: each dashboard page over a year of releases, beside its floor.

Writes a real node store: a governance-signed policy, and a year of weekly releases of five
catalogue entries over N commodities (``tools.dashboard_data``), each signed by a
coordinator key and logged in one Merkle tree with a signed checkpoint, kept with its
inclusion proof as a node keeps what it receives. Serves the dashboard over that store with
waitress on loopback, the way ``scfed dashboard`` does (every page reads and verifies the
store again), and times each page over HTTP: the first request (every release verified),
and the median of the next ones (only new rows verified). The floor is reading the store's
release rows alone, measured in the same run.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dashboard.app import create_app
from dashboard.server import bind, url
from edge.observe import stop_serving
from edge.storage import fetch_read_only, transaction
from node.releases import received
from node.store import NodeStore
from scfed import tlog, wire
from scfed.checkpoint import Checkpoint
from scfed.note import Signer, sign_note
from scfed.policy import seal_policy
from scfed.release import Alert, Release, to_publication
from scfed.wire import envelope as env
from scfed.wire.codec import encode
from scfed.wire.policy import Policy
from tools.dashboard_data import METRICS, declared, synthetic

ORIGIN = "scfed.bench/dashboard"
REPEATS = 5
#: One entry per metric, and the crisis's need-spare entry.
ENTRIES = len(METRICS) + 1


@dataclass(frozen=True)
class PageTime:
    path: str
    first_s: float
    warm_s: float
    kilobytes: float


def write_store(database: Path, commodities: int, weeks: int, horizon: int) -> tuple[bytes, int]:
    """A node store holding the synthetic releases; the governance public key, and how many."""
    releases, _ = synthetic(commodities, weeks, horizon)
    governance = Ed25519PrivateKey.generate()
    coordinator = Ed25519PrivateKey.generate()
    entries = tuple({r.entry.name: r.entry for r in releases}.values())
    policy = Policy(ORIGIN, 1, "2026.1", "0.5", "year", entries)
    signed = [_sealed(r, coordinator) for r in sorted(releases, key=lambda r: r.log_index)]
    tree = tlog.MemoryTree(tlog.leaf_hash(s) for s in signed)
    note = sign_note(
        Checkpoint(ORIGIN, tree.size, tree.root()).format(), [Signer(ORIGIN, coordinator)]
    )
    key = coordinator.public_key().public_bytes_raw()
    store = NodeStore(database)
    store.accept(wire.POLICY, 1, seal_policy(policy, governance))
    ordered = sorted(releases, key=lambda r: r.log_index)
    with transaction(store.connection) as db:
        db.executemany(
            "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, bytes.fromhex(r.round_id), r.entry.name, r.week.isoformat(), data, note,
                 b"".join(tree.inclusion_proof(i)), key, 0.0)
                for i, (r, data) in enumerate(zip(ordered, signed, strict=True))
            ],
        )  # fmt: skip
    store.close()
    return governance.public_key().public_bytes_raw(), len(releases)


def _sealed(release: Release, key: Ed25519PrivateKey) -> bytes:
    body = to_publication(release, bytes(32), 1)
    return env.seal(key, wire.RELEASE, wire.COORDINATOR, ORIGIN, encode(body)).to_bytes()


def floor_s(database: Path) -> float:
    """Reading every release row of the store, the least any page must do."""
    started = time.perf_counter()
    fetch_read_only(database, "SELECT * FROM releases")
    return time.perf_counter() - started


def time_pages(
    database: Path, governance: bytes, paths: Sequence[str]
) -> tuple[float, list[PageTime]]:
    """The start-up (reading and verifying every release, as ``scfed dashboard`` does before
    it serves), and each page's times."""

    def load() -> tuple[Sequence[Release], Sequence[Alert]]:
        got = received(database, ORIGIN, governance)
        return got.releases, got.alerts

    started = time.perf_counter()
    load()
    startup = time.perf_counter() - started
    today = datetime.now(UTC).date()
    server = bind(create_app(load, who="bench", crises=lambda: (declared(today),)), "127.0.0.1", 0)
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    try:
        return startup, [_page(url(server).rstrip("/") + path, path) for path in paths]
    finally:
        stop_serving(server, serving)


def _page(address: str, path: str) -> PageTime:
    first, size = _get(address)
    warm = statistics.median(_get(address)[0] for _ in range(REPEATS))
    return PageTime(path, first, warm, size / 1024)


def _get(address: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(address, timeout=60) as answer:  # noqa: S310 - loopback
        size = len(answer.read())
    return time.perf_counter() - started, size


def bench(
    directory: Path, commodities: int, weeks: int
) -> tuple[int, float, float, list[PageTime]]:  # fmt: skip
    """How many releases, the floor, the start-up and each page's times."""
    database = directory / "node.db"
    governance, count = write_store(database, commodities, weeks, 8)
    first = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
    paths = ["/", "/grid", f"/commodity/{first}", "/alerts", "/crisis", "/?lang=ja"]
    startup, pages = time_pages(database, governance, paths)
    return count, min(floor_s(database) for _ in range(REPEATS)), startup, pages


def table(
    count: int, commodities: int, floor: float, startup: float, pages: Sequence[PageTime]
) -> str:
    lines = [
        f"{count} releases of {commodities} commodities ({ENTRIES} entries, weekly); start-up "
        f"(reading and verifying every release): {startup:.1f} s; floor (reading the "
        f"release rows): {floor * 1000:.0f} ms",
        "",
        "| page | first request s | then s (median) | over floor | KB |",
        "|--|--:|--:|--:|--:|",
    ]
    lines += [
        f"| `{p.path}` | {p.first_s:.3f} | {p.warm_s:.3f} | {p.warm_s / floor:.1f}x | "
        f"{p.kilobytes:.0f} |"
        for p in pages
    ]
    return "\n".join(lines)
