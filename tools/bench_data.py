"""``scfed bench import`` and ``scfed bench vector``: a node's data work, timed. Benchmarks.

``import`` writes a demand CSV of ``--rows`` rows and imports it into a fresh node database.
``vector`` fills a node database with demand and capacity for enough commodities and weeks
that a demand-capacity entry has ``--cells`` cells, then times computing the node's vector for
it (reading the facts, putting them on the grid, the presence and concentration segments).
Does I/O in a temporary folder.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from scfed.catalogue import layout, node_vector
from scfed.dp.params import MAGNITUDE, Noise
from scfed.policy import CatalogueEntry
from scfed.taxonomy import NODES, PRODUCT_CLASSES, STAGES, WAFERS

WEEK = date(2026, 11, 30)
HORIZON = 10


def add_benchmarks(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imports = kinds.add_parser("import", help="time importing a large CSV file into a node")
    imports.add_argument("--rows", type=float, default=1e6)
    imports.set_defaults(func=_import)
    vector = kinds.add_parser("vector", help="time a node's vector for a large catalogue entry")
    vector.add_argument("--cells", type=float, default=1e5)
    vector.set_defaults(func=_vector)


def _import(args: argparse.Namespace) -> int:
    from node.bench_import import bench_import

    seconds = bench_import(int(args.rows))
    print(f"| CSV rows | import s |\n|--:|--:|\n| {int(args.rows):,} | {seconds:.1f} |")
    return 0


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


def _vector(args: argparse.Namespace) -> int:
    from node.imports import import_file
    from node.mapping import read_mapping
    from node.records import RecordStore

    keys = commodities(max(1, int(args.cells) // (3 * 3 * HORIZON)))
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
    print("| cells | commodities x weeks | vector s |\n|--:|--:|--:|")
    print(f"| {vector.size:,} | {len(keys)} x {HORIZON} | {seconds:.2f} |")
    return 0
