"""How long a large CSV import takes: ``scfed bench import``. A benchmark, not a test.

Does I/O: writes a demand CSV file, its mapping and a database in a temporary folder, imports
the file into a fresh node database and removes the folder. Also runs as ``python -m
tools.bench_import [ROWS]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from node.imports import import_file
from node.mapping import read_mapping
from node.records import RecordStore

WEEKS = 100
COMMODITIES = (
    "fabrication/analog/90-180nm/200mm/JP-Kyushu",
    "fabrication/logic/<=5nm/300mm/TW-Hsinchu",
    "assembly-test-packaging/memory/na/na/MY-Penang",
    "fabrication/micro/40-65nm/300mm/DE-Saxony",
)


def write_demand(folder: Path, rows: int) -> tuple[Path, Path]:
    """A demand file of ``rows`` rows (items times weeks) and the mapping of its items."""
    items = max(1, rows // WEEKS)
    mapping, demand = folder / "mapping.csv", folder / "demand.csv"
    with mapping.open("w", encoding="utf-8") as out:
        out.write("item,commodity\n")
        out.writelines(f"MAT-{i:07d},{COMMODITIES[i % len(COMMODITIES)]}\n" for i in range(items))
    first = date(2026, 1, 5)
    weeks = [(first + timedelta(weeks=w)).isoformat() for w in range(WEEKS)]
    with demand.open("w", encoding="utf-8") as out:
        out.write("# kind: demand\nitem,week,quantity,unit,category\n")
        out.writelines(
            f"MAT-{n // WEEKS:07d},{weeks[n % WEEKS]},{n % 9973}.{n % 7},unit:piece,0001\n"
            for n in range(rows)
        )
    return demand, mapping


def bench_import(rows: int) -> float:
    """Seconds to import a generated demand CSV file of ``rows`` rows into a new database."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        demand, mapping_file = write_demand(folder, rows)
        store = RecordStore(folder / "node.sqlite")
        try:
            start = time.perf_counter()
            mapping = read_mapping(mapping_file)
            summary = import_file(demand, kind=None, mapping=mapping, store=store)
            elapsed = time.perf_counter() - start
        finally:
            store.close()
    if summary.new != rows:
        raise RuntimeError(f"imported {summary.new} of {rows} rows")
    return elapsed


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"imported {count:,} demand rows in {bench_import(count):.1f} s")
