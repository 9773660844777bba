"""Single values of Catena-X payloads and scfed CSV rows: checks, canonical forms, dates. Pure.

A check takes a parsed JSON value and returns what the record stores (decimal text, the
original string, a bool) or raises ``Invalid`` with a reason worded to follow "field 'x' ".
The caller adds the file, the JSON path or CSV line, and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

#: Longest free text kept; the schemas' UserInputTrait allows 4000 for notification texts.
MAX_TEXT = 1000
MAX_USER_INPUT = 4000
#: Fixed point of the node's store: 18 integer digits and 9 decimal places stay exact in sums.
MAX_PLACES = 9
LIMIT = Decimal("999999999999999999.999999999")
#: QuantityTrait of WeekBasedMaterialDemand and WeekBasedCapacityGroup.
QUANTITY_TRAIT_MAX = Decimal("999999999999999999.999")

# ItemUnitEnumeration of urn:samm:io.catenax.shared.quantity:2.0.0, the same in every schema.
CATENAX_UNITS = (
    "unit:piece", "unit:set", "unit:pair", "unit:page", "unit:cycle", "unit:kilowattHour",
    "unit:gram", "unit:kilogram", "unit:tonneMetricTon", "unit:tonUsOrShortTonUkorus",
    "unit:ounceAvoirdupois", "unit:pound", "unit:metre", "unit:centimetre", "unit:kilometre",
    "unit:inch", "unit:foot", "unit:yard", "unit:squareCentimetre", "unit:squareMetre",
    "unit:squareInch", "unit:squareFoot", "unit:squareYard", "unit:cubicCentimetre",
    "unit:cubicMetre", "unit:cubicInch", "unit:cubicFoot", "unit:cubicYard", "unit:litre",
    "unit:millilitre", "unit:hectolitre", "unit:secondUnitOfTime", "unit:minuteUnitOfTime",
    "unit:hourUnitOfTime", "unit:day",
)  # fmt: skip
#: Wafers counted by size, each worth its area in 300 mm wafers: (d / 300)^2, exactly.
WAFER_EQUIVALENTS: dict[str, Fraction] = {
    "scfed:wafer-300mm-equivalent": Fraction(1),
    "scfed:wafer-200mm": Fraction(4, 9),
    "scfed:wafer-150mm": Fraction(1, 4),
}
UNITS: frozenset[str] = frozenset(CATENAX_UNITS) | frozenset(WAFER_EQUIVALENTS)

Stored = str | bool


class Invalid(Exception):  # noqa: N818  (internal signal, always turned into ImportRowError)
    """A value breaks its rule; the message is the reason."""


def _same(value: Stored) -> object:
    return value


@dataclass(frozen=True)
class Scalar:
    """How one JSON scalar is checked and stored (``parse``) and given back (``dump``)."""

    parse: Callable[[object], Stored]
    dump: Callable[[Stored], object] = _same


def show(value: object) -> str:
    """A short, safe rendering of a bad value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def text(value: object, *, max_len: int = MAX_TEXT, blank: bool = True) -> str:
    """A string of at most ``max_len`` characters; with ``blank`` False it must show something."""
    if not isinstance(value, str):
        raise Invalid(f"must be a string, got {show(value)}")
    if len(value) > max_len:
        raise Invalid(f"is {len(value)} characters long, at most {max_len} allowed")
    if not blank and not value.strip():
        raise Invalid("must not be empty")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # JSON allows lone surrogates ("\ud800"); UTF-8 does not
            raise Invalid("is not valid Unicode text (it holds a lone surrogate)") from None
    return value


def pattern(regex: str, what: str) -> Callable[[object], str]:
    """A string matching ``regex`` in full, described as ``what`` in errors."""
    compiled = re.compile(regex)

    def check(value: object) -> str:
        if compiled.fullmatch(text(value)) is None:
            raise Invalid(f"must be {what}, got {show(value)}")
        return str(value)

    return check


def choice(values: Iterable[str], what: str) -> Callable[[object], str]:
    """One of ``values``."""
    allowed = frozenset(values)

    def check(value: object) -> str:
        if text(value) not in allowed:
            raise Invalid(f"must be {what}, got {show(value)}")
        return str(value)

    return check


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {show(value)}")
    return value


# ---- numbers ----


