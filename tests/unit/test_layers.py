"""The layers, enforced by walking the imports: the core does no I/O, the edges need no CLI.

``scfed/`` (but the command line, ``scfed/cli`` and ``scfed/__main__.py``) is the pure core:
it may import no module that reaches files, SQLite, sockets, the clock, processes or global
randomness, and none of the edge packages. The edges (``edge/``, ``node/``, ``coordinator/``,
``auditor/``, ``governance/``, ``tools/``, ``dashboard/``) may import the core but never the
command line, which sits on top of them all. Every import counts, also one inside a function or
under ``TYPE_CHECKING``. The checker runs on small synthetic modules too, to show it can fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "scfed"
#: The command line: the one part of ``scfed/`` that imports the edges.
COMMAND_LINE = (CORE / "cli", CORE / "__main__.py")
EDGES = ("edge", "node", "coordinator", "auditor", "governance", "tools", "dashboard")

#: Modules that do I/O, read the clock or draw global randomness; and ``importlib``, whose
#: imports this walk could not see.
IMPURE = frozenset(
    {"os", "sqlite3", "grpc", "time", "secrets", "tempfile", "shutil", "subprocess", "random"}
    | {"fcntl", "importlib"}
)
FORBIDDEN_IN_CORE = IMPURE | set(EDGES) | {"scfed.cli"}
FORBIDDEN_IN_EDGES = frozenset({"scfed.cli"})
#: Calls that reach files, the terminal or the clock without an import of their own: the
#: builtins, and the methods of ``pathlib.Path`` and ``datetime`` that do.
IMPURE_BUILTINS = frozenset({"open", "input", "print", "__import__"})
IMPURE_METHODS = frozenset(
    {"open", "read_bytes", "read_text", "write_bytes", "write_text", "exists", "stat"}
    | {"mkdir", "unlink", "iterdir", "glob", "rglob", "touch", "resolve", "cwd", "home"}
    | {"now", "today", "utcnow"}
)


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every absolute module name an import in ``tree`` names, with its line; for ``from a
    import b`` both ``a`` and ``a.b`` (``b`` may be a module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _is_under(name: str, forbidden: frozenset[str]) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in forbidden for i in range(1, len(parts) + 1))


def violations(source: str, filename: str, forbidden: frozenset[str]) -> list[str]:
    """``file:line: import name`` for each import of ``source`` that ``forbidden`` covers
    (a module or any module below it); for ``from a import b`` only the first name found."""
    found: dict[int, str] = {}
    for line, name in imported(ast.parse(source, filename)):
        if line not in found and _is_under(name, forbidden):
            found[line] = f"{filename}:{line}: import {name}"
    return [found[line] for line in sorted(found)]


def impure_calls(source: str, filename: str) -> list[str]:
    """``file:line: call name`` for each call of ``source`` that reads files or the clock."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id in IMPURE_BUILTINS:
            found.append((node.lineno, function.id))
        elif isinstance(function, ast.Attribute) and function.attr in IMPURE_METHODS:
            found.append((node.lineno, function.attr))
    return [f"{filename}:{line}: call {name}" for line, name in sorted(found)]


def _modules(folder: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*.py")
        if not any(path == s or s in path.parents for s in skip)
    )


def _check(paths: list[Path], forbidden: frozenset[str]) -> list[str]:
    found: list[str] = []
    for path in paths:
        source = path.read_text(encoding="utf-8")
        found += violations(source, str(path.relative_to(ROOT)), forbidden)
    return found


CORE_MODULES = _modules(CORE, COMMAND_LINE)
EDGE_MODULES = [path for edge in EDGES for path in _modules(ROOT / edge)]


def test_the_walks_see_the_packages() -> None:
    assert len(CORE_MODULES) > 30
    assert CORE / "secagg" / "driver.py" in CORE_MODULES
    assert not any(path.is_relative_to(CORE / "cli") for path in CORE_MODULES)
    assert {path.relative_to(ROOT).parts[0] for path in EDGE_MODULES} == set(EDGES)


def test_the_core_imports_no_io_and_no_edge() -> None:
    found = _check(CORE_MODULES, FORBIDDEN_IN_CORE)
    assert not found, "the pure core imports what it must not:\n" + "\n".join(found)


