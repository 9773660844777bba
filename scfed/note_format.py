"""C2SP signed-note, section "Format": the text and its signature lines. Pure, no I/O.

A signed note (c2sp.org/signed-note) is valid UTF-8 with no ASCII control character but
newline: a text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(4-byte key ID || signature)>``. Key names are non-empty and hold no
Unicode space and no plus sign (U+002B); base64 is the standard one of RFC 4648, section 4, and
only its one canonical (padded) spelling is accepted.

This module splits and writes that format and knows no key: ``parse_note`` verifies nothing.
Keys, signing and verifying are ``scfed.note``; ``scfed.checkpoint`` applies the same text
rules to the checkpoint a note carries. Each rule raises the error class it is given:
``VerificationError`` for what was received, ``LocalProtocolError`` for what is produced.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from scfed.errors import ScfedError, VerificationError

__all__ = ["MAX_SIGNATURES", "Signature", "parse_note"]

MAX_SIGNATURES = 100  # the spec asks for at least 16; the Go reference refuses more than 100

_DASH = "\u2014 "  # em dash and space open every signature line
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII controls but newline
_SPACE = re.compile(r"\s")  # what str.isspace calls a space, as the spec's "Unicode space"


# --- text rules ------------------------------------------------------------------------------


def _control_free(what: str, text: str, error: type[ScfedError]) -> str:
    """No ASCII control character but newline, and encodable as UTF-8 (no lone surrogates)."""
    if "\r" in text:
        raise error(f"{what} must use LF line endings, found a carriage return")
    control = _CONTROL.search(text)
    if control is not None:
        raise error(f"{what} contains the control character U+{ord(control.group()):04X}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(f"{what} is not valid Unicode text") from exc
    return text


def _name(what: str, name: object, error: type[ScfedError]) -> str:
    """A key name: non-empty, without Unicode spaces, plus signs or control characters."""
    if not isinstance(name, str) or not name:
        raise error(f"{what} must be a non-empty string")
    if "+" in name:
        raise error(f"{what} {name!r} contains a plus sign")
    if _SPACE.search(name):
        raise error(f"{what} {name!r} contains a space")
    return _control_free(what, name, error)


def _b64decode(what: str, text: str) -> bytes:
    """Standard padded base64, and only its one canonical spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise VerificationError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise VerificationError(f"{what} is not canonical base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- signature lines -------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID and the bytes after the key ID.

    ``timestamp`` is set on verified cosignatures.
    """

    name: str
    key_id: int
    signature: bytes
    timestamp: int | None = None

    @property
    def line(self) -> str:
        """The signature line, without its newline."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_DASH}{self.name} {_b64(raw)}"


def parse_note(note: bytes) -> tuple[str, tuple[Signature, ...]]:
    """Split a signed note into its text and signature lines, strictly, verifying nothing.

    The text must not be trusted until ``open_note`` has verified a signature over it.
    """
    if not isinstance(note, bytes):
        raise VerificationError(f"a signed note must be bytes, not {type(note).__name__}")
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError("malformed note: not valid UTF-8") from exc
    _control_free("malformed note: the note", decoded, VerificationError)
    split = decoded.rfind("\n\n")
    if split < 0:
        raise VerificationError("malformed note: no blank line before the signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block:
        raise VerificationError("malformed note: no signature lines")
    if not block.endswith("\n"):
        raise VerificationError("malformed note: the last signature line has no newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return text, tuple(_signature_line(line) for line in lines)


def _signature_line(line: str) -> Signature:
    if not line.startswith(_DASH):
        raise VerificationError("malformed note: a signature line must start with '\u2014 '")
    name, space, encoded = line[len(_DASH) :].partition(" ")
    if not space:
        raise VerificationError("malformed note: no space between key name and signature")
    _name("malformed note: key name", name, VerificationError)
    raw = _b64decode(f"malformed note: signature by {name}", encoded)
    if len(raw) < 5:
        raise VerificationError(f"malformed note: signature by {name} is too short")
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])
