"""Signed notes, checkpoints, cosignatures and ``scfed audit verify-note``."""

from __future__ import annotations

import argparse
import base64
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from scfed import note, tlog
from scfed.checkpoint import Checkpoint, parse_checkpoint
from scfed.cli import audit
from scfed.errors import ConfigError, LocalProtocolError, ScfedError, VerificationError
from scfed.note_format import parse_note

ROOT = tlog.root_hash([tlog.leaf_hash(b"a"), tlog.leaf_hash(b"b"), tlog.leaf_hash(b"c")])
ROOT_B64 = base64.b64encode(ROOT).decode()
CHECKPOINT = Checkpoint("example.org/scfed-log", 3, ROOT)
TEXT = CHECKPOINT.format()
LOG = note.Signer("example.org/scfed-log", Ed25519PrivateKey.generate())
WITNESS_KEY = Ed25519PrivateKey.generate()
WITNESS = note.Verifier.cosigner("witness.example.org/w1", WITNESS_KEY.public_key())
T = 1_700_000_000


def _signature_block(signed: bytes) -> str:
    return signed.decode().rsplit("\n\n", 1)[1]


# --- signed notes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        TEXT,
        "one line\n",
        "\n",
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n"
        "\ned è subito sera.\n",
        "ends in a blank line\n\n",
    ],
)
def test_sign_and_open(text: str) -> None:
    other = note.Signer("other.example", Ed25519PrivateKey.generate())
    signed = note.sign_note(text, [LOG, other])
    assert signed == text.encode() + b"\n" + _signature_block(signed).encode()
    opened = note.open_note(signed, [LOG.verifier(), other.verifier()])
    assert opened.text == text
    assert opened.signers == (LOG.name, "other.example")
    assert note.open_note(signed, [other.verifier()]).unverified[0].name == LOG.name


def test_key_texts_round_trip() -> None:
    verifier = note.parse_verifier_key(LOG.verifier_key_text)
    assert verifier == LOG.verifier()
    assert verifier.key_id == note.key_id(LOG.name, note.ED25519, verifier.public_key)
    assert note.parse_signer_key(LOG.signer_key_text).verifier() == verifier
    assert "PRIVATE" not in repr(LOG)
    cosigner = note.parse_verifier_key(WITNESS.key_text)
    assert cosigner == WITNESS
    assert cosigner.signature_type == note.COSIGNATURE_V1


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2028b", "a\u3000b"])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        note.Signer(name, Ed25519PrivateKey.generate())
    with pytest.raises(LocalProtocolError):
        note.cosign(TEXT, name, WITNESS_KEY, T)
    with pytest.raises(VerificationError):
        note.Verifier.ed25519(name, WITNESS_KEY.public_key())


@pytest.mark.parametrize(
    ("text", "signers"),
    [
        pytest.param("no final newline", [LOG], id="no-final-newline"),
        pytest.param("tab\there\n", [LOG], id="control-character"),
        pytest.param("crlf\r\n", [LOG], id="carriage-return"),
        pytest.param("lone \udc80 surrogate\n", [LOG], id="not-unicode"),
        pytest.param(b"bytes\n", [LOG], id="bytes-not-text"),
        pytest.param(TEXT, [], id="no-signer"),
        pytest.param(TEXT, [LOG, LOG], id="same-signer-twice"),
    ],
)
def test_sign_note_refuses(text: str, signers: list[note.Signer]) -> None:
    with pytest.raises(LocalProtocolError):
        note.sign_note(text, signers)


SIGNED = note.sign_note(TEXT, [LOG])
LINE = _signature_block(SIGNED)[:-1]  # without its newline
ENCODED = LINE.rsplit(" ", 1)[1]

