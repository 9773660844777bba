"""The firm's imported data: files, records and their weekly facts, in the node's database.

Does I/O (SQLite). Three tables live beside the node's protocol state:

- ``data_files``: each imported file once, by content hash; its id is its import order, so a
  higher id is a newer file.
- ``data_records``: each record (a CSV row, a Catena-X payload) by (kind, natural key): the
  file it came from, a digest of its message and facts, and the serialized protobuf message.
- ``data_facts``: the weekly figures a record contributes: metric, commodity key, week
  (its Monday), quantity as exact decimal text, unit and unit class. Facts belong to their
  record, so replacing a record replaces exactly its facts.

An import is one transaction, fed a batch of records at a time, so that a file of any size is
never held in memory whole; an error raised while the records are read rolls it all back. A
record whose natural key is already held is replaced when it differs and comes from the same
or a newer file; a record held from a newer file is kept (``superseded``), so importing an
old file again never undoes a later one. A file imported before keeps its place in that
order; importing it again changes nothing, unless the mapping changed since, in which case
its records get their new facts.

Units: quantities are stored in the unit they were given. Wafer units all belong to the class
of 300 mm equivalents and are converted with ``scfed.catenax.WAFER_EQUIVALENTS`` when summed;
every other unit is a class of its own. One metric of one commodity holds one unit class: an
import that would mix two (pieces and kilograms of the same demand, say) is refused, because a
sum of them would mean nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, Inexact, localcontext
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import NamedTuple, TypeVar

from google.protobuf import descriptor_pool, message_factory
from google.protobuf import struct_pb2 as _struct  # noqa: F401  (registers Struct, for records)
from google.protobuf.message import Message

from edge.storage import fetch, open_database, transaction
from protos.scfed.v1 import records_pb2 as _records  # noqa: F401  (registers scfed's records)
from scfed.catenax import WAFER_EQUIVALENTS
from scfed.errors import ImportRowError, StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS data_files (
    file_id INTEGER PRIMARY KEY,
    content_hash BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    records INTEGER NOT NULL,
    imported_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS data_records (
    record_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    natural_key TEXT NOT NULL,
    file_id INTEGER NOT NULL REFERENCES data_files (file_id),
    digest BLOB NOT NULL,
    type TEXT NOT NULL,
    message BLOB NOT NULL,
    UNIQUE (kind, natural_key)
);
CREATE TABLE IF NOT EXISTS data_facts (
    record_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    metric TEXT NOT NULL,
    commodity TEXT NOT NULL,
    week TEXT NOT NULL,
    quantity TEXT NOT NULL,
    unit TEXT NOT NULL,
    unit_class TEXT NOT NULL,
    PRIMARY KEY (record_id, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS data_facts_by_week ON data_facts (metric, week)
"""

WAFER_CLASS = "scfed:wafer-300mm-equivalent"
#: Sums stay exact: 27-digit quantities, summed over up to 10^12 facts, fit in 50 digits.
_PRECISION = 50
_NANO = Decimal("1e-9")
_ZERO, _ONE = Decimal(0), Fraction(1)
_G = TypeVar("_G", bound=Hashable)
_NONE = (0, 0, b"")  # record ids start at 1
#: Records are prepared, looked up and written this many at a time; it bounds the memory an
#: import needs and the number of SQL variables one lookup binds.
BATCH = 500


class Fact(NamedTuple):
    """One weekly figure of a record, already mapped onto a commodity key."""

    metric: str
    commodity: str
    week: date
    quantity: Decimal
    unit: str


class ImportedRecord(NamedTuple):
    """A checked record ready to store: its message serialized (deterministically), its facts,
    and where it was in its file, for errors: its line (CSV) or JSON path (JSON)."""

    kind: str
    key: str
    type: str  # the message's full protobuf name
    payload: bytes
    facts: tuple[Fact, ...]
    origin: int | str

    @classmethod
    def of(
        cls, kind: str, key: str, message: Message, *, facts: tuple[Fact, ...], origin: int | str
    ) -> ImportedRecord:
        payload = message.SerializeToString(deterministic=True)
        return cls(kind, key, message.DESCRIPTOR.full_name, payload, facts, origin)


