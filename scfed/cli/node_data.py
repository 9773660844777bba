"""``scfed node import`` and ``scfed node data``: the firm's own figures on its node.

Edge code: reads the files named on the command line, the node's database and the clock (for
the current week of ``data``), and writes the file ``data --output`` names. An import shows
its progress on stderr when that is a terminal, and nothing otherwise.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from edge.config import load_node_config
from scfed.errors import ConfigError

if TYPE_CHECKING:
    from tqdm import tqdm

    from node.records import RecordStore

DEFAULT_MAPPING = "mapping.csv"
DEFAULT_WEEKS = 8
MAX_WEEKS = 104
ENCODINGS = ("utf-8", "utf-8-sig", "cp932", "shift_jis")  # node.textfile.ENCODINGS
FORMATS = ("table", "csv", "json", "xlsx")
#: The columns of ``data --format csv|json|xlsx``: one row per metric, unit and week.
EXPORT_COLUMNS = ("metric", "unit", "week", "quantity")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``import`` and ``data`` under ``scfed node``."""
    load = commands.add_parser("import", help="import a CSV, XLSX or Catena-X JSON file of figures")
    load.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    load.add_argument("file", type=Path, help="the CSV, XLSX or JSON file")
    load.add_argument("--kind", help="the kind of a file without a '# kind:' line")
    load.add_argument(
        "--mapping", type=Path, help=f"item,commodity file (default: {DEFAULT_MAPPING} beside it)"
    )
    load.add_argument(
        "--encoding", choices=ENCODINGS,
        help="a CSV file's encoding (default: UTF-8 if it all reads as UTF-8, else CP932)",
    )  # fmt: skip
    load.add_argument("--sheet", metavar="NAME", help="the sheet of an XLSX file (default: first)")
    load.set_defaults(func=_import)
    data = commands.add_parser("data", help="what the node holds, and the coming weeks")
    data.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    data.add_argument("--weeks", type=_weeks, default=DEFAULT_WEEKS, help="weeks to show")
    data.add_argument(
        "--format", choices=FORMATS, default="table",
        help="table (default), or the weekly totals exactly, a row per metric, unit and week",
    )  # fmt: skip
    data.add_argument(
        "--output", type=Path, metavar="FILE",
        help="write csv, json or xlsx here, readable by you only (default for csv, json: stdout)",
    )  # fmt: skip
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
    progress = ProgressBar(args.file.name) if sys.stderr.isatty() else None
    try:
        summary = import_file(
            args.file, kind=args.kind, mapping=mapping, store=store, encoding=args.encoding,
            sheet=args.sheet, progress=progress,
        )  # fmt: skip
    finally:
        if progress is not None:
            progress.close()
        store.close()
    print(summary.line())
    return 0


class ProgressBar:
    """An import's progress on the terminal (tqdm on stderr), made at the first report,
    when the lines the file has are known; gone when it is closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar: tqdm[NoReturn] | None = None

    def __call__(self, done: int, total: int | None) -> None:
        bar = self.bar
        if bar is None:
            from tqdm import tqdm

            bar = self.bar = tqdm(
                total=total, desc=self.name, unit=" lines", unit_scale=True, file=sys.stderr,
                leave=False, dynamic_ncols=True,
            )  # fmt: skip
        bar.update(done - bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _data(args: argparse.Namespace) -> int:
    from node.records import RecordStore

    if args.format == "table" and args.output is not None:
        raise ConfigError("--output is for --format csv, json or xlsx")
    config = load_node_config(args.config)
    store = RecordStore(config.database)
    first = datetime.now(UTC).date()
    weeks = [
        first - timedelta(days=first.weekday()) + timedelta(weeks=i) for i in range(args.weeks)
    ]
    try:
        if args.format == "table":
            print(holdings_report(store))
            print()
            print(weeks_report(store.totals(weeks), weeks))
        else:
            _export(args.format, args.output, export_rows(store.totals(weeks)), weeks)
    finally:
        store.close()
    return 0


ExportRow = tuple[str, str, date, Decimal]


def export_rows(totals: dict[tuple[str, str, date], Decimal]) -> list[ExportRow]:
    """The weekly totals as rows (metric, unit, week, quantity), sorted."""
    return [(metric, unit, week, total) for (metric, unit, week), total in sorted(totals.items())]


def _export(
    form: str, output: Path | None, rows: Sequence[ExportRow], weeks: Sequence[date]
) -> None:
    if form == "xlsx":
        from node.sheets import workbook_bytes

        if output is None:
            raise ConfigError("--format xlsx writes a workbook: give --output FILE")
        data = workbook_bytes("totals", EXPORT_COLUMNS, rows, widths=(24, 30, 12, 20))
    else:
        text = to_csv(rows) if form == "csv" else to_json(rows, weeks)
        if output is None:
            print(text, end="")
            return
        data = text.encode()
    from edge.files import write_private

    try:
        write_private(output, data)
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write: {exc.strerror or exc}") from exc
    print(f"wrote {len(rows):,} row{'' if len(rows) == 1 else 's'} of weekly totals to {output}")


def to_csv(rows: Sequence[ExportRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows((m, u, week.isoformat(), f"{q:f}") for m, u, week, q in rows)
    return out.getvalue()


def to_json(rows: Sequence[ExportRow], weeks: Sequence[date]) -> str:
    """The rows, each quantity as exact decimal text."""
    totals = [
        dict(zip(EXPORT_COLUMNS, (m, u, week.isoformat(), f"{q:f}"), strict=True))
        for m, u, week, q in rows
    ]
    document = {"weeks": [week.isoformat() for week in weeks], "totals": totals}
    return json.dumps(document, indent=2) + "\n"


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
