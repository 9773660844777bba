"""Importing a firm's files into its node: flat CSV and Catena-X JSON payloads.

Does I/O (reads one file, writes the node's database). A file is read whole and checked whole
before anything is written; the first bad value raises ImportRowError naming the file, the
line (CSV) or JSON path (JSON), the field and the reason, and nothing of the file is stored.
A good file is stored in one transaction (``RecordStore.import_records``); importing the same
file again changes nothing.

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

JSON files hold one Catena-X payload or an array of them (WeekBasedMaterialDemand,
WeekBasedCapacityGroup, ItemStock, ...). Each payload is one record, its kind detected from its
properties unless ``--kind`` names it, keyed by its id (material demand, capacity group or
notification id) or else by its material's global asset id and direction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple, Protocol

from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from node.records import Fact, ImportedRecord, ImportSummary, RecordStore
from scfed import catenax
from scfed.catenax import UNITS, WAFER_EQUIVALENTS, RawFact
from scfed.errors import ConfigError, ImportRowError
from scfed.taxonomy import Commodity, parse_week

DAY_UNIT = "unit:day"
WEEK_UNIT = "unit:week"
MAX_INTEGER_DIGITS, MAX_FRACTION_DIGITS = 18, 9
_QUANTITY = re.compile(r"\d{1,18}(?:\.\d{1,9})?")
_CATEGORIES = ("0001", "A1S1", "SR99", "PI01", "OS01", "OI01", "ED01", "PO01")
_WAFER_UNITS = frozenset(WAFER_EQUIVALENTS)


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


def import_file(
    path: Path, *, kind: str | None, mapping: Mapping[str, Commodity], store: RecordStore
) -> ImportSummary:
    """Check the whole file at ``path``, then store all its records in one transaction."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    records = read_records(path, data, kind=kind, mapping=mapping)
    return store.import_records(str(path), hashlib.sha256(data).digest(), records)


def read_records(
    path: Path, data: bytes, *, kind: str | None, mapping: Mapping[str, Commodity]
) -> list[ImportedRecord]:
    """The checked records of a file: JSON if it starts with ``{`` or ``[``, else CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRowError(f"{path}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    keys = {item: commodity.key for item, commodity in mapping.items()}
    if text.lstrip()[:1] in ("{", "["):
        return _read_json(path, text, kind, keys)
    return _read_csv(path, text, kind, keys)


# ---- CSV ----


def _read_csv(
    path: Path, text: str, kind: str | None, keys: Mapping[str, str]
) -> list[ImportedRecord]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        kind, header = _preamble(path, reader, kind)
        spec = SPECS.get(kind)
        if spec is None:
            raise ImportRowError(
                f"{path}:1: kind: {kind!r:.40} is not a CSV kind; use one of: " + ", ".join(SPECS)
            )
        if tuple(header) != spec.columns:
            raise ImportRowError(
                f"{path}:{reader.line_num}: header: must be exactly {','.join(spec.columns)!r} "
                f"for kind {kind}, not {','.join(header)[:120]!r}"
            )
        rows = _CsvRows(path, kind, spec, keys)
        for row in reader:
            if row:  # else a blank line
                rows.add(reader.line_num, row)
    except csv.Error as exc:
        raise ImportRowError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None
    return rows.records


class _Reader(Protocol):
    """A CSV reader: rows, and the line the last one ended on."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...


def _preamble(path: Path, reader: _Reader, given: str | None) -> tuple[str, list[str]]:
    """The file's kind and header, after its leading ``#`` comment lines."""
    kind = given
    for row in reader:
        text = ",".join(row).strip()
        if text.startswith("#"):
            label, colon, value = text.lstrip("#").partition(":")
            if colon and label.strip() == "kind":
                if kind is not None and kind != value.strip():
                    said = "--kind says" if given else "an earlier line says"
                    raise ImportRowError(
                        f"{path}:{reader.line_num}: kind: the file says {value.strip()!r:.40} "
                        f"but {said} {kind!r:.40}"
                    )
                kind = value.strip()
        elif text:
            if kind is None:
                raise ImportRowError(
                    f"{path}:1: kind: not given; use --kind or start the file with a line "
                    "'# kind: KIND' (KIND one of " + ", ".join(SPECS) + ")"
                )
            return kind, row
    raise ImportRowError(f"{path}:1: header: missing, the file is empty")


