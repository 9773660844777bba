"""The public commodity taxonomy: keys, every dimension's refusal, regions and ISO weeks."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from scfed import taxonomy
from scfed.taxonomy import (
    COUNTRIES,
    NODES,
    PRODUCT_CLASSES,
    STAGES,
    SUBREGIONS,
    WAFERS,
    Commodity,
    check_region,
    iso_monday,
    parse_commodity,
    parse_week,
    week_label,
)

KEY = "fabrication/analog/90-180nm/200mm/JP-Kyushu"


def test_key_round_trips() -> None:
    commodity = parse_commodity(KEY)
    assert commodity == Commodity("fabrication", "analog", "90-180nm", "200mm", "JP-Kyushu")
    assert commodity.key == KEY
    assert commodity.country == "JP"
    assert taxonomy.VERSION == "2026.1"


def test_every_combination_of_values_round_trips() -> None:
    for stage in STAGES:
        for product_class in PRODUCT_CLASSES:
            for node in NODES:
                for wafer in WAFERS:
                    commodity = Commodity(stage, product_class, node, wafer, "US-Arizona")
                    assert parse_commodity(commodity.key) == commodity


@pytest.mark.parametrize(
    ("key", "dimension"),
    [
        ("fab/analog/90-180nm/200mm/JP", "stage 'fab'"),
        ("fabrication/analogue/90-180nm/200mm/JP", "product class 'analogue'"),
        ("fabrication/analog/3nm/200mm/JP", "technology node '3nm'"),
        ("fabrication/analog/90-180nm/450mm/JP", "wafer size '450mm'"),
        ("fabrication/analog/90-180nm/200mm/XX", "'XX' is not an ISO 3166-1 alpha-2"),
        ("fabrication/analog/90-180nm/200mm/jp", "'jp' is not an ISO 3166-1 alpha-2"),
        ("fabrication/analog/90-180nm/200mm/JP-Osaka", "'Osaka' is not a subregion of JP"),
        ("fabrication/analog/90-180nm/200mm/SG-Jurong", "'Jurong' is not a subregion of SG"),
        ("fabrication/analog/90-180nm/200mm", "has 4 parts, not 5"),
        ("fabrication/analog/90-180nm/200mm/JP/x", "has 6 parts, not 5"),
        ("", "has 1 parts, not 5"),
    ],
)
def test_each_dimension_is_refused_precisely(key: str, dimension: str) -> None:
    with pytest.raises(ValueError, match=re.escape(dimension)):
        parse_commodity(key)


def test_refusal_lists_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"use one of: <=5nm, 7-10nm, 14-28nm"):
        parse_commodity("fabrication/logic/2nm/300mm/TW-Hsinchu")
    with pytest.raises(ValueError, match="use JP-Hokkaido, JP-Kansai"):
        check_region("JP-Osaka")
    with pytest.raises(ValueError, match="it has none"):
        check_region("SG-Jurong")


def test_not_applicable_is_na_and_n_slash_a_gets_a_hint() -> None:
    assert parse_commodity("design/logic/<=5nm/na/US").wafer == "na"
    with pytest.raises(ValueError, match="write 'na' for not applicable"):
        parse_commodity("design/logic/n/a/n/a/US")


def test_the_constructor_checks_too() -> None:
    with pytest.raises(ValueError, match="stage"):
        Commodity("packaging", "logic", "na", "na", "MY-Penang")


def test_iso_country_codes() -> None:
    assert len(COUNTRIES) == 249
    for code in ("JP", "TW", "KR", "US", "DE", "CN", "MY", "SG", "NL", "AX", "BQ", "SS"):
        assert check_region(code) == code
    for code in ("XK", "UK", "EU", "J", "JPN", "jp"):
        with pytest.raises(ValueError, match="ISO 3166-1"):
            check_region(code)


def test_countries_match_the_tz_database_list_when_present() -> None:
    # An independent copy of the ISO 3166-1 alpha-2 list, shipped with the time zone database.
    table = Path("/usr/share/zoneinfo/iso3166.tab")
    if not table.exists():
        pytest.skip("the time zone database's iso3166.tab is not installed")
    lines = table.read_text(encoding="utf-8").splitlines()
    codes = {line.split("\t")[0] for line in lines if line and not line.startswith("#")}
    assert codes == COUNTRIES


def test_subregions() -> None:
    for country, names in SUBREGIONS.items():
        assert country in COUNTRIES
        assert list(names) == sorted(names)
        for name in names:
            assert check_region(f"{country}-{name}") == f"{country}-{name}"
            assert "/" not in name
            assert "-" not in name
    for region in ("JP-Kyushu", "JP-Tohoku", "TW-Hsinchu", "TW-Tainan", "KR-Gyeonggi",
                   "US-Arizona", "US-Texas", "US-Oregon", "US-NewYork", "DE-Saxony",
                   "CN-Jiangsu", "MY-Penang"):  # fmt: skip
        check_region(region)
    with pytest.raises(ValueError, match="subregion"):
        check_region("JP-")


def test_weeks() -> None:
    assert iso_monday(date(2026, 12, 3)) == date(2026, 11, 30)
    assert iso_monday(date(2026, 11, 30)) == date(2026, 11, 30)
    assert iso_monday(date(2027, 1, 3)) == date(2026, 12, 28)
    assert parse_week("2026-11-30") == date(2026, 11, 30)
    assert parse_week("2026-W49") == date(2026, 11, 30)
    assert parse_week("2026-W53") == date(2026, 12, 28)  # 2026 has 53 ISO weeks
    assert parse_week("2021-W01") == date(2021, 1, 4)
    assert week_label(date(2026, 11, 30)) == "2026-W49"
    assert week_label(date(2024, 12, 30)) == "2025-W01"  # the ISO year, not the calendar year
    for monday in (date(2026, 1, 5), date(2020, 12, 28), date(2027, 1, 4)):
        assert parse_week(week_label(monday)) == monday


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-12-01", "is a Tuesday, not a Monday"),
        ("2026-12-06", "that week's is 2026-11-30"),
        ("2026-02-30", "not a valid date"),
        ("2025-W53", "2025 has no ISO week 53"),
        ("2026-W00", "no ISO week 00"),
        ("2026-W5", "is not a week"),
        ("30.11.2026", "is not a week"),
        ("", "is not a week"),
        ("2026-11-30T00:00", "is not a week"),
    ],
)
def test_bad_weeks_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_week(text)


def test_week_label_wants_a_monday() -> None:
    with pytest.raises(ValueError, match="not a Monday"):
        week_label(date(2026, 12, 1))