@dataclass(frozen=True)
class ImportSummary:
    source: str
    kinds: tuple[str, ...]
    records: int
    new: int
    replaced: int
    unchanged: int
    superseded: int
    known_file: bool

    def line(self) -> str:
        """One line for people, such as ``imported 3 demand records from f.csv (new 3, ...)``."""
        what = f"{self.records:,} {'/'.join(self.kinds)} records" if self.kinds else "no records"
        if self.known_file and self.new == self.replaced == 0:
            return f"{self.source} was imported before: nothing changed ({what})"
        counts = f"new {self.new:,}, replaced {self.replaced:,}, unchanged {self.unchanged:,}"
        if self.superseded:
            counts += f", kept {self.superseded:,} held from newer files"
        return f"imported {what} from {self.source} ({counts})"


@dataclass(frozen=True)
class Holding:
    """What the node holds of one record kind and metric (metric None: records without facts)."""

    kind: str
    metric: str | None
    records: int
    first_week: date | None
    last_week: date | None
    commodities: int


def unit_class(unit: str) -> str:
    """The class a unit sums in: 300 mm equivalents for every wafer unit, else the unit."""
    return WAFER_CLASS if unit in WAFER_EQUIVALENTS else unit


def to_decimal(value: Fraction) -> Decimal:
    """``value`` exactly when it has a finite decimal form, else rounded to 9 places."""
    with localcontext() as context:
        context.prec = _PRECISION
        result = Decimal(value.numerator) / Decimal(value.denominator)
    return result if Fraction(result) == value else result.quantize(_NANO, ROUND_HALF_EVEN)


_FactRow = tuple[int, str, str, str, str, str, str]  # n, metric, ..., unit, unit class


class _Prepared(NamedTuple):
    record: ImportedRecord
    digest: bytes
    facts: list[_FactRow]


def _prepare(record: ImportedRecord, weeks: dict[date, str], classes: dict[str, str]) -> _Prepared:
    """A record's fact rows, and a digest that changes when its message or facts change."""
    facts: list[_FactRow] = []
    for n, (metric, commodity, week, quantity, unit) in enumerate(record.facts):
        day = weeks.get(week) or weeks.setdefault(week, week.isoformat())
        cls = classes[unit] if unit in classes else classes.setdefault(unit, unit_class(unit))
        facts.append((n, metric, commodity, day, str(quantity), unit, cls))
    text = "\x1e".join("\x1f".join(fact[1:6]) for fact in facts)
    content = b"\0".join((record.type.encode(), record.payload, text.encode()))
    return _Prepared(record, hashlib.blake2b(content, digest_size=16).digest(), facts)


class _Plan(NamedTuple):
    new: list[tuple[int, _Prepared]]
    replaced: list[tuple[int, _Prepared]]


