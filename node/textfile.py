"""Text files as firms save them: UTF-8, with or without a BOM, or Shift_JIS (CP932) from Excel.

Does I/O (reads one file). ``open_text`` reads the file once as bytes, a chunk at a time, to
hash it, count its lines and settle its encoding: the one given, or else UTF-8 if the whole
file decodes strictly as UTF-8 (a leading BOM is dropped), else CP932 if it decodes strictly
as that; a file that is neither is refused with the line and byte where each went wrong. Then
it hands out the file's text as a stream, to be read once more, never whole.

``shift_jis`` is read as CP932, the Windows form of Shift_JIS that Excel writes: a superset of
it (NEC and IBM characters such as the circled digits), as the WHATWG encoding standard does.
"""

from __future__ import annotations

import codecs
import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from scfed.errors import ConfigError, ImportRowError

#: The names ``--encoding`` takes -> the codec a file of it is checked with.
ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "cp932": "cp932", "shift_jis": "cp932"}
_NAMES = {"utf-8": "UTF-8", "cp932": "Shift_JIS (CP932)"}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class TextFile:
    """What one binary read of a file found: its SHA-256, lines and encoding (a codec)."""

    digest: bytes
    lines: int
    encoding: str


@dataclass(frozen=True)
class _Bad:
    """Where a strict decode first failed."""

    offset: int
    line: int
    reason: str

    def text(self, codec: str) -> str:
        return f"line {self.line} (byte {self.offset}) is not {_NAMES[codec]}: {self.reason}"


@contextmanager
def open_text(path: Path, encoding: str | None = None) -> Iterator[tuple[TextFile, TextIO]]:
    """The file at ``path`` scanned, and its text to read as a stream (newlines kept as they
    are, for the csv module); ``encoding`` is one of ``ENCODINGS`` or None to detect it."""
    try:
        with path.open("rb") as handle:
            scan = _scan(path, handle, encoding)
            handle.seek(0)
            codec = "utf-8-sig" if scan.encoding == "utf-8" else scan.encoding
            with io.TextIOWrapper(handle, encoding=codec, newline="") as text:
                yield scan, text
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:  # the file changed since it was scanned
        raise ImportRowError(f"{path}: changed while it was read ({exc.reason})") from None


def first_character(text: TextIO) -> str:
    """The first character of ``text`` that is not white space ("" if none); ``text`` is
    left at its start."""
    while chunk := text.read(4096):
        if stripped := chunk.lstrip():
            text.seek(0)
            return stripped[0]
    text.seek(0)
    return ""


def _scan(path: Path, handle: BinaryIO, encoding: str | None) -> TextFile:
    if encoding is not None and encoding not in ENCODINGS:
        raise ConfigError(f"--encoding {encoding!r:.40}: use one of " + ", ".join(ENCODINGS))
    codec = ENCODINGS[encoding] if encoding else "utf-8"
    hasher = hashlib.sha256()
    lines, bad = _decode(handle, codec, hasher.update)
    if bad is None:
        return TextFile(hasher.digest(), lines, codec)
    if encoding is not None:
        raise ImportRowError(
            f"{path}: {bad.text(codec)}; give --encoding the encoding the file was saved in"
        )
    handle.seek(0)
    _, second = _decode(handle, "cp932")
    if second is None:
        return TextFile(hasher.digest(), lines, "cp932")
    raise ImportRowError(
        f"{path}: not text in UTF-8 or Shift_JIS (CP932): {bad.text(codec)}; "
        f"{second.text('cp932')}; save it as CSV UTF-8"
    )


def _decode(
    handle: BinaryIO, codec: str, update: Callable[[bytes], object] | None = None
) -> tuple[int, _Bad | None]:
    """Decode ``handle`` strictly, a chunk at a time: its lines, and where it first fails, if
    it does; with ``update`` every chunk of the file is handed to it (a hash) all the same."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    offset = newlines = 0
    bad: _Bad | None = None
    chunk = handle.read(_CHUNK)
    skip = len(codecs.BOM_UTF8) if codec == "utf-8" and chunk.startswith(codecs.BOM_UTF8) else 0
    last = b"\n"
    while chunk:
        if update is not None:
            update(chunk)
        if bad is None:
            bad = _fail(decoder, chunk[skip:], offset + skip, newlines)
            if bad is not None and update is None:
                break
        newlines += chunk.count(b"\n")
        offset += len(chunk)
        last, skip = chunk[-1:], 0
        chunk = handle.read(_CHUNK)
    if bad is None:
        bad = _fail(decoder, b"", offset, newlines, final=True)
    return newlines + (last != b"\n"), bad


def _fail(
    decoder: codecs.IncrementalDecoder,
    chunk: bytes,
    offset: int,
    newlines: int,
    *,
    final: bool = False,
) -> _Bad | None:
    """Where decoding ``chunk``, at ``offset`` in the file after ``newlines`` newlines, fails."""
    pending = len(decoder.getstate()[0])  # bytes of a character begun in the chunk before
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError as exc:
        at = offset - pending + exc.start  # the error counts from the pending bytes
        line = newlines + chunk[: max(0, at - offset)].count(b"\n") + 1
        return _Bad(at, line, exc.reason)
    return None


def decode(path: Path, data: bytes, encoding: str | None = None) -> str:
    """The text of a file's ``data``, read already; its encoding settled as by ``open_text``."""
    scan = _scan(path, io.BytesIO(data), encoding)
    return data.decode("utf-8-sig" if scan.encoding == "utf-8" else scan.encoding)
