"""C2SP tlog-checkpoint: the note text of a log's signed tree head. Pure, no I/O.

A checkpoint (c2sp.org/tlog-checkpoint, section "Note text") is the text of a signed note: the
origin line, the tree size in decimal without sign or leading zeros, the base64 root hash of
the RFC 9162 tree (``scfed.tlog``), then optional non-empty extension lines. The text follows
the signed-note text rules (``scfed.note_format``); it is signed, opened and cosigned as a
note by ``scfed.note``.

Parsing is strict: anything the specification does not allow raises ``VerificationError``
naming the fault, and so does a ``Checkpoint`` built from fields it does not allow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scfed.errors import VerificationError
from scfed.note_format import _b64, _b64decode, _control_free

__all__ = ["Checkpoint", "parse_checkpoint"]

MAX_TREE_SIZE = (1 << 63) - 1

_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint note text: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise VerificationError("checkpoint origin must be a non-empty line")
        _one_line("checkpoint origin", self.origin)
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise VerificationError("checkpoint size must be an int")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise VerificationError(f"checkpoint size {self.size} is outside 0..2^63-1")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise VerificationError("checkpoint root must be 32 bytes")
        if not isinstance(self.extensions, tuple):
            raise VerificationError("checkpoint extensions must be a tuple of lines")
        for number, line in enumerate(self.extensions, 1):
            if not isinstance(line, str) or not line:
                raise VerificationError(f"checkpoint extension line {number} is empty")
            _one_line(f"checkpoint extension line {number}", line)

    def format(self) -> str:
        """The note text, ending in a newline."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def _one_line(what: str, line: str) -> None:
    if "\n" in line:
        raise VerificationError(f"{what} must be a single line")
    _control_free(what, line, VerificationError)


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its note text, refusing anything tlog-checkpoint does not allow."""
    if not isinstance(text, str):
        raise VerificationError(f"checkpoint must be text, not {type(text).__name__}")
    if not text.endswith("\n"):
        raise VerificationError("checkpoint must end with a newline")
    _control_free("checkpoint", text, VerificationError)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise VerificationError("checkpoint needs origin, size and root lines")
    origin, size, root, *extensions = lines
    if not origin:
        raise VerificationError("checkpoint origin line is empty")
    if not _TREE_SIZE.fullmatch(size) or int(size) > MAX_TREE_SIZE:
        raise VerificationError(
            "checkpoint size must be decimal digits without sign or leading zeros, below 2^63"
        )
    raw_root = _b64decode("checkpoint root", root)
    if len(raw_root) != 32:
        raise VerificationError(f"checkpoint root must be 32 bytes, got {len(raw_root)}")
    return Checkpoint(origin, int(size), raw_root, tuple(extensions))