def test_the_core_calls_nothing_that_reads_files_or_the_clock() -> None:
    found = [
        call
        for path in CORE_MODULES
        for call in impure_calls(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not found, "the pure core reads files or the clock:\n" + "\n".join(found)


def test_the_core_rule_refuses_the_edge_modules_that_left_the_core() -> None:
    found = _check([ROOT / "edge" / "storage.py", ROOT / "edge" / "lock.py"], FORBIDDEN_IN_CORE)
    assert {line.rsplit(" ", 1)[1] for line in found} == {"sqlite3", "fcntl", "os"}


def test_the_edges_import_nothing_from_the_command_line() -> None:
    found = _check(EDGE_MODULES, FORBIDDEN_IN_EDGES)
    assert not found, "an edge package imports the command line:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "line", "name"),
    [
        ("import os\n", 1, "os"),
        ("import os.path\n", 1, "os.path"),
        ("from os import path\n", 1, "os"),
        ("import hashlib\nimport time as clock\n", 2, "time"),
        ("import json, sqlite3\n", 1, "sqlite3"),
        ("from grpc.aio import Channel\n", 1, "grpc.aio"),
        ("def f() -> None:\n    import secrets\n", 2, "secrets"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import random\n", 3, "random"),
        ("try:\n    import fcntl\nexcept ImportError:\n    pass\n", 2, "fcntl"),
        ("from importlib import import_module\n", 1, "importlib"),
        ("from node.store import NodeStore\n", 1, "node.store"),
        ("import coordinator\n", 1, "coordinator"),
        ("from edge import files\n", 1, "edge"),
        ("from dashboard.view import grid\n", 1, "dashboard.view"),
        ("from scfed import cli\n", 1, "scfed.cli"),
        ("from scfed.cli.coordinator import read_cells\n", 1, "scfed.cli.coordinator"),
    ],
)
def test_the_checker_finds_a_forbidden_import(source: str, line: int, name: str) -> None:
    assert violations(source, "scfed/m.py", FORBIDDEN_IN_CORE) == [
        f"scfed/m.py:{line}: import {name}"
    ]


@pytest.mark.parametrize(
    "source",
    [
        "import hashlib\nfrom pathlib import Path\n",
        "import osmosis\nimport timeit_like\n",
        "from scfed.config import TlsFiles\nfrom scfed import pki\n",
        "from scfed.client import x\nfrom scfed import clinic\n",
        "from . import os\nfrom .time import clock\n",  # relative: inside the package itself
        "from nodes import x\nimport tools_extra\n",
        "text = 'import os'\n",
    ],
)
def test_the_checker_passes_a_clean_module(source: str) -> None:
    assert violations(source, "scfed/m.py", FORBIDDEN_IN_CORE) == []


def test_the_edge_rule_allows_the_core_but_not_the_command_line() -> None:
    clean = "from scfed.config import NodeConfig\nfrom edge.files import write_public\n"
    assert violations(clean, "node/m.py", FORBIDDEN_IN_EDGES) == []
    dirty = "import os\nfrom scfed.cli import main\n"
    assert violations(dirty, "node/m.py", FORBIDDEN_IN_EDGES) == ["node/m.py:2: import scfed.cli"]


@pytest.mark.parametrize(
    ("source", "line", "name"),
    [
        ("data = Path('x').read_bytes()\n", 1, "read_bytes"),
        ("with open('x') as f:\n    pass\n", 1, "open"),
        ("when = datetime.now(UTC)\n", 1, "now"),
        ("day = date.today()\n", 1, "today"),
        ("x = 1\nif folder.exists():\n    pass\n", 2, "exists"),
    ],
)
def test_the_call_checker_finds_a_file_or_clock_call(source: str, line: int, name: str) -> None:
    assert impure_calls(source, "scfed/m.py") == [f"scfed/m.py:{line}: call {name}"]


def test_the_call_checker_passes_pure_calls() -> None:
    source = "x = replace(y, a=1)\nz = text.replace('a', 'b')\nw = self._open(k)\nopen_note(n)\n"
    assert impure_calls(source, "scfed/m.py") == []


#: The generated protocol messages; only the wire package turns them into domain messages.
PROTOCOL_MESSAGES = frozenset({"protos.scfed.v1.messages_pb2"})
WIRE = CORE / "wire"


def test_only_the_wire_touches_the_generated_protocol_messages() -> None:
    outside = [
        path
        for path in [*CORE_MODULES, *EDGE_MODULES, *_modules(CORE / "cli")]
        if not path.is_relative_to(WIRE)
    ]
    found = _check(outside, PROTOCOL_MESSAGES)
    assert not found, "outside scfed/wire, modules import protocol messages:\n" + "\n".join(found)
    assert _check(_modules(WIRE), PROTOCOL_MESSAGES), "the walk sees the wire's own imports"
