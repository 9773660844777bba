"""``scfed node import`` and ``scfed node data``: the firm's own figures on its node.

Edge code: reads the files named on the command line, the node's database and the clock (for
the current week of ``data``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from edge.config import load_node_config

if TYPE_CHECKING:
    from node.records import RecordStore

DEFAULT_MAPPING = "mapping.csv"
DEFAULT_WEEKS = 8
MAX_WEEKS = 104


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``import`` and ``data`` under ``scfed node``."""
    load = commands.add_parser("import", help="import a CSV or Catena-X JSON file of figures")
    load.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    load.add_argument("file", type=Path, help="the CSV or JSON file")
    load.add_argument("--kind", help="the kind of a CSV file without a '# kind:' line")
    load.add_argument(
        "--mapping", type=Path, help=f"item,commodity file (default: {DEFAULT_MAPPING} beside it)"
    )
    load.set_defaults(func=_import)
    data = commands.add_parser("data", help="what the node holds, and the coming weeks")
    data.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    data.add_argument("--weeks", type=_weeks, default=DEFAULT_WEEKS, help="weeks to show")
    data.set_defaults(func=_data)


def _weeks(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WEEKS:
        raise argparse.ArgumentTypeError(f"use a number of weeks from 1 to {MAX_WEEKS}")
    return int(text)


def _import(args: argparse.Namespace) -> int:
    from node.imports import import_file
    from node.mapping import read_mapping
    from node.records import RecordStore

    config = load_node_config(args.config)
    mapping = read_mapping(args.mapping or config.path.parent / DEFAULT_MAPPING)
    store = RecordStore(config.database)
    try:
        summary = import_file(args.file, kind=args.kind, mapping=mapping, store=store)
    finally:
        store.close()
    print(summary.line())
    return 0


def _data(args: argparse.Namespace) -> int:
    from node.records import RecordStore

    config = load_node_config(args.config)
    store = RecordStore(config.database)
    first = datetime.now(UTC).date()
    weeks = [
        first - timedelta(days=first.weekday()) + timedelta(weeks=i) for i in range(args.weeks)
    ]
    try:
        print(holdings_report(store))
        print()
        print(weeks_report(store.totals(weeks), weeks))
    finally:
        store.close()
    return 0


def holdings_report(store: RecordStore) -> str:
    """Per record kind and metric: records, weeks covered and commodities."""
    holdings = store.holdings()
    if not holdings:
        return "no data imported yet: use scfed node import"
    lines = [f"{'kind':<18} {'metric':<22} {'records':>10}  {'weeks':<24} {'commodities':>11}"]
    for h in holdings:
        span = f"{h.first_week} to {h.last_week}" if h.first_week else "-"
        lines.append(
            f"{h.kind:<18} {h.metric or '-':<22} {h.records:>10,}  {span:<24} {h.commodities:>11,}"
        )
    return "\n".join(lines)


def weeks_report(totals: dict[tuple[str, str, date], Decimal], weeks: Sequence[date]) -> str:
    """Per metric and unit, the node's total over all commodities for each of ``weeks``."""
    from scfed.taxonomy import week_label

    rows = sorted({(metric, unit) for metric, unit, _ in totals})
    header = f"{'metric':<22} {'unit':<14}" + "".join(f" {week_label(w)[2:]:>8}" for w in weeks)
    lines = [f"totals over all commodities, from the week of {weeks[0]}:", header]
    for metric, unit in rows:
        cells = "".join(f" {_compact(totals.get((metric, unit, w))):>8}" for w in weeks)
        lines.append(f"{metric:<22} {_unit(unit):<14}{cells}")
    if not rows:
        lines.append("(no figures for these weeks)")
    return "\n".join(lines)


def _unit(unit: str) -> str:
    """A unit in few characters: piece, kilogram, wafer-300mm-eq."""
    if not unit:  # a Catena-X demand may leave its unit out, by the partners' agreement
        return "(omitted)"
    return unit.removeprefix("unit:").removeprefix("scfed:").replace("-equivalent", "-eq")


_SCALES = (
    (Decimal("1e12"), "T"),
    (Decimal("1e9"), "G"),
    (Decimal("1e6"), "M"),
    (Decimal("1e3"), "k"),
)


def _compact(value: Decimal | None) -> str:
    """A number in few characters: 950, 12.5, 12.3k, 3.4M, 5.6G."""
    if value is None:
        return "."
    if value < 10_000:
        return f"{value:.1f}".removesuffix(".0")
    scale, suffix = next((scale, suffix) for scale, suffix in _SCALES if value >= scale)
    return f"{value / scale:.1f}{suffix}"
