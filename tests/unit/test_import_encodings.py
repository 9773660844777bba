"""CSV files in the encodings firms save them in: UTF-8 with or without a BOM, and Shift_JIS
(CP932) as Excel writes it in Japan, detected or named; real CP932 bytes throughout."""

from __future__ import annotations

import codecs
import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from node import textfile
from node.imports import import_file
from node.records import RecordStore
from scfed.cli.node_data import ENCODINGS
from scfed.errors import ConfigError, ImportRowError
from scfed.taxonomy import Commodity, parse_commodity

ANALOG = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
LOGIC = "fabrication/logic/<=5nm/300mm/TW-Hsinchu"
WEEK = date(2026, 11, 30)
#: A Japanese firm's demand file: a comment and item names in Japanese, "①" being one of the
#: NEC characters that CP932 has and plain Shift_JIS has not.
JAPANESE = """\
# 熊本工場 需要予測 ① (単位: 個)
# kind: demand
item,week,quantity,unit,category
半導体-A,2026-11-30,1000,unit:piece,0001
半導体-B,2026-11-30,250.5,unit:piece,0001
ウェハ-髙,2026-W50,7,unit:piece,0001
"""
ITEMS = ("半導体-A", "半導体-B", "ウェハ-髙")


@pytest.fixture
def mapping() -> dict[str, Commodity]:
    keys = dict(zip(ITEMS, (ANALOG, ANALOG, LOGIC), strict=True))
    return {item: parse_commodity(key) for item, key in keys.items()}


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "node.sqlite")


def _write(tmp_path: Path, data: bytes, name: str = "demand.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _items(store: RecordStore) -> list[str]:
    return [record.fields["item"].string_value for record in store.records("demand")]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "data",
    [
        JAPANESE.encode("utf-8"),
        codecs.BOM_UTF8 + JAPANESE.encode("utf-8"),
        JAPANESE.encode("cp932"),
        JAPANESE.replace("\n", "\r\n").encode("cp932"),  # as Excel on Windows saves it
    ],
    ids=["utf-8", "utf-8-bom", "cp932", "cp932-crlf"],
)
def test_japanese_files_import_in_every_encoding_detected(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore, data: bytes
) -> None:
    summary = import_file(_write(tmp_path, data), kind=None, mapping=mapping, store=store)
    assert (summary.records, summary.new) == (3, 3)
    assert _items(store) == list(ITEMS)
    assert store.weekly("demand", [WEEK]) == {(ANALOG, WEEK): Decimal("1250.5")}


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("utf-8", JAPANESE.encode("utf-8")),
        ("utf-8", codecs.BOM_UTF8 + JAPANESE.encode("utf-8")),
        ("utf-8-sig", JAPANESE.encode("utf-8")),
        ("utf-8-sig", codecs.BOM_UTF8 + JAPANESE.encode("utf-8")),
        ("cp932", JAPANESE.encode("cp932")),
        ("shift_jis", JAPANESE.encode("cp932")),  # Excel's Shift_JIS is CP932, ① and all
    ],
)
def test_an_encoding_given_is_used(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore, encoding: str, data: bytes
) -> None:
    path = _write(tmp_path, data)
    assert import_file(path, kind=None, mapping=mapping, store=store, encoding=encoding).new == 3
    assert _items(store) == list(ITEMS)


def test_the_encoding_does_not_change_the_file_it_is() -> None:
    """UTF-8 and CP932 bytes of one text are different files, but give the same records."""
    utf8, cp932 = JAPANESE.encode("utf-8"), JAPANESE.encode("cp932")
    assert utf8 != cp932
    assert textfile.decode(Path("a.csv"), utf8) == textfile.decode(Path("b.csv"), cp932)


