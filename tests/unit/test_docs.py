"""Every ``scfed`` command line in the guides under ``docs/`` parses against the real command
line, as the README's do (``test_readme.py``); and the README links the guides."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from scfed.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
GUIDES = ("docs/operator-guide.md", "docs/firm-guide.md")


def command_lines(text: str) -> list[str]:
    """Each ``scfed ...`` command of the ``sh`` blocks of ``text``: continued lines joined,
    commands chained with ``&&`` taken apart, comments off."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text.replace("\\\n", " "), flags=re.DOTALL):
        for line in block.splitlines():
            commands = (part.split("#")[0].strip() for part in line.split("&&"))
            lines += [command for command in commands if command.startswith("scfed ")]
    return lines


def _all() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(ROOT)), line)
        for path in DOCS
        for line in command_lines(path.read_text(encoding="utf-8"))
    ]


@pytest.mark.parametrize("guide", GUIDES)
def test_a_guide_shows_commands_and_the_readme_links_it(guide: str) -> None:
    lines = command_lines((ROOT / guide).read_text(encoding="utf-8"))
    assert len(lines) >= 15
    assert any(" backup " in line for line in lines)
    assert any(" restore " in line for line in lines)
    assert f"]({guide})" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("doc", "line"), _all())
def test_a_command_in_the_docs_parses(doc: str, line: str) -> None:
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert callable(args.func), f"{doc}: {line}"


def test_the_extraction_finds_continued_and_chained_commands() -> None:
    text = "```sh\nscfed node ledger \\\n    --config n.toml && scfed demo  # hi\nls\n```\n"
    assert command_lines(text) == ["scfed node ledger      --config n.toml", "scfed demo"]
