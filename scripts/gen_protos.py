"""Regenerate protos/scfed/v1/*_pb2.py, *_pb2_grpc.py and .pyi stubs from the .proto files.

The one way generated code is made; tests/unit/test_protos.py fails when running this would
change anything. Run from anywhere: ``python scripts/gen_protos.py``.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    generate(ROOT)
    sys.exit(0)