MALFORMED = {
    "empty": b"",
    "text-only": TEXT.encode(),
    "no-signature-lines": TEXT.encode() + b"\n",
    "no-final-newline": SIGNED[:-1],
    "missing-blank-line": TEXT.encode() + LINE.encode() + b"\n",
    "hyphen-instead-of-em-dash": (TEXT + "\n- " + LINE[2:] + "\n").encode(),
    "en-dash-instead-of-em-dash": (TEXT + "\n\u2013 " + LINE[2:] + "\n").encode(),
    "em-dash-without-space": (TEXT + "\n\u2014" + LINE[2:] + "\n").encode(),
    "empty-key-name": (TEXT + "\n\u2014  " + ENCODED + "\n").encode(),
    "key-name-with-plus": (TEXT + "\n\u2014 a+b " + ENCODED + "\n").encode(),
    "no-signature-after-name": (TEXT + "\n\u2014 " + LOG.name + "\n").encode(),
    "empty-signature": (TEXT + "\n\u2014 " + LOG.name + " \n").encode(),
    "signature-shorter-than-5-bytes": (TEXT + "\n\u2014 " + LOG.name + " AAAAAA==\n").encode(),
    "unpadded-signature": (TEXT + "\n" + LINE.rstrip("=") + "\n").encode(),
    "signature-with-space": (TEXT + "\n" + LINE + " x\n").encode(),
    "blank-line-between-signatures": SIGNED + b"\n" + LINE.encode() + b"\n",
    "trailing-blank-line": SIGNED + b"\n",
    "crlf": SIGNED.replace(b"\n", b"\r\n"),
    "tab-in-text": b"\t" + SIGNED,
    "nul-in-text": b"\x00" + SIGNED,
    "non-utf8": b"\xc3\x28" + SIGNED,
    "overlong-utf8": b"\xc0\xaf" + SIGNED,
    "utf8-surrogate": b"\xed\xa0\x80" + SIGNED,
    "101-signatures": TEXT.encode() + b"\n" + (LINE + "\n").encode() * 101,
}


@pytest.mark.parametrize("message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_notes_are_refused(message: bytes) -> None:
    with pytest.raises(VerificationError):
        note.open_note(message, [LOG.verifier()])


def test_non_canonical_signature_base64_is_refused() -> None:
    raw = base64.b64decode("AAAAAAB=")  # the last character carries a stray bit
    assert base64.b64encode(raw) == b"AAAAAAA="
    message = (TEXT + "\n\u2014 " + LOG.name + " AAAAAAB=\n").encode()
    with pytest.raises(VerificationError, match="canonical"):
        parse_note(message)


def test_a_note_must_be_bytes() -> None:
    with pytest.raises(VerificationError, match="bytes"):
        note.open_note(SIGNED.decode(), [LOG.verifier()])  # type: ignore[arg-type]


def test_open_note_verification_rules() -> None:
    stranger = note.Signer(LOG.name, Ed25519PrivateKey.generate())
    forged = note.sign_note(TEXT.replace("3", "4"), [LOG])
    with pytest.raises(VerificationError, match="invalid signature"):
        note.open_note(TEXT.encode() + b"\n" + _signature_block(forged).encode(), [LOG.verifier()])
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        note.open_note(note.sign_note(TEXT, [stranger]), [LOG.verifier()])
    twice = SIGNED + (LINE + "\n").encode()
    assert len(note.open_note(twice, [LOG.verifier()]).signatures) == 1


@pytest.mark.parametrize(
    "vkey",
    [
        LOG.verifier_key_text.upper(),
        LOG.verifier_key_text.replace("+", "+0", 1),
        LOG.verifier_key_text + "\n",
        LOG.verifier_key_text + "=",
        LOG.name + "+" + LOG.verifier_key_text.split("+")[2],
        "+".join([LOG.name, "00000000", LOG.verifier_key_text.split("+", 2)[2]]),
        "x" + LOG.verifier_key_text,
    ],
)
def test_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(VerificationError):
        note.parse_verifier_key(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        LOG.signer_key_text.replace("PRIVATE", "PUBLIC"),
        LOG.signer_key_text.replace(f"{LOG.key_id:08x}", "00000000"),
        LOG.signer_key_text[:-4],
        LOG.verifier_key_text,
    ],
)
def test_bad_signer_keys_are_refused(skey: str) -> None:
    with pytest.raises(VerificationError) as caught:
        note.parse_signer_key(skey)
    assert LOG.signer_key_text.rsplit("+", 1)[1] not in str(caught.value)


# --- checkpoints -----------------------------------------------------------------------------


