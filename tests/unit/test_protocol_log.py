"""The coordinator's protocol log in SQLite, checked against scfed.tlog and scfed.note.

Also the LogService servicer, called directly with a context that records ``abort``: the
servicer is a thin edge (authorize, bound, call, encode), so its mapping is checked here
without sockets; the real gRPC path is left to the integration tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import NoReturn, TypeVar, cast

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.log import ProtocolLog
from coordinator.log_service import Context, LogService
from edge.logdir import read_log_dir
from protos.scfed.v1 import service_pb2 as spb
from scfed import note, tlog
from scfed.checkpoint import Checkpoint, parse_checkpoint
from scfed.errors import (
    ConfigError,
    LocalProtocolError,
    PermissionDeniedError,
    RemoteProtocolError,
    StorageError,
    VerificationError,
)
from scfed.note_format import _b64, parse_note
from scfed.tlog_verify import verify_consistency, verify_inclusion

ORIGIN = "log.test.example/federation"


def key_of(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


KEY = key_of("coordinator")
VERIFIER = note.Verifier.ed25519(ORIGIN, KEY.public_key())
DATA = [b"envelope %d" % i for i in range(40)]
LEAVES = [tlog.leaf_hash(d) for d in DATA]


def open_log(path: Path) -> ProtocolLog:
    return ProtocolLog(path, origin=ORIGIN, key=KEY)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "coordinator.sqlite"


@pytest.fixture
def log(db_path: Path) -> Iterator[ProtocolLog]:
    opened = open_log(db_path)
    yield opened
    opened.close()


@pytest.fixture
def full(log: ProtocolLog) -> ProtocolLog:
    log.append_many(DATA)
    return log


def count_rows(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(count)
    finally:
        db.close()


# --- appending and reading -------------------------------------------------------------------


def test_appends_round_trip(log: ProtocolLog) -> None:
    assert log.size == 0
    assert log.append(DATA[0]) == 0
    assert log.append_many(DATA[1:5]) == [1, 2, 3, 4]
    assert log.append_many([]) == []
    assert log.size == 5
    for i in range(5):
        assert log.entry(i) == DATA[i]
        assert log.content_hash(i) == hashlib.sha256(DATA[i]).digest()
        assert log.blob(log.content_hash(i)) == DATA[i]


def test_identical_data_is_stored_once(log: ProtocolLog, db_path: Path) -> None:
    log.append(b"same")
    log.append_many([b"same", b"other", b"same"])
    assert log.size == 4
    assert [log.entry(i) for i in range(4)] == [b"same", b"same", b"other", b"same"]
    assert count_rows(db_path, "log_blobs") == 2
    assert log.find_blob(hashlib.sha256(b"absent").digest()) is None


def test_empty_entry(log: ProtocolLog) -> None:
    log.append(b"")
    assert log.entry(0) == b""
    assert log.root() == tlog.leaf_hash(b"")


# --- agreement with scfed.tlog ---------------------------------------------------------------


def check_tree(log: ProtocolLog, leaves: list[bytes]) -> None:
    """Every root and proof of every prefix equals scfed.tlog's over the same leaves."""
    assert log.root(0) == tlog.EMPTY_ROOT
    for size in range(1, len(leaves) + 1):
        root = tlog.root_hash(leaves[:size])
        assert log.root(size) == root
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            assert proof == tlog.inclusion_proof(index, size, leaves)
            verify_inclusion(leaves[index], index, size, proof, root)
        for size1 in range(1, size + 1):
            proof = log.consistency_proof(size1, size)
            assert proof == tlog.consistency_proof(size1, size, leaves)
            verify_consistency(size1, size, proof, tlog.root_hash(leaves[:size1]), root)


def test_tree_agrees_with_tlog(log: ProtocolLog) -> None:
    for data in DATA[:5]:
        log.append(data)
    log.append_many(DATA[5:23])
    log.append_many(DATA[23:])
    assert log.root() == tlog.root_hash(LEAVES)
    check_tree(log, LEAVES)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=9), min_size=1, max_size=8))
