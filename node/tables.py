"""Tables of text rows, a CSV file's or a sheet's, and what an import keeps as it reads one.

Does I/O: a CSV file's text is read as a stream; the key of every row read is kept in a
private temporary SQLite database (``Keys``), on disk past a few megabytes, so that a file of
any size is checked in bounded memory. The rest is small: the unit class of each metric of
each commodity (``UnitClasses``), and the bad rows (``Problems``), the first
``MAX_REPORTED`` of them in full.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TextIO

from node.records import Fact, unit_class
from scfed.errors import ImportRowError, StorageError

#: An import names this many bad rows in full, then says how many more there are.
MAX_REPORTED = 100


class Problems:
    """The bad rows of one file: the first ``MAX_REPORTED`` in full, then only counted."""

    def __init__(self, path: Path, what: str = "rows") -> None:
        self.path, self.what = path, what
        self.lines: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_REPORTED:
            self.lines.append(message)

    def check(self) -> None:
        """Raise one error that names every bad row, if there is one."""
        if self.count == 1:
            raise ImportRowError(self.lines[0])
        if self.count:
            head = f"{self.path}: {self.count:,} bad {self.what}, so nothing of it was imported:"
            more = self.count - len(self.lines)
            tail = [f"and {more:,} more"] if more else []
            raise ImportRowError("\n  ".join([head, *self.lines, *tail]))


class UnitClasses:
    """The unit class a file gives each metric of each commodity in, and where it first does:
    a sum over two classes (pieces and kilograms) would mean nothing."""

    def __init__(self, noun: str = "") -> None:
        self.noun = noun  # what a place is called: "line ", "row ", "" (a JSON path)
        self.first: dict[tuple[str, str], tuple[str, int | str]] = {}

    def problem(self, facts: Iterable[Fact], where: int | str) -> str | None:
        """Why ``facts`` cannot join those before them, or None if they can."""
        for fact in facts:
            cls = unit_class(fact.unit)
            held, first = self.first.setdefault((fact.metric, fact.commodity), (cls, where))
            if held != cls:
                return (
                    f"{fact.unit} cannot be summed with {held}, in which {self.noun}{first} gives "
                    f"{fact.metric} of {fact.commodity}; give every {fact.metric} figure of a "
                    "commodity in one unit (wafer sizes convert to 300 mm equivalents)"
                )
        return None


class Keys:
    """The key of every row so far and the line it is on: the one thing an import keeps of
    each row, in a private temporary SQLite database, which SQLite keeps on disk past a few
    megabytes, so that a file of any size is imported in bounded memory."""

    def __init__(self) -> None:
        try:
            self._db = sqlite3.connect("", isolation_level=None)  # "": temporary, on disk
            for statement in _KEYS:
                self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot make a temporary index of the file's rows: {exc}") from exc

    def first(self, key: str, line: int) -> int:
        """The line ``key`` was first given on: ``line``, unless a row before gave it."""
        try:
            if self._db.execute(_ADD_KEY, (key, line)).rowcount:
                return line
            (first,) = self._db.execute("SELECT line FROM seen WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot index the file's rows: {exc}") from exc
        return int(first)

    def close(self) -> None:
        self._db.close()  # and with it the temporary file


_ADD_KEY = "INSERT INTO seen VALUES (?, ?) ON CONFLICT DO NOTHING"
_KEYS = (
    "PRAGMA journal_mode=OFF",  # nothing in it outlives the import
    "CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID",
    "BEGIN",  # one transaction, never committed: the index is dropped when it is closed
)


# ---- Tables ----


class Table(Protocol):
    """Rows of cell texts, a CSV file's or a sheet's, and how to name a place in them."""

    path: Path
    #: What a place in it is called: "line" or "row".
    noun: str

    @property
    def line_num(self) -> int:
        """The line (or sheet row) the last row given ended on."""

    def __iter__(self) -> Iterator[list[str]]: ...

    def where(self, line: int) -> str: ...

    def origin(self, line: int) -> int | str: ...

    def field(self, at: int, name: str) -> str: ...

    def fit(self, line: int, row: list[str], columns: Sequence[str]) -> list[str]:
        """``row``, which does not have one value per column, made to, else ImportRowError."""


class CsvTable:
    """A CSV file's rows, read from its text a line at a time."""

    noun = "line"

    def __init__(self, path: Path, text: TextIO) -> None:
        self.path = path
        self._reader = csv.reader(text, strict=True)

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self) -> Iterator[list[str]]:
        try:
            yield from self._reader
        except csv.Error as exc:
            raise ImportRowError(f"{self.path}:{self.line_num}: not valid CSV: {exc}") from None

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"

    def origin(self, line: int) -> int:
        return line

    def field(self, at: int, name: str) -> str:
        return f"field {name!r}"

    def fit(self, line: int, row: list[str], columns: Sequence[str]) -> list[str]:
        raise ImportRowError(
            f"{self.where(line)}: row: has {len(row)} fields, not {len(columns)} "
            f"({','.join(columns)})"
        )


def read_preamble(
    table: Table, rows: Iterator[list[str]], given: str | None, kinds: Iterable[str]
) -> tuple[str, list[str]]:
    """The file's kind and header, after its leading ``#`` comment lines (one of them may be
    ``# kind: KIND``, else ``given`` names the kind, one of ``kinds``)."""
    kind = given
    for row in rows:
        text = ",".join(row).strip()
        if text.startswith("#"):
            label, colon, value = text.lstrip("#").partition(":")
            if colon and label.strip() == "kind":
                if kind is not None and kind != value.strip():
                    said = "--kind says" if given else "an earlier line says"
                    raise ImportRowError(
                        f"{table.where(table.line_num)}: kind: the file says "
                        f"{value.strip()!r:.40} but {said} {kind!r:.40}"
                    )
                kind = value.strip()
        elif text:
            if kind is None:
                raise ImportRowError(
                    f"{table.where(1)}: kind: not given; use --kind or start the file with a "
                    "line '# kind: KIND' (KIND one of " + ", ".join(kinds) + ")"
                )
            return kind, row
    raise ImportRowError(f"{table.where(1)}: header: missing, the file is empty")
