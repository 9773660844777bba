"""``scfed coordinator results``: a catalogue round's release, for people and programs.

Reads the coordinator's stored rounds and the signed policy (read-only), applies the entry's
disclosure rules to the noisy sums, and prints a table: each cell's noisy value with its 95%
interval and noise sd, its contributors as a band, or why it is suppressed; then the derived
figures (the DCM traffic light, book-to-bill). Writes the same as CSV and JSON. Edge code.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from edge.config import read_governance_key, read_policy_file
from scfed.catalogue import Cell, Derived, derived
from scfed.errors import ConfigError
from scfed.groups import groups
from scfed.picture import Round, release, round_of
from scfed.wire import RESULT
from scfed.wire.codec import decode_announce, decode_result
from scfed.wire.messages import Announce, Registry, Result
from scfed.wire.policy import CatalogueEntry


@dataclass(frozen=True)
class Release:
    """A published catalogue round: its entry, week, cells and derived figures."""

    round_id: str
    entry: CatalogueEntry
    week: date
    survivors: int
    cells: list[Cell]
    derived: list[Derived]


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    results = commands.add_parser("results", help="a catalogue round's release: table, CSV, JSON")
    results.add_argument("--config", type=Path, required=True, help="coordinator.toml")
    results.add_argument("--round", help="round id (hex); default: the latest catalogue result")
    results.add_argument("--out", type=Path, help="folder for results.csv and results.json")
    results.set_defaults(func=_results)


def _results(args: argparse.Namespace) -> int:
    from coordinator.store import read_rounds
    from edge.config import load_coordinator_config, read_registry_file

    config = load_coordinator_config(args.config)
    governance = read_governance_key(config.governance_key)
    policy, _ = read_policy_file(config.policy, config.origin, governance)
    registry, _ = read_registry_file(config.registry, config.origin, governance)
    stored = [
        Published(decode_announce(r.announce.body), decode_result(r.outcome.body))
        for r in read_rounds(config.database)
        if r.outcome and r.outcome.type == RESULT
    ]
    chosen = choose(stored, args.round, policy.entry, registry)
    if chosen is None:
        raise ConfigError("no published catalogue round matches")
    print(table(chosen))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.csv").write_text(to_csv(chosen), encoding="utf-8")
        (args.out / "results.json").write_text(to_json(chosen), encoding="utf-8")
        print(f"wrote {args.out / 'results.csv'} and {args.out / 'results.json'}")
    return 0


@dataclass(frozen=True)
class Published:
    """A round with a logged result: what its announce and result say."""

    announce: Announce
    result: Result


def choose(
    stored: Sequence[Published],
    round_hex: str | None,
    entry_named: Callable[[str], CatalogueEntry | None],
    registry: Registry,
) -> Release | None:
    """The release of the chosen catalogue round (default: the latest), as the picture shows
    it: combined with the entry's earlier rounds up to it."""
    catalogue = [p for p in stored if p.announce.week and entry_named(p.announce.query)]
    if round_hex:
        ids = [p.announce.round_id.hex() for p in catalogue]
        catalogue = catalogue[: ids.index(round_hex) + 1] if round_hex in ids else []
    if not catalogue:
        return None
    last = catalogue[-1]
    entry = entry_named(last.announce.query)
    assert entry is not None  # filtered above
    rounds = [_round(entry, p, registry) for p in catalogue if p.announce.query == entry.name]
    cells = release(entry, rounds)
    week = date.fromisoformat(last.announce.week)
    m = len(last.result.survivors)
    return Release(
        last.announce.round_id.hex(), entry, week, m, cells, derived(cells, entry.metric)
    )


def _round(entry: CatalogueEntry, published: Published, registry: Registry) -> Round:
    announce, result = published.announce, published.result
    sums = np.frombuffer(result.sums, dtype="<i8").astype(np.int64)
    largest = groups(registry, announce.candidates).largest
    return round_of(
        entry, date.fromisoformat(announce.week), sums, len(result.survivors),
        planned=announce.noise.planned_for(announce.n_min), group=largest,
    )  # fmt: skip


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
        f"{'commodity':<46} {'week':<9} {'component':<16} {'value':>10} "
        f"{'95% interval':>22} {'firms':>6}  note",
    ]
    for cell in release_.cells:
        value, interval, band, note = _row(cell)
        lines.append(
            f"{cell.commodity:<46} {cell.week.isoformat():<9} {cell.component:<16} "
            f"{value:>10} {interval:>22} {band:>6}  {note}"
        )
    lines += [
        f"{d.commodity:<46} {d.week.isoformat():<9} {d.label}: {d.value}" for d in release_.derived
    ]
    return "\n".join(lines)


def to_csv(release_: Release) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["commodity", "week", "component", "value", "low95", "high95", "sd",
                     "contributors", "suppressed"])  # fmt: skip
    for cell in release_.cells:
        e = cell.estimate
        numbers = ["", "", "", ""] if e is None else [e.value, e.low, e.high, f"{e.sd:.2f}"]
        writer.writerow([cell.commodity, cell.week, cell.component, *numbers,
                         cell.contributors, cell.suppressed])  # fmt: skip
    return out.getvalue()


def to_json(release_: Release) -> str:
    entry = release_.entry
    cells = [
        {
            "commodity": c.commodity, "week": c.week.isoformat(), "component": c.component,
            "value": None if c.estimate is None else c.estimate.value,
            "interval95": None if c.estimate is None else [c.estimate.low, c.estimate.high],
            "sd": None if c.estimate is None else c.estimate.sd,
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