def test_any_batching_builds_the_same_tree(batches: list[int]) -> None:
    data = [b"leaf %d" % i for i in range(sum(batches))]
    with tempfile.TemporaryDirectory() as directory:
        log = open_log(Path(directory) / "log.sqlite")
        try:
            done = 0
            for count in batches:
                assert log.append_many(data[done : done + count]) == list(range(done, done + count))
                done += count
            check_tree(log, [tlog.leaf_hash(d) for d in data])
        finally:
            log.close()


# --- checkpoints and cosignatures ------------------------------------------------------------


def test_checkpoint_is_a_signed_c2sp_checkpoint(full: ProtocolLog) -> None:
    signed = full.checkpoint()
    opened = note.open_note(signed, [VERIFIER])
    checkpoint = parse_checkpoint(opened.text)
    assert checkpoint == Checkpoint(ORIGIN, 40, full.root(40))
    assert opened.text == f"{ORIGIN}\n40\n{_b64(full.root())}\n"
    assert full.verifier() == VERIFIER


def test_checkpoint_of_the_empty_log(log: ProtocolLog) -> None:
    opened = note.open_note(log.checkpoint(), [VERIFIER])
    assert parse_checkpoint(opened.text).root == tlog.EMPTY_ROOT


def test_checkpoint_is_signed_once_per_size(full: ProtocolLog, db_path: Path) -> None:
    first = full.checkpoint()
    assert full.checkpoint() == first
    assert full.checkpoint_at(40) == first
    assert full.checkpoint_at(39) is None  # never asked for while the log had 39 leaves
    full.append(b"one more")
    second = full.checkpoint()
    assert second != first
    assert full.checkpoint_at(40) == first
    assert count_rows(db_path, "log_checkpoints") == 2


def cosign(signed: bytes, witness: str, timestamp: int = 1_700_000_000) -> str:
    text, _ = parse_note(signed)
    return note.cosign(text, witness, key_of(witness), timestamp)


def cosigner(witness: str) -> note.Verifier:
    return note.Verifier.cosigner(witness, key_of(witness).public_key())


def test_cosignatures_are_verified_stored_and_served(full: ProtocolLog) -> None:
    signed = full.checkpoint()
    line_b, line_a = cosign(signed, "witness-b"), cosign(signed, "witness-a")
    full.add_cosignature(40, "witness-b", line_b, cosigner("witness-b"))
    full.add_cosignature(40, "witness-a", line_a.removesuffix("\n"), cosigner("witness-a"))
    served = full.checkpoint()
    assert served == signed + (line_a + line_b).encode()
    assert full.checkpoint_at(40) == served
    opened = note.open_note(served, [VERIFIER, cosigner("witness-a"), cosigner("witness-b")])
    assert opened.signers == (ORIGIN, "witness-a", "witness-b")
    assert full.cosigners(40) == ["witness-a", "witness-b"]


def test_cosignature_is_idempotent_per_witness(full: ProtocolLog) -> None:
    signed = full.checkpoint()
    first = cosign(signed, "witness-a", 1)
    full.add_cosignature(40, "witness-a", first, cosigner("witness-a"))
    full.add_cosignature(40, "witness-a", first, cosigner("witness-a"))
    full.add_cosignature(40, "witness-a", cosign(signed, "witness-a", 2), cosigner("witness-a"))
    assert full.checkpoint() == signed + first.encode()


def test_bad_cosignatures_are_refused(full: ProtocolLog) -> None:
    old = full.checkpoint()
    full.append(b"more")
    signed = full.checkpoint()
    good = cosign(signed, "witness-a")
    with pytest.raises(VerificationError, match="invalid signature"):
        full.add_cosignature(41, "witness-a", cosign(old, "witness-a"), cosigner("witness-a"))
    with pytest.raises(VerificationError, match="not witness-b"):
        full.add_cosignature(41, "witness-a", good, cosigner("witness-b"))
    with pytest.raises(VerificationError, match="not a cosigner key"):
        full.add_cosignature(41, "witness-a", good, VERIFIER)
    with pytest.raises(VerificationError, match="one line"):
        full.add_cosignature(41, "witness-a", good + good, cosigner("witness-a"))
    with pytest.raises(RemoteProtocolError, match="no checkpoint of size 39"):
        full.add_cosignature(39, "witness-a", good, cosigner("witness-a"))
    with pytest.raises(RemoteProtocolError, match="no checkpoint of size 42"):
        full.add_cosignature(42, "witness-a", good, cosigner("witness-a"))
    with pytest.raises(LocalProtocolError, match="witness name"):
        full.add_cosignature(41, "", good, cosigner("witness-a"))
    assert full.cosigners(41) == []
    assert full.checkpoint() == signed