origins = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)
extension_lines = st.lists(origins, max_size=3).map(tuple)


@given(origins, st.integers(0, 2**63 - 1), st.binary(min_size=32, max_size=32), extension_lines)
def test_checkpoint_round_trip(origin: str, size: int, root: bytes, ext: tuple[str, ...]) -> None:
    checkpoint = Checkpoint(origin, size, root, ext)
    assert parse_checkpoint(checkpoint.format()) == checkpoint


def test_checkpoint_format() -> None:
    assert CHECKPOINT.format() == f"example.org/scfed-log\n3\n{ROOT_B64}\n"
    with_ext = Checkpoint("o", 0, ROOT, ("ext one", "two"))
    assert with_ext.format() == f"o\n0\n{ROOT_B64}\next one\ntwo\n"


GOOD = ["origin", "12", ROOT_B64]
BAD_CHECKPOINTS = {
    "empty": "",
    "no-final-newline": "origin\n12\n" + ROOT_B64,
    "two-lines": "origin\n12\n",
    "empty-origin": "\n12\n" + ROOT_B64 + "\n",
    "size-leading-zero": "origin\n012\n" + ROOT_B64 + "\n",
    "size-zero-zero": "origin\n00\n" + ROOT_B64 + "\n",
    "size-plus-sign": "origin\n+12\n" + ROOT_B64 + "\n",
    "size-minus-sign": "origin\n-12\n" + ROOT_B64 + "\n",
    "size-negative-zero": "origin\n-0\n" + ROOT_B64 + "\n",
    "size-spaces": "origin\n 12\n" + ROOT_B64 + "\n",
    "size-trailing-space": "origin\n12 \n" + ROOT_B64 + "\n",
    "size-hex": "origin\n0xc\n" + ROOT_B64 + "\n",
    "size-underscore": "origin\n1_2\n" + ROOT_B64 + "\n",
    "size-arabic-indic-digits": "origin\n\u0661\u0662\n" + ROOT_B64 + "\n",
    "size-fullwidth-digits": "origin\n\uff11\uff12\n" + ROOT_B64 + "\n",
    "size-empty": "origin\n\n" + ROOT_B64 + "\n",
    "size-2^63": f"origin\n{2**63}\n{ROOT_B64}\n",
    "size-huge": "origin\n" + "9" * 5000 + "\n" + ROOT_B64 + "\n",
    "root-31-bytes": "origin\n12\n" + base64.b64encode(ROOT[:31]).decode() + "\n",
    "root-33-bytes": "origin\n12\n" + base64.b64encode(ROOT + b"\x00").decode() + "\n",
    "root-unpadded": "origin\n12\n" + ROOT_B64.rstrip("=") + "\n",
    "root-url-safe": "origin\n12\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n",
    "root-hex": "origin\n12\n" + ROOT.hex() + "\n",
    "root-non-canonical": "origin\n12\n" + ROOT_B64[:42] + "B=\n",
    "root-with-space": "origin\n12\n " + ROOT_B64 + "\n",
    "crlf": "\r\n".join(GOOD) + "\r\n",
    "cr-only": "origin\r12\r" + ROOT_B64 + "\r",
    "tab-in-origin": "ori\tgin\n12\n" + ROOT_B64 + "\n",
    "empty-extension-line": "\n".join([*GOOD, "", "ext"]) + "\n",
    "trailing-blank-line": "\n".join(GOOD) + "\n\n",
    "signed-note-not-body": "\n".join(GOOD) + "\n\n\u2014 origin AAAAAAA=\n",
}


@pytest.mark.parametrize("text", BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS.keys())
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(VerificationError):
        parse_checkpoint(text)


