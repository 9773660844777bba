"""Importing a firm's files: every CSV kind, Catena-X JSON, the store's sums, bad rows."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from node import records as records_module
from node import rows as rows_module
from node.imports import import_file, read_records
from node.mapping import read_mapping
from node.records import BATCH, Holding, RecordStore
from node.rows import SPECS
from node.tables import MAX_REPORTED
from protos.scfed.v1 import records_pb2
from scfed import catenax
from scfed.cli.node_data import add_commands
from scfed.errors import ConfigError, ImportRowError
from scfed.taxonomy import Commodity, parse_commodity
from tests.unit._support import NODE_TOML

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "catenax"
ANALOG = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
LOGIC = "fabrication/logic/<=5nm/300mm/TW-Hsinchu"
ASSET = "urn:uuid:48878d48-6f1d-47f5-8ded-a441d0d879df"  # the Catena-X examples' material
WEEK = date(2026, 11, 30)
NEXT = date(2026, 12, 7)
MAPPING = {
    "MAT-1": ANALOG,
    "MAT-2": ANALOG,
    "MAT-3": LOGIC,
    ASSET: ANALOG,
    "MNR-8101-ID146955.001": ANALOG,  # materialNumberSupplier of WeekBasedMaterialDemand
    "0157ba42-d2a8-4e28-8565-7b07830c1110": LOGIC,  # capacityGroupId of WeekBasedCapacityGroup
}

DEMAND = """\
# kind: demand
item,week,quantity,unit,category
MAT-1,2026-11-30,1000,unit:piece,0001
MAT-2,2026-11-30,250.5,unit:piece,0001
MAT-3,2026-W50,7,unit:piece,0001
"""

Snapshot = tuple[list[Holding], dict[str, list[bytes]], list[tuple[str, str, int, float]], object]


@pytest.fixture
def mapping() -> dict[str, Commodity]:
    return {item: parse_commodity(key) for item, key in MAPPING.items()}


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "node.sqlite")


def _file(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _snapshot(store: RecordStore) -> Snapshot:
    """Everything the store shows: holdings, records, files and the weekly sums."""
    kinds = {h.kind for h in store.holdings()}
    records = {
        k: [m.SerializeToString(deterministic=True) for m in store.records(k)] for k in kinds
    }
    sums = {m: store.weekly(m, [WEEK, NEXT]) for m in ("demand", "capacity_actual", "stock_wip")}
    return store.holdings(), records, store.files(), sums


# ---- Every CSV kind ----

KIND_ROWS = [
    ("demand", "MAT-1,2026-11-30,12.5,unit:piece,A1S1", {"demand": "12.5"}),
    ("capacity", "MAT-1,2026-11-30,800,1000,unit:piece",
     {"capacity_actual": "800", "capacity_max": "1000"}),
    ("stock", "MAT-1,2026-11-30,40,unit:kilogram,INBOUND", {"stock_inbound": "40"}),
    ("stock", "MAT-1,2026-11-30,41,unit:kilogram,OUTBOUND", {"stock_outbound": "41"}),
    ("production", "MAT-1,2026-11-30,300,unit:piece", {"production_planned": "300"}),
    ("delivery", "MAT-1,2026-11-30,20,unit:piece", {"delivery": "20"}),
    ("days_of_supply", "MAT-1,2026-11-30,3.51", {"days_of_supply": "3.51"}),
    ("order_book", "MAT-1,2026-11-30,120,100,340,unit:piece",
     {"bookings": "120", "billings": "100", "backlog": "340"}),
    ("quoted_lead_time", "MAT-1,2026-11-30,26", {"lead_time_weeks": "26"}),
    ("fab_utilisation", "MAT-1,2026-11-30,1000,950,scfed:wafer-300mm-equivalent",
     {"wafer_starts_capacity": "1000", "wafer_starts_actual": "950"}),
    ("work_in_progress", "MAT-1,2026-11-30,5000,unit:piece", {"stock_wip": "5000"}),
    ("finished_goods", "MAT-1,2026-11-30,7000,unit:piece", {"stock_finished": "7000"}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "row", "expected"), KIND_ROWS)
def test_each_csv_kind_imports_with_its_facts(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore, *, kind: str, row: str,
    expected: dict[str, str],
) -> None:  # fmt: skip
    header = ",".join(SPECS[kind].columns)
    path = _file(tmp_path, f"{header}\n{row}\n")
    summary = import_file(path, kind=kind, mapping=mapping, store=store)
    assert (summary.kinds, summary.records, summary.new) == ((kind,), 1, 1)
    for metric, value in expected.items():
        assert store.weekly(metric, [WEEK]) == {(ANALOG, WEEK): Decimal(value)}
    assert {h.metric for h in store.holdings()} == set(expected)
    assert len(store.records(kind)) == 1


def test_every_kind_is_covered_and_extensions_match_catenax() -> None:
    assert {kind for kind, _, _ in KIND_ROWS} == set(SPECS)
    extensions = {kind for kind, spec in SPECS.items() if spec.extension}
    assert extensions == set(catenax.EXTENSION_KINDS)


def test_extension_rows_are_stored_as_scfed_messages(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    path = _file(
        tmp_path, "# kind: finished_goods\nitem,week,quantity,unit\nMAT-1,2026-W49,70,unit:piece\n"
    )
    import_file(path, kind=None, mapping=mapping, store=store)
    (message,) = store.records("finished_goods")
    assert isinstance(message, records_pb2.FinishedGoods)
    assert (message.item, message.week, message.quantity) == ("MAT-1", "2026-11-30", "70")


def test_weekly_sums_items_of_one_commodity_exactly(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    import_file(_file(tmp_path, DEMAND), kind=None, mapping=mapping, store=store)
    assert store.weekly("demand", [WEEK, NEXT]) == {
        (ANALOG, WEEK): Decimal("1250.5"),
        (LOGIC, NEXT): Decimal(7),
    }
    assert store.weekly("demand", [NEXT]) == {(LOGIC, NEXT): Decimal(7)}
    assert store.weekly("demand", []) == {}
    assert store.weekly("capacity_actual", [WEEK]) == {}
    tiny = "# kind: demand\nitem,week,quantity,unit,category\n" + "".join(
        f"MAT-{i},2026-12-14,0.000000001,unit:piece,0001\n" for i in (1, 2)
    )
    import_file(_file(tmp_path, tiny, "tiny.csv"), kind=None, mapping=mapping, store=store)
    assert store.weekly("demand", [date(2026, 12, 14)]) == {
        (ANALOG, date(2026, 12, 14)): Decimal("0.000000002")
    }


def test_wafer_units_are_converted_to_300mm_equivalents_exactly(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    text = """\
# kind: fab_utilisation
item,week,wafer_starts_capacity,wafer_starts_actual,unit
MAT-1,2026-11-30,900,1,scfed:wafer-200mm
MAT-2,2026-11-30,100,2,scfed:wafer-150mm
MAT-3,2026-11-30,10,10,scfed:wafer-300mm-equivalent
"""
    import_file(_file(tmp_path, text), kind=None, mapping=mapping, store=store)
    # 900 * (200/300)^2 + 100 * (150/300)^2 = 400 + 25
    assert store.weekly("wafer_starts_capacity", [WEEK]) == {
        (ANALOG, WEEK): Decimal(425),
        (LOGIC, WEEK): Decimal(10),
    }
    # 4/9 + 2/4 = 17/18 has no finite decimal form: rounded once, to 9 places
    actual = store.weekly("wafer_starts_actual", [WEEK])
    assert actual[ANALOG, WEEK] == Decimal("0.944444444")
    assert (
        store.totals([WEEK])["wafer_starts_capacity", "scfed:wafer-300mm-equivalent", WEEK] == 435
    )


# ---- Idempotence and replacement ----


def test_importing_the_same_file_again_changes_nothing(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    path = _file(tmp_path, DEMAND)
    first = import_file(path, kind=None, mapping=mapping, store=store)
    before = _snapshot(store)
    again = import_file(path, kind=None, mapping=mapping, store=store)
    assert (first.new, first.known_file) == (3, False)
    assert (again.known_file, again.new, again.replaced, again.unchanged) == (True, 0, 0, 3)
    assert "imported before: nothing changed" in again.line()
    assert _snapshot(store) == before


def test_a_newer_file_replaces_records_with_the_same_key(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    old = _file(tmp_path, DEMAND, "old.csv")
    import_file(old, kind=None, mapping=mapping, store=store)
    newer = DEMAND.replace("MAT-1,2026-11-30,1000", "MAT-1,2026-W49,1200") + (
        "MAT-3,2026-11-30,3,unit:piece,0001\n"
    )
    summary = import_file(
        _file(tmp_path, newer, "new.csv"), kind=None, mapping=mapping, store=store
    )
    assert (summary.new, summary.replaced, summary.unchanged) == (1, 1, 2)
    assert summary.line().endswith("(new 1, replaced 1, unchanged 2)")
    expected = {(ANALOG, WEEK): Decimal("1450.5"), (LOGIC, WEEK): 3, (LOGIC, NEXT): 7}
    assert store.weekly("demand", [WEEK, NEXT]) == expected
    assert len(store.records("demand")) == 4
    # The old file again cannot undo the newer one.
    again = import_file(old, kind=None, mapping=mapping, store=store)
    assert (again.superseded, again.unchanged, again.replaced) == (1, 2, 0)
    assert store.weekly("demand", [WEEK, NEXT]) == expected


def test_a_changed_mapping_takes_effect_when_the_file_is_imported_again(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    path = _file(tmp_path, DEMAND)
    import_file(path, kind=None, mapping=mapping, store=store)
    moved = {**mapping, "MAT-2": parse_commodity(LOGIC)}
    summary = import_file(path, kind=None, mapping=moved, store=store)
    assert (summary.replaced, summary.unchanged) == (1, 2)
    assert store.weekly("demand", [WEEK]) == {
        (ANALOG, WEEK): Decimal(1000),
        (LOGIC, WEEK): Decimal("250.5"),
    }


# ---- Bad rows: a precise error, and the store exactly as it was ----

BAD_ROWS = [
    ("MAT-2,2026-11-30,250.5,unit:bogus,0001", 4, "unit", "not a Catena-X or wafer unit"),
    ("MAT-2,2026-11-30,-5,unit:piece,0001", 4, "quantity", "is negative"),
    ("MAT-2,2026-12-01,250.5,unit:piece,0001", 4, "week", "is a Tuesday, not a Monday"),
    ("MAT-2,2026-13-40,250.5,unit:piece,0001", 4, "week", "is not a valid date"),
    ("MAT-2,next week,250.5,unit:piece,0001", 4, "week", "is not a week"),
    ("MAT-2,2026-W54,250.5,unit:piece,0001", 4, "week", "no ISO week 54"),
    ("MAT-9,2026-11-30,250.5,unit:piece,0001", 4, "item", "'MAT-9' is not in the mapping"),
    ("MAT-1,2026-W49,5,unit:piece,0001", 4, "week", "has a second row for 2026-11-30 (line 3)"),
    ("MAT-2,2026-11-30,lots,unit:piece,0001", 4, "quantity", "'lots' is not a number"),
    ("MAT-2,2026-11-30,,unit:piece,0001", 4, "quantity", "'' is not a number"),
    ("MAT-2,2026-11-30,1e3,unit:piece,0001", 4, "quantity", "write a plain decimal"),
    ("MAT-2,2026-11-30,0.0000000001,unit:piece,0001", 4, "quantity", "9 after the point"),
    ("MAT-2,2026-11-30,1234567890123456789,unit:piece,0001", 4, "quantity", "18 digits"),
    ("MAT-2,2026-11-30,250.5,unit:piece,9999", 4, "category", "'9999' is not one of 0001"),
    ("MAT-2,2026-11-30,250.5,unit:kilogram,0001", 4, "unit", "cannot be summed with unit:piece"),
]


@pytest.mark.parametrize(("row", "line", "field", "reason"), BAD_ROWS)
def test_a_bad_row_is_refused_precisely_and_nothing_is_stored(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore, *, row: str, line: int,
    field: str, reason: str,
) -> None:  # fmt: skip
    import_file(_file(tmp_path, DEMAND, "good.csv"), kind=None, mapping=mapping, store=store)
    extra = "MAT-1,2026-12-07,1,unit:piece,0001\n"  # would be new: must not be stored either
    text = DEMAND.replace("MAT-2,2026-11-30,250.5,unit:piece,0001", row) + extra
    _refused(store, mapping, _file(tmp_path, text), f":{line}: field '{field}': ", reason)


def _refused(
    store: RecordStore, mapping: dict[str, Commodity], path: Path, where: str, reason: str
) -> None:
    before = _snapshot(store)
    with pytest.raises(ImportRowError) as caught:
        import_file(path, kind=None, mapping=mapping, store=store)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert where in message, message
    assert reason in message, message
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (DEMAND.replace("250.5,unit:piece,0001", "250.5,unit:piece"), ":4: row: ",
         "has 4 fields, not 5"),
        (DEMAND.replace("MAT-3,2026-W50,7,unit:piece,0001", "MAT-3,2026-W50,7,unit:piece,0001,x"),
         ":5: row: ", "has 6 fields, not 5"),
        (DEMAND.replace("item,week,quantity,unit,category", "item,week,qty,unit,category"),
         ":2: header: ", "must be exactly 'item,week,quantity,unit,category'"),
        (DEMAND.replace("item,week,quantity,unit,category", "week,item,quantity,unit,category"),
         ":2: header: ", "not 'week,item,quantity,unit,category'"),
        ("# kind: stock\n" + DEMAND, ":2: kind: ",
         "says 'demand' but an earlier line says 'stock'"),
        (DEMAND.replace("# kind: demand", "# kind: forecasts"), ":1: kind: ",
         "'forecasts' is not a CSV kind"),
        (DEMAND.replace("# kind: demand\n", ""), ":1: kind: ", "not given; use --kind"),
        ("# kind: demand\n", ":1: header: ", "missing"),
        (DEMAND.replace("MAT-3,2026-W50", 'MAT-3,"2026-W50'), ":5: ", "not valid CSV"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_whole(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore, *, text: str,
    where: str, reason: str,
) -> None:  # fmt: skip
    import_file(_file(tmp_path, DEMAND, "good.csv"), kind=None, mapping=mapping, store=store)
    _refused(store, mapping, _file(tmp_path, text), where, reason)


def test_kind_given_on_the_command_line(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    path = _file(tmp_path, DEMAND.replace("# kind: demand\n", ""))
    assert import_file(path, kind="demand", mapping=mapping, store=store).new == 3
    with pytest.raises(
        ImportRowError, match=r"b.csv:1: kind: the file says 'demand' but --kind says 'stock'"
    ):
        import_file(_file(tmp_path, DEMAND, "b.csv"), kind="stock", mapping=mapping, store=store)


def test_blank_lines_and_comments_are_skipped_and_a_missing_file_is_named(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    text = "# exported by the planning system\n" + DEMAND.replace("\nMAT-2", "\n\nMAT-2") + "\n"
    assert import_file(_file(tmp_path, text), kind=None, mapping=mapping, store=store).new == 3
    with pytest.raises(ConfigError, match=r"nothing\.csv: cannot read"):
        import_file(tmp_path / "nothing.csv", kind=None, mapping=mapping, store=store)


def test_bad_values_of_other_kinds(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    stock = "# kind: stock\nitem,week,quantity,unit,direction\nMAT-1,2026-11-30,4,unit:piece,IN\n"
    _refused(store, mapping, _file(tmp_path, stock), ":3: field 'direction': ", "INBOUND, OUTBOUND")
    fab = (
        "# kind: fab_utilisation\nitem,week,wafer_starts_capacity,wafer_starts_actual,unit\n"
        "MAT-1,2026-11-30,10,9,unit:piece\n"
    )
    _refused(store, mapping, _file(tmp_path, fab), ":3: field 'unit': ", "not a scfed wafer unit")
    capacity = "# kind: capacity\nitem,week,actual,maximum,unit\nMAT-1,2026-11-30,5,x,unit:piece\n"
    _refused(store, mapping, _file(tmp_path, capacity), ":3: field 'maximum': ", "not a number")


def test_units_cannot_mix_across_files_but_a_replacement_may_change_them(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    import_file(_file(tmp_path, DEMAND, "good.csv"), kind=None, mapping=mapping, store=store)
    header = "# kind: demand\nitem,week,quantity,unit,category\n"
    kilos = _file(tmp_path, header + "MAT-2,2026-12-14,3,unit:kilogram,0001\n")
    _refused(store, mapping, kilos, ":3: field 'unit': ", "cannot be summed with unit:piece")
    # Replacing every ANALOG demand record with one in kilograms leaves nothing to mix with.
    rows = "MAT-1,2026-11-30,1,unit:kilogram,0001\nMAT-2,2026-11-30,2,unit:kilogram,0001\n"
    summary = import_file(
        _file(tmp_path, header + rows, "kg.csv"), kind=None, mapping=mapping, store=store
    )
    assert summary.replaced == 2
    assert store.totals([WEEK])["demand", "unit:kilogram", WEEK] == 3


# ---- Every bad row at once, and a file of any size ----


def test_every_bad_row_is_named_in_one_error_and_nothing_is_stored(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    import_file(_file(tmp_path, DEMAND, "good.csv"), kind=None, mapping=mapping, store=store)
    text = DEMAND + (
        "MAT-1,2026-12-07,-1,unit:piece,0001\n"  # line 6
        "MAT-2,2026-12-07,5,unit:piece,0001\n"  # good, but not stored either
        "MAT-9,2026-12-07,5,unit:piece,0001\n"  # line 8
        "MAT-2,2026-12-08,5,unit:piece\n"  # line 9: one field short (and a Tuesday)
        "MAT-2,2026-12-07,6,unit:piece,0001\n"  # line 10: line 7 again
    )
    path = _file(tmp_path, text)
    before = _snapshot(store)
    with pytest.raises(ImportRowError) as refused:
        import_file(path, kind=None, mapping=mapping, store=store)
    assert str(refused.value).split("\n  ") == [
        f"{path}: 4 bad rows, so nothing of it was imported:",
        f"{path}:6: field 'quantity': '-1' is negative; quantities are never negative",
        f"{path}:8: field 'item': 'MAT-9' is not in the mapping",
        f"{path}:9: row: has 4 fields, not 5 (item,week,quantity,unit,category)",
        f"{path}:10: field 'week': 'MAT-2' has a second row for 2026-12-07 (line 7)",
    ]
    assert _snapshot(store) == before


def test_past_a_hundred_bad_rows_the_rest_are_counted(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    rows = "".join(f"MAT-1,2026-W{week:02d},1,unit:bogus,0001\n" for week in range(1, 53))
    text = DEMAND + rows + rows.replace("MAT-1", "MAT-2") + rows.replace("MAT-1", "MAT-3")
    with pytest.raises(ImportRowError) as refused:
        import_file(_file(tmp_path, text), kind=None, mapping=mapping, store=store)
    lines = str(refused.value).split("\n  ")
    assert lines[0].endswith(": 156 bad rows, so nothing of it was imported:")
    assert len(lines) == 1 + MAX_REPORTED + 1
    assert lines[1].startswith(f"{tmp_path / 'data.csv'}:6: field 'unit': 'unit:bogus'")
    assert lines[-1] == "and 56 more"
    assert store.holdings() == []


def test_a_bad_row_after_many_batches_undoes_the_batches_written(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    """Records go to the store a batch at a time, inside one transaction."""
    rows = 3 * BATCH + 7
    keys = itertools.product(
        ("MAT-1", "MAT-2", "MAT-3"),
        (f"{year}-W{week:02d}" for year in (2026, 2027) for week in range(1, 53)),
        ("0001", "A1S1", "SR99", "PI01", "OS01", "OI01", "ED01", "PO01"),
    )
    text = "# kind: demand\nitem,week,quantity,unit,category\n" + "".join(
        f"{item},{week},{n},unit:piece,{category}\n"
        for n, (item, week, category) in zip(range(rows), keys, strict=False)
    )
    path = _file(tmp_path, text + "MAT-1,2026-W01,1,unit:piece,9999\n")
    with pytest.raises(ImportRowError, match=rf":{rows + 3}: field 'category': '9999'"):
        import_file(path, kind=None, mapping=mapping, store=store)
    assert store.holdings() == []
    assert store.files() == []
    summary = import_file(
        _file(tmp_path, text, "good.csv"), kind=None, mapping=mapping, store=store
    )
    assert (summary.records, summary.new) == (rows, rows)
    assert store.files()[0][1:3] == ("demand", rows)


def test_the_store_takes_records_as_a_stream_and_refuses_mixed_units_itself(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The store's own checks hold for any caller, not only for the importer's files."""
    monkeypatch.setattr(records_module, "BATCH", 10)
    text = DEMAND + "".join(
        f"MAT-{1 + n % 2},2027-W{1 + n // 2:02d},1,unit:piece,0001\n" for n in range(2 * 52)
    )
    good = read_records(tmp_path / "a.csv", text.encode(), kind=None, mapping=mapping)
    kilos = read_records(
        tmp_path / "b.csv", DEMAND.replace("unit:piece", "unit:kilogram").encode(), kind=None,
        mapping=mapping,
    )  # fmt: skip
    with pytest.raises(ImportRowError, match=r"^mixed:3: field 'unit': unit:kilogram cannot be"):
        store.import_records("mixed", b"h", iter([*good, kilos[0]]))
    assert store.holdings() == []
    assert store.files() == []


