"""XLSX workbooks: one sheet of a firm's figures read like a CSV file, and a sheet written.

Does I/O (reads one file), with openpyxl: a workbook is read in its read-only mode, which
streams a sheet's XML a row at a time, and written (as bytes, for the caller to save) in its
write-only mode, so neither holds a whole sheet of cells. A formula gives the value Excel
last computed (``data_only``).

A sheet's rows come out as the CSV reader gives a file's: each row a list of cell texts, its
empty cells at the end left off (a workbook does not keep them), a blank row an empty list.
A cell's text is what its CSV export would hold: a number as a plain decimal (a float that is
whole as an integer, ``1000.0`` as ``1000``; any other to Excel's 15 significant digits, so
``0.1 + 0.2`` is ``0.3``), a date as ``YYYY-MM-DD``, TRUE or FALSE for a boolean.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from scfed.errors import ConfigError, ImportRowError

#: Excel keeps 15 significant digits of a number; more are written as text, to stay exact.
EXCEL_DIGITS = 15
#: What openpyxl raises for a file that is not a workbook, or a part of one it cannot parse.
_UNREADABLE = (zipfile.BadZipFile, InvalidFileException, KeyError, IndexError, ValueError,
               TypeError, SyntaxError, EOFError)  # fmt: skip


class SheetRows:
    """The rows of one sheet, read once; ``line_num`` is the number of the last row given."""

    noun = "row"

    def __init__(self, path: Path, sheet: ReadOnlyWorksheet) -> None:
        self.path, self.name = path, str(sheet.title)
        self.line_num = 0
        #: The rows the sheet says it has, for progress only: it may be missing or wrong.
        self.lines: int | None = sheet.max_row
        sheet.reset_dimensions()  # so that every row is read, whatever the sheet claims
        self._sheet = sheet

    def where(self, row: int) -> str:
        return f"{self.path}: {self.origin(row)}"

    def origin(self, row: int) -> str:
        return f"sheet {self.name!r}, row {row}"

    def field(self, at: int, name: str) -> str:
        return f"column {column_letter(at)}, field {name!r}"

    def fit(self, line: int, row: list[str], columns: Sequence[str]) -> list[str]:
        """A short row padded with empty cells (a sheet keeps none at the end of a row)."""
        if len(row) < len(columns):
            return row + [""] * (len(columns) - len(row))
        raise ImportRowError(
            f"{self.where(line)}: row: has a value in column {column_letter(len(row) - 1)}, "
            f"past the {len(columns)} columns ({','.join(columns)})"
        )

    def __iter__(self) -> Iterator[list[str]]:
        # The stubs give ReadOnlyWorksheet the iter_rows of Worksheet, which it borrows.
        rows = self._sheet.iter_rows(min_row=1, values_only=True)  # type: ignore[misc]
        while True:
            try:
                values = next(rows, None)
            except _UNREADABLE as exc:
                where = self.where(self.line_num + 1)
                raise ImportRowError(f"{where}: the sheet cannot be read: {exc}") from None
            if values is None:
                return
            self.line_num += 1
            texts = [cell_text(value) for value in values]
            while texts and not texts[-1]:
                texts.pop()
            yield texts


def column_letter(at: int) -> str:
    """The letter of the column at 0-based index ``at``: A, B, ..., AA."""
    return str(get_column_letter(at + 1))


@contextmanager
def open_sheet(path: Path, name: str | None) -> Iterator[SheetRows]:
    """The sheet ``name`` of the workbook at ``path``, or its first sheet."""
    with warnings.catch_warnings():
        # openpyxl warns of what it skips (styles, data validation): none of it is a figure.
        warnings.simplefilter("ignore")
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except _UNREADABLE as exc:
            raise ImportRowError(f"{path}: not an XLSX workbook that can be read: {exc}") from None
        try:
            yield SheetRows(path, _sheet(path, book, name))
        finally:
            book.close()


def _sheet(path: Path, book: openpyxl.Workbook, name: str | None) -> ReadOnlyWorksheet:
    sheets = [sheet for sheet in book.worksheets if isinstance(sheet, ReadOnlyWorksheet)]
    chosen = next((s for s in sheets if name is None or s.title == name), None)
    if chosen is None:
        names = ", ".join(repr(sheet.title) for sheet in sheets) or "none"
        what = f"no sheet {name!r:.60}" if name is not None else "no worksheet"
        raise ConfigError(f"{path}: {what}; its sheets: {names}")
    return chosen


def cell_text(value: object) -> str:
    """A cell's value as the text a CSV file would hold for it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, date):
        return _day(value)
    return str(value)  # a time of day or a duration: no column holds one


def _number(value: float) -> str:
    """1000 for 1000.0; else the value to Excel's 15 significant digits, as a plain decimal."""
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return f"{Decimal(f'{value:.{EXCEL_DIGITS}g}'):f}"


def _day(value: date) -> str:
    """YYYY-MM-DD for a date cell (Excel's dates are datetimes at midnight)."""
    if isinstance(value, datetime) and value.time() != time():
        return value.isoformat(" ")
    return value.isoformat()[:10]


# ---- Writing ----


def workbook_bytes(
    title: str, header: Sequence[str], rows: Iterable[Sequence[object]], widths: Sequence[int]
) -> bytes:
    """An XLSX workbook of one sheet: a header row, frozen, then ``rows``.

    A date is written as a date cell (YYYY-MM-DD); a Decimal as a number when Excel can hold
    it exactly, else as its text.
    """
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.freeze_panes = "A2"
    for at, width in enumerate(widths):
        sheet.column_dimensions[column_letter(at)].width = width
    sheet.append(list(header))
    for row in rows:
        sheet.append([_cell(sheet, value) for value in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(sheet: WriteOnlyWorksheet, value: object) -> object:
    if isinstance(value, Decimal):
        digits = len(value.normalize().as_tuple().digits)
        return value if digits <= EXCEL_DIGITS else f"{value:f}"
    if isinstance(value, date) and not isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, datetime.combine(value, time()))  # Excel's dates are days
        cell.number_format = "yyyy-mm-dd"
        return cell
    return value
