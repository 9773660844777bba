"""The CSV kinds, and the rows of a CSV file or a sheet checked one by one into records.

Does no I/O of its own but for the temporary index of row keys (``node.tables.Keys``): it is
handed a table (``node.tables``) and gives the table's records to the store as it reads them.

CSV files, in the spirit of the PURIS Excel import: the first lines may be comments starting
with ``#``, one of them ``# kind: KIND`` (else ``--kind`` names the kind); then a header that
must be exactly the kind's columns; then one row per item and week (and category or direction,
where the kind has one). ``item`` is the firm's own material number, global asset id or
capacity group id, and must be in the mapping. ``week`` is the Monday of an ISO week,
``YYYY-MM-DD`` or ``YYYY-Www``. Quantities are plain non-negative decimals with at most 18
digits before and 9 after the point (``1000``, ``12.5``). ``unit`` is a Catena-X unit
(``unit:piece``, ``unit:kilogram``, ...) or a wafer unit (``scfed:wafer-300mm-equivalent``,
``scfed:wafer-200mm``, ``scfed:wafer-150mm``). The kinds, their columns and the metrics
their rows give:

- ``demand``: item,week,quantity,unit,category -> demand. ``category`` is a Catena-X demand
  category code: 0001 (default), A1S1, SR99, PI01, OS01, OI01, ED01 or PO01.
- ``capacity``: item,week,actual,maximum,unit -> capacity_actual, capacity_max.
- ``stock``: item,week,quantity,unit,direction -> stock_inbound or stock_outbound, as
  ``direction`` is INBOUND or OUTBOUND.
- ``production``: item,week,quantity,unit -> production_planned.
- ``delivery``: item,week,quantity,unit -> delivery.
- ``days_of_supply``: item,week,days -> days_of_supply.
- ``order_book``: item,week,bookings,billings,backlog,unit -> bookings, billings, backlog.
- ``quoted_lead_time``: item,week,lead_time_weeks -> lead_time_weeks.
- ``fab_utilisation``: item,week,wafer_starts_capacity,wafer_starts_actual,unit ->
  wafer_starts_capacity, wafer_starts_actual.
- ``work_in_progress``: item,week,quantity,unit -> stock_wip.
- ``finished_goods``: item,week,quantity,unit -> stock_finished.

A row of the first six (Catena-X) kinds is stored as a ``google.protobuf.Struct`` of its
columns, with the facts the matching Catena-X payload gives; a row of the five semiconductor
extensions as its scfed extension message (``scfed.catenax.parse_extension``). Each row is one
record, keyed by item, week and its category or direction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from node.records import Fact, ImportedRecord
from node.tables import Keys, Problems, Table, UnitClasses, read_preamble
from scfed import catenax
from scfed.catenax import UNITS, WAFER_EQUIVALENTS, RawFact
from scfed.errors import ImportRowError
from scfed.taxonomy import parse_week

DAY_UNIT = "unit:day"
WEEK_UNIT = "unit:week"
MAX_INTEGER_DIGITS, MAX_FRACTION_DIGITS = 18, 9
_QUANTITY = re.compile(r"\d{1,18}(?:\.\d{1,9})?")
_CATEGORIES = ("0001", "A1S1", "SR99", "PI01", "OS01", "OI01", "ED01", "PO01")
_WAFER_UNITS = frozenset(WAFER_EQUIVALENTS)
#: A CSV file or sheet reports its progress every this many lines.
PROGRESS_EVERY = 10_000
#: Told the lines read so far and, when known, how many the file has.
Progress = Callable[[int, int | None], None]


class CsvKind(NamedTuple):
    """The column set of one CSV kind and the metric each quantity column gives."""

    columns: tuple[str, ...]
    quantities: tuple[str, ...]
    #: The value of the ``choice`` column ("" when there is none) -> one metric per quantity.
    metrics: Mapping[str, tuple[str, ...]]
    choice: str | None = None
    units: frozenset[str] = UNITS  # what the unit column may hold
    unit: str | None = None  # the unit of every quantity, when there is no unit column
    extension: bool = False  # stored as a scfed extension message, made by scfed.catenax


def _kind(
    columns: str,
    metrics: str = "",
    *,
    choices: Mapping[str, str] | None = None,
    units: frozenset[str] = UNITS,
    unit: str | None = None,
    extension: bool = False,
) -> CsvKind:
    """A kind from its columns after item and week; with ``choices`` the last column picks
    the metrics (value -> metrics), else ``metrics`` names one metric per quantity column."""
    names = ("item", "week", *columns.split(","))
    choice = names[-1] if choices else None
    quantities = tuple(name for name in names[2:] if name not in ("unit", choice))
    by_choice = {value: tuple(m.split(",")) for value, m in (choices or {"": metrics}).items()}
    return CsvKind(names, quantities, by_choice, choice, units, unit, extension)


_DIRECTIONS = {"INBOUND": "stock_inbound", "OUTBOUND": "stock_outbound"}
SPECS: dict[str, CsvKind] = {
    "demand": _kind("quantity,unit,category", choices=dict.fromkeys(_CATEGORIES, "demand")),
    "capacity": _kind("actual,maximum,unit", "capacity_actual,capacity_max"),
    "stock": _kind("quantity,unit,direction", choices=_DIRECTIONS),
    "production": _kind("quantity,unit", "production_planned"),
    "delivery": _kind("quantity,unit", "delivery"),
    "days_of_supply": _kind("days", "days_of_supply", unit=DAY_UNIT),
    "order_book": _kind(
        "bookings,billings,backlog,unit", "bookings,billings,backlog", extension=True
    ),
    "quoted_lead_time": _kind("lead_time_weeks", "lead_time_weeks", unit=WEEK_UNIT, extension=True),
    "fab_utilisation": _kind(
        "wafer_starts_capacity,wafer_starts_actual,unit",
        "wafer_starts_capacity,wafer_starts_actual",
        units=_WAFER_UNITS,
        extension=True,
    ),
    "work_in_progress": _kind("quantity,unit", "stock_wip", extension=True),
    "finished_goods": _kind("quantity,unit", "stock_finished", extension=True),
}


class Rows:
    """The records of one CSV file or sheet, checked row by row as they are read."""

    def __init__(
        self, table: Table, rows: Iterator[list[str]], kind: str, spec: CsvKind,
        keys: Mapping[str, str],
    ) -> None:  # fmt: skip
        self.table, self.rows, self.kind, self.spec, self.keys = table, rows, kind, spec, keys
        index = {column: i for i, column in enumerate(spec.columns)}
        self.quantity_at = tuple(index[column] for column in spec.quantities)
        self.unit_at = index.get("unit")
        self.choice_at = index[spec.choice] if spec.choice else None
        #: A file has few distinct weeks: each is parsed once, to its Monday and its ISO text.
        self.weeks: dict[str, tuple[date, str]] = {}
        self.units = UnitClasses(f"{table.noun} ")
        self.problems = Problems(table.path)
        self.seen = Keys()  # closed once the records have been read

    @classmethod
    def open(cls, table: Table, kind: str | None, keys: Mapping[str, str]) -> Rows:
        """The rows after the table's preamble and header, which are checked now."""
        rows = iter(table)
        kind, header = read_preamble(table, rows, kind, SPECS)
        spec = SPECS.get(kind)
        if spec is None:
            raise ImportRowError(
                f"{table.where(1)}: kind: {kind!r:.40} is not a CSV kind; use one of: "
                + ", ".join(SPECS)
            )
        if tuple(header) != spec.columns:
            raise ImportRowError(
                f"{table.where(table.line_num)}: header: must be exactly "
                f"{','.join(spec.columns)!r} for kind {kind}, not {','.join(header)[:120]!r}"
            )
        return cls(table, rows, kind, spec, keys)

    def records(
        self, progress: Progress | None = None, lines: int | None = None
    ) -> Iterator[ImportedRecord]:
        """Each good row's record while every row so far is good; at the end, the error
        naming every bad row, if there is one."""
        try:
            yield from self._records(progress, lines)
        finally:
            self.seen.close()
        if progress is not None:
            progress(self.table.line_num, lines)
        self.problems.check()

    def _records(self, progress: Progress | None, lines: int | None) -> Iterator[ImportedRecord]:
        report = PROGRESS_EVERY
        while True:
            try:
                row = next(self.rows, None)
            except ImportRowError as exc:  # the file cannot be read on (a quote never closed)
                self.problems.add(str(exc))
                return
            if row is None:
                return
            line = self.table.line_num
            if row:  # else a blank line
                record = self._record(line, row)
                if record is not None and not self.problems.count:
                    yield record
            if progress is not None and line >= report:
                progress(line, lines)
                report = line + PROGRESS_EVERY

    def _record(self, line: int, row: list[str]) -> ImportedRecord | None:
        """One row's record, or None when the row is bad (and noted so)."""
        try:
            return self.add(line, row)
        except ImportRowError as exc:
            self.problems.add(str(exc))
            return None

    def error(self, line: int, at: int, reason: str) -> ImportRowError:
        where = self.table.where(line)
        return ImportRowError(f"{where}: {self.table.field(at, self.spec.columns[at])}: {reason}")

    def add(self, line: int, row: list[str]) -> ImportedRecord:
        """Check one row and make its record; this is the hot loop of a large import."""
        columns = self.spec.columns
        if len(row) != len(columns):
            row = self.table.fit(line, row, columns)
        commodity = self.keys.get(row[0])
        if commodity is None:
            raise self.error(line, 0, f"{row[0]!r:.80} is not in the mapping")
        week, monday = self.weeks.get(row[1]) or self._week(line, row[1])
        unit = self._unit(line, row)
        metrics = self._metrics(line, row)
        quantities = [self._quantity(line, row, at) for at in self.quantity_at]
        key = f"{row[0]}\x1f{monday}\x1f{row[self.choice_at] if self.choice_at else ''}"
        first = self.seen.first(key, line)
        if first != line:
            where = f"{self.table.noun} {first}"
            raise self.error(line, 1, f"{row[0]!r:.80} has a second row for {monday} ({where})")
        if self.spec.extension:
            message, facts = self._extension(line, row, monday)
        else:
            message = _struct(columns, row, monday)
            facts = tuple(
                Fact(metric, commodity, week, quantity, unit)
                for metric, quantity in zip(metrics, quantities, strict=True)
            )
        problem = self.units.problem(facts, line)
        if problem is not None:
            raise self.error(line, self.unit_at or 0, problem)
        origin = self.table.origin(line)
        return ImportedRecord.of(self.kind, key, message, facts=facts, origin=origin)

    def _week(self, line: int, text: str) -> tuple[date, str]:
        try:
            week = parse_week(text)
        except ValueError as exc:
            raise self.error(line, 1, str(exc)) from None
        self.weeks[text] = week, week.isoformat()
        return self.weeks[text]

    def _unit(self, line: int, row: list[str]) -> str:
        if self.unit_at is None:
            return str(self.spec.unit)
        unit = row[self.unit_at]
        if unit not in self.spec.units:
            what = (
                "scfed wafer unit" if self.spec.units is _WAFER_UNITS else "Catena-X or wafer unit"
            )
            raise self.error(line, self.unit_at, f"{unit!r:.60} is not a {what}")
        return unit

    def _metrics(self, line: int, row: list[str]) -> tuple[str, ...]:
        choice = "" if self.choice_at is None else row[self.choice_at]
        metrics = self.spec.metrics.get(choice)
        if metrics is None:
            allowed = ", ".join(self.spec.metrics)
            raise self.error(line, self.choice_at or 0, f"{choice!r:.40} is not one of {allowed}")
        return metrics

    def _quantity(self, line: int, row: list[str], at: int) -> Decimal:
        text = row[at]
        if _QUANTITY.fullmatch(text):
            return Decimal(text)
        raise self.error(line, at, quantity_problem(text))

    def _extension(
        self, line: int, row: list[str], monday: str
    ) -> tuple[Message, tuple[Fact, ...]]:
        fields = dict(zip(self.spec.columns, row, strict=True))
        fields["week"] = monday  # the extension message keeps the Monday, however it was written
        source = str(self.table.path)
        message = catenax.parse_extension(self.kind, fields, source=source, line=line)
        return message, mapped_facts(catenax.facts(message), self.keys, self.table.where(line))