def decimal_of(value: object) -> Decimal:
    """The exact value of a JSON number (int, float or Decimal); bools and strings are not."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise Invalid(f"must be a number, got {show(value)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(f"must be a finite number, got {value}")
        # repr is the shortest text that reads back as this float: what the file said.
        return Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        raise Invalid(f"must be a finite number, got {value}")
    return Decimal(value)


def canonical(
    number: Decimal, *, minimum: Decimal | None, maximum: Decimal, integral: bool = False
) -> str:
    """``number`` as plain decimal text without trailing zeros, after checking its range."""
    if minimum is not None and number < minimum:
        floor = "not be negative" if minimum == 0 else f"be at least {minimum}"
        raise Invalid(f"must {floor}, got {number}")
    if abs(number) > maximum:
        shown = str(number) if len(str(number)) <= 30 else f"{number:.3E}"
        raise Invalid(f"must be at most {maximum}, got {shown}")
    if number.is_zero():
        return "0"
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by decimal_of
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if exponent + zeros < -MAX_PLACES:
        raise Invalid(f"has more than {MAX_PLACES} decimal places, got {number}")
    plain = format(number, "f")
    plain = plain.rstrip("0").rstrip(".") if "." in plain else plain
    if integral and "." in plain:
        raise Invalid(f"must be a whole number, got {plain}")
    return plain


def number(
    *,
    minimum: Decimal | None = Decimal(0),
    maximum: Decimal = LIMIT,
    integral: bool = False,
) -> Scalar:
    """A JSON number, stored as canonical decimal text and given back as int or float."""

    def check(value: object) -> str:
        return canonical(decimal_of(value), minimum=minimum, maximum=maximum, integral=integral)

    return Scalar(check, json_number)


def json_number(stored: Stored) -> object:
    """Stored decimal text as the JSON number it came from: ``==`` to the parsed original.

    Fractions come back as floats. Whole numbers come back as ints, which equal a float
    original too, except above 2^53, where not every whole number is a double: there the text
    a double prints as comes back as that double. (An int original above 2^53 that is exactly
    such a text but no double is the one case that comes back unequal.)
    """
    value = Decimal(str(stored))
    if value != value.to_integral_value():
        return float(value)
    whole = int(value)
    if abs(whole) <= 2**53 or Decimal(repr(float(whole))) != value:
        return whole
    return float(whole)


# ---- dates and times ----

_DATE = re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})")
# samm:characteristic:2.2.0#Timestamp as the schemas give it, anchored: time zone optional.
_SAMM_TIMESTAMP = re.compile(
    r"(?P<y>-?(?:[1-9][0-9]{3,}|0[0-9]{3}))-(?P<m>0[1-9]|1[0-2])-(?P<d>0[1-9]|[12][0-9]|3[01])"
    r"T(?P<t>(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?|24:00:00(?:\.0+)?)"
    r"(?P<z>Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?"
)
# JSON Schema "format": "date-time", which is RFC 3339: the offset is required.
_RFC3339 = re.compile(
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})[Tt]"
    r"(?P<t>(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?)"
    r"(?P<z>[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _calendar_day(match: re.Match[str], value: object) -> date:
    year = int(match["y"])
    if not 1 <= year <= 9999:
        raise Invalid(f"must be in the years 0001 to 9999, got {show(value)}")
    try:
        return date(year, int(match["m"]), int(match["d"]))
    except ValueError:
        raise Invalid(f"is not a day of the calendar, got {show(value)}") from None


def calendar_date(value: object) -> str:
    """A "YYYY-MM-DD" date that exists."""
    match = _DATE.fullmatch(text(value))
    if match is None:
        raise Invalid(f"must be a date YYYY-MM-DD, got {show(value)}")
    _calendar_day(match, value)
    return str(value)


def monday(value: object) -> str:
    """A "YYYY-MM-DD" date that is the Monday of its ISO week."""
    day = date.fromisoformat(calendar_date(value))
    if day.weekday() != 0:
        start = day - timedelta(days=day.weekday())
        raise Invalid(
            f"must be the Monday of an ISO week, got {day} which is a {_WEEKDAYS[day.weekday()]}"
            f" (that week's Monday is {start})"
        )
    return str(value)


def samm_timestamp(value: object) -> str:
    """A date and time in the SAMM timestamp form; the time zone may be left out."""
    match = _SAMM_TIMESTAMP.fullmatch(text(value))
    if match is None:
        raise Invalid(f"must be a date and time YYYY-MM-DDThh:mm:ss[.f][zone], got {show(value)}")
    _calendar_day(match, value)
    return str(value)


def rfc3339(value: object) -> str:
    """An RFC 3339 date-time, with its time zone offset."""
    match = _RFC3339.fullmatch(text(value))
    if match is None:
        raise Invalid(
            f"must be an RFC 3339 date-time YYYY-MM-DDThh:mm:ss[.f](Z or +hh:mm or -hh:mm),"
            f" got {show(value)}"
        )
    _calendar_day(match, value)
    return str(value)


def _moment(stored: str) -> re.Match[str]:
    match = _SAMM_TIMESTAMP.fullmatch(stored) or _RFC3339.fullmatch(stored)
    if match is None:
        raise ValueError(f"not a validated timestamp: {stored!r}")
    return match


def local_day(stored: str) -> date:
    """The calendar day a validated timestamp names where it was written (24:00 ends a day)."""
    match = _moment(stored)
    day = date(int(match["y"]), int(match["m"]), int(match["d"]))
    return day + timedelta(days=1) if match["t"].startswith("24") else day


def instant(stored: str) -> datetime:
    """A validated timestamp as an aware datetime for ordering; no zone is read as UTC."""
    match = _moment(stored)
    hour, minute, second = (int(part[:2]) for part in match["t"].split(":"))
    fraction = match["t"].partition(".")[2][:6].ljust(6, "0")
    zone = match["z"]
    tz = UTC if zone is None or zone in "Zz" else _offset(zone)
    start = datetime(int(match["y"]), int(match["m"]), int(match["d"]), tzinfo=tz)
    # A leap second (60) orders just after second 59, which is all ordering needs.
    return start + timedelta(
        hours=hour, minutes=minute, seconds=min(second, 59), microseconds=int(fraction)
    )


def _offset(zone: str) -> timezone:
    sign = -1 if zone[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