class _CsvRows:
    """The records of one CSV file, checked row by row; the first bad value raises."""

    def __init__(self, path: Path, kind: str, spec: CsvKind, keys: Mapping[str, str]) -> None:
        self.path, self.kind, self.spec, self.keys = path, kind, spec, keys
        index = {column: i for i, column in enumerate(spec.columns)}
        self.quantity_at = tuple(index[column] for column in spec.quantities)
        self.unit_at = index.get("unit")
        self.choice_at = index[spec.choice] if spec.choice else None
        #: A file has few distinct weeks: each is parsed once, to its Monday and its ISO text.
        self.weeks: dict[str, tuple[date, str]] = {}
        self.seen: dict[str, int] = {}
        self.records: list[ImportedRecord] = []

    def error(self, line: int, field: str, reason: str) -> ImportRowError:
        return ImportRowError(f"{self.path}:{line}: field {field!r}: {reason}")

    def add(self, line: int, row: list[str]) -> None:
        """Check one row and keep its record; this is the hot loop of a large import."""
        columns = self.spec.columns
        if len(row) != len(columns):
            raise ImportRowError(
                f"{self.path}:{line}: row: has {len(row)} fields, not {len(columns)} "
                f"({','.join(columns)})"
            )
        commodity = self.keys.get(row[0])
        if commodity is None:
            raise self.error(line, "item", f"{row[0]!r:.80} is not in the mapping")
        week, monday = self.weeks.get(row[1]) or self._week(line, row[1])
        unit = self._unit(line, row)
        metrics = self._metrics(line, row)
        quantities = [self._quantity(line, row, at) for at in self.quantity_at]
        key = f"{row[0]}\x1f{monday}\x1f{row[self.choice_at] if self.choice_at else ''}"
        first = self.seen.setdefault(key, line)
        if first != line:
            raise self.error(line, "week", f"{row[0]!r:.80} has a second row for {monday} "
                             f"(line {first})")  # fmt: skip
        if self.spec.extension:
            message, facts = self._extension(line, row, monday)
        else:
            message = _struct(columns, row, monday)
            facts = tuple(
                Fact(metric, commodity, week, quantity, unit)
                for metric, quantity in zip(metrics, quantities, strict=True)
            )
        self.records.append(ImportedRecord.of(self.kind, key, message, facts=facts, origin=line))

    def _week(self, line: int, text: str) -> tuple[date, str]:
        try:
            week = parse_week(text)
        except ValueError as exc:
            raise self.error(line, "week", str(exc)) from None
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
            raise self.error(line, "unit", f"{unit!r:.60} is not a {what}")
        return unit

    def _metrics(self, line: int, row: list[str]) -> tuple[str, ...]:
        choice = "" if self.choice_at is None else row[self.choice_at]
        metrics = self.spec.metrics.get(choice)
        if metrics is None:
            allowed = ", ".join(self.spec.metrics)
            raise self.error(line, str(self.spec.choice), f"{choice!r:.40} is not one of {allowed}")
        return metrics

    def _quantity(self, line: int, row: list[str], at: int) -> Decimal:
        text = row[at]
        if _QUANTITY.fullmatch(text):
            return Decimal(text)
        raise self.error(line, self.spec.columns[at], _quantity_problem(text))

    def _extension(
        self, line: int, row: list[str], monday: str
    ) -> tuple[Message, tuple[Fact, ...]]:
        fields = dict(zip(self.spec.columns, row, strict=True))
        fields["week"] = monday  # the extension message keeps the Monday, however it was written
        source = str(self.path)
        message = catenax.parse_extension(self.kind, fields, source=source, line=line)
        return message, _facts(catenax.facts(message), self.keys, f"{source}:{line}")


