"""A node's vector for a large catalogue entry, timed: ``scfed bench vector``. A benchmark.

``bench_vector`` fills a node database with demand and capacity for enough commodities and
weeks that a demand-capacity entry has about ``cells`` cells, then times computing the node's
vector for it (reading the facts, putting them on the grid, the presence and concentration
segments). Does I/O in a temporary folder. Its companion ``scfed bench import`` is
``tools.bench_import``.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from node.imports import import_file
from node.mapping import read_mapping
from node.records import RecordStore
from scfed.catalogue import layout, node_vector
from scfed.dp.params import MAGNITUDE, Noise
from scfed.taxonomy import NODES, PRODUCT_CLASSES, STAGES, WAFERS
from scfed.wire.policy import CatalogueEntry

WEEK = date(2026, 11, 30)
HORIZON = 10


def commodities(count: int) -> tuple[str, ...]:
    """``count`` distinct taxonomy keys."""
    regions = ("JP-Kyushu", "TW-Hsinchu", "KR-Gyeonggi", "US-Arizona", "DE-Saxony", "JP")
    keys = itertools.product(STAGES, PRODUCT_CLASSES, NODES, WAFERS, regions)
    return tuple(sorted("/".join(k) for k in itertools.islice(keys, count)))


def entry_of(keys: tuple[str, ...]) -> CatalogueEntry:
    noise = Noise("600", 1, MAGNITUDE, 100, "1", 10**9, disclosure=True)
    return CatalogueEntry(
        "bench", "benchmark", "demand-capacity", keys, HORIZON, noise, 5, "0.8", 20_000,
        6_000, ("members",),
    )  # fmt: skip


def _write_data(folder: Path, keys: tuple[str, ...]) -> None:
    weeks = [(WEEK + timedelta(weeks=w)).isoformat() for w in range(HORIZON)]
    mapping = ["item,commodity"] + [f"MAT-{i:06d},{k}" for i, k in enumerate(keys)]
    demand = ["# kind: demand", "item,week,quantity,unit,category"]
    capacity = ["# kind: capacity", "item,week,actual,maximum,unit"]
    for i, week in itertools.product(range(len(keys)), weeks):
        demand.append(f"MAT-{i:06d},{week},{1000 + i % 97},unit:piece,0001")
        capacity.append(f"MAT-{i:06d},{week},{1200 + i % 89},{1300 + i % 89},unit:piece")
    for name, lines in (
        ("mapping.csv", mapping),
        ("demand.csv", demand),
        ("capacity.csv", capacity),
    ):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Vector:
    """What ``bench_vector`` timed: the vector's cells, its commodities, the seconds."""

    cells: int
    commodities: int
    seconds: float


def bench_vector(cells: int) -> Vector:
    """Time a node's vector for a demand-capacity entry of about ``cells`` cells."""
    keys = commodities(max(1, cells // (3 * 3 * HORIZON)))
    entry = entry_of(keys)
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        _write_data(folder, keys)
        store = RecordStore(folder / "node.sqlite")
        mapping = read_mapping(folder / "mapping.csv")
        for name in ("demand.csv", "capacity.csv"):
            import_file(folder / name, kind=None, mapping=mapping, store=store)
        started = time.perf_counter()
        vector = node_vector(entry, WEEK, store.weekly)
        seconds = time.perf_counter() - started
        store.close()
    if vector.shape != (layout(entry, WEEK).dim,):
        raise AssertionError("the vector does not have the entry's cells")
    return Vector(vector.size, len(keys), seconds)
