"""``scfed node data --format csv|json|xlsx``: the node's weekly totals, exactly, as a file."""

from __future__ import annotations

import argparse
import csv
import io
import json
import stat
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from scfed.cli.node_data import add_commands
from scfed.errors import ConfigError
from tests.unit._support import NODE_TOML

ANALOG = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
#: This week's Monday and the next, as ``node data`` counts them.
TODAY = datetime.now(UTC).date()
THIS = TODAY - timedelta(days=TODAY.weekday())
NEXT = THIS + timedelta(weeks=1)
BIG = Decimal("123456789012345678.5")  # 19 digits: more than an Excel number holds


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A node folder whose database holds demand in pieces and fab starts in wafers."""
    config = tmp_path / "node.toml"
    config.write_text(NODE_TOML, encoding="utf-8")
    (tmp_path / "mapping.csv").write_text(
        f"item,commodity\nMAT-1,{ANALOG}\nMAT-2,{ANALOG}\n", encoding="utf-8"
    )
    demand = tmp_path / "demand.csv"
    demand.write_text(
        "# kind: demand\nitem,week,quantity,unit,category\n"
        f"MAT-1,{THIS},1000,unit:piece,0001\nMAT-2,{THIS},250.5,unit:piece,0001\n"
        f"MAT-1,{NEXT},{BIG},unit:piece,0001\n",
        encoding="utf-8",
    )
    fab = tmp_path / "fab.csv"
    fab.write_text(
        "# kind: fab_utilisation\nitem,week,wafer_starts_capacity,wafer_starts_actual,unit\n"
        f"MAT-1,{THIS},900,450,scfed:wafer-200mm\n",
        encoding="utf-8",
    )
    for path in (demand, fab):
        assert _run("import", "--config", str(config), str(path)) == 0
    return config


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


EXPECTED = [
    ("demand", "unit:piece", THIS, Decimal("1250.5")),
    ("demand", "unit:piece", NEXT, BIG),
    ("wafer_starts_actual", "scfed:wafer-300mm-equivalent", THIS, Decimal(200)),
    ("wafer_starts_capacity", "scfed:wafer-300mm-equivalent", THIS, Decimal(400)),
]


def test_xlsx_export_is_a_sheet_with_a_header_and_units_in_a_column(
    node: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = tmp_path / "export" / "data.xlsx"
    out.parent.mkdir()
    assert _run("data", "--config", str(node), "--format", "xlsx", "--output", str(out)) == 0
    assert capsys.readouterr().out == f"wrote 4 rows of weekly totals to {out}\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # the firm's own figures
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["totals"]
    sheet = book["totals"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("metric", "unit", "week", "quantity")
    got = [(m, u, w.date() if isinstance(w, datetime) else w, q) for m, u, w, q in rows[1:]]
    assert got == [
        ("demand", "unit:piece", THIS, 1250.5),
        ("demand", "unit:piece", NEXT, f"{BIG}"),  # text, so that it stays exact
        ("wafer_starts_actual", "scfed:wafer-300mm-equivalent", THIS, 200),
        ("wafer_starts_capacity", "scfed:wafer-300mm-equivalent", THIS, 400),
    ]
    assert sheet["C2"].is_date
    assert sheet["C2"].number_format == "yyyy-mm-dd"
    assert sheet.freeze_panes == "A2"


def test_csv_export_to_stdout_is_exact(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run("data", "--config", str(node), "--format", "csv", "--weeks", "2") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["metric", "unit", "week", "quantity"]
    assert rows[1:] == [[m, u, w.isoformat(), f"{q}"] for m, u, w, q in EXPECTED]


def test_json_export_to_a_file(node: Path, tmp_path: Path) -> None:
    out = tmp_path / "data.json"
    assert _run("data", "--config", str(node), "--format", "json", "--output", str(out)) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["weeks"][:2] == [THIS.isoformat(), NEXT.isoformat()]
    assert len(document["weeks"]) == 8
    assert document["totals"] == [
        {"metric": m, "unit": u, "week": w.isoformat(), "quantity": f"{q}"}
        for m, u, w, q in EXPECTED
    ]


def test_outside_the_weeks_asked_for_nothing_is_exported(
    node: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert _run("data", "--config", str(node), "--format", "csv", "--weeks", "1") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [row[2] for row in rows[1:]] == [THIS.isoformat()] * 3


def test_the_table_is_still_the_default(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run("data", "--config", str(node)) == 0
    out = capsys.readouterr().out
    assert out.startswith("kind ")
    assert "totals over all commodities" in out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--format", "xlsx"], "--format xlsx writes a workbook: give --output FILE"),
        (["--output", "x.csv"], "--output is for --format csv, json or xlsx"),
        (["--format", "csv", "--output", "missing/x.csv"], "missing/x.csv: cannot write"),
    ],
)
def test_export_options_that_cannot_work_are_refused(
    node: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], reason: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=reason):
        _run("data", "--config", str(node), *argv)