def _struct(columns: Sequence[str], row: Sequence[str], monday: str) -> Struct:
    """A CSV row as a Struct of its columns, its week written as its Monday."""
    message = Struct()
    fields = message.fields  # setting values one by one is twice as fast as Struct.update
    for column, value in zip(columns, row, strict=True):
        fields[column].string_value = value
    fields["week"].string_value = monday
    return message


def quantity_problem(text: str) -> str:
    """Why ``text`` is not an acceptable quantity."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return f"{text!r:.40} is not a number"
    if not value.is_finite():
        return f"{text!r:.40} is not a finite number"
    if value < 0:
        return f"{text!r:.40} is negative; quantities are never negative"
    if "e" in text.lower() or text != text.strip() or text.startswith(("+", ".")):
        return f"{text!r:.40}: write a plain decimal such as 1000 or 12.5"
    return (
        f"{text!r:.40} has more than {MAX_INTEGER_DIGITS} digits before or "
        f"{MAX_FRACTION_DIGITS} after the point"
    )


def mapped_facts(raw: Sequence[RawFact], keys: Mapping[str, str], where: str) -> tuple[Fact, ...]:
    """Catena-X facts mapped onto commodities; every item must be in the mapping."""
    facts = []
    for fact in raw:
        commodity = keys.get(fact.item)
        if commodity is None:
            raise ImportRowError(f"{where}: field 'item': {fact.item!r:.80} is not in the mapping")
        if not _QUANTITY.fullmatch(f"{fact.quantity:f}"):
            problem = quantity_problem(f"{fact.quantity:f}")
            raise ImportRowError(f"{where}: field {fact.metric!r}: {problem}")
        facts.append(Fact(fact.metric, commodity, fact.week, fact.quantity, fact.unit))
    return tuple(facts)
