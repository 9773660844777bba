"""A node's figures for ad-hoc rounds: a CSV file of ``cell,value`` rows. Does I/O.

Values are integers in the grid unit of the query (fixed point); a cell the file does not
name contributes zero. The whole file is validated before any value is used, and an error
names the file, the line, the field and the reason.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from scfed.errors import ImportRowError, RefusedError
from scfed.masking import Vector
from scfed.messages import MAX_CELL_KEY, Announce

INT64 = 2**63


def _row_error(path: Path, line: int, field: str, reason: str) -> ImportRowError:
    return ImportRowError(f"{path}:{line}: field {field!r}: {reason}")


def read_figures(path: Path) -> dict[str, int]:
    """Every cell and value of the file, or ImportRowError for the first bad row."""
    figures: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            if next(reader, None) != ["cell", "value"]:
                raise _row_error(path, 1, "header", "the header must be exactly cell,value")
            for row in reader:
                line = reader.line_num
                cell, value = _parse_row(path, line, row)
                if cell in figures:
                    raise _row_error(path, line, "cell", f"{cell!r} appears twice")
                figures[cell] = value
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ImportRowError(f"{path}: cannot read figures: {exc}") from exc
    return figures


def _parse_row(path: Path, line: int, row: list[str]) -> tuple[str, int]:
    if len(row) != 2:
        raise _row_error(path, line, "row", f"expected 2 fields, found {len(row)}")
    cell, text = row
    if not cell or len(cell) > MAX_CELL_KEY:
        raise _row_error(path, line, "cell", f"must be 1 to {MAX_CELL_KEY} characters")
    try:
        value = int(text)
    except ValueError:
        raise _row_error(path, line, "value", f"{text[:30]!r} is not an integer") from None
    if not -INT64 <= value < INT64:
        raise _row_error(path, line, "value", "is outside the signed 64-bit range")
    return cell, value


def input_vector(path: Path, announce: Announce) -> Vector:
    """This node's input for the announced cells, as uint64 (two's complement)."""
    if not announce.cells:
        raise RefusedError(f"the query {announce.query!r} lists no cells this node can fill")
    figures = read_figures(path)
    values = np.array([figures.get(cell, 0) for cell in announce.cells], dtype=np.int64)
    return values.view(np.uint64)