def test_good_checkpoint_edges() -> None:
    assert parse_checkpoint("o\n0\n" + ROOT_B64 + "\n").size == 0
    assert parse_checkpoint(f"o\n{2**63 - 1}\n{ROOT_B64}\n").size == 2**63 - 1
    assert parse_checkpoint("o p+q\n1\n" + ROOT_B64 + "\n").origin == "o p+q"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Checkpoint("", 1, ROOT),
        lambda: Checkpoint("a\nb", 1, ROOT),
        lambda: Checkpoint("o", True, ROOT),
        lambda: Checkpoint("o", -1, ROOT),
        lambda: Checkpoint("o", 2**63, ROOT),
        lambda: Checkpoint("o", 1, ROOT[:31]),
        lambda: Checkpoint("o", 1, ROOT.hex()),  # type: ignore[arg-type]
        lambda: Checkpoint("o", 1, ROOT, ["ext"]),  # type: ignore[arg-type]
        lambda: Checkpoint("o", 1, ROOT, ("",)),
        lambda: Checkpoint("o", 1, ROOT, ("a\nb",)),
    ],
)
def test_invalid_checkpoints_cannot_be_built(build: Callable[[], Checkpoint]) -> None:
    with pytest.raises(VerificationError):
        build()


# --- cosignatures ----------------------------------------------------------------------------


def test_cosign_and_verify() -> None:
    line = note.cosign(TEXT, WITNESS.name, WITNESS_KEY, T)
    assert line.startswith(f"\u2014 {WITNESS.name} ")
    assert line.endswith("\n")
    assert note.verify_cosignature(TEXT, line, WITNESS) == T
    assert note.verify_cosignature(TEXT, line[:-1], WITNESS) == T
    encoded = line[:-1].rsplit(" ", 1)[1]
    raw = base64.b64decode(encoded)
    assert raw[:4] == WITNESS.key_id.to_bytes(4, "big")
    assert note.cosignature_timestamp(encoded) == T
    message = note.cosignature_message(TEXT, T)
    assert message == f"cosignature/v1\ntime {T}\n{TEXT}".encode()
    WITNESS_KEY.public_key().verify(raw[12:], message)


def test_cosigned_checkpoint_opens_with_log_and_witness_keys() -> None:
    cosigned = (
        note.sign_note(TEXT, [LOG]) + note.cosign(TEXT, WITNESS.name, WITNESS_KEY, T).encode()
    )
    opened = note.open_note(cosigned, [LOG.verifier(), WITNESS])
    assert [(s.name, s.timestamp) for s in opened.signatures] == [
        (LOG.name, None),
        (WITNESS.name, T),
    ]
    assert note.open_note(cosigned, [WITNESS]).signers == (WITNESS.name,)


def test_cosignature_and_note_key_ids_differ_for_one_key() -> None:
    same_key = note.Signer(WITNESS.name, WITNESS_KEY)
    assert same_key.key_id != WITNESS.key_id
    signed = note.sign_note(TEXT, [same_key])
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        note.open_note(signed, [WITNESS])


def _tampered_timestamp(line: str) -> str:
    raw = bytearray(base64.b64decode(line[:-1].rsplit(" ", 1)[1]))
    raw[11] ^= 1
    return f"\u2014 {WITNESS.name} {base64.b64encode(bytes(raw)).decode()}"


def test_tampered_cosignatures_are_refused() -> None:
    line = note.cosign(TEXT, WITNESS.name, WITNESS_KEY, T)
    other = Checkpoint(CHECKPOINT.origin, 4, ROOT).format()
    stranger = note.Verifier.cosigner(WITNESS.name, Ed25519PrivateKey.generate().public_key())
    cases: list[Callable[[], int]] = [
        lambda: note.verify_cosignature(other, line, WITNESS),
        lambda: note.verify_cosignature(TEXT, _tampered_timestamp(line), WITNESS),
        lambda: note.verify_cosignature(TEXT, line, stranger),
        lambda: note.verify_cosignature(TEXT, line, LOG.verifier()),
        lambda: note.verify_cosignature(TEXT, line.replace("w1", "w2"), WITNESS),
        lambda: note.verify_cosignature("not a checkpoint\n", line, WITNESS),
        lambda: note.verify_cosignature(TEXT, _signature_block(SIGNED), WITNESS),
    ]
    for case in cases:
        with pytest.raises(VerificationError):
            case()


