"""The vendored public vectors are still byte-identical to the shared originals.

``round/`` holds the project's own known-answer vectors, which have no original elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

COPIES = Path(__file__).resolve().parents[1] / "vectors"
ORIGINALS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
OWN = frozenset({"round"})


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and path.name != "README.md"
        and path.relative_to(root).parts[0] not in OWN
    }


def test_the_copies_hold_every_vector_kind() -> None:
    names = set(_files(COPIES))
    assert {"tlog/rfc6962_sha256_8leaf_tree.json", "catenax/ItemStock.json"} <= names


@pytest.mark.skipif(not ORIGINALS.is_dir(), reason="the shared vector folder is not beside us")
def test_the_copies_equal_the_shared_originals() -> None:
    assert _files(COPIES) == _files(ORIGINALS)
