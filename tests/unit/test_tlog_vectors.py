"""Replay the published transparency-log vectors exactly as they are, one test per case.

The vector files are verbatim copies in tests/vectors (see its README) and are read at test
time; a missing file fails collection rather than skipping anything. Every section of every file is
replayed: a guard test fails when a file grows a section this module does not know.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import note, tlog
from scfed.checkpoint import Checkpoint, parse_checkpoint
from scfed.errors import VerificationError
from scfed.note_format import parse_note
from scfed.tlog_verify import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "tlog"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


RFC = _load("rfc6962_sha256_8leaf_tree.json")
PROBES = _load("transparency_dev_merkle_probes.json")
NOTES = _load("signed_note_vectors.json")

LEAF_INPUTS = [bytes.fromhex(x) for x in RFC["leaf_inputs_hex"]]
LEAVES = [tlog.leaf_hash(x) for x in LEAF_INPUTS]


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


def _hashes(texts: list[str]) -> list[bytes]:
    return [bytes.fromhex(t) for t in texts]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def test_every_section_is_replayed() -> None:
    assert set(RFC) == {
        "description",
        "sources",
        "leaf_inputs_hex",
        "node_hashes_by_level",
        "root_hash_by_tree_size",
        "inclusion_proofs",
        "consistency_proofs",
        "hasher_unit_vectors",
        "extra_consistency_cases_from_ct_python",
    }
    assert set(PROBES) == {"description", "source", "counts", "inclusion", "consistency"}
    assert set(NOTES) == {
        "description",
        "vectors",
        "negative_rules_from_sources",
        "checkpoint_format_vectors",
        "cosignature_v1_vectors",
    }


# --- RFC 6962 / 9162 eight-leaf tree ---------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "index"),
    [
        pytest.param(level, index, id=f"node-L{level}-{index}")
        for level, row in enumerate(RFC["node_hashes_by_level"]["levels"])
        for index in range(len(row))
    ],
)
def test_node_hashes(level: int, index: int) -> None:
    want = _h(RFC["node_hashes_by_level"]["levels"][level][index])
    width = 1 << level
    assert tlog.root_hash(LEAVES[index * width : (index + 1) * width]) == want
    assert tlog.MemoryTree(LEAVES).get(level, index) == want


@pytest.mark.parametrize(
    "size", [pytest.param(int(n), id=f"root-size-{n}") for n in RFC["root_hash_by_tree_size"]]
)
def test_roots(size: int) -> None:
    want = _h(RFC["root_hash_by_tree_size"][str(size)])
    assert tlog.root_hash(LEAVES[:size]) == want
    assert tlog.MemoryTree(LEAVES).root(size) == want
    assert tlog.MemoryTree(LEAVES[:size]).root() == want


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=f"inclusion-leaf{c['leaf_index']}-size{c['tree_size']}")
        for c in RFC["inclusion_proofs"]
    ],
)
def test_inclusion_proofs(case: dict[str, Any]) -> None:
    index, size = case["leaf_index"], case["tree_size"]
    leaf = _h(case["leaf_hash"])
    assert tlog.leaf_hash(_h(case["leaf_input_hex"])) == leaf == LEAVES[index]
    proof = _hashes(case["proof"])
    assert tlog.inclusion_proof(index, size, LEAVES) == proof
    assert tlog.MemoryTree(LEAVES).inclusion_proof(index, size) == proof
    verify_inclusion(leaf, index, size, proof, _h(case["root"]))


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=f"consistency-{c['size1']}-{c['size2']}")
        for c in RFC["consistency_proofs"]
    ],
)
def test_consistency_proofs(case: dict[str, Any]) -> None:
    size1, size2 = case["size1"], case["size2"]
    proof = _hashes(case["proof"])
    assert tlog.consistency_proof(size1, size2, LEAVES) == proof
    assert tlog.MemoryTree(LEAVES).consistency_proof(size1, size2) == proof
    verify_consistency(size1, size2, proof, _h(case["root1"]), _h(case["root2"]))


HASHER: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "empty_tree_root": lambda _: tlog.root_hash([]),
    "leaf_hash_of_empty_input": lambda _: tlog.leaf_hash(b""),
    "leaf_hash_of_ascii_L123456": lambda _: tlog.leaf_hash(b"L123456"),
    "node_hash_of_ascii_N123_and_N456": lambda _: tlog.node_hash(b"N123", b"N456"),
    "leaf_hash_of_hex_101112131415161718191a1b1c1d1e1f": lambda _: tlog.leaf_hash(
        _h("101112131415161718191a1b1c1d1e1f")
    ),
    "node_hash_children": lambda v: tlog.node_hash(_h(v["left"]), _h(v["right"])),
}


def _hasher_cases() -> list[Any]:
    vectors = RFC["hasher_unit_vectors"]
    names = [k for k in vectors if not k.startswith("source")]
    assert set(names) == set(HASHER), "a hasher vector has no replay"
    return [pytest.param(name, id=f"hasher-{name}") for name in names]


@pytest.mark.parametrize("name", _hasher_cases())
def test_hasher_unit_vectors(name: str) -> None:
    vector = RFC["hasher_unit_vectors"][name]
    want = vector["expected"] if isinstance(vector, dict) else vector
    assert HASHER[name](vector).hex() == want


def _ct_python_id(case: dict[str, Any]) -> str:
    policy = "-refused-by-policy" if "divergence" in case else ""
    return f"ct-python-{_slug(case['desc'].split('(')[0])}{policy}"


def _ct_python_accepts(case: dict[str, Any]) -> bool:
    """The published expectation, except where the case itself records that verifiers
    disagree and asks for one explicit policy: there scfed.tlog's policy (the one the
    transparency-dev probes below require) decides, and it refuses size1 = 0."""
    if "divergence" in case:
        assert case["size1"] == 0
        assert "transparency-dev/merkle RootFromConsistencyProof rejects" in case["divergence"]
        return False
    assert case["expect"] in ("accept", "reject")
    return bool(case["expect"] == "accept")


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=_ct_python_id(c)) for c in RFC["extra_consistency_cases_from_ct_python"]],
)
def test_ct_python_consistency_cases(case: dict[str, Any]) -> None:
    args = (case["size1"], case["size2"], _hashes(case["proof"]))
    roots = (_h(case["root1"]), _h(case["root2"]))
    if _ct_python_accepts(case):
        verify_consistency(*args, *roots)
    else:
        with pytest.raises(VerificationError):
            verify_consistency(*args, *roots)


# --- transparency-dev/merkle verifier probes -------------------------------------------------


def _probe_id(case: dict[str, Any]) -> str:
    return str(case["file"]).removeprefix("testdata/").removesuffix(".json")


def test_probe_counts() -> None:
    assert len(PROBES["inclusion"]) == PROBES["counts"]["inclusion"]
    assert len(PROBES["consistency"]) == PROBES["counts"]["consistency"]


@pytest.mark.parametrize("case", [pytest.param(c, id=_probe_id(c)) for c in PROBES["inclusion"]])
def test_inclusion_probes(case: dict[str, Any]) -> None:
    args = (_h(case["leafHash"]), case["leafIdx"], case["treeSize"], _hashes(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args, _h(case["root"]))
    else:
        verify_inclusion(*args, _h(case["root"]))


@pytest.mark.parametrize("case", [pytest.param(c, id=_probe_id(c)) for c in PROBES["consistency"]])
def test_consistency_probes(case: dict[str, Any]) -> None:
    args = (case["size1"], case["size2"], _hashes(case["proof"]))
    roots = (_h(case["root1"]), _h(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args, *roots)
    else:
        verify_consistency(*args, *roots)


# --- signed notes ----------------------------------------------------------------------------


def _note_vector(vector_id: str) -> dict[str, Any]:
    vectors: list[dict[str, Any]] = NOTES["vectors"]
    return next(v for v in vectors if v["id"] == vector_id)


PETER = _note_vector("go-sumdb-note-PeterNeumann")
ENOCH = _note_vector("go-sumdb-note-EnochRoot")
PETER_LINE = PETER["signed_note"].split("\n\n")[-1]  # with its final newline
ENOCH_LINE = ENOCH["signature_line"] + "\n"
TEXT: str = PETER["text"]


def _peter() -> note.Verifier:
    return note.parse_verifier_key(PETER["vkey"])


def _enoch() -> note.Verifier:
    return note.parse_verifier_key(ENOCH["vkey"])


def _replay_peter(vector: dict[str, Any]) -> None:
    signer = note.parse_signer_key(vector["skey"])
    assert signer.signer_key_text == vector["skey"]
    assert signer.verifier_key_text == vector["vkey"]
    assert note.sign_note(vector["text"], [signer]) == vector["signed_note"].encode()
    opened = note.open_note(vector["signed_note"].encode(), [_peter()])
    assert (opened.text, opened.signers, opened.unverified) == (TEXT, ("PeterNeumann",), ())


def _replay_enoch(vector: dict[str, Any]) -> None:
    alone = (vector["text"] + "\n" + ENOCH_LINE).encode()
    assert note.open_note(alone, [_enoch()]).signers == ("EnochRoot",)
    both = (TEXT + "\n" + PETER_LINE + ENOCH_LINE).encode()
    opened = note.open_note(both, [_peter()])
    assert opened.signers == ("PeterNeumann",)
    assert [s.name for s in opened.unverified] == ["EnochRoot"]
    assert note.open_note(both, [_peter(), _enoch()]).signers == ("PeterNeumann", "EnochRoot")


def _replay_c2sp_example(vector: dict[str, Any]) -> None:
    opened = note.open_note(
        vector["signed_note"].encode(), [note.parse_verifier_key(vector["vkey"])]
    )
    assert opened.text == "This is an example message.\n"
    assert opened.signers == ("example.com/foo",)
    assert note.parse_verifier_key(vector["vkey"]).key_text == vector["vkey"]


NOTE_VECTORS: dict[str, Callable[[dict[str, Any]], None]] = {
    "go-sumdb-note-PeterNeumann": _replay_peter,
    "go-sumdb-note-EnochRoot": _replay_enoch,
    "c2sp-signed-note-example": _replay_c2sp_example,
}


@pytest.mark.parametrize("vector", [pytest.param(v, id=v["id"]) for v in NOTES["vectors"]])
def test_signed_note_vectors(vector: dict[str, Any]) -> None:
    assert vector["expect"].startswith("valid")
    NOTE_VECTORS[vector["id"]](vector)


# The negative rules are prose; each is replayed as the concrete cases it lists.


def _vkey_substrings() -> None:
    vkey = PETER["vkey"]
    for i in range(len(vkey) + 1):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) != (0, len(vkey)):
                with pytest.raises(VerificationError):
                    note.parse_verifier_key(vkey[i:j])


def _vkey_increments() -> None:
    vkey = PETER["vkey"]
    for i in range(len(vkey)):
        with pytest.raises(VerificationError):
            note.parse_verifier_key(vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :])


def _adjusted_vkey(material: bytes) -> str:
    """Peter's name with a key ID recomputed over other key material, as in Go's test."""
    kid = note.key_id("PeterNeumann", material[0], material[1:])
    return f"PeterNeumann+{kid:08x}+{base64.b64encode(material).decode()}"


def _vkey_wrong_length() -> None:
    key = _peter().public_key
    for material in (b"\x01" + key + b"\x00", b"\x01" + key[:31], b"\x01"):
        with pytest.raises(VerificationError):
            note.parse_verifier_key(_adjusted_vkey(material))


def _vkey_unknown_algorithm() -> None:
    for algorithm in (0x00, 0x02, 0x03, 0x05, 0x65, 0xFF):
        with pytest.raises(VerificationError, match="unknown signature type"):
            note.parse_verifier_key(_adjusted_vkey(bytes([algorithm]) + _peter().public_key))


def _refused(message: bytes, verifiers: list[note.Verifier], match: str) -> None:
    with pytest.raises(VerificationError, match=match):
        note.open_note(message, verifiers)


def _too_many_signatures() -> None:
    message = (TEXT + "\n" + PETER_LINE * 101).encode()
    _refused(message, [_peter()], "more than 100 signatures")
    _refused(message, [], "more than 100 signatures")
    assert note.open_note((TEXT + "\n" + PETER_LINE * 100).encode(), [_peter()]).signers == (
        "PeterNeumann",
    )


MALFORMED = {
    "text-without-signatures": TEXT,
    "no-signature-lines": TEXT + "\n",
    "no-final-newline": TEXT + "\n" + PETER_LINE[:-1],
    "missing-blank-line": TEXT + PETER_LINE,
    "leading-control-byte": "\x01" + TEXT + "\n" + PETER_LINE,
    "key-name-with-space": TEXT + "\n" + PETER_LINE.replace("PeterNeumann", "Bad Name"),
    "trailing-non-signature-line": TEXT + "\n" + PETER_LINE + "Unexpected line.\n",
}


def _malformed_notes() -> None:
    for message in MALFORMED.values():
        _refused(message.encode(), [_peter()], "malformed note")
    _refused(b"\xff" + (TEXT + "\n" + PETER_LINE).encode(), [_peter()], "not valid UTF-8")


def _corrupted_known_signature() -> None:
    bad = PETER_LINE[:60] + "ABCD" + PETER_LINE[60:]
    _refused((TEXT + "\n" + bad).encode(), [_peter()], "invalid signature for key PeterNeumann")


def _ambiguous_key() -> None:
    message = (TEXT + "\n" + ENOCH_LINE).encode()
    _refused(message, [_enoch(), _peter(), _enoch()], "ambiguous key EnochRoot")
    opened = note.open_note((TEXT + "\n" + PETER_LINE).encode(), [_enoch(), _peter(), _enoch()])
    assert opened.signers == ("PeterNeumann",)


def _accepts_16_signatures() -> None:
    signers = [note.Signer(f"w{i}.example", Ed25519PrivateKey.generate()) for i in range(16)]
    signed = note.sign_note(TEXT, signers)
    opened = note.open_note(signed, [s.verifier() for s in signers])
    assert len(opened.signatures) == 16


def _ignores_unknown_keys() -> None:
    other = note.Signer("PeterNeumann", Ed25519PrivateKey.generate())  # same name, other ID
    renamed = PETER_LINE.replace("PeterNeumann", "PeterNeumann2")  # same ID, other name
    message = TEXT + "\n" + note.sign_note(TEXT, [other]).decode().split("\n\n")[-1] + renamed
    _refused(message.encode(), [_peter()], "no signature by a trusted key")
    opened = note.open_note((message + PETER_LINE).encode(), [_peter()])
    assert opened.signers == ("PeterNeumann",)
    assert len(opened.unverified) == 2


def _known_key_failure_rejects() -> None:
    bad = PETER_LINE[:60] + "ABCD" + PETER_LINE[60:]
    _refused((TEXT + "\n" + ENOCH_LINE + bad).encode(), [_peter(), _enoch()], "invalid signature")


def _no_known_key_rejects() -> None:
    _refused((TEXT + "\n" + PETER_LINE + ENOCH_LINE).encode(), [], "no signature by a trusted")


NEGATIVE_RULES: dict[str, dict[str, Callable[[], None]]] = {
    "golang/mod sumdb/note/note_test.go TestNewVerifier": {
        "vkey-proper-substrings": _vkey_substrings,
        "vkey-single-byte-increments": _vkey_increments,
        "vkey-wrong-length-key": _vkey_wrong_length,
        "vkey-unknown-algorithm": _vkey_unknown_algorithm,
    },
    "golang/mod sumdb/note/note_test.go TestOpen": {
        "more-than-100-signatures": _too_many_signatures,
        "malformed-notes": _malformed_notes,
        "corrupted-known-signature": _corrupted_known_signature,
        "same-name-and-id-twice-is-ambiguous": _ambiguous_key,
    },
    "C2SP signed-note.md": {
        "accepts-16-signatures": _accepts_16_signatures,
        "ignores-unknown-keys": _ignores_unknown_keys,
        "known-key-failure-rejects-the-note": _known_key_failure_rejects,
        "no-known-key-rejects-the-note": _no_known_key_rejects,
    },
}


def test_every_negative_rule_has_cases() -> None:
    rules: list[str] = NOTES["negative_rules_from_sources"]
    assert sorted(rule.split(":")[0] for rule in rules) == sorted(NEGATIVE_RULES)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=f"{_slug(source.split()[-1])}-{name}")
        for source, cases in NEGATIVE_RULES.items()
        for name, case in cases.items()
    ],
)
def test_negative_rules(case: Callable[[], None]) -> None:
    case()


# --- checkpoint bodies -----------------------------------------------------------------------


def _checkpoint_vector(vector_id: str) -> dict[str, Any]:
    vectors: list[dict[str, Any]] = NOTES["checkpoint_format_vectors"]
    return next(v for v in vectors if v["id"] == vector_id)


GO_TREE = _checkpoint_vector("go-sumdb-tree-note-body")
C2SP_CHECKPOINT = _checkpoint_vector("c2sp-tlog-checkpoint-example")
C2SP_CHECKPOINT_TEXT = C2SP_CHECKPOINT["signed_note"].split("\n\n")[0] + "\n"


def test_checkpoint_vector_ids() -> None:
    ids = [v["id"] for v in NOTES["checkpoint_format_vectors"]]
    assert sorted(ids) == sorted([GO_TREE["id"], C2SP_CHECKPOINT["id"]])


def test_go_sumdb_tree_note_body() -> None:
    root = tlog.leaf_hash(GO_TREE["record_hash_of"].encode())
    assert base64.b64encode(root).decode() == GO_TREE["record_hash_b64"]
    checkpoint = parse_checkpoint(GO_TREE["note_body"])
    assert checkpoint == Checkpoint("go.sum database tree", GO_TREE["tree_size"], root)
    assert checkpoint.format() == GO_TREE["note_body"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b, id=f"go-sumdb-tree-note-body-bad-{i}")
        for i, b in enumerate(GO_TREE["bad_bodies"])
    ],
)
def test_go_sumdb_tree_bad_bodies(body: str) -> None:
    with pytest.raises(VerificationError):
        parse_checkpoint(body)


def test_c2sp_tlog_checkpoint_example() -> None:
    text, signatures = parse_note(C2SP_CHECKPOINT["signed_note"].encode())
    checkpoint = parse_checkpoint(text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert base64.b64encode(checkpoint.root) == b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert checkpoint.format() == text == C2SP_CHECKPOINT_TEXT
    assert [s.name for s in signatures] == [checkpoint.origin]
    # No public key is published, so the note must not open with any key we hold.
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        note.open_note(C2SP_CHECKPOINT["signed_note"].encode(), [_peter()])


# --- cosignatures ----------------------------------------------------------------------------


def _replay_c2sp_cosignature(vector: dict[str, Any]) -> None:
    line: str = vector["signature_line"]
    signed = (C2SP_CHECKPOINT["signed_note"] + line + "\n").encode()
    _, signatures = parse_note(signed)
    cosignature = signatures[-1]
    assert cosignature.name == "witness.example.com/w1"
    assert len(cosignature.signature) == 8 + 64
    encoded = line.rsplit(" ", maxsplit=1)[-1]
    assert note.cosignature_timestamp(encoded) == vector["expected_timestamp"]
    message = note.cosignature_message(C2SP_CHECKPOINT_TEXT, vector["expected_timestamp"])
    assert message == vector["signed_message_example"].encode()


def _replay_cosignature_timestamp(vector: dict[str, Any]) -> None:
    assert note.cosignature_timestamp(vector["signature_b64"]) == vector["expected_timestamp"]
    assert len(base64.b64decode(vector["wrong_type_signature_b64"])) == 68
    with pytest.raises(VerificationError, match="76 bytes"):
        note.cosignature_timestamp(vector["wrong_type_signature_b64"])


COSIGNATURE_VECTORS: dict[str, Callable[[dict[str, Any]], None]] = {
    "c2sp-tlog-cosignature-example": _replay_c2sp_cosignature,
    "transparency-dev-formats-cosig-timestamp": _replay_cosignature_timestamp,
}


@pytest.mark.parametrize(
    "vector", [pytest.param(v, id=v["id"]) for v in NOTES["cosignature_v1_vectors"]]
)
def test_cosignature_vectors(vector: dict[str, Any]) -> None:
    COSIGNATURE_VECTORS[vector["id"]](vector)


def test_cosignature_key_id_uses_type_0x04() -> None:
    key = Ed25519PrivateKey.generate()
    line = note.cosign(C2SP_CHECKPOINT_TEXT, "witness.example.com/w1", key, 1679315147)
    raw = base64.b64decode(line.split(" ")[-1])
    public = note.Verifier.cosigner("witness.example.com/w1", key.public_key()).public_key
    assert int.from_bytes(raw[:4], "big") == note.key_id("witness.example.com/w1", 4, public)
    assert raw[4:12] == (1679315147).to_bytes(8, "big")
