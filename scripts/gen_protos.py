"""Regenerate protos/scfed/v1/*_pb2.py, *_pb2_grpc.py and .pyi stubs from the .proto files.

The one way generated code is made; tests/unit/test_protos.py fails when running this would
change anything. Run from anywhere: ``python scripts/gen_protos.py``.

Only the client side of the gRPC code is kept: the coordinator builds its handlers from the
service descriptors (``coordinator/_wire.py``), so the generated servicer base classes, which
serve nothing, and their ``add_*_to_server`` functions are cut from ``*_pb2_grpc.py`` and its
``.pyi``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos" / "scfed" / "v1"


def generate(out: Path) -> None:
    """Write the generated modules for every .proto into ``out`` (a tree mirroring ROOT)."""
    protos = sorted(str(p.relative_to(ROOT)) for p in PROTO_DIR.glob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for grpc_file in sorted((out / PROTO_DIR.relative_to(ROOT)).glob("*_pb2_grpc.py*")):
        grpc_file.write_text(_client_side(grpc_file.read_text(encoding="utf-8")), encoding="utf-8")


def _servicer_side(node: ast.stmt) -> bool:
    """A servicer base class, its context type or its registration function."""
    if isinstance(node, ast.ClassDef):
        return node.name.endswith("Servicer") or node.name == "_ServicerContext"
    return isinstance(node, ast.FunctionDef) and (
        node.name.startswith("add_") and node.name.endswith("_to_server")
    )


def _client_side(source: str) -> str:
    """``source`` without its top-level servicer-side definitions (and their decorators)."""
    lines = source.splitlines(keepends=True)
    cut: set[int] = set()
    for node in ast.parse(source).body:
        if _servicer_side(node) and node.end_lineno is not None:
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            cut.update(range(first - 1, node.end_lineno))
    kept = "".join(line for number, line in enumerate(lines) if number not in cut)
    while "\n\n\n\n" in kept:
        kept = kept.replace("\n\n\n\n", "\n\n\n")
    return kept


if __name__ == "__main__":
    generate(ROOT)
    sys.exit(0)
