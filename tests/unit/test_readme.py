"""Every ``scfed`` command line shown in the README parses against the real command line."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from scfed.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def command_lines() -> list[str]:
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            commands = (part.split("#")[0].strip() for part in line.split("&&"))
            lines += [command for command in commands if command.startswith("scfed ")]
    return lines


def test_the_readme_shows_commands() -> None:
    assert len(command_lines()) >= 8


@pytest.mark.parametrize("line", command_lines())
def test_a_readme_command_parses(line: str) -> None:
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert callable(args.func)


def _examples() -> list[tuple[str, str]]:
    """Each ``$ scfed ...`` example in the README with the output printed under it."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```\n\$ (scfed [^\n]*)\n(.*?)```", text, flags=re.DOTALL)
    return [(command, output) for command, output in blocks]


def test_the_readme_shows_examples() -> None:
    assert _examples()


@pytest.mark.parametrize(("command", "output"), _examples())
def test_a_readme_example_prints_what_it_shows(
    command: str, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.func(args) == 0
    assert capsys.readouterr().out == output
