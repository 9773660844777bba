"""The node's SQLite store keeps its unmask answers across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.store import NodeStore
from scfed.envelope import Envelope
from scfed.errors import RefusedError, StorageError
from scfed.secagg.node import previous_answer

ROUND = bytes(range(16))
RESPONSE = Envelope("round.unmask_response", b"body", "fab-a", bytes(64))


def test_an_answer_survives_a_restart_and_a_different_request_is_refused(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    assert previous_answer(store, ROUND, b"\x01" * 32) is None
    store.record(ROUND, b"\x01" * 32, RESPONSE.to_bytes())
    store.close()
    restarted = NodeStore(tmp_path / "node.sqlite")
    assert previous_answer(restarted, ROUND, b"\x01" * 32) == RESPONSE
    with pytest.raises(RefusedError, match="different unmask request"):
        previous_answer(restarted, ROUND, b"\x02" * 32)
    assert previous_answer(restarted, bytes(16), b"\x02" * 32) is None


def test_a_round_cannot_be_recorded_twice(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    store.record(ROUND, b"\x01" * 32, RESPONSE.to_bytes())
    with pytest.raises(StorageError, match="UNIQUE"):
        store.record(ROUND, b"\x02" * 32, b"other")
    assert store.answered(ROUND) == (b"\x01" * 32, RESPONSE.to_bytes())
