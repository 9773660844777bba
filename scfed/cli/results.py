"""``scfed coordinator results`` and ``scfed node results``: releases, for people and programs.

A node's config reads the releases its node received, the coordinator's those it logged,
each verified before it is shown (``dashboard.source``). The chosen release (the latest, or
by entry, week or round) is printed as a table: each cell's value with its 95% interval and
its unit, its contributors as a band, or why it is suppressed; then the derived figures (the
DCM traffic light, book-to-bill). Also as CSV, JSON or XLSX. Edge code.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from edge.config import read_governance_key, read_policy_file
from scfed.catalogue import Cell
from scfed.errors import ConfigError
from scfed.release import Published, Release, choose, unit
from scfed.wire import RESULT
from scfed.wire.codec import decode_announce, decode_result

FORMATS = ("table", "csv", "json", "xlsx")


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser], role: str) -> None:
    """``scfed coordinator results`` or ``scfed node results``."""
    what = "coordinator.toml" if role == "coordinator" else "node.toml"
    results = commands.add_parser(
        "results", help="the releases this config may see: table, CSV, JSON or XLSX"
    )
    results.add_argument("--config", type=Path, required=True, help=what)
    results.add_argument("--round", help="round id (hex); default: the latest release")
    results.add_argument("--entry", help="only releases of this catalogue entry")
    results.add_argument("--week", type=date.fromisoformat, help="the release of this week")
    results.add_argument("--list", action="store_true", help="list the releases, one a line")
    results.add_argument("--format", choices=FORMATS, default="table", help="(default table)")
    results.add_argument("--output", type=Path, help="write csv, json or xlsx to this file")
    results.add_argument("--out", type=Path, help="folder for results.csv and results.json")
    results.set_defaults(func=_results)


def _results(args: argparse.Namespace) -> int:
    from dashboard.source import loader
    from edge.config import kind_of

    load, _ = loader(args.config)
    releases, _ = load()
    if not releases and kind_of(args.config) == "coordinator":
        releases = [r for r in [_recomputed(args.config, args.round)] if r is not None]
    if args.list:
        for r in releases:
            print(f"{r.log_index:>8}  {r.round_id}  {r.entry.name}  week of {r.week}")
        return 0
    chosen = pick(releases, entry=args.entry, week=args.week, round_hex=args.round)
    _write(chosen, args.format, args.output)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.csv").write_text(to_csv(chosen), encoding="utf-8")
        (args.out / "results.json").write_text(to_json(chosen), encoding="utf-8")
        print(f"wrote {args.out / 'results.csv'} and {args.out / 'results.json'}")
    return 0


def pick(
    releases: Sequence[Release], *, entry: str | None, week: date | None, round_hex: str | None
) -> Release:
    """The latest release that matches; ConfigError naming what does not."""
    matching = [
        r
        for r in releases
        if (entry is None or r.entry.name == entry)
        and (week is None or r.week == week)
        and (round_hex is None or r.round_id == round_hex.lower())
    ]
    if not matching:
        asked = ", ".join(
            f"{k} {v}" for k, v in (("entry", entry), ("week", week), ("round", round_hex)) if v
        )
        held = f"{len(releases)} release{'' if len(releases) == 1 else 's'} held"
        raise ConfigError(f"no release matches{' ' + asked if asked else ''} ({held})")
    return max(matching, key=lambda r: (r.log_index, r.week))


def _write(chosen: Release, form: str, output: Path | None) -> None:
    if form == "table":
        if output is not None:
            raise ConfigError("--output is for --format csv, json or xlsx")
        print(table(chosen))
        return
    if form == "xlsx":
        if output is None:
            raise ConfigError("--format xlsx writes a workbook: give --output FILE")
        data = to_xlsx(chosen)
    else:
        text = to_csv(chosen) if form == "csv" else to_json(chosen)
        if output is None:
            print(text, end="" if text.endswith("\n") else "\n")
            return
        data = text.encode("utf-8")
    from edge.files import write_private

    try:
        write_private(output, data)
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write: {exc.strerror or exc}") from exc
    print(f"wrote the release of {chosen.entry.name}, week of {chosen.week}, to {output}")


def _recomputed(config_path: Path, round_hex: str | None) -> Release | None:
    """A release recomputed from the stored results, for rounds logged before releases were."""
    from coordinator.store import read_rounds
    from edge.config import load_coordinator_config, read_registry_file

    config = load_coordinator_config(config_path)
    governance = read_governance_key(config.governance_key)
    policy, _ = read_policy_file(config.policy, config.origin, governance)
    registry, _ = read_registry_file(config.registry, config.origin, governance)
    stored = [
        Published(decode_announce(r.announce.body), decode_result(r.outcome.body))
        for r in read_rounds(config.database)
        if r.outcome and r.outcome.type == RESULT
    ]
    return choose(stored, round_hex, policy.entry, registry)


def _figure(value: float) -> str:
    return f"{value:,.0f}"


def _row(cell: Cell) -> tuple[str, str, str, str]:
    if cell.estimate is None:
        return ("suppressed", "", cell.contributors, cell.suppressed)
    e = cell.estimate
    interval = f"[{_figure(e.low)}, {_figure(e.high)}]"
    return (_figure(e.value), interval, cell.contributors, "")


def table(release_: Release) -> str:
    """The release as aligned text."""
    entry = release_.entry
    lines = [
        f"{entry.name} ({entry.metric}), week of {release_.week}, {release_.survivors} "
        f"contributors; recipients: {', '.join(entry.recipients)}",
        f"{'commodity':<46} {'week':<10} {'component':<16} {'value':>10} "
        f"{'95% interval':>22} {'unit':<20} {'firms':>6}  note",
    ]
    for cell in release_.cells:
        value, interval, band, note = _row(cell)
        measure = unit(entry.metric, cell.component, cell.commodity)
        lines.append(
            f"{cell.commodity:<46} {cell.week.isoformat():<10} {cell.component:<16} "
            f"{value:>10} {interval:>22} {measure:<20} {band:>6}  {note}"
        )
    lines += [
        f"{d.commodity:<46} {d.week.isoformat():<9} {d.label}: {d.value}" for d in release_.derived
    ]
    return "\n".join(lines)


def to_csv(release_: Release) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["commodity", "week", "component", "value", "low95", "high95", "sd",
                     "unit", "contributors", "suppressed"])  # fmt: skip
    metric = release_.entry.metric
    for cell in release_.cells:
        e = cell.estimate
        numbers = ["", "", "", ""] if e is None else [e.value, e.low, e.high, f"{e.sd:.2f}"]
        writer.writerow([cell.commodity, cell.week, cell.component, *numbers,
                         unit(metric, cell.component, cell.commodity), cell.contributors,
                         cell.suppressed])  # fmt: skip
    return out.getvalue()


def to_json(release_: Release) -> str:
    entry = release_.entry
    cells = [
        {
            "commodity": c.commodity, "week": c.week.isoformat(), "component": c.component,
            "value": None if c.estimate is None else c.estimate.value,
            "interval95": None if c.estimate is None else [c.estimate.low, c.estimate.high],
            "sd": None if c.estimate is None else c.estimate.sd,
            "unit": unit(entry.metric, c.component, c.commodity),
            "contributors": c.contributors, "suppressed": c.suppressed or None,
        }
        for c in release_.cells
    ]  # fmt: skip
    extra = [{"commodity": d.commodity, "week": d.week.isoformat(), d.label: d.value}
             for d in release_.derived]  # fmt: skip
    document = {
        "round": release_.round_id, "entry": entry.name, "metric": entry.metric,
        "week": release_.week.isoformat(), "survivors": release_.survivors,
        "recipients": list(entry.recipients), "cells": cells, "derived": extra,
    }  # fmt: skip
    return json.dumps(document, indent=2, sort_keys=True)


def to_xlsx(release_: Release) -> bytes:
    """The release as an XLSX workbook: the CSV's columns, one sheet."""
    from node.sheets import workbook_bytes

    rows = list(csv.reader(io.StringIO(to_csv(release_))))
    header, body = rows[0], rows[1:]
    typed = [[_typed(value) for value in row] for row in body]
    return workbook_bytes("release", header, typed, widths=(46, 12, 16, 14, 14, 14, 10, 20, 12, 40))


def _typed(value: str) -> object:
    try:
        return float(value) if value and value[0] in "-0123456789" and "/" not in value else value
    except ValueError:
        return value
