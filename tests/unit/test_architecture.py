"""docs/architecture.md names files and the functions where checks live: every one exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
#: A backticked path, optionally followed by the backticked name of what it defines.
_REFERENCE = re.compile(r"`([\w/]+\.(?:py|proto|md))`(?: `([A-Za-z_][\w.]*)`)?")
#: A backticked Class.method written without its file, as the text names a machine's step.
_METHOD = re.compile(r"`((?:NodeRound|CoordinatorRound|NodePolicy|NodeLog)\.\w+)`")
_MACHINES = {
    "NodeRound": "scfed/secagg/node.py",
    "NodePolicy": "scfed/secagg/node_rules.py",
    "CoordinatorRound": "scfed/secagg/coordinator.py",
    "NodeLog": "node/logcheck.py",
}


def defined(path: Path) -> set[str]:
    """Every module-level name and Class.member that ``path`` defines."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}.{member.name}")
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def references() -> list[tuple[str, str | None]]:
    text = PAGE.read_text(encoding="utf-8")
    found = [(path, name or None) for path, name in _REFERENCE.findall(text)]
    for method in _METHOD.findall(text):
        found.append((_MACHINES[method.split(".")[0]], method))
    return sorted(set(found), key=lambda r: (r[0], r[1] or ""))


def test_the_page_names_many_places() -> None:
    assert len(references()) > 40


@pytest.mark.parametrize(("path", "name"), references())
def test_a_named_place_exists(path: str, name: str | None) -> None:
    target = ROOT / path
    assert target.is_file(), f"{path} does not exist"
    if name is not None and target.suffix == ".py":
        owner = name.split(".")[0]
        here = defined(target)
        assert name in here or (owner[0].islower() and owner in here), f"{path} defines no {name}"


def test_a_missing_name_would_be_caught(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("class A:\n    def b(self) -> None: ...\n\ndef c() -> None: ...\n")
    assert defined(module) == {"A", "A.b", "c"}
    assert "A.missing" not in defined(module)