def _struct(columns: Sequence[str], row: Sequence[str], monday: str) -> Struct:
    """A CSV row as a Struct of its columns, its week written as its Monday."""
    message = Struct()
    fields = message.fields  # setting values one by one is twice as fast as Struct.update
    for column, value in zip(columns, row, strict=True):
        fields[column].string_value = value
    fields["week"].string_value = monday
    return message


def _quantity_problem(text: str) -> str:
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


def _facts(raw: Sequence[RawFact], keys: Mapping[str, str], where: str) -> tuple[Fact, ...]:
    """Catena-X facts mapped onto commodities; every item must be in the mapping."""
    facts = []
    for fact in raw:
        commodity = keys.get(fact.item)
        if commodity is None:
            raise ImportRowError(f"{where}: field 'item': {fact.item!r:.80} is not in the mapping")
        if not _QUANTITY.fullmatch(f"{fact.quantity:f}"):
            problem = _quantity_problem(f"{fact.quantity:f}")
            raise ImportRowError(f"{where}: field {fact.metric!r}: {problem}")
        facts.append(Fact(fact.metric, commodity, fact.week, fact.quantity, fact.unit))
    return tuple(facts)


# ---- JSON ----


def _read_json(
    path: Path, text: str, kind: str | None, keys: Mapping[str, str]
) -> list[ImportedRecord]:
    try:
        document = json.loads(text, parse_float=Decimal)  # exact: 3.51 stays 3.51
    except json.JSONDecodeError as exc:
        raise ImportRowError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise ImportRowError(f"{path}: not valid JSON: nested too deeply to read") from None
    if isinstance(document, list):
        payloads = [(f"$[{i}]", payload) for i, payload in enumerate(document)]
    else:
        payloads = [("$", document)]
    records: list[ImportedRecord] = []
    seen: dict[tuple[str, str], str] = {}
    for where, payload in payloads:
        record = _payload(path, where, payload, kind, keys)
        first = seen.setdefault((record.kind, record.key), where)
        if first != where:
            raise ImportRowError(f"{path}: {where}: the same {record.kind} as {first}")
        records.append(record)
    return records


def _payload(
    path: Path, where: str, payload: object, kind: str | None, keys: Mapping[str, str]
) -> ImportedRecord:
    """One payload's record; errors name the file and the JSON path within the file."""
    try:
        name = kind or catenax.detect_kind(payload)
        message = catenax.parse_payload(name, payload, source=str(path))
    except ImportRowError as exc:
        # scfed.catenax counts JSON paths from the payload; count them from the file.
        text = str(exc).removeprefix(f"{path}: ")
        inner = text[1:] if text.startswith("$") else f": {text}"
        raise ImportRowError(f"{path}: {where}{inner}") from None
    facts = _facts(catenax.facts(message), keys, f"{path}: {where}")
    return ImportedRecord.of(name, _natural_key(message), message, facts=facts, origin=where)


#: The fields that identify a payload of each Catena-X aspect, by message name.
_JSON_KEYS = {
    "WeekBasedMaterialDemand": ("material_demand_id",),
    "WeekBasedCapacityGroup": ("capacity_group_id",),
    "DemandAndCapacityNotification": ("notification_id",),
    "ItemStock": ("material_global_asset_id", "direction"),
    "DaysOfSupply": ("material_global_asset_id", "direction"),
}


def _natural_key(message: Message) -> str:
    """A payload's identity: the same key in a later file replaces this payload."""
    fields = _JSON_KEYS.get(message.DESCRIPTOR.name, ("material_global_asset_id",))
    values = [str(getattr(message, field)) for field in fields]
    # "urn:uuid:" is optional in Catena-X ids, and a UUID's case carries no meaning.
    return "\x1f".join(value.lower().removeprefix("urn:uuid:") for value in values)