def test_a_note_carries_at_most_99_cosignatures(full: ProtocolLog) -> None:
    signed = full.checkpoint()
    witnesses = [f"witness-{i:03d}" for i in range(101)]
    for witness in witnesses:
        full.add_cosignature(40, witness, cosign(signed, witness), cosigner(witness))
    assert full.cosigners(40) == witnesses
    _, lines = parse_note(full.checkpoint())
    assert [line.name for line in lines] == [ORIGIN, *witnesses[:99]]


# --- durability ------------------------------------------------------------------------------


def test_reopening_keeps_everything(db_path: Path) -> None:
    log = open_log(db_path)
    log.append_many(DATA[:13])
    signed = log.checkpoint()
    line = cosign(signed, "witness-a")
    log.add_cosignature(13, "witness-a", line, cosigner("witness-a"))
    log.close()
    log = open_log(db_path)
    try:
        assert log.size == 13
        assert [log.entry(i) for i in range(13)] == DATA[:13]
        assert log.checkpoint() == signed + line.encode()
        log.append_many(DATA[13:])  # the frontier is read back from the database
        check_tree(log, LEAVES)
    finally:
        log.close()


def test_reopening_with_another_key_is_refused(full: ProtocolLog, db_path: Path) -> None:
    full.checkpoint()
    with pytest.raises(ConfigError, match="signed by another origin or key"):
        ProtocolLog(db_path, origin=ORIGIN, key=key_of("someone else"))
    with pytest.raises(ConfigError, match="signed by another origin or key"):
        ProtocolLog(db_path, origin="other.example/federation", key=KEY)


def test_after_a_key_rotation_the_log_continues_under_the_new_key(
    full: ProtocolLog, db_path: Path
) -> None:
    full.checkpoint()
    full.check_signer(previous=KEY.public_key().public_bytes_raw())  # not rotated: no ambiguity
    old = KEY.public_key().public_bytes_raw()
    new = key_of("the rotated key")
    rotated = ProtocolLog(db_path, origin=ORIGIN, key=new, check=False)
    try:
        rotated.check_signer(previous=old)  # the latest checkpoint is the old key's
        with pytest.raises(ConfigError, match="signed by another origin or key"):
            rotated.check_signer(previous=key_of("a stranger").public_key().public_bytes_raw())
        rotated.append(b"the first leaf under the new key")
        signed = rotated.checkpoint()
    finally:
        rotated.close()
    assert note.open_note(signed, [ProtocolLog(db_path, origin=ORIGIN, key=new).verifier()])


def test_a_failed_append_leaves_nothing_behind(full: ProtocolLog, db_path: Path) -> None:
    other = sqlite3.connect(db_path)
    other.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON log_nodes BEGIN SELECT RAISE(ABORT, 'disk on fire'); "
        "END"
    )
    other.commit()
    full.append(b"leaf 40")  # an even index completes no subtree: nothing to refuse
    blobs = count_rows(db_path, "log_blobs")
    with pytest.raises(StorageError, match="disk on fire"):
        full.append(b"leaf 41 completes a subtree")
    with pytest.raises(StorageError, match="disk on fire"):
        full.append_many([b"new a", b"new b"])
    assert full.size == 41
    assert count_rows(db_path, "log_blobs") == blobs
    other.execute("DROP TRIGGER fail")
    other.commit()
    other.close()
    full.append(b"leaf 41")
    assert full.root() == tlog.root_hash(
        [*LEAVES, tlog.leaf_hash(b"leaf 40"), tlog.leaf_hash(b"leaf 41")]
    )


def test_a_closed_database_refuses_appends(log: ProtocolLog) -> None:
    log.close()
    with pytest.raises(StorageError):
        log.append(b"too late")


# --- bounds ----------------------------------------------------------------------------------