def test_a_cp932_file_read_as_utf8_names_the_line_and_byte(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    data = JAPANESE.encode("cp932")
    path = _write(tmp_path, data)
    with pytest.raises(ImportRowError) as refused:
        import_file(path, kind=None, mapping=mapping, store=store, encoding="utf-8")
    # The first byte that is not UTF-8 is the first byte of 熊, on line 1.
    offset = data.index("熊".encode("cp932"))
    assert str(refused.value) == (
        f"{path}: line 1 (byte {offset}) is not UTF-8: invalid start byte; "
        "give --encoding the encoding the file was saved in"
    )
    assert store.holdings() == []


def test_a_file_neither_utf8_nor_cp932_is_refused_naming_both(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    good = JAPANESE.encode("cp932")
    bad_line = "半導体-A,2026-12-07,1,unit:piece,0001\n".encode("cp932")
    # 0x81 0x20: a CP932 lead byte followed by a space, which no CP932 character is.
    data = good + bad_line + b"x\x81\x20y,2026-12-07,1,unit:piece,0001\n"
    path = _write(tmp_path, data)
    with pytest.raises(ImportRowError) as refused:
        import_file(path, kind=None, mapping=mapping, store=store)
    first_bad = data.index("熊".encode("cp932"))
    cp932_bad = len(good + bad_line) + 1
    assert str(refused.value) == (
        f"{path}: not text in UTF-8 or Shift_JIS (CP932): line 1 (byte {first_bad}) is not "
        f"UTF-8: invalid start byte; line 8 (byte {cp932_bad}) is not Shift_JIS (CP932): "
        "illegal multibyte sequence; save it as CSV UTF-8"
    )
    assert store.holdings() == []


def test_a_file_cut_inside_a_character_is_named(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    data = JAPANESE.encode("utf-8") + "需".encode()[:2]
    with pytest.raises(ImportRowError, match=r"line 7 \(byte \d+\) is not UTF-8: unexpected end"):
        import_file(
            _write(tmp_path, data), kind=None, mapping=mapping, store=store, encoding="utf-8"
        )


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
@pytest.mark.parametrize("codec", ["utf-8", "cp932"])
def test_the_byte_named_is_right_wherever_the_chunks_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, chunk: int, codec: str
) -> None:
    """The file is decoded a chunk at a time; a character may straddle two chunks."""
    monkeypatch.setattr(textfile, "_CHUNK", chunk)
    text = JAPANESE.encode(codec)
    bad = b"\xff" if codec == "utf-8" else b"\x81\x20"
    data = text + "需要あり\n".encode(codec) + bad + b"\n"
    with pytest.raises(UnicodeDecodeError) as whole:
        data.decode(codec)
    path = _write(tmp_path, data)
    with pytest.raises(ImportRowError) as refused, textfile.open_text(path, codec):
        pass
    line = data[: whole.value.start].count(b"\n") + 1
    assert f"line {line} (byte {whole.value.start})" in str(refused.value)


def test_scanning_counts_lines_and_hashes_the_bytes(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + JAPANESE.encode("utf-8")
    with textfile.open_text(_write(tmp_path, data)) as (scan, text):
        assert (scan.lines, scan.encoding) == (6, "utf-8")
        assert text.read() == JAPANESE  # without its BOM, newlines as they were
    assert scan.digest == hashlib.sha256(data).digest()
    with textfile.open_text(_write(tmp_path, b"a\r\nb", "b.csv")) as (scan, text):
        assert (scan.lines, text.read()) == (2, "a\r\nb")


def test_an_unknown_encoding_is_a_configuration_error(
    tmp_path: Path, mapping: dict[str, Commodity], store: RecordStore
) -> None:
    path = _write(tmp_path, JAPANESE.encode("utf-8"))
    with pytest.raises(ConfigError, match="--encoding 'latin-1': use one of utf-8, utf-8-sig"):
        import_file(path, kind=None, mapping=mapping, store=store, encoding="latin-1")


def test_the_command_line_offers_the_encodings_there_are() -> None:
    assert tuple(textfile.ENCODINGS) == ENCODINGS
