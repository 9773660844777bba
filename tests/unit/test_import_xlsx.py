"""XLSX import: a sheet with the CSV kinds' columns, read streaming with openpyxl."""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from node.imports import import_file
from node.records import RecordStore
from node.sheets import cell_text
from scfed.errors import ConfigError, ImportRowError
from scfed.taxonomy import Commodity, parse_commodity

ANALOG = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
LOGIC = "fabrication/logic/<=5nm/300mm/TW-Hsinchu"
WEEK = date(2026, 11, 30)
NEXT = date(2026, 12, 7)
HEADER: list[object] = ["item", "week", "quantity", "unit", "category"]
ROWS: list[list[object]] = [
    ["MAT-1", datetime(2026, 11, 30), 1000, "unit:piece", "0001"],  # a date cell, as Excel has
    ["MAT-2", "2026-11-30", 250.5, "unit:piece", "0001"],
    [10042, "2026-W50", 7, "unit:piece", "0001"],  # a material number typed as a number
]


@pytest.fixture
def mapping() -> dict[str, Commodity]:
    keys = {"MAT-1": ANALOG, "MAT-2": ANALOG, "10042": LOGIC}
    return {item: parse_commodity(key) for item, key in keys.items()}


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "node.sqlite")


def _book(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def _demand(tmp_path: Path, rows: list[list[object]], name: str = "demand.xlsx") -> Path:
    return _book(tmp_path / name, {"Demand": [["# kind: demand"], HEADER, *rows]})


def _patch(path: Path, member: str, old: str, new: str) -> None:
    """Rewrite one XML part of a workbook, as another program might have written it."""
    with zipfile.ZipFile(path) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    text = parts[member].decode()
    assert old in text, text
    parts[member] = text.replace(old, new).encode()
    with zipfile.ZipFile(path, "w") as book:
        for name, data in parts.items():
            book.writestr(name, data)


def _refused(store: RecordStore, mapping: dict[str, Commodity], path: Path) -> str:
    with pytest.raises(ImportRowError) as refused:
        import_file(path, kind=None, mapping=mapping, store=store)
    assert store.holdings() == []
    return str(refused.value)


def test_a_sheet_imports_like_the_csv_file_it_could_be(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    summary = import_file(_demand(tmp_path, ROWS), kind=None, mapping=mapping, store=store)
    assert (summary.kinds, summary.records, summary.new) == (("demand",), 3, 3)
    assert store.weekly("demand", [WEEK, NEXT]) == {
        (ANALOG, WEEK): Decimal("1250.5"),
        (LOGIC, NEXT): Decimal(7),
    }
    csv = RecordStore(tmp_path / "csv.sqlite")
    text = "item,week,quantity,unit,category\n" + "".join(
        f"{item},{week},{quantity},unit:piece,0001\n"
        for item, week, quantity in (
            ("MAT-1", "2026-11-30", "1000"), ("MAT-2", "2026-11-30", "250.5"),
            ("10042", "2026-W50", "7"),
        )
    )  # fmt: skip
    (tmp_path / "demand.csv").write_text(text, encoding="utf-8")
    import_file(tmp_path / "demand.csv", kind="demand", mapping=mapping, store=csv)
    as_stored = [m.SerializeToString(deterministic=True) for m in store.records("demand")]
    assert [m.SerializeToString(deterministic=True) for m in csv.records("demand")] == as_stored


def test_whole_floats_are_integers_and_float_noise_goes(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    """Excel keeps every number as a double: 1000 may be stored as 1000.0 or 1E3, and a
    formula's result as 1250.4999999999998 where Excel shows 1250.5."""
    path = _demand(tmp_path, [["MAT-1", "2026-11-30", 1, "unit:piece", "0001"],
                              ["MAT-2", "2026-11-30", 2, "unit:piece", "0001"]])  # fmt: skip
    _patch(path, "xl/worksheets/sheet1.xml", "<v>1</v>", "<v>1E3</v>")
    _patch(path, "xl/worksheets/sheet1.xml", "<v>2</v>", "<v>250.49999999999997</v>")
    import_file(path, kind=None, mapping=mapping, store=store)
    assert store.weekly("demand", [WEEK]) == {(ANALOG, WEEK): Decimal("1250.5")}
    (first, _) = store.records("demand")
    assert first.fields["quantity"].string_value == "1000"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""), ("MAT-1", "MAT-1"), (1000, "1000"), (1000.0, "1000"), (-0.0, "0"),
        (12.5, "12.5"), (0.1 + 0.2, "0.3"), (1e-7, "0.0000001"), (1e20, "100000000000000000000"),
        (True, "TRUE"), (datetime(2026, 11, 30), "2026-11-30"), (date(2026, 11, 30), "2026-11-30"),
        (datetime(2026, 11, 30, 12, 30), "2026-11-30 12:30:00"),
    ],
)  # fmt: skip
def test_cell_texts(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_the_sheet_named_is_read_and_a_missing_one_is_named(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    path = _book(
        tmp_path / "book.xlsx",
        {"Notes": [["nothing to import here"]], "Demand": [["# kind: demand"], HEADER, *ROWS]},
    )
    assert import_file(path, kind=None, mapping=mapping, store=store, sheet="Demand").new == 3
    with pytest.raises(ConfigError, match=r"no sheet 'Stock'; its sheets: 'Notes', 'Demand'"):
        import_file(path, kind=None, mapping=mapping, store=store, sheet="Stock")
    with pytest.raises(ImportRowError, match=r"sheet 'Notes', row 1: kind: not given"):
        import_file(path, kind=None, mapping=mapping, store=store)  # the first sheet


def test_every_bad_row_is_named_with_sheet_row_and_column(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    rows: list[list[object]] = [
        *ROWS,
        ["MAT-1", "2026-12-07", -5, "unit:piece", "0001"],  # row 6
        ["MAT-2", datetime(2026, 12, 8), 1, "unit:piece", "0001"],  # row 7: a Tuesday
        ["MAT-2", "2026-12-14", 1, "unit:piece"],  # row 8: the category cell left empty
        ["MAT-2", "2026-12-21", 1, "unit:piece", "0001", None, "x"],  # row 9: a stray value
        ["MAT-1", datetime(2026, 11, 30), 3, "unit:piece", "0001"],  # row 10: row 3 again
        ["MAT-2", "2026-12-28", 2, "unit:kilogram", "0001"],  # row 11: pieces before
    ]
    path = _demand(tmp_path, rows)
    where = f"{path}: sheet 'Demand', row"
    assert _refused(store, mapping, path).split("\n  ") == [
        f"{path}: 6 bad rows, so nothing of it was imported:",
        f"{where} 6: column C, field 'quantity': '-5' is negative; quantities are never negative",
        f"{where} 7: column B, field 'week': 2026-12-08 is a Tuesday, not a Monday: weeks are "
        "keyed by their Monday (that week's is 2026-12-07)",
        f"{where} 8: column E, field 'category': '' is not one of 0001, A1S1, SR99, PI01, OS01, "
        "OI01, ED01, PO01",
        f"{where} 9: row: has a value in column G, past the 5 columns "
        "(item,week,quantity,unit,category)",
        f"{where} 10: column B, field 'week': 'MAT-1' has a second row for 2026-11-30 (row 3)",
        f"{where} 11: column D, field 'unit': unit:kilogram cannot be summed with unit:piece, in "
        "which row 3 gives demand of fabrication/analog/90-180nm/200mm/JP-Kyushu; give every "
        "demand figure of a commodity in one unit (wafer sizes convert to 300 mm equivalents)",
    ]


def test_a_header_that_does_not_match_names_its_row(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    path = _book(tmp_path / "h.xlsx", {"S": [["# kind: demand"], ["item", "week", "qty"]]})
    message = _refused(store, mapping, path)
    assert message.startswith(f"{path}: sheet 'S', row 2: header: must be exactly ")


def test_every_row_is_read_whatever_the_dimension_the_sheet_claims(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    path = _demand(tmp_path, ROWS)
    _patch(
        path, "xl/worksheets/sheet1.xml", '<dimension ref="A1:E5" />', '<dimension ref="A1:A2" />'
    )
    assert import_file(path, kind=None, mapping=mapping, store=store).new == 3


def test_an_extension_kind_and_blank_rows(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    rows: list[list[object]] = [
        ["# kind: work_in_progress"], [], ["item", "week", "quantity", "unit"], [],
        ["MAT-1", datetime(2026, 11, 30), 5000.0, "unit:piece"],
    ]  # fmt: skip
    import_file(_book(tmp_path / "wip.xlsx", {"WIP": rows}), kind=None, mapping=mapping,
                store=store)  # fmt: skip
    assert store.weekly("stock_wip", [WEEK]) == {(ANALOG, WEEK): Decimal(5000)}


def test_files_that_are_not_workbooks_to_read(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip archive")
    assert "not an XLSX workbook that can be read" in _refused(store, mapping, broken)
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100))
    assert "an Excel 97-2003 workbook (.xls); save it as .xlsx or CSV" in _refused(
        store, mapping, old
    )


def test_options_for_the_other_kind_of_file_are_refused(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    book = _demand(tmp_path, ROWS)
    with pytest.raises(ConfigError, match="--encoding is for CSV files"):
        import_file(book, kind=None, mapping=mapping, store=store, encoding="cp932")
    text = tmp_path / "d.csv"
    text.write_text("# kind: demand\nitem,week,quantity,unit,category\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="--sheet is for XLSX workbooks"):
        import_file(text, kind=None, mapping=mapping, store=store, sheet="Demand")


def test_progress_counts_the_rows_of_a_sheet(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    told: list[tuple[int, int | None]] = []
    path = _demand(tmp_path, ROWS)
    import_file(path, kind=None, mapping=mapping, store=store, progress=lambda *a: told.append(a))
    assert told == [(5, 5)]