class RecordStore:
    """The imported data of one node, in its database file."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, SCHEMA)

    def close(self) -> None:
        self._db.close()

    def import_records(
        self, source: str, content_hash: bytes, records: Iterable[ImportedRecord]
    ) -> ImportSummary:
        """Store a whole file's records in one transaction: all of them or, on error, none.

        ``records`` is read once, a batch at a time, inside the transaction: an error it raises
        (a bad row found late in a file) undoes every batch written before. Their keys must be
        distinct.
        """
        with transaction(self._db) as db:
            file_id, known = _file_id(db, source, content_hash)
            batches = _Import(db, source, file_id)
            for batch in _batches(records):
                batches.add(batch)
            batches.check_stored_units()
            kinds = tuple(sorted(batches.kinds))
            if not known:
                db.execute(
                    "UPDATE data_files SET kind = ?, records = ? WHERE file_id = ?",
                    (",".join(kinds), batches.records, file_id),
                )
        return ImportSummary(
            source, kinds, batches.records, batches.new, batches.replaced, batches.unchanged,
            batches.superseded, known,
        )  # fmt: skip

    def weekly(self, metric: str, weeks: Sequence[date]) -> dict[tuple[str, date], Decimal]:
        """The exact sum of ``metric`` per (commodity key, week) over all items, for ``weeks``.

        Wafer quantities are in 300 mm equivalents; a sum whose conversion has no finite
        decimal form is rounded once, to 9 decimal places.
        """
        if not weeks:
            return {}
        wanted = {week.isoformat() for week in weeks}
        rows = fetch(
            self._db,
            "SELECT commodity, week, unit, quantity FROM data_facts "
            "WHERE metric = ? AND week BETWEEN ? AND ?",
            (metric, min(wanted), max(wanted)),
        )
        sums = _sums((str(row[0]), str(row[1]), str(row[2]), str(row[3])) for row in rows)
        return {
            (commodity, date.fromisoformat(week)): total
            for (commodity, week), total in sums.items()
            if week in wanted
        }

    def unit_classes(self, metric: str, commodity: str) -> set[str]:
        """The unit classes ``metric`` of ``commodity`` is held in (one, or none)."""
        rows = fetch(
            self._db,
            "SELECT DISTINCT unit_class FROM data_facts WHERE metric = ? AND commodity = ?",
            (metric, commodity),
        )
        return {str(row[0]) for row in rows}

    def totals(self, weeks: Sequence[date]) -> dict[tuple[str, str, date], Decimal]:
        """The sum per (metric, unit class, week) over every commodity, for ``weeks``."""
        if not weeks:
            return {}
        low, high = min(weeks).isoformat(), max(weeks).isoformat()
        rows = fetch(
            self._db,
            "SELECT metric, unit_class, week, unit, quantity FROM data_facts "
            "WHERE week BETWEEN ? AND ?",
            (low, high),
        )
        sums = _sums(
            ((str(row[0]), str(row[1])), str(row[2]), str(row[3]), str(row[4])) for row in rows
        )
        return {
            (metric, cls, date.fromisoformat(week)): total
            for ((metric, cls), week), total in sums.items()
        }

    def holdings(self) -> list[Holding]:
        """Per record kind and metric: records, first and last week, commodities."""
        rows = fetch(
            self._db,
            "SELECT r.kind, f.metric, COUNT(DISTINCT r.record_id), MIN(f.week), MAX(f.week), "
            "COUNT(DISTINCT f.commodity) FROM data_records r "
            "LEFT JOIN data_facts f ON f.record_id = r.record_id "
            "GROUP BY r.kind, f.metric ORDER BY r.kind, f.metric",
        )
        return [_holding(row) for row in rows]

    def records(self, kind: str) -> list[Message]:
        """The stored messages of one record kind, in the order they were first imported."""
        rows = fetch(
            self._db,
            "SELECT type, message FROM data_records WHERE kind = ? ORDER BY record_id",
            (kind,),
        )
        return [_message(row[0], row[1]) for row in rows]

    def files(self) -> list[tuple[str, str, int, float]]:
        """Every imported file, oldest first: (name, kind, records, time imported)."""
        rows = fetch(
            self._db, "SELECT name, kind, records, imported_at FROM data_files ORDER BY file_id"
        )
        return [(str(r[0]), str(r[1]), _int(r[2]), float(str(r[3]))) for r in rows]


# ---- Writing ----


def _batches(records: Iterable[ImportedRecord]) -> Iterator[list[ImportedRecord]]:
    iterator = iter(records)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def _file_id(db: sqlite3.Connection, source: str, content_hash: bytes) -> tuple[int, bool]:
    """The file's id: its old one if it was imported before, else a new, higher one (whose
    kinds and record count are filled in once its records are written)."""
    rows = fetch(db, "SELECT file_id FROM data_files WHERE content_hash = ?", (content_hash,))
    if rows:
        return _int(rows[0][0]), True
    cursor = db.execute(
        "INSERT INTO data_files (content_hash, name, kind, records, imported_at) "
        "VALUES (?, ?, '', 0, ?)",
        (content_hash, source, time.time()),
    )
    return _int(cursor.lastrowid), False


@dataclass
class _Import:
    """One file's records being written, a batch at a time, in the caller's transaction.

    Between batches it keeps only what is small: counts, the unit class each (metric,
    commodity) of the file is given in and where it was first written, and the metrics the
    store held facts of before this import.
    """

    db: sqlite3.Connection
    source: str
    file_id: int
    kinds: set[str] = field(default_factory=set)
    records: int = 0
    new: int = 0
    replaced: int = 0
    unchanged: int = 0
    superseded: int = 0
    next_id: int = 0
    weeks: dict[date, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    #: (metric, commodity) -> the unit class of the file's first fact of it.
    first: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (metric, commodity) -> the first fact of it written: its class, its record's origin, unit.
    written: dict[tuple[str, str], tuple[str, int | str, str]] = field(default_factory=dict)
    #: The metrics looked up so far, and those of them the store held facts of.
    metrics: dict[str, bool] = field(default_factory=dict)
    #: The kinds looked up so far, and whether the store held records of them.
    held_kinds: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        query = "SELECT COALESCE(MAX(record_id), 0) + 1 FROM data_records"
        self.next_id = _int(fetch(self.db, query)[0][0])

    def add(self, records: Sequence[ImportedRecord]) -> None:
        prepared = [_prepare(record, self.weeks, self.classes) for record in records]
        self.records += len(prepared)
        self._check_mixed_units(prepared)
        self._look_up(prepared)
        plan = self._plan(prepared)
        _write(self.db, self.file_id, plan)
        for _, item in (*plan.new, *plan.replaced):
            for _, metric, commodity, _, _, unit, cls in item.facts:
                self.written.setdefault((metric, commodity), (cls, item.record.origin, unit))

    def _check_mixed_units(self, prepared: Sequence[_Prepared]) -> None:
        """Refuse a file that gives one metric of one commodity in two unit classes."""
        for item in prepared:
            for _, metric, commodity, _, _, unit, cls in item.facts:
                held = self.first.setdefault((metric, commodity), cls)
                if held != cls:
                    where = _where(self.source, item.record.origin)
                    raise ImportRowError(_unit_error(where, unit, metric, commodity, held))

    def _look_up(self, prepared: Sequence[_Prepared]) -> None:
        """Note, before this batch is written, which of its metrics and kinds the store holds."""
        for item in prepared:
            kind = item.record.kind
            if kind not in self.held_kinds:
                self.kinds.add(kind)
                query = "SELECT 1 FROM data_records WHERE kind = ? LIMIT 1"
                self.held_kinds[kind] = bool(fetch(self.db, query, (kind,)))
            for fact in item.facts:
                if fact[1] not in self.metrics:
                    query = "SELECT 1 FROM data_facts WHERE metric = ? LIMIT 1"
                    self.metrics[fact[1]] = bool(fetch(self.db, query, (fact[1],)))

    def _plan(self, prepared: Sequence[_Prepared]) -> _Plan:
        held = _held(self.db, [p for p in prepared if self.held_kinds[p.record.kind]])
        plan = _Plan([], [])
        for item in prepared:
            record_id, held_from, digest = held.get((item.record.kind, item.record.key), _NONE)
            if not record_id:
                plan.new.append((self.next_id, item))
                self.next_id += 1
            elif digest == item.digest:
                self.unchanged += 1
            elif held_from > self.file_id:  # a newer file holds this record: keep it
                self.superseded += 1
            else:
                plan.replaced.append((record_id, item))
        self.new += len(plan.new)
        self.replaced += len(plan.replaced)
        return plan

    def check_stored_units(self) -> None:
        """Refuse (inside the transaction, so nothing stays) units that differ from stored ones.

        Only metrics the store held facts of before need a look: a metric it held none of
        cannot mix units, as the file itself does not (``_check_mixed_units``).
        """
        for metric in sorted(m for m, held in self.metrics.items() if held):
            mixed = fetch(
                self.db,
                "SELECT commodity, MIN(unit_class), MAX(unit_class) FROM data_facts "
                "WHERE metric = ? GROUP BY commodity HAVING MIN(unit_class) < MAX(unit_class) "
                "LIMIT 1",
                (metric,),
            )
            if mixed:
                commodity, low, high = (str(value) for value in mixed[0])
                cls, origin, unit = self.written[metric, commodity]
                held = high if cls == low else low
                where = _where(self.source, origin)
                raise ImportRowError(_unit_error(where, unit, metric, commodity, held))


_HELD = "SELECT natural_key, record_id, file_id, digest FROM data_records WHERE kind = ?"


def _held(
    db: sqlite3.Connection, prepared: Sequence[_Prepared]
) -> dict[tuple[str, str], tuple[int, int, bytes]]:
    """(kind, natural key) -> (record id, file id, digest) of those of ``prepared`` stored."""
    keys: dict[str, list[str]] = {}
    for item in prepared:
        keys.setdefault(item.record.kind, []).append(item.record.key)
    held: dict[tuple[str, str], tuple[int, int, bytes]] = {}
    for kind, names in keys.items():
        marks = ",".join("?" * len(names))  # placeholders only: the keys are bound
        query = f"{_HELD} AND natural_key IN ({marks})"
        held.update(
            ((kind, key), (rid, fid, digest))
            for key, rid, fid, digest in db.execute(query, (kind, *names))
        )
    return held


def _write(db: sqlite3.Connection, file_id: int, plan: _Plan) -> None:
    db.executemany(
        "DELETE FROM data_facts WHERE record_id = ?", ((rid,) for rid, _ in plan.replaced)
    )
    db.executemany(
        "UPDATE data_records SET file_id = ?, digest = ?, type = ?, message = ? "
        "WHERE record_id = ?",
        ((file_id, p.digest, p.record.type, p.record.payload, rid) for rid, p in plan.replaced),
    )
    db.executemany(
        "INSERT INTO data_records VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((rid, p.record.kind, p.record.key, file_id, p.digest, p.record.type, p.record.payload)
         for rid, p in plan.new),
    )  # fmt: skip
    db.executemany(
        "INSERT INTO data_facts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ((rid, *fact) for rid, p in (*plan.new, *plan.replaced) for fact in p.facts),
    )


# ---- One unit class per metric and commodity ----


def _where(source: str, origin: int | str) -> str:
    return f"{source}:{origin}" if isinstance(origin, int) else f"{source}: {origin}"


def _unit_error(where: str, unit: str, metric: str, commodity: str, held: str) -> str:
    return (
        f"{where}: field 'unit': {unit} cannot be summed with "
        f"{held}, in which {metric} of {commodity} is held; give every {metric} figure of a "
        "commodity in one unit (wafer sizes convert to 300 mm equivalents)"
    )


# ---- Reading ----


def _sums(rows: Iterable[tuple[_G, str, str, str]]) -> dict[tuple[_G, str], Decimal]:
    """The sum per (group, week) of rows (group, week, unit, quantity), in the unit's class.

    Each unit is summed exactly in decimal first; wafer units are then converted to 300 mm
    equivalents as fractions, so only the final value may be rounded (``to_decimal``).
    """
    by_unit: dict[tuple[_G, str, str], Decimal] = {}
    with localcontext() as context:
        context.prec = _PRECISION
        context.traps[Inexact] = True
        for group, week, unit, quantity in rows:
            place = (group, week, unit)
            by_unit[place] = by_unit.get(place, _ZERO) + Decimal(quantity)
    totals: dict[tuple[_G, str], Fraction] = {}
    for (group, week, unit), total in by_unit.items():
        value = Fraction(total) * WAFER_EQUIVALENTS.get(unit, _ONE)
        totals[group, week] = totals.get((group, week), Fraction(0)) + value
    return {place: to_decimal(total) for place, total in totals.items()}


def _message(type_name: object, payload: object) -> Message:
    if not isinstance(type_name, str) or not isinstance(payload, bytes):
        raise StorageError("the node database holds a record of the wrong type")
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    except KeyError:
        raise StorageError(f"the node database holds a record of type {type_name}") from None
    return message_factory.GetMessageClass(descriptor).FromString(payload)


def _holding(row: tuple[object, ...]) -> Holding:
    kind, metric, records, first, last, commodities = row
    return Holding(
        kind=str(kind),
        metric=None if metric is None else str(metric),
        records=_int(records),
        first_week=None if first is None else date.fromisoformat(str(first)),
        last_week=None if last is None else date.fromisoformat(str(last)),
        commodities=_int(commodities),
    )


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise StorageError("the node database holds a value of the wrong type")
    return value