def test_progress_is_told_the_lines_read(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(rows_module, "PROGRESS_EVERY", 2)
    told: list[tuple[int, int | None]] = []
    path = _file(tmp_path, DEMAND)
    import_file(path, kind=None, mapping=mapping, store=store, progress=lambda *a: told.append(a))
    assert told == [(3, 5), (5, 5), (5, 5)]


def test_the_cli_shows_progress_on_a_terminal_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _file(tmp_path, NODE_TOML, "node.toml")
    lines = [f"{item},{key}" for item, key in MAPPING.items()]
    _file(tmp_path, "item,commodity\n" + "\n".join(lines) + "\n", "mapping.csv")
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["import", "--config", str(config), str(_file(tmp_path, DEMAND))])
    assert args.func(args) == 0
    assert capsys.readouterr().err == ""  # not a terminal: nothing
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    args = parser.parse_args(
        ["import", "--config", str(config), str(_file(tmp_path, DEMAND, "b.csv"))]
    )
    assert args.func(args) == 0
    assert "b.csv" in terminal.getvalue()
    assert "lines" in terminal.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# ---- The mapping file ----


def test_mapping_file(tmp_path: Path) -> None:
    text = f"# our parts\nitem,commodity\nMAT-1,{ANALOG}\n\nMAT-2,{LOGIC}\n"
    assert read_mapping(_file(tmp_path, text, "mapping.csv")) == {
        "MAT-1": parse_commodity(ANALOG),
        "MAT-2": parse_commodity(LOGIC),
    }


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (f"item,commodity\nMAT-1,{ANALOG}\nMAT-2,fabrication/analog/3nm/200mm/JP\n",
         ":3: field 'commodity': ", "technology node '3nm'"),
        (f"item,commodity\nMAT-1,{ANALOG}\nMAT-2,fabrication/analog/n/a/n/a/JP\n",
         ":3: field 'commodity': ", "write 'na'"),
        (f"item,commodity\nMAT-1,{ANALOG}\nMAT-1,{LOGIC}\n", ":3: field 'item': ",
         "mapped twice (first on line 2)"),
        (f"part,commodity\nMAT-1,{ANALOG}\n", ":1: header: ", "exactly 'item,commodity'"),
        (f"item,commodity\nMAT-1,{ANALOG},x\n", ":2: ", "has 3 fields, not 2"),
        (f"item,commodity\n MAT-1,{ANALOG}\n", ":2: field 'item': ", "without leading"),
    ],
)  # fmt: skip
def test_bad_mapping_files_are_refused(tmp_path: Path, text: str, where: str, reason: str) -> None:
    path = _file(tmp_path, text, "mapping.csv")
    with pytest.raises(ImportRowError) as caught:
        read_mapping(path)
    assert f"{path}{where}" in str(caught.value)
    assert reason in str(caught.value)


