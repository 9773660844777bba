"""Tasks carry receipts and checkpoints to witness; their bounds hold on the way in."""

from __future__ import annotations

import pytest

from protos.scfed.v1 import service_pb2 as spb
from scfed.errors import RemoteProtocolError
from scfed.wire.tasks import (
    MAX_CHECKPOINT_BYTES,
    CheckpointTask,
    Receipt,
    task_from_proto,
    task_receipt,
    task_to_proto,
)
from tests.unit._support import announce_task, build_script

RECEIPT = Receipt(41, "scfed.test\n42\nAAAA\n\n\u2014 x y\n".encode(), (bytes(32), bytes([1]) * 32))


def test_a_task_carries_its_receipt() -> None:
    announce = announce_task(build_script(), "node-000")
    wire = spb.Task.FromString(task_to_proto(announce, RECEIPT).SerializeToString())
    assert task_from_proto(wire) == announce
    assert task_receipt(wire) == RECEIPT
    assert task_receipt(task_to_proto(announce)) is None


def test_a_checkpoint_task_round_trips() -> None:
    task = CheckpointTask(b"a signed note\n")
    assert task_from_proto(spb.Task.FromString(task_to_proto(task).SerializeToString())) == task


@pytest.mark.parametrize(
    "receipt",
    [
        spb.Receipt(index=1, checkpoint=b"", inclusion=[]),
        spb.Receipt(index=1, checkpoint=b"x" * (MAX_CHECKPOINT_BYTES + 1)),
        spb.Receipt(index=1, checkpoint=b"x", inclusion=[bytes(31)]),
        spb.Receipt(index=1, checkpoint=b"x", inclusion=[bytes(32)] * 65),
    ],
    ids=["empty-checkpoint", "huge-checkpoint", "short-hash", "long-proof"],
)
def test_bad_receipts_are_refused(receipt: spb.Receipt) -> None:
    with pytest.raises(RemoteProtocolError):
        task_receipt(spb.Task(checkpoint=b"x", receipt=receipt))


def test_an_empty_checkpoint_task_is_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        task_from_proto(spb.Task(checkpoint=b""))
