"""Configuration and key files: the one module of the core that reads and writes files.

It loads the TOML configuration of a node, a coordinator, an operator and a federation folder
into frozen dataclasses, reads private keys (refusing files that group or others may access),
the pinned governance key and the signed registry, and writes files atomically. Relative paths
in a configuration are taken from the configuration file's folder and returned absolute.

Every problem raises ConfigError naming the file and, inside a TOML file, the dotted key.
Unknown keys are refused, so a misspelt setting never silently falls back to its default.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from scfed import pki
from scfed.dp.ledger import MAX_RHO_CAP, Budget
from scfed.envelope import Envelope
from scfed.errors import ConfigError, RemoteProtocolError, VerificationError
from scfed.messages import (
    MAX_CELLS,
    MAX_PHASE_TIMEOUT_MS,
    MIN_PHASE_TIMEOUT_MS,
    Registry,
    check_member_id,
)
from scfed.registry import open_registry

if TYPE_CHECKING:
    from scfed.policy import Policy

DEFAULT_LISTEN = "127.0.0.1:7443"
DEFAULT_MIN_N_MIN = 3
MAX_MIN_N_MIN = 1000
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MIN_MESSAGE_BYTES = 1024
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
DEFAULT_PHASE_TIMEOUT_MS = 30_000
DEFAULT_FIGURES = "figures.csv"
DEFAULT_MAPPING = "mapping.csv"
DEFAULT_POLICY = "../policy.signed"
DEFAULT_NODE_DATABASE = "node.sqlite"
DEFAULT_COORDINATOR_DATABASE = "coordinator.sqlite"
MAX_ORIGIN = 200
#: Privacy defaults (DESIGN.md section 4): rho 0.5 per firm per year, delta 1e-9, one colluder.
DEFAULT_RHO_CAP = "0.5"
DEFAULT_PERIOD = "year"
DEFAULT_DELTA = 1e-9
DEFAULT_T_COLLUDE = 1
DEFAULT_NOISE_FLOOR = "2"
#: What a node that opts into ad-hoc rounds may spend on them per period, within its cap.
DEFAULT_ADHOC_CAP = Fraction(1, 20)
MIN_DELTA, MAX_DELTA = 1e-15, 1e-3
MAX_SERVER_NAME = 253

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class Privacy:
    """A privacy policy: the budget cap per period, and (for a node) the least noise it
    accepts: colluders assumed and sigma per unit of sensitivity. ``delta`` is only used to
    express rho as (epsilon, delta) for people."""

    budget: Budget
    t_collude: int
    noise_floor: Fraction
    delta: float
    adhoc: bool = False  # a node takes part in ad-hoc rounds only when it says so
    adhoc_cap: Fraction = DEFAULT_ADHOC_CAP  # and spends at most this on them per period


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    member_id: str
    origin: str
    coordinator: str
    server_name: str
    tls: TlsFiles
    identity_key: Path
    governance_key: Path
    min_n_min: int
    max_cells: int
    privacy: Privacy
    figures: Path
    mapping: Path
    opt_in: tuple[str, ...]
    database: Path


@dataclass(frozen=True)
class CoordinatorConfig:
    path: Path
    origin: str
    listen: str
    server_name: str
    tls: TlsFiles
    signing_key: Path
    governance_key: Path
    registry: Path
    policy: Path
    max_message_bytes: int
    max_cells: int
    phase_timeout_ms: int
    privacy: Privacy
    database: Path


@dataclass(frozen=True)
class OperatorConfig:
    path: Path
    name: str
    coordinator: str
    server_name: str
    tls: TlsFiles


@dataclass(frozen=True)
class FederationConfig:
    """``federation.toml`` at the top of a folder made by ``scfed federation init``."""

    path: Path
    name: str
    origin: str
    address: str
    server_name: str


# ---- Checks on single values (messages name the value, callers add file and key) ----


def check_name(value: str) -> str:
    """``value`` if it is a valid member, operator or federation name, else ConfigError."""
    try:
        return check_member_id(value, "name")
    except RemoteProtocolError as exc:
        raise ConfigError(
            f"{exc}: use 1-63 lowercase letters, digits and '-', starting with a letter or digit"
        ) from exc


def _check_token(value: str, what: str, limit: int) -> str:
    """Printable ASCII without spaces, 1 to ``limit`` characters."""
    if not 0 < len(value) <= limit or any(not "!" <= char <= "~" for char in value):
        raise ConfigError(
            f"invalid {what} {value[:70]!r}: use 1-{limit} printable ASCII characters, no spaces"
        )
    return value


def check_origin(value: str) -> str:
    """``value`` if it is a valid federation origin (the log and signature domain)."""
    return _check_token(value, "origin", MAX_ORIGIN)


def check_server_name(value: str) -> str:
    """``value`` if it is a plausible TLS server name."""
    return _check_token(value, "server name", MAX_SERVER_NAME)


def _split_address(value: str) -> tuple[str, str]:
    host, colon, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or any(not "!" <= char <= "~" for char in host):
        raise ConfigError(f"invalid address {value[:70]!r}: use HOST:PORT")
    return host, port


def check_address(value: str) -> str:
    """``value`` if it is HOST:PORT (``[v6]:PORT`` too) with a port from 0 to 65535.

    Port 0 is allowed: a server binds any free port, and a generated configuration may carry
    a placeholder that the command line overrides (``--listen``, ``--coordinator``).
    """
    _, port = _split_address(value)
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        raise ConfigError(f"invalid port in address {value[:70]!r}: use a number from 0 to 65535")
    return value


# ---- Reading TOML ----

_Schema = Mapping[str, frozenset[str]]  # table name ("" for the top level) -> allowed keys


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", str: "a string", dict: "a table"}
    return names.get(type(value), f"a {type(value).__name__}")


@dataclass(frozen=True)
class _Table:
    """One table of a parsed TOML file; every error names the file and the dotted key."""

    file: Path
    name: str
    values: Mapping[str, object]

    def error(self, key: str, problem: str) -> ConfigError:
        dotted = f"{self.name}.{key}" if self.name else key
        return ConfigError(f"{self.file}: {dotted}: {problem}")

    def string(self, key: str, default: str | None = None) -> str:
        value = self.values.get(key, default)
        if value is None:
            raise self.error(key, "missing (this key is required)")
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {_kind(value)}")
        return value

    def checked(self, key: str, check: Callable[[str], str], default: str | None = None) -> str:
        value = self.string(key, default)
        try:
            return check(value)
        except ConfigError as exc:
            raise self.error(key, str(exc)) from exc

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {_kind(value)}")
        if not low <= value <= high:
            raise self.error(key, f"must be from {low} to {high}, not {value}")
        return value

    def fraction(self, key: str, default: str, high: Fraction) -> Fraction:
        """A positive exact number up to ``high``, written "0.5", 0.5 or "1/32"."""
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"must be a number, not {_kind(value)}")
        try:
            number = Fraction(str(value))
        except (ValueError, ZeroDivisionError):
            raise self.error(key, f"{value!r:.40} is not a number") from None
        if not 0 < number <= high:
            raise self.error(key, f"must be above 0 and at most {high}, not {value}")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_kind(value)}")
        return value

    def real(self, key: str, default: float, low: float, high: float) -> float:
        """A number from ``low`` to ``high``, written 1e-9 or "1e-9"."""
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"must be a number, not {_kind(value)}")
        try:
            number = float(value)
        except ValueError:
            raise self.error(key, f"{value!r:.40} is not a number") from None
        if not low <= number <= high:  # also refuses nan
            raise self.error(key, f"must be from {low:g} to {high:g}, not {value}")
        return number

    def names(self, key: str) -> tuple[str, ...]:
        """A list of names (catalogue entries), empty by default."""
        value = self.values.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "must be a list of names")
        for name in value:
            try:
                check_name(name)
            except ConfigError as exc:
                raise self.error(key, str(exc)) from exc
        return tuple(value)

    def file_path(self, key: str, default: str | None = None) -> Path:
        value = self.string(key, default)
        if not value.strip() or "\0" in value:
            raise self.error(key, f"must be a file name, not {value!r}")
        return Path(os.path.abspath(self.file.parent / value))


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _parse_toml(path: Path) -> dict[str, object]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _check_keys(table: _Table, allowed: frozenset[str], tables: Sequence[str] = ()) -> None:
    for key in table.values:
        if key not in allowed:
            listed = ", ".join([*sorted(allowed), *(f"[{name}]" for name in tables)])
            raise table.error(key, f"unknown key (allowed here: {listed})")


def _load_tables(path: Path, schema: _Schema) -> dict[str, _Table]:
    """The tables of the TOML file at ``path``, checked against ``schema``."""
    data = _parse_toml(path)
    names = [name for name in schema if name]
    top = _Table(path, "", {k: v for k, v in data.items() if k not in names})
    _check_keys(top, schema[""], names)
    tables = {"": top}
    for name in names:
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise top.error(name, f"must be a table [{name}], not {_kind(values)}")
        tables[name] = _Table(path, name, values)
        _check_keys(tables[name], schema[name])
    return tables


def _tls_files(keys: _Table) -> TlsFiles:
    return TlsFiles(
        certificate=keys.file_path("tls_certificate"),
        key=keys.file_path("tls_key"),
        ca=keys.file_path("ca_certificate"),
    )


_TLS_KEYS = frozenset({"tls_certificate", "tls_key", "ca_certificate"})
_NODE_SCHEMA: _Schema = {
    "": frozenset({"member_id", "origin", "coordinator", "server_name"}),
    "keys": _TLS_KEYS | {"identity_key", "governance_key"},
    "policy": frozenset({"min_n_min", "max_cells"}),
    "privacy": frozenset(
        {"rho_cap", "period", "t_collude", "noise_floor", "delta", "adhoc", "adhoc_rho_cap"}
    ),
    "data": frozenset({"figures", "mapping"}),
    "catalogue": frozenset({"opt_in"}),
    "state": frozenset({"database"}),
}
_COORDINATOR_SCHEMA: _Schema = {
    "": frozenset({"origin", "listen", "server_name"}),
    "keys": _TLS_KEYS | {"signing_key", "governance_key", "registry", "policy"},
    "limits": frozenset({"max_message_bytes", "max_cells"}),
    "rounds": frozenset({"phase_timeout_ms"}),
    "privacy": frozenset({"rho_cap", "period", "delta"}),
    "state": frozenset({"database"}),
}
_OPERATOR_SCHEMA: _Schema = {
    "": frozenset({"name", "coordinator", "server_name"}),
    "keys": _TLS_KEYS,
}
_FEDERATION_SCHEMA: _Schema = {"": frozenset({"name", "origin", "address", "server_name"})}


def _privacy(table: _Table) -> Privacy:
    """The [privacy] table; keys a schema does not allow are absent and take defaults."""
    period = table.string("period", DEFAULT_PERIOD)
    try:
        budget = Budget(table.fraction("rho_cap", DEFAULT_RHO_CAP, MAX_RHO_CAP), period)
    except ConfigError as exc:
        raise table.error("period", str(exc)) from exc
    return Privacy(
        budget=budget,
        t_collude=table.integer("t_collude", DEFAULT_T_COLLUDE, 0, MAX_MIN_N_MIN - 1),
        noise_floor=table.fraction("noise_floor", DEFAULT_NOISE_FLOOR, Fraction(1000)),
        delta=table.real("delta", DEFAULT_DELTA, MIN_DELTA, MAX_DELTA),
        adhoc=table.boolean("adhoc", False),
        adhoc_cap=table.fraction("adhoc_rho_cap", str(DEFAULT_ADHOC_CAP), MAX_RHO_CAP),
    )


def load_node_config(path: Path) -> NodeConfig:
    """The node configuration (``node.toml``) at ``path``."""
    path = _absolute(path)
    tables = _load_tables(path, _NODE_SCHEMA)
    top, keys, policy = tables[""], tables["keys"], tables["policy"]
    return NodeConfig(
        path=path,
        member_id=top.checked("member_id", check_name),
        origin=top.checked("origin", check_origin),
        coordinator=top.checked("coordinator", check_address),
        server_name=top.checked("server_name", check_server_name),
        tls=_tls_files(keys),
        identity_key=keys.file_path("identity_key"),
        governance_key=keys.file_path("governance_key"),
        min_n_min=policy.integer("min_n_min", DEFAULT_MIN_N_MIN, 2, MAX_MIN_N_MIN),
        max_cells=policy.integer("max_cells", MAX_CELLS, 1, MAX_CELLS),
        privacy=_privacy(tables["privacy"]),
        figures=tables["data"].file_path("figures", DEFAULT_FIGURES),
        mapping=tables["data"].file_path("mapping", DEFAULT_MAPPING),
        opt_in=tables["catalogue"].names("opt_in"),
        database=tables["state"].file_path("database", DEFAULT_NODE_DATABASE),
    )


def load_coordinator_config(path: Path) -> CoordinatorConfig:
    """The coordinator configuration (``coordinator.toml``) at ``path``."""
    path = _absolute(path)
    tables = _load_tables(path, _COORDINATOR_SCHEMA)
    top, keys, limits = tables[""], tables["keys"], tables["limits"]
    timeout = (DEFAULT_PHASE_TIMEOUT_MS, MIN_PHASE_TIMEOUT_MS, MAX_PHASE_TIMEOUT_MS)
    message_bytes = (DEFAULT_MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES, MAX_MESSAGE_BYTES)
    return CoordinatorConfig(
        path=path,
        origin=top.checked("origin", check_origin),
        listen=top.checked("listen", check_address, DEFAULT_LISTEN),
        server_name=top.checked("server_name", check_server_name),
        tls=_tls_files(keys),
        signing_key=keys.file_path("signing_key"),
        governance_key=keys.file_path("governance_key"),
        registry=keys.file_path("registry"),
        policy=keys.file_path("policy", DEFAULT_POLICY),
        max_message_bytes=limits.integer("max_message_bytes", *message_bytes),
        max_cells=limits.integer("max_cells", MAX_CELLS, 1, MAX_CELLS),
        phase_timeout_ms=tables["rounds"].integer("phase_timeout_ms", *timeout),
        privacy=_privacy(tables["privacy"]),
        database=tables["state"].file_path("database", DEFAULT_COORDINATOR_DATABASE),
    )


def load_operator_config(path: Path) -> OperatorConfig:
    """The operator configuration (``operator.toml``) at ``path``."""
    path = _absolute(path)
    tables = _load_tables(path, _OPERATOR_SCHEMA)
    top = tables[""]
    return OperatorConfig(
        path=path,
        name=top.checked("name", check_name),
        coordinator=top.checked("coordinator", check_address),
        server_name=top.checked("server_name", check_server_name),
        tls=_tls_files(tables["keys"]),
    )


def load_federation_config(path: Path) -> FederationConfig:
    """The description of a federation folder (``federation.toml``) at ``path``."""
    path = _absolute(path)
    top = _load_tables(path, _FEDERATION_SCHEMA)[""]
    return FederationConfig(
        path=path,
        name=top.checked("name", check_name),
        origin=top.checked("origin", check_origin),
        address=top.checked("address", check_address),
        server_name=top.checked("server_name", check_server_name),
    )


# ---- Key and registry files ----


def read_public_file(path: Path) -> bytes:
    """The bytes of a file anyone may read (certificate, public key, registry)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_private_key_file(path: Path) -> bytes:
    """The bytes of a private key file; ConfigError if group or others may access it."""
    try:
        with path.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"{path}: private key file is accessible by group or others "
                    f"(mode {mode:04o}); restrict it with: chmod 600 {path}"
                )
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read private key: {exc.strerror or exc}") from exc


