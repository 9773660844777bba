"""Governance declares crises in its catalogue file: ``[[crisis]]`` tables signed with the
policy (``governance.catalogue``), appended by ``scfed crisis declare`` only when the whole
file still reads as a policy (``scfed.cli.crisis_declare``)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.catalogue import EXAMPLE, read_catalogue
from scfed.cli.crisis_declare import add_declare, crisis_block
from scfed.errors import ConfigError
from scfed.policy import open_policy, seal_policy
from scfed.wire.policy import Crisis, decode_policy, encode_policy
from tests.unit._support import Rng

KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
HSINCHU = "fabrication/logic/14-28nm/300mm/TW-Hsinchu"
ORIGIN = "scfed.test/crisis"
START, END = date(2026, 11, 23), date(2027, 2, 28)
CRISIS = f"""
[[crisis]]
name = "kyushu-legacy"
purpose = "the Kyushu earthquake"
commodities = ["{KYUSHU}", "{HSINCHU}", "{KYUSHU}"]
start = 2026-11-23
end = 2027-02-28
"""


def _catalogue(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _declare(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="scfed crisis")
    add_declare(parser.add_subparsers(dest="crisis_command", required=True))
    args = parser.parse_args(["declare", *argv])
    code: int = args.func(args)
    return code


def _args(path: Path, name: str = "kyushu-legacy", start: str = "2026-11-23") -> list[str]:
    return [
        "--catalogue", str(path), "--name", name, "--commodity", KYUSHU, "--commodity", HSINCHU,
        "--start", start, "--end", "2027-02-28", "--purpose", 'the "Kyushu" quake\\',
    ]  # fmt: skip


def test_a_crisis_table_is_signed_with_the_policy(tmp_path: Path) -> None:
    policy = read_catalogue(_catalogue(tmp_path, EXAMPLE + CRISIS), ORIGIN, 1)
    assert policy.crises == (
        Crisis(
            "kyushu-legacy", "the Kyushu earthquake", (KYUSHU, HSINCHU), "2026-11-23",
            "2027-02-28",
        ),
    )  # fmt: skip
    assert len(policy.entries) == 1
    assert decode_policy(encode_policy(policy)) == policy
    governance = Ed25519PrivateKey.from_private_bytes(Rng(b"governance")(32))
    public = governance.public_key().public_bytes_raw()
    assert open_policy(seal_policy(policy, governance), ORIGIN, public) == policy


def test_days_may_be_strings_and_the_purpose_is_optional(tmp_path: Path) -> None:
    text = "\n".join(
        (
            "[[crisis]]", 'name = "short"', f'commodities = ["{KYUSHU}"]',
            'start = "2026-12-01"', 'end = "2026-12-01"',
        )
    )  # fmt: skip
    (crisis,) = read_catalogue(_catalogue(tmp_path, text), ORIGIN, 1).crises
    assert crisis == Crisis("short", "", (KYUSHU,), "2026-12-01", "2026-12-01")


def test_a_catalogue_without_crises_declares_none(tmp_path: Path) -> None:
    assert read_catalogue(_catalogue(tmp_path, EXAMPLE), ORIGIN, 1).crises == ()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("start = 2026-11-23", "start = 2026-11-23\nseverity = 3"), "unknown keys"),
        (("end = 2027-02-28", "end = 2026-11-22"), "ends on or after its start"),
        (("end = 2027-02-28", "end = 2027-12-31"), "within a year"),
        (("end = 2027-02-28", 'end = "2027-02-30"'), "no day of the calendar"),
        (("end = 2027-02-28", 'end = "20270228"'), "must be a day"),
        (("end = 2027-02-28", "end = 2027-02-28T00:00:00"), "must be a day"),
        (("end = 2027-02-28", "end = 20270228"), "must be a day"),
        (("start = 2026-11-23\n", ""), "start is missing"),
        ((f'"{HSINCHU}", ', '"fabrication/logic/TW", '), "has 3 parts, not 5"),
        ((f'"{HSINCHU}", ', '"fabrication/logic/14-28nm/300mm/XX-Nowhere", '), "ISO 3166"),
        (('name = "kyushu-legacy"', 'name = "Kyushu Legacy"'), "a name of a-z"),
        (("[[crisis]]", "[crisis]"), "[[crisis]] tables"),
        ((CRISIS, CRISIS + CRISIS), "crisis 'kyushu-legacy' is declared twice"),
    ],
)
def test_a_bad_crisis_is_a_config_error_naming_the_file(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    text = (EXAMPLE + CRISIS).replace(*change)
    path = _catalogue(tmp_path, text)
    with pytest.raises(ConfigError, match=r"catalogue\.toml: ") as caught:
        read_catalogue(path, ORIGIN, 1)
    assert problem in str(caught.value)
    if problem == "unknown keys":
        assert "crisis 'kyushu-legacy'" in str(caught.value)


def test_declare_appends_a_crisis_that_then_signs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _catalogue(tmp_path, EXAMPLE)
    assert _declare(*_args(path)) == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith(EXAMPLE)
    assert text[len(EXAMPLE) :] == "\n" + crisis_block(
        "kyushu-legacy", 'the "Kyushu" quake\\', [KYUSHU, HSINCHU], START, END
    )
    policy = read_catalogue(path, ORIGIN, 1)
    assert policy.crises == (
        Crisis(
            "kyushu-legacy", 'the "Kyushu" quake\\', (KYUSHU, HSINCHU), "2026-11-23",
            "2027-02-28",
        ),
    )  # fmt: skip
    assert len(policy.entries) == 1
    out = capsys.readouterr().out
    assert "[[crisis]]" in out
    assert f"scfed federation policy GOV --catalogue {path}" in out
    install = "scfed coordinator install --config coordinator.toml --policy GOV/public/policy"
    assert f"{install}.signed" in out
    assert _declare(*_args(path, name="kyushu-second")) == 0
    assert [c.name for c in read_catalogue(path, ORIGIN, 1).crises] == [
        "kyushu-legacy", "kyushu-second",
    ]  # fmt: skip


def test_declare_into_a_file_without_a_final_newline(tmp_path: Path) -> None:
    path = _catalogue(tmp_path, 'rho_cap = "0.5"')
    assert _declare(*_args(path)) == 0
    assert path.read_text(encoding="utf-8").startswith('rho_cap = "0.5"\n\n[[crisis]]\n')
    assert len(read_catalogue(path, ORIGIN, 1).crises) == 1


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--start", "2027-03-01"], "ends on or after its start"),
        (["--start", "2026-13-01"], "--start '2026-13-01': not a day"),
        (["--start", "next monday"], "--start 'next monday': not a day"),
        (["--commodity", "fabrication/logic"], "has 2 parts, not 5"),
        (["--name", "Kyushu"], "a name of a-z"),
        (["--name", "already"], "crisis 'already' is already declared"),
    ],
)
def test_a_refused_declare_leaves_the_file_as_it_was(
    tmp_path: Path, argv: list[str], problem: str
) -> None:
    already = crisis_block("already", "", [KYUSHU], START, END)
    path = _catalogue(tmp_path, EXAMPLE + "\n" + already)
    before = path.read_bytes()
    args = _args(path)
    for option, value in zip(argv[::2], argv[1::2], strict=True):
        args[args.index(option) + 1] = value
    with pytest.raises(ConfigError) as caught:
        _declare(*args)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)
    assert path.read_bytes() == before


def test_a_declare_into_a_broken_or_missing_catalogue_is_refused(tmp_path: Path) -> None:
    path = _catalogue(tmp_path, EXAMPLE + 'crisis = [{ name = "inline" }]\n')
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"catalogue\.toml: "):
        _declare(*_args(path))
    assert path.read_bytes() == before
    with pytest.raises(ConfigError, match="cannot read"):
        _declare(*_args(tmp_path / "missing.toml"))
    assert not (tmp_path / "missing.toml").exists()
