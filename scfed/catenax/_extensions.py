"""scfed's semiconductor extensions from CSV rows: order book, lead time, fab, WIP, goods. Pure.

The CSV reader hands over one row as column name to text; each column is a field of the
record message, and every column must be there, no other. Surrounding spaces are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial

from google.protobuf.message import Message

from protos.scfed.v1 import records_pb2 as pb
from scfed.catenax import _scalars as s
from scfed.errors import ImportRowError

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _amount(value: object) -> str:
    """A non-negative decimal such as 12, 3.5 or 1e3, as canonical decimal text."""
    raw = s.text(value)
    if _NUMBER.fullmatch(raw) is None:
        raise s.Invalid(f"must be a number such as 12 or 3.5, got {s.show(value)}")
    return s.canonical(Decimal(raw), minimum=Decimal(0), maximum=s.LIMIT)


_Check = Callable[[object], str]
_ITEM: _Check = partial(s.text, blank=False)
_UNIT = s.choice(s.UNITS, "a Catena-X unit such as 'unit:piece', or a scfed wafer unit")
_WAFER_UNIT = s.choice(s.WAFER_EQUIVALENTS, "a wafer unit: " + ", ".join(s.WAFER_EQUIVALENTS))
_STOCK: Mapping[str, _Check] = {
    "item": _ITEM, "week": s.monday, "quantity": _amount, "unit": _UNIT
}  # fmt: skip

#: CSV record kinds, each with its message and its columns' checks in column order.
EXTENSIONS: Mapping[str, tuple[type[Message], Mapping[str, _Check]]] = {
    "order_book": (
        pb.OrderBook,
        {
            "item": _ITEM,
            "week": s.monday,
            "bookings": _amount,
            "billings": _amount,
            "backlog": _amount,
            "unit": _UNIT,
        },
    ),
    "quoted_lead_time": (
        pb.QuotedLeadTime,
        {"item": _ITEM, "week": s.monday, "lead_time_weeks": _amount},
    ),
    "fab_utilisation": (
        pb.FabUtilisation,
        {
            "item": _ITEM,
            "week": s.monday,
            "wafer_starts_capacity": _amount,
            "wafer_starts_actual": _amount,
            # Wafer starts are wafers: only a wafer unit converts to 300 mm equivalents.
            "unit": _WAFER_UNIT,
        },
    ),
    "work_in_progress": (pb.WorkInProgress, _STOCK),
    "finished_goods": (pb.FinishedGoods, _STOCK),
}
EXTENSION_KINDS: tuple[str, ...] = tuple(EXTENSIONS)


def parse_extension(kind: str, fields: Mapping[str, str], *, source: str, line: int) -> Message:
    """The extension record of CSV kind ``kind`` that one row's ``fields`` give, checked.

    Raises ImportRowError naming ``source``, ``line``, the field and the reason.
    """
    where = f"{source}, line {line}"
    spec = EXTENSIONS.get(kind)
    if spec is None:
        known = ", ".join(EXTENSION_KINDS)
        raise ImportRowError(f"{where}: unknown record kind {kind!r}; known: {known}")
    model, checks = spec
    _check_columns(fields, checks, where)
    record = model()
    for column, check in checks.items():
        setattr(record, column, _value(check, fields[column], f"{where}: field {column!r}"))
    return record


def _check_columns(fields: Mapping[str, object], checks: Mapping[str, _Check], where: str) -> None:
    if not all(isinstance(name, str) for name in fields):  # csv.DictReader's key for extras
        raise ImportRowError(f"{where}: the row has more values than the header has columns")
    unknown = [name for name in fields if name not in checks]
    if unknown:
        raise ImportRowError(
            f"{where}: field {s.show(unknown[0])} is not a column of this kind"
            f" (columns: {', '.join(checks)})"
        )
    for column in checks:
        if fields.get(column) is None:  # a short row reaches us as None, whatever the types say
            raise ImportRowError(f"{where}: field {column!r} is missing (required)")


def _value(check: _Check, value: object, where: str) -> str:
    try:
        if isinstance(value, str) and not value.strip():
            raise s.Invalid("is empty")
        return check(value.strip() if isinstance(value, str) else value)
    except s.Invalid as exc:
        raise ImportRowError(f"{where} {exc}") from None