BAD_CALLS: list[tuple[str, Callable[[ProtocolLog], object]]] = [
    ("out of range", lambda log: log.entry(40)),
    ("must not be negative", lambda log: log.entry(-1)),
    ("must be an int, not bool", lambda log: log.entry(True)),
    ("out of range", lambda log: log.content_hash(40)),
    ("out of range 0..40", lambda log: log.root(41)),
    ("must be an int, not bool", lambda log: log.root(False)),
    ("out of range 1..40", lambda log: log.inclusion_proof(0, 0)),
    ("out of range for tree size 5", lambda log: log.inclusion_proof(5, 5)),
    ("out of range 1..40", lambda log: log.inclusion_proof(0, 41)),
    ("size1 0 is out of range 1..5", lambda log: log.consistency_proof(0, 5)),
    ("size1 6 is out of range 1..5", lambda log: log.consistency_proof(6, 5)),
    ("size2 41 is out of range", lambda log: log.consistency_proof(1, 41)),
    ("out of range 0..40", lambda log: log.checkpoint_at(41)),
    ("out of range 0..40", lambda log: log.cosigners(41)),
    ("must be 32 bytes", lambda log: log.blob(b"short")),
    ("must be 32 bytes", lambda log: log.find_blob(cast(bytes, "x" * 32))),
    ("entry 1 must be bytes, not str", lambda log: log.append_many([b"ok", cast(bytes, "no")])),
    ("must be bytes, not bytearray", lambda log: log.append(cast(bytes, bytearray(b"x")))),
    ("stop 41 is out of range", lambda log: log.listing(0, 41, inline_max=1, max_bytes=1)),
    ("start 6 is out of range 0..5", lambda log: log.listing(6, 5, inline_max=1, max_bytes=1)),
]


@pytest.mark.parametrize(("message", "call"), BAD_CALLS)
def test_bad_arguments_are_our_fault(
    full: ProtocolLog, message: str, call: Callable[[ProtocolLog], object]
) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        call(full)
    assert full.size == 40


def test_a_missing_blob_is_a_storage_error(full: ProtocolLog) -> None:
    with pytest.raises(StorageError, match="no blob"):
        full.blob(hashlib.sha256(b"absent").digest())


# --- listing and export ----------------------------------------------------------------------


def test_listing_bounds_inline_data(log: ProtocolLog) -> None:
    log.append_many([b"a" * 10, b"b" * 30, b"c" * 10, b"d" * 10, b"e" * 10])
    listed = log.listing(0, 5, inline_max=20, max_bytes=25)
    assert [(e.index, e.data) for e in listed] == [(0, b"a" * 10), (1, None), (2, b"c" * 10)]
    assert listed[1].content_hash == hashlib.sha256(b"b" * 30).digest()
    assert log.listing(3, 5, inline_max=20, max_bytes=5)[0].data == b"d" * 10  # first always
    assert log.listing(5, 5, inline_max=20, max_bytes=25) == []


def test_export_reads_back_equal(full: ProtocolLog, tmp_path: Path) -> None:
    signed = full.checkpoint()
    line = cosign(signed, "witness-a")
    full.add_cosignature(40, "witness-a", line, cosigner("witness-a"))
    full.export(tmp_path / "export")
    assert read_log_dir(tmp_path / "export") == (DATA, signed + line.encode())


# --- the LogService servicer -----------------------------------------------------------------


class AbortError(Exception):
    """What grpc.aio's abort raises, for the fake context."""


