"""``scfed audit``: check the protocol log's signed artefacts offline.

``scfed audit verify-note --vkey VKEY FILE`` verifies a C2SP signed note (a checkpoint or any
other note) against one or more verifier keys and prints what it vouches for. Every failure
raises an ``ScfedError`` whose one-line message the ``scfed`` entry point prints (exit 1).
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Sequence
from pathlib import Path

from scfed.errors import ConfigError, VerificationError
from scfed.note import Note, Verifier, open_note, parse_checkpoint, parse_verifier_key

MAX_NOTE_BYTES = 1 << 20  # far above any note with the 100 signatures a note may carry


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("audit", help="check transparency-log artefacts offline")
    commands = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify_note = commands.add_parser(
        "verify-note",
        help="verify a signed note or checkpoint",
        description="Verify a C2SP signed note; print the checkpoint it holds and who signed it.",
    )
    verify_note.add_argument(
        "--vkey",
        action="append",
        required=True,
        metavar="VKEY",
        help="verifier key <name>+<key id>+<key>, or @FILE holding one per line; repeatable",
    )
    verify_note.add_argument("file", type=Path, metavar="FILE", help="the signed note")
    verify_note.set_defaults(func=_verify_note)


def _verify_note(args: argparse.Namespace) -> int:
    verifiers = [verifier for spec in args.vkey for verifier in verifier_keys(spec)]
    path: Path = args.file
    try:
        note = open_note(_read_note(path), verifiers)
    except VerificationError as exc:
        raise VerificationError(f"{path}: {exc}") from exc
    for line in describe(note):
        print(line)
    return 0


def verifier_keys(spec: str) -> list[Verifier]:
    """The verifiers named by one ``--vkey`` value: key text, or ``@path`` of key lines."""
    if not spec.startswith("@"):
        return [_verifier(spec, "--vkey")]
    path = Path(spec[1:])
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--vkey {spec}: cannot read verifier keys: {exc}") from exc
    keys = [
        _verifier(line.strip(), f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()
    ]
    if not keys:
        raise ConfigError(f"--vkey {spec}: the file holds no verifier key")
    return keys


def _verifier(text: str, where: str) -> Verifier:
    try:
        return parse_verifier_key(text)
    except VerificationError as exc:
        raise ConfigError(f"{where}: bad verifier key: {exc}") from exc


def _read_note(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_NOTE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_NOTE_BYTES:
        raise VerificationError(f"{path}: larger than {MAX_NOTE_BYTES} bytes; not a signed note")
    return data


def describe(note: Note) -> Sequence[str]:
    """Lines saying what a verified note vouches for: the checkpoint, then the signers."""
    lines = _checkpoint_lines(note.text)
    for signature in note.signatures:
        when = "" if signature.timestamp is None else f" (cosigned at {signature.timestamp})"
        lines.append(f"signed by: {signature.name}+{signature.key_id:08x}{when}")
    return lines


def _checkpoint_lines(text: str) -> list[str]:
    """Origin, size and root when the note text is a checkpoint; nothing otherwise."""
    try:
        checkpoint = parse_checkpoint(text)
    except VerificationError:
        return []
    return [
        f"origin: {checkpoint.origin}",
        f"size: {checkpoint.size}",
        f"root: {base64.b64encode(checkpoint.root).decode('ascii')}",
        f"root hex: {checkpoint.root.hex()}",
    ]