def test_a_missing_mapping_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no mapping file"):
        read_mapping(tmp_path / "mapping.csv")


# ---- Catena-X JSON ----

EXAMPLE_FACTS = {
    "ItemStock": ("stock_inbound", date(2023, 4, 24), "20"),
    "PlannedProductionOutput": ("production_planned", date(2023, 4, 24), "20"),
    "DeliveryInformation": ("delivery", date(2023, 4, 24), "20"),
    "DaysOfSupply": ("days_of_supply", date(2024, 1, 1), "3.51"),
    "ShortTermMaterialDemand": ("demand_short_term", date(2023, 10, 9), "20"),
}
EXAMPLES = sorted(p.stem for p in VECTORS.glob("*.json") if not p.stem.endswith("-schema"))


def _payload(name: str) -> dict[str, object]:
    payload: dict[str, object] = json.loads((VECTORS / f"{name}.json").read_text("utf-8"))
    return payload


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_catenax_example_imports(
    name: str, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    summary = import_file(VECTORS / f"{name}.json", kind=None, mapping=mapping, store=store)
    assert (summary.kinds, summary.new) == ((name,), 1)
    (message,) = store.records(name)
    assert catenax.to_json(message) == _payload(name)
    if name in EXAMPLE_FACTS:
        metric, week, value = EXAMPLE_FACTS[name]
        assert store.weekly(metric, [week]) == {(ANALOG, week): Decimal(value)}


def test_an_array_of_payloads_and_csv_give_the_same_facts(
    tmp_path: Path, mapping: dict[str, Commodity]
) -> None:
    demand, capacity = _payload("WeekBasedMaterialDemand"), _payload("WeekBasedCapacityGroup")
    demand["materialDemandIsInactive"] = False  # the example is inactive, which counts nothing
    capacity["capacityGroupIsInactive"] = False
    payloads = [demand, capacity, _payload("ItemStock")]
    from_json = RecordStore(tmp_path / "json.sqlite")
    path = _file(tmp_path, json.dumps(payloads), "all.json")
    assert import_file(path, kind=None, mapping=mapping, store=from_json).new == 3
    from_csv = RecordStore(tmp_path / "csv.sqlite")
    rows = [
        ("demand", "MNR-8101-ID146955.001,2023-10-09,1000,unit:piece,0001"),
        ("capacity", "0157ba42-d2a8-4e28-8565-7b07830c1110,2022-08-01,1000,2000,unit:piece"),
        ("stock", f"{ASSET},2023-04-24,20,unit:piece,INBOUND"),
    ]
    for kind, row in rows:
        text = f"{','.join(SPECS[kind].columns)}\n{row}\n"
        import_file(
            _file(tmp_path, text, f"{kind}.csv"), kind=kind, mapping=mapping, store=from_csv
        )
    weeks = [date(2023, 10, 9), date(2022, 8, 1), date(2023, 4, 24)]
    for metric in ("demand", "capacity_actual", "capacity_max", "stock_inbound"):
        assert from_json.weekly(metric, weeks) == from_csv.weekly(metric, weeks) != {}


def test_bad_json_names_the_path_and_stores_nothing(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    import_file(VECTORS / "ItemStock.json", kind=None, mapping=mapping, store=store)
    bad = _payload("PlannedProductionOutput")
    broken = json.loads(json.dumps(bad).replace('"value": 20.0', '"value": -5'))
    text = json.dumps([bad, broken])
    path = _file(tmp_path, text, "bad.json")
    inner = "$[1].positions[0].allocatedPlannedProductionOutputs[0].plannedProductionQuantity.value"
    _refused(store, mapping, path, f": {inner}: field 'value'", "must not be negative")
    unmapped = json.dumps(bad).replace(ASSET, "urn:uuid:00000000-0000-4000-8000-000000000000")
    where = ": $: field 'item'"
    _refused(store, mapping, _file(tmp_path, unmapped, "u.json"), where, "not in the mapping")
    twice = _file(tmp_path, json.dumps([bad, bad]), "d.json")
    _refused(store, mapping, twice, ": $[1]: ", "the same PlannedProductionOutput as $[0]")
    _refused(store, mapping, _file(tmp_path, "[{]", "x.json"), ":1: ", "not valid JSON")
    _refused(store, mapping, _file(tmp_path, '[{"a": 1}]', "y.json"), ": $[0]: ", "not a Catena-X")
    forced = _file(tmp_path, json.dumps(bad), "f.json")
    with pytest.raises(ImportRowError, match=r"f\.json: \$: unknown aspect model 'demand'"):
        import_file(forced, kind="demand", mapping=mapping, store=store)


# ---- The command line ----


def test_cli_import_and_data(
    tmp_path: Path, mapping: dict[str, Commodity], capsys: pytest.CaptureFixture[str]
) -> None:
    config = _file(tmp_path, NODE_TOML, "node.toml")
    lines = [f"{item},{key}" for item, key in MAPPING.items()]
    _file(tmp_path, "item,commodity\n" + "\n".join(lines) + "\n", "mapping.csv")
    path = _file(tmp_path, DEMAND)
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["import", "--config", str(config), str(path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out == f"imported 3 demand records from {path} (new 3, replaced 0, unchanged 0)\n"
    args = parser.parse_args(["data", "--config", str(config), "--weeks", "2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"demand +demand +3 +2026-11-30 to 2026-12-07 +2", out), out
    assert "totals over all commodities" in out