class FakeContext:
    """Records the status a servicer aborts with; nothing else of a real context is used."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        self.aborted = (code, details)
        raise AbortError(details)


T = TypeVar("T")


def admit(context: Context) -> None:
    """Every caller may read."""


def refuse(context: Context) -> None:
    raise PermissionDeniedError("not a member")


def call(method: Callable[[T, Context], Coroutine[object, object, object]], request: T) -> object:
    return asyncio.run(method(request, cast(Context, FakeContext())))


def status(
    method: Callable[[T, Context], Coroutine[object, object, object]], request: T
) -> grpc.StatusCode:
    context = FakeContext()
    with pytest.raises(AbortError):
        asyncio.run(method(request, cast(Context, context)))
    assert context.aborted is not None
    return context.aborted[0]


def test_service_serves_checkpoint_and_proofs(full: ProtocolLog) -> None:
    service = LogService(full, admit)
    answer = call(service.GetCheckpoint, spb.CheckpointRequest())
    assert isinstance(answer, spb.SignedCheckpoint)
    assert answer.note == full.checkpoint()
    proof = call(service.GetInclusionProof, spb.ProofRequest(first=7, second=40))
    assert isinstance(proof, spb.Proof)
    verify_inclusion(LEAVES[7], 7, 40, list(proof.hashes), full.root())
    proof = call(service.GetConsistencyProof, spb.ProofRequest(first=9, second=40))
    assert isinstance(proof, spb.Proof)
    verify_consistency(9, 40, list(proof.hashes), full.root(9), full.root())


def test_service_lists_entries_and_blobs(log: ProtocolLog) -> None:
    big = b"B" * (64 * 1024 + 1)
    log.append_many([b"small", big, b"C" * (64 * 1024)])
    service = LogService(log, admit)
    answer = call(service.GetEntries, spb.EntriesRequest(start=0, count=1000))
    assert isinstance(answer, spb.Entries)
    assert [(e.index, e.data) for e in answer.entries] == [
        (0, b"small"),
        (1, b""),
        (2, b"C" * 65536),
    ]
    blob = call(service.GetBlob, spb.BlobRequest(content_hash=answer.entries[1].content_hash))
    assert isinstance(blob, spb.Blob)
    assert blob.data == big
    answer = call(service.GetEntries, spb.EntriesRequest(start=3, count=5))
    assert isinstance(answer, spb.Entries)
    assert list(answer.entries) == []


def test_service_caps_entries_by_count_and_bytes(log: ProtocolLog) -> None:
    log.append_many([b"x" * 60_000 for _ in range(80)])  # 4.8 MB, one blob
    log.append_many([b"%d" % i for i in range(1200)])
    service = LogService(log, admit)
    answer = call(service.GetEntries, spb.EntriesRequest(start=0, count=1000))
    assert isinstance(answer, spb.Entries)
    assert len(answer.entries) == 4 * 1024 * 1024 // 60_000
    answer = call(service.GetEntries, spb.EntriesRequest(start=80, count=4000))
    assert isinstance(answer, spb.Entries)
    assert [e.index for e in answer.entries] == list(range(80, 1080))


INVALID: list[tuple[str, object]] = [
    ("GetInclusionProof", spb.ProofRequest(first=0, second=0)),
    ("GetInclusionProof", spb.ProofRequest(first=0, second=41)),
    ("GetInclusionProof", spb.ProofRequest(first=40, second=40)),
    ("GetInclusionProof", spb.ProofRequest(first=2**64 - 1, second=40)),
    ("GetConsistencyProof", spb.ProofRequest(first=0, second=40)),
    ("GetConsistencyProof", spb.ProofRequest(first=10, second=9)),
    ("GetConsistencyProof", spb.ProofRequest(first=1, second=2**64 - 1)),
    ("GetEntries", spb.EntriesRequest(start=41, count=1)),
    ("GetEntries", spb.EntriesRequest(start=0, count=0)),
    ("GetBlob", spb.BlobRequest(content_hash=b"short")),
    ("GetBlob", spb.BlobRequest(content_hash=hashlib.sha256(b"absent").digest())),
]


@pytest.mark.parametrize(("method", "request_"), INVALID)
def test_service_refuses_bad_requests(full: ProtocolLog, method: str, request_: object) -> None:
    service = LogService(full, admit)
    assert status(getattr(service, method), request_) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("GetCheckpoint", spb.CheckpointRequest()),
        ("GetInclusionProof", spb.ProofRequest(first=0, second=1)),
        ("GetConsistencyProof", spb.ProofRequest(first=1, second=2)),
        ("GetEntries", spb.EntriesRequest(start=0, count=1)),
        ("GetBlob", spb.BlobRequest(content_hash=hashlib.sha256(DATA[0]).digest())),
    ],
)
def test_service_admits_only_authorized_callers(
    full: ProtocolLog, method: str, request_: object
) -> None:
    service = LogService(full, refuse)
    assert status(getattr(service, method), request_) == grpc.StatusCode.PERMISSION_DENIED
