"""The public commodity taxonomy: the only key that crosses firm boundaries.

Pure (no I/O). A commodity is a point in five dimensions: supply-chain stage, WSTS product
class, technology-node bucket, wafer size and region. Its key is the five values joined by
``/``, for example ``fabrication/analog/90-180nm/200mm/JP-Kyushu``. A firm maps its own
material numbers, asset ids and capacity groups onto these keys on its own node; only the keys
and ISO weeks appear in a query.

"Not applicable" is written ``na`` (a design house has no wafer size), not ``n/a``: ``/``
separates the dimensions, and a key must split the same way everywhere.

A region is an ISO 3166-1 alpha-2 country code (every officially assigned code is accepted),
optionally followed by ``-`` and one of the named subregions listed in ``SUBREGIONS``.
The list is versioned with the taxonomy: adding a value is a new ``VERSION``.

Weeks are ISO 8601 weeks, keyed by their Monday.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

VERSION = "2026.1"

NOT_APPLICABLE = "na"

STAGES = ("design", "fabrication", "assembly-test-packaging", "equipment", "materials")
#: The WSTS product classes.
PRODUCT_CLASSES = ("discrete", "opto", "sensors", "analog", "logic", "memory", "micro")
NODES = ("<=5nm", "7-10nm", "14-28nm", "40-65nm", "90-180nm", ">=250nm", NOT_APPLICABLE)
WAFERS = ("300mm", "200mm", "150mm", NOT_APPLICABLE)

#: Every officially assigned ISO 3166-1 alpha-2 code (249 codes, as of 2026).
# fmt: off
COUNTRIES = frozenset((
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
))
# fmt: on

#: Named subregions, per country: the semiconductor clusters whose shortages people watch
#: separately from their country (an earthquake in Kyushu, a drought in Hsinchu).
SUBREGIONS: dict[str, tuple[str, ...]] = {
    "CN": ("Beijing", "Guangdong", "Jiangsu", "Shanghai"),
    "DE": ("Bavaria", "Saxony"),
    "FR": ("Isere",),
    "IN": ("Gujarat",),
    "JP": ("Hokkaido", "Kansai", "Kanto", "Kyushu", "Tohoku"),
    "KR": ("Chungcheong", "Gyeonggi", "Gyeongsang"),
    "MY": ("Kedah", "Penang", "Sarawak"),
    "NL": ("Brabant",),
    "TW": ("Hsinchu", "Kaohsiung", "Taichung", "Tainan"),
    "US": ("Arizona", "California", "Idaho", "NewYork", "Ohio", "Oregon", "Texas"),
}

_KEY_PARTS = 5


def check_region(region: str) -> str:
    """``region`` if it is ``CC`` or ``CC-Subregion``, else ValueError saying what is wrong."""
    country, dash, subregion = region.partition("-")
    if country not in COUNTRIES:
        raise ValueError(
            f"region {region!r:.40}: {country!r:.20} is not an ISO 3166-1 alpha-2 country code"
            " (two capital letters, such as JP or US)"
        )
    if dash and subregion not in SUBREGIONS.get(country, ()):
        allowed = ", ".join(f"{country}-{name}" for name in SUBREGIONS.get(country, ()))
        raise ValueError(
            f"region {region!r:.40}: {subregion!r:.30} is not a subregion of {country} "
            f"in taxonomy {VERSION} ({'use ' + allowed if allowed else 'it has none'})"
        )
    return region


def _check_choice(dimension: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(
            f"{dimension} {value!r:.40} is not in taxonomy {VERSION}; use one of: "
            + ", ".join(allowed)
        )


@dataclass(frozen=True)
class Commodity:
    """One commodity of the taxonomy; constructing it checks every dimension."""

    stage: str
    product_class: str
    node: str
    wafer: str
    region: str

    def __post_init__(self) -> None:
        _check_choice("stage", self.stage, STAGES)
        _check_choice("product class", self.product_class, PRODUCT_CLASSES)
        _check_choice("technology node", self.node, NODES)
        _check_choice("wafer size", self.wafer, WAFERS)
        check_region(self.region)

    @property
    def key(self) -> str:
        """The public key: ``stage/class/node/wafer/region``."""
        return "/".join((self.stage, self.product_class, self.node, self.wafer, self.region))

    @property
    def country(self) -> str:
        return self.region.partition("-")[0]


def parse_commodity(text: str) -> Commodity:
    """The commodity whose key is ``text``; ValueError names the dimension that is wrong."""
    parts = text.split("/")
    if len(parts) != _KEY_PARTS:
        hint = " (write 'na' for not applicable, not 'n/a')" if "n/a" in text else ""
        raise ValueError(
            f"commodity {text!r:.80} has {len(parts)} parts, not 5: "
            f"use stage/class/node/wafer/region{hint}"
        )
    stage, product_class, node, wafer, region = parts
    return Commodity(stage, product_class, node, wafer, region)


# ---- ISO weeks, keyed by their Monday ----

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def iso_monday(day: date) -> date:
    """The Monday of the ISO week that contains ``day``."""
    return day - timedelta(days=day.weekday())


def parse_week(text: str) -> date:
    """The Monday of a week written ``YYYY-MM-DD`` (a Monday) or ``YYYY-Www``."""
    week = _WEEK.fullmatch(text)
    if week:
        try:
            return date.fromisocalendar(int(week[1]), int(week[2]), 1)
        except ValueError:
            raise ValueError(f"{text!r:.40}: {week[1]} has no ISO week {week[2]}") from None
    if not _DAY.fullmatch(text):
        raise ValueError(f"{text!r:.40} is not a week: use YYYY-MM-DD (a Monday) or YYYY-Www")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r:.40} is not a valid date") from None
    if day.weekday() != 0:
        raise ValueError(
            f"{text} is a {_DAYS[day.weekday()]}, not a Monday: weeks are keyed by their Monday"
            f" (that week's is {iso_monday(day).isoformat()})"
        )
    return day


def week_label(monday: date) -> str:
    """The ISO week label of a Monday, such as ``2026-W48``."""
    if monday.weekday() != 0:
        raise ValueError(f"{monday.isoformat()} is not a Monday")
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"