def test_cosignature_timestamp_limits() -> None:
    for bad in (True, -1, 2**63, 1.5):
        with pytest.raises(LocalProtocolError):
            note.cosign(TEXT, WITNESS.name, WITNESS_KEY, bad)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        note.cosign("not a checkpoint\n", WITNESS.name, WITNESS_KEY, T)
    assert note.verify_cosignature(
        TEXT, note.cosign(TEXT, WITNESS.name, WITNESS_KEY, 2**63 - 1), WITNESS
    ) == (2**63 - 1)
    high = WITNESS.key_id.to_bytes(4, "big") + (2**63).to_bytes(8, "big") + bytes(64)
    with pytest.raises(VerificationError, match="2\\^63"):
        note.cosignature_timestamp(base64.b64encode(high).decode())
    with pytest.raises(VerificationError, match="2\\^63"):
        note.verify_cosignature(
            TEXT, f"\u2014 {WITNESS.name} {base64.b64encode(high).decode()}", WITNESS
        )


# --- scfed audit verify-note -----------------------------------------------------------------


def run_cli(argv: Sequence[str]) -> int:
    """``scfed`` with only the audit command, keeping main()'s contract: ScfedError -> 1."""
    parser = argparse.ArgumentParser(prog="scfed")
    audit.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ScfedError as exc:
        print(f"scfed: error: {exc}")
        return 1
    return code


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    path = tmp_path / "checkpoint"
    path.write_bytes(note.sign_note(TEXT, [LOG]))
    return path


def test_verify_note_prints_the_checkpoint(
    checkpoint_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(["audit", "verify-note", "--vkey", LOG.verifier_key_text, str(checkpoint_file)])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "origin: example.org/scfed-log",
        "size: 3",
        f"root: {ROOT_B64}",
        f"root hex: {ROOT.hex()}",
        f"signed by: {LOG.name}+{LOG.key_id:08x}",
    ]


def test_verify_note_reads_keys_from_a_file(
    checkpoint_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{WITNESS.key_text}\n\n{LOG.verifier_key_text}\n", encoding="utf-8")
    cosigned = (
        checkpoint_file.read_bytes() + note.cosign(TEXT, WITNESS.name, WITNESS_KEY, T).encode()
    )
    checkpoint_file.write_bytes(cosigned)
    assert run_cli(["audit", "verify-note", "--vkey", f"@{keys}", str(checkpoint_file)]) == 0
    out = capsys.readouterr().out
    assert f"signed by: {WITNESS.name}+{WITNESS.key_id:08x} (cosigned at {T})" in out


def test_verify_note_names_signers_of_other_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "note"
    path.write_bytes(note.sign_note("hello\n", [LOG]))
    assert run_cli(["audit", "verify-note", "--vkey", LOG.verifier_key_text, str(path)]) == 0
    assert capsys.readouterr().out == f"signed by: {LOG.name}+{LOG.key_id:08x}\n"


def test_verify_note_failures_exit_1(
    checkpoint_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = note.Signer(LOG.name, Ed25519PrivateKey.generate()).verifier_key_text
    tampered = tmp_path / "tampered"
    tampered.write_bytes(checkpoint_file.read_bytes().replace(b"\n3\n", b"\n4\n"))
    failures = [
        (["--vkey", stranger, str(checkpoint_file)], "no signature by a trusted key"),
        (["--vkey", LOG.verifier_key_text, str(tampered)], "invalid signature"),
        (["--vkey", "nonsense", str(checkpoint_file)], "bad verifier key"),
        (["--vkey", f"@{tmp_path / 'missing'}", str(checkpoint_file)], "cannot read"),
        (["--vkey", LOG.verifier_key_text, str(tmp_path / "missing")], "cannot read"),
    ]
    for argv, reason in failures:
        assert run_cli(["audit", "verify-note", *argv]) == 1
        out = capsys.readouterr().out
        assert out.startswith("scfed: error: ")
        assert reason in out
        assert out.count("\n") == 1


def test_verify_note_raises_scfed_errors(checkpoint_file: Path) -> None:
    with pytest.raises(ConfigError):
        audit.verifier_keys("@/nonexistent/keys")
    parser = argparse.ArgumentParser()
    audit.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["audit", "verify-note", "--vkey", WITNESS.key_text, str(checkpoint_file)]
    )
    with pytest.raises(VerificationError, match=str(checkpoint_file)):
        args.func(args)
