"""The firm's mapping of its own items onto the public commodity taxonomy.

Does I/O (reads one file). The mapping is a CSV file with the header ``item,commodity``: an
item is the firm's own material number, global asset id or capacity group id, a commodity is
a taxonomy key such as ``fabrication/analog/90-180nm/200mm/JP-Kyushu``. Blank lines and lines
starting with ``#`` are ignored. The file is checked whole; the first problem raises
ImportRowError naming file, line and field. Items never leave the node: only the commodity
keys they map to do.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from scfed.errors import ConfigError, ImportRowError
from scfed.taxonomy import Commodity, parse_commodity

HEADER = ["item", "commodity"]
MAX_ITEM = 200


def read_mapping(path: Path) -> dict[str, Commodity]:
    """Item -> commodity, from the mapping file at ``path``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _parse(path, _rows(handle))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no mapping file; write one with the header 'item,commodity' "
            "(or give another with --mapping)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ImportRowError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise ImportRowError(f"{path}: not a CSV file: {exc}") from exc


def _rows(handle: Iterable[str]) -> list[tuple[int, list[str]]]:
    """The rows with their line numbers, without blank and comment lines."""
    reader = csv.reader(handle, strict=True)
    return [
        (reader.line_num, row)
        for row in reader
        if row and any(row) and not row[0].lstrip().startswith("#")
    ]


def _parse(path: Path, rows: list[tuple[int, list[str]]]) -> dict[str, Commodity]:
    if not rows or rows[0][1] != HEADER:
        line = rows[0][0] if rows else 1
        raise ImportRowError(f"{path}:{line}: header: must be exactly 'item,commodity'")
    mapping: dict[str, Commodity] = {}
    first_line: dict[str, int] = {}
    parsed: dict[str, Commodity] = {}  # many items share a commodity: parse each key once
    for line, row in rows[1:]:
        if len(row) != len(HEADER):
            raise ImportRowError(f"{path}:{line}: has {len(row)} fields, not 2 (item,commodity)")
        item, key = row
        _check_item(path, line, item)
        if item in first_line:
            raise ImportRowError(
                f"{path}:{line}: field 'item': {item!r:.80} is mapped twice "
                f"(first on line {first_line[item]})"
            )
        first_line[item] = line
        mapping[item] = parsed.get(key) or parsed.setdefault(key, _commodity(path, line, key))
    return mapping


def _check_item(path: Path, line: int, item: str) -> None:
    if not item or item != item.strip() or len(item) > MAX_ITEM or not item.isprintable():
        raise ImportRowError(
            f"{path}:{line}: field 'item': {item!r:.80} must be 1-{MAX_ITEM} printable "
            "characters without leading or trailing spaces"
        )


def _commodity(path: Path, line: int, key: str) -> Commodity:
    try:
        return parse_commodity(key)
    except ValueError as exc:
        raise ImportRowError(f"{path}:{line}: field 'commodity': {exc}") from None
