"""The committed generated protobuf code is exactly what the one generator script makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = sorted(
    p for p in (ROOT / "protos/scfed/v1").iterdir() if "_pb2" in p.name and p.suffix != ".pyc"
)


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts/gen_protos.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    _generator().generate(tmp_path)  # type: ignore[attr-defined]
    fresh = sorted((tmp_path / "protos/scfed/v1").iterdir())
    assert [p.name for p in fresh] == [p.name for p in GENERATED]
    for committed, regenerated in zip(GENERATED, fresh, strict=True):
        assert committed.read_bytes() == regenerated.read_bytes(), (
            f"{committed.name} is stale: run python scripts/gen_protos.py"
        )
