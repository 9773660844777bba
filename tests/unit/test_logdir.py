"""The exported log directory: round trip, and every malformed file refused with its offset."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.logdir import read_log_dir, write_log_dir
from scfed import note, tlog
from scfed.checkpoint import Checkpoint
from scfed.errors import ConfigError, LocalProtocolError, VerificationError

ORIGIN = "log.test.example/federation"
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"logdir test key").digest())
ENTRIES = [b"first", b"", b"\x00" * 300, b"last entry"]


def signed_checkpoint(entries: list[bytes]) -> bytes:
    root = tlog.root_hash([tlog.leaf_hash(e) for e in entries])
    text = Checkpoint(ORIGIN, len(entries), root).format()
    return note.sign_note(text, [note.Signer(ORIGIN, KEY)])


def framed(entries: list[bytes]) -> bytes:
    return b"".join(len(e).to_bytes(4, "big") + e for e in entries)


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    path = tmp_path / "log"
    write_log_dir(path, ENTRIES, signed_checkpoint(ENTRIES))
    return path


def test_round_trip(exported: Path) -> None:
    assert read_log_dir(exported) == (ENTRIES, signed_checkpoint(ENTRIES))
    assert (exported / "entries").read_bytes() == framed(ENTRIES)
    assert sorted(p.name for p in exported.iterdir()) == ["checkpoint", "entries"]


def test_empty_log_round_trip(tmp_path: Path) -> None:
    write_log_dir(tmp_path / "log", [], signed_checkpoint([]))
    assert read_log_dir(tmp_path / "log") == ([], signed_checkpoint([]))


def test_writes_into_an_existing_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    write_log_dir(tmp_path / "log", ENTRIES, signed_checkpoint(ENTRIES))
    assert read_log_dir(tmp_path / "log")[0] == ENTRIES


def test_refuses_a_non_empty_directory(exported: Path) -> None:
    before = (exported / "entries").read_bytes()
    with pytest.raises(ConfigError, match="is not empty"):
        write_log_dir(exported, [b"other"], signed_checkpoint([b"other"]))
    assert (exported / "entries").read_bytes() == before
    assert [p.name for p in exported.parent.iterdir()] == ["log"]  # no staging left behind


def test_refuses_a_file_as_target(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a directory"):
        write_log_dir(tmp_path / "log", ENTRIES, signed_checkpoint(ENTRIES))


def test_entry_count_must_match_the_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(LocalProtocolError, match="3 entries for a checkpoint of size 4"):
        write_log_dir(tmp_path / "log", ENTRIES[:3], signed_checkpoint(ENTRIES))
    assert list(tmp_path.iterdir()) == []


def test_a_failing_entry_source_leaves_nothing(tmp_path: Path) -> None:
    def entries() -> list[bytes]:
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        write_log_dir(tmp_path / "log", (e for e in entries()), signed_checkpoint(ENTRIES))
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_checkpoint_that_is_not_a_note(tmp_path: Path) -> None:
    with pytest.raises(LocalProtocolError, match="checkpoint: malformed note"):
        write_log_dir(tmp_path / "log", [], b"not a note\n")


def corrupt(path: Path, data: bytes) -> None:
    (path / "entries").write_bytes(data)


def test_truncated_length_prefix(exported: Path) -> None:
    corrupt(exported, framed(ENTRIES[:3]) + b"\x00\x00")
    offset = len(framed(ENTRIES[:3]))
    with pytest.raises(
        VerificationError, match=f"truncated length prefix of entry 3 at offset {offset}: 2 of 4"
    ):
        read_log_dir(exported)


def test_file_ends_before_the_checkpoint_size(exported: Path) -> None:
    corrupt(exported, framed(ENTRIES[:2]))
    with pytest.raises(VerificationError, match="ends at offset 13 after 2 entries"):
        read_log_dir(exported)


def test_truncated_data(exported: Path) -> None:
    corrupt(exported, framed(ENTRIES)[:-3])
    offset = len(framed(ENTRIES[:3]))
    with pytest.raises(
        VerificationError,
        match=f"entry 3 at offset {offset} is truncated: 10 bytes announced, 7 present",
    ):
        read_log_dir(exported)


def test_oversized_length(exported: Path) -> None:
    corrupt(exported, b"\xff\xff\xff\xff" + b"x" * 10)
    with pytest.raises(
        VerificationError, match="entry 0 at offset 0 claims 4294967295 bytes, above the limit"
    ):
        read_log_dir(exported)


def test_entry_above_the_callers_limit(exported: Path) -> None:
    with pytest.raises(VerificationError, match="entry 2 at offset 13 claims 300 bytes"):
        read_log_dir(exported, max_entry_bytes=299)
    assert read_log_dir(exported, max_entry_bytes=300)[0] == ENTRIES


def test_trailing_garbage(exported: Path) -> None:
    corrupt(exported, framed(ENTRIES) + b"\x00")
    with pytest.raises(
        VerificationError, match=f"trailing bytes at offset {len(framed(ENTRIES))} after the 4"
    ):
        read_log_dir(exported)


def test_missing_checkpoint_file(exported: Path) -> None:
    (exported / "checkpoint").unlink()
    with pytest.raises(ConfigError, match="has no checkpoint file"):
        read_log_dir(exported)


def test_missing_entries_file(exported: Path) -> None:
    (exported / "entries").unlink()
    with pytest.raises(ConfigError, match="has no entries file"):
        read_log_dir(exported)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no checkpoint file"):
        read_log_dir(tmp_path / "absent")


def test_malformed_checkpoint(exported: Path) -> None:
    (exported / "checkpoint").write_bytes(b"origin\n4\n")
    with pytest.raises(VerificationError, match="checkpoint: malformed note"):
        read_log_dir(exported)


def test_oversized_checkpoint(exported: Path) -> None:
    (exported / "checkpoint").write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(VerificationError, match="longer than 65536 bytes"):
        read_log_dir(exported)
