"""Importing a firm's files into its node: CSV, XLSX sheets and Catena-X JSON payloads.

Does I/O (reads one file, writes the node's database). A CSV file or a sheet is read a row at
a time and never held whole: each row is checked and its record handed to the store, which
writes the records in batches inside one transaction (``RecordStore.import_records``). Every
bad row is noted (file, line or sheet row, field, reason; the first ``MAX_REPORTED`` in full,
then how many more) and, once the whole file has been read, all of them are raised as one
ImportRowError, which rolls the transaction back: nothing of a file with a bad row is stored.
Importing the same file again changes nothing.

A CSV file is UTF-8, with or without a BOM, or Shift_JIS (CP932) as Excel saves it in Japan:
detected (``node.textfile``), or named with ``encoding``. An XLSX workbook (``node.sheets``)
holds the same columns as the CSV kind in its first sheet, or the one ``sheet`` names.

The CSV kinds, their columns and what their rows give are in ``node.rows``.

JSON files hold one Catena-X payload or an array of them (WeekBasedMaterialDemand,
WeekBasedCapacityGroup, ItemStock, ...), and are read whole. Each payload is one record, its
kind detected from its properties unless ``--kind`` names it, keyed by its id (material
demand, capacity group or notification id) or else by its material's global asset id and
direction.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from google.protobuf.message import Message

from node.records import ImportedRecord, ImportSummary, RecordStore
from node.rows import Progress, Rows, mapped_facts
from node.tables import CsvTable, Problems, UnitClasses
from node.textfile import decode, first_character, open_text
from scfed import catenax
from scfed.errors import ConfigError, ImportRowError
from scfed.taxonomy import Commodity

#: How a file starts: an XLSX workbook is a ZIP archive; an old .xls one a compound file.
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def import_file(
    path: Path,
    *,
    kind: str | None,
    mapping: Mapping[str, Commodity],
    store: RecordStore,
    encoding: str | None = None,
    sheet: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Check the file at ``path`` while its records are stored, in one transaction that any
    bad row rolls back; ``encoding`` is for a CSV file, ``sheet`` for a workbook."""
    keys = {item: commodity.key for item, commodity in mapping.items()}
    start = _start(path)
    if start == XLS_MAGIC:
        raise ImportRowError(f"{path}: an Excel 97-2003 workbook (.xls); save it as .xlsx or CSV")
    if start.startswith(XLSX_MAGIC):
        if encoding is not None:
            raise ConfigError(f"{path}: --encoding is for CSV files, not XLSX workbooks")
        from node.sheets import open_sheet  # openpyxl is imported only for a workbook

        digest = _file_digest(path)
        with open_sheet(path, sheet) as table:
            rows = Rows.open(table, kind, keys)
            return store.import_records(str(path), digest, rows.records(progress, table.lines))
    if sheet is not None:
        raise ConfigError(f"{path}: --sheet is for XLSX workbooks, and this is a text file")
    with open_text(path, encoding) as (scan, text):
        if first_character(text) in ("{", "["):
            records = _read_json(path, text.read(), kind, keys)
            return store.import_records(str(path), scan.digest, records)
        rows = Rows.open(CsvTable(path, text), kind, keys)
        return store.import_records(str(path), scan.digest, rows.records(progress, scan.lines))


def read_records(
    path: Path, data: bytes, *, kind: str | None, mapping: Mapping[str, Commodity]
) -> list[ImportedRecord]:
    """The checked records of a file's text ``data``, all in memory (for tests and tools):
    JSON if it starts with ``{`` or ``[``, else CSV."""
    text = decode(path, data)
    keys = {item: commodity.key for item, commodity in mapping.items()}
    if text.lstrip()[:1] in ("{", "["):
        return _read_json(path, text, kind, keys)
    return list(Rows.open(CsvTable(path, io.StringIO(text, newline="")), kind, keys).records())


def _start(path: Path) -> bytes:
    """The first bytes of the file, which tell a workbook from text."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(XLS_MAGIC))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _file_digest(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").digest()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


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
    units, problems = UnitClasses(), Problems(path, "payloads")
    for where, payload in payloads:
        try:
            record = _payload(path, where, payload, kind, keys)
        except ImportRowError as exc:
            problems.add(str(exc))
            continue
        first = seen.setdefault((record.kind, record.key), where)
        if first != where:
            problems.add(f"{path}: {where}: the same {record.kind} as {first}")
        elif problem := units.problem(record.facts, where):
            problems.add(f"{path}: {where}: field 'unit': {problem}")
        records.append(record)
    problems.check()
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
    facts = mapped_facts(catenax.facts(message), keys, f"{path}: {where}")
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
