"""A node's figures for ad-hoc rounds: a CSV file of ``cell,value`` rows. Does I/O.

Values are decimal figures in their own unit (wafers, pieces, days); the node divides them
by the round's grid unit and truncates toward zero. A cell the file does not name contributes
zero. The whole file is validated before any value is used, and an error names the file, the
line, the field and the reason.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

from scfed.dp.contribution import Ints, to_grid
from scfed.errors import ImportRowError, RefusedError
from scfed.wire.messages import MAX_CELL_KEY, Announce

#: A plain decimal: optional sign, up to 19 digits before the point and 9 after.
_VALUE = re.compile(r"[+-]?[0-9]{1,19}(\.[0-9]{1,9})?")


def _row_error(path: Path, line: int, field: str, reason: str) -> ImportRowError:
    return ImportRowError(f"{path}:{line}: field {field!r}: {reason}")


def read_figures(path: Path) -> dict[str, Decimal]:
    """Every cell and value of the file, or ImportRowError for the first bad row."""
    figures: dict[str, Decimal] = {}
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


def _parse_row(path: Path, line: int, row: list[str]) -> tuple[str, Decimal]:
    if len(row) != 2:
        raise _row_error(path, line, "row", f"expected 2 fields, found {len(row)}")
    cell, text = row
    if not cell or len(cell) > MAX_CELL_KEY:
        raise _row_error(path, line, "cell", f"must be 1 to {MAX_CELL_KEY} characters")
    if _VALUE.fullmatch(text) is None:
        raise _row_error(path, line, "value", f"{text[:30]!r} is not a decimal number like 1250.5")
    return cell, Decimal(text)


def input_vector(path: Path, announce: Announce) -> Ints:
    """This node's figures for the announced cells, on the round's grid."""
    if not announce.cells:
        raise RefusedError(f"the query {announce.query!r} lists no cells this node can fill")
    figures = read_figures(path)
    zero = Decimal(0)
    values = [figures.get(cell, zero) for cell in announce.cells]
    return to_grid(values, announce.noise.grid_value)