def read_governance_key(path: Path) -> bytes:
    """The raw 32-byte governance public key from a file holding ``ed25519:BASE64``."""
    data = read_public_file(path)
    try:
        key = pki.parse_ed25519_public_text(data.decode("ascii").strip())
    except (UnicodeDecodeError, ConfigError) as exc:
        raise ConfigError(f"{path}: not an Ed25519 public key file: {exc}") from exc
    return pki.ed25519_public_raw(key)


def read_policy_file(path: Path, origin: str, governance_key: bytes) -> tuple[Policy, Envelope]:
    """The policy stored at ``path`` (a serialized envelope), verified against governance."""
    from scfed.policy import open_policy

    data = read_public_file(path)
    try:
        envelope = Envelope.from_bytes(data)
        return open_policy(envelope, origin, governance_key), envelope
    except (VerificationError, RemoteProtocolError) as exc:
        raise ConfigError(
            f"{path}: not a policy signed by this federation's governance: {exc}"
        ) from exc


def read_registry_file(path: Path, origin: str, governance_key: bytes) -> tuple[Registry, Envelope]:
    """The registry stored at ``path`` (a serialized envelope), verified against governance."""
    data = read_public_file(path)
    try:
        envelope = Envelope.from_bytes(data)
        return open_registry(envelope, origin, governance_key), envelope
    except VerificationError as exc:
        raise VerificationError(f"{path}: {exc}") from exc
    except RemoteProtocolError as exc:
        raise ConfigError(f"{path}: not a valid signed registry: {exc}") from exc


# ---- Writing ----


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by the owner only (0600)."""
    _write_atomic(path, data, PRIVATE_MODE)


def write_public(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by everyone (0644)."""
    _write_atomic(path, data, PUBLIC_MODE)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write a temporary file beside ``path``, sync it, then rename it over ``path``.

    The temporary file is created 0600, so a private key is never readable by others, even
    for a moment; the final mode is set before the rename.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(temporary, flags, PRIVATE_MODE)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    try:
        _fill(descriptor, data, mode)
        os.replace(temporary, path)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        raise
    _sync_folder(path.parent)


def _fill(descriptor: int, data: bytes, mode: int) -> None:
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fchmod(handle.fileno(), mode)
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a rename durable; some file systems cannot sync a folder, which is harmless."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
