"""A tiny TOML writer for the configurations scfed generates: bare keys, strings, integers,
booleans, lists of strings and one level of tables. The standard library reads TOML but cannot write
it. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

from scfed.errors import ConfigError

TomlValue = str | int | bool | list[str]
TomlDocument = Mapping[str, TomlValue | Mapping[str, TomlValue]]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in value:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            raise ConfigError(f"cannot write a lone surrogate in {value!r}")
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    if not _BARE_KEY.fullmatch(key):
        raise ConfigError(f"cannot write TOML key {key!r}")
    return key


def _toml_pair(key: str, value: object) -> str:
    key = _toml_key(key)
    if isinstance(value, str):
        return f"{key} = {_toml_string(value)}"
    if isinstance(value, bool):
        return f"{key} = {'true' if value else 'false'}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{key} = {value}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return f"{key} = [{', '.join(_toml_string(v) for v in value)}]"
    raise ConfigError(f"cannot write TOML value {value!r} for {key}")


def format_toml(comment: str, document: TomlDocument) -> bytes:
    """UTF-8 TOML for ``document``: a comment, the top-level pairs, then one [table] each."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [_toml_pair(k, v) for k, v in document.items() if not isinstance(v, Mapping)]
    for name, table in document.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{_toml_key(name)}]"]
            lines += [_toml_pair(k, v) for k, v in table.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")
