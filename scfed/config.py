"""Configuration: what a node, a coordinator, an operator and a federation folder are set up
with, as frozen dataclasses, the checks on single values, and the parsing of a TOML file's
bytes into them. Pure: ``edge.config`` reads the files and calls the ``parse_*`` functions.

Relative paths in a configuration are taken from the configuration file's folder; given the
file's absolute path, as the loaders pass it, every path comes back absolute. Every problem
raises ConfigError naming the file and, inside a TOML file, the dotted key. Unknown keys are
refused, so a misspelt setting never silently falls back to its default.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time, timedelta
from fractions import Fraction
from pathlib import Path

from scfed.dp.ledger import MAX_RHO_CAP, Budget
from scfed.errors import ConfigError, MessageError
from scfed.schedule import Settings
from scfed.wire.messages import (
    MAX_CELLS,
    MAX_PHASE_TIMEOUT_MS,
    MIN_PHASE_TIMEOUT_MS,
    check_member_id,
)

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
#: Privacy defaults (README, Differential privacy): rho 0.5 per firm per year, delta 1e-9,
#: one colluder.
DEFAULT_RHO_CAP = "0.5"
DEFAULT_PERIOD = "year"
DEFAULT_DELTA = 1e-9
DEFAULT_T_COLLUDE = 1
DEFAULT_NOISE_FLOOR = "2"
#: What a node that opts into ad-hoc rounds may spend on them per period, within its cap.
DEFAULT_ADHOC_CAP = Fraction(1, 20)
MIN_DELTA, MAX_DELTA = 1e-15, 1e-3
MAX_SERVER_NAME = 253


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
    #: [alerts]: a URL the node POSTs each alert to as JSON, a program it runs with the
    #: alert as JSON on its standard input ("" for neither).
    alerts_webhook: str = ""
    alerts_command: str = ""
    #: [metrics] listen: the loopback HOST:PORT of /metrics and /healthz ("" for none).
    metrics_listen: str = ""
    #: [attest] lenders: the lenders the firm consents to attest its holdings to.
    lenders: tuple[str, ...] = ()


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
    #: [metrics] listen: the HOST:PORT of /metrics ("" for none).
    metrics_listen: str = ""
    #: [schedule]: whether the coordinator runs catalogue entries by itself, and when.
    schedule: Settings = field(default_factory=Settings)


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
    except MessageError as exc:
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


def check_loopback_address(value: str) -> str:
    """``value`` if it is HOST:PORT on a loopback address (``127.0.0.1``, ``[::1]``,
    ``localhost``): a node accepts no connection from another machine."""
    host, _ = _split_address(check_address(value))
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"{value[:70]!r} is not a loopback address: a node accepts no connection from"
            " another machine; use 127.0.0.1:PORT and let a local agent forward the metrics"
        )
    return value


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
        # normpath only rewrites the text (no file system): ``a/../b`` becomes ``b``.
        return Path(posixpath.normpath(self.file.parent / value))


def _parse_toml(path: Path, data: bytes) -> dict[str, object]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _check_keys(table: _Table, allowed: frozenset[str], tables: Sequence[str] = ()) -> None:
    for key in table.values:
        if key not in allowed:
            listed = ", ".join([*sorted(allowed), *(f"[{name}]" for name in tables)])
            raise table.error(key, f"unknown key (allowed here: {listed})")


def _load_tables(path: Path, raw: bytes, schema: _Schema) -> dict[str, _Table]:
    """The tables of the TOML file ``raw`` read from ``path``, checked against ``schema``."""
    data = _parse_toml(path, raw)
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
    "alerts": frozenset({"webhook", "command"}),
    "metrics": frozenset({"listen"}),
    "attest": frozenset({"lenders"}),
}
_COORDINATOR_SCHEMA: _Schema = {
    "": frozenset({"origin", "listen", "server_name"}),
    "keys": _TLS_KEYS | {"signing_key", "governance_key", "registry", "policy"},
    "limits": frozenset({"max_message_bytes", "max_cells"}),
    "rounds": frozenset({"phase_timeout_ms"}),
    "privacy": frozenset({"rho_cap", "period", "delta"}),
    "state": frozenset({"database"}),
    "metrics": frozenset({"listen"}),
    "schedule": frozenset({"enabled", "at", "retry_minutes", "entries"}),
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


def parse_node_config(path: Path, data: bytes) -> NodeConfig:
    """The node configuration (``node.toml``) in ``data``, the bytes of the file ``path``."""
    tables = _load_tables(path, data, _NODE_SCHEMA)
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
        alerts_webhook=tables["alerts"].checked("webhook", _check_webhook, ""),
        alerts_command=_optional_path(tables["alerts"], "command"),
        metrics_listen=_metrics_listen(tables["metrics"], check_loopback_address),
        lenders=tables["attest"].names("lenders"),
    )


def _optional_path(table: _Table, key: str) -> str:
    """A file name relative to the config file's folder, or "" if the key is absent."""
    return str(table.file_path(key)) if key in table.values else ""


def _metrics_listen(table: _Table, check: Callable[[str], str]) -> str:
    """The [metrics] table's ``listen`` address, checked, or "" if it is absent (no server)."""
    return table.checked("listen", check) if "listen" in table.values else ""


def _check_webhook(url: str) -> str:
    if url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s]*)?", url):
        raise ConfigError(f"must be an http:// or https:// URL, not {url[:80]!r}")
    return url


def parse_coordinator_config(path: Path, data: bytes) -> CoordinatorConfig:
    """The coordinator configuration (``coordinator.toml``) in ``data``, from ``path``."""
    tables = _load_tables(path, data, _COORDINATOR_SCHEMA)
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
        metrics_listen=_metrics_listen(tables["metrics"], check_address),
        schedule=_schedule(tables["schedule"]),
    )


def _schedule(table: _Table) -> Settings:
    """The [schedule] table: ``enabled``, ``at = "06:00"`` (UTC), ``retry_minutes``, and the
    ``entries`` to run (default: every entry of the signed catalogue)."""
    text = table.string("at", "06:00")
    try:
        at = time.fromisoformat(text)
    except ValueError:
        raise table.error(
            "at", f'must be a time of day in UTC like "06:00", not {text!r:.20}'
        ) from None
    return Settings(
        enabled=table.boolean("enabled", False),
        at=at.replace(tzinfo=None),
        retry=timedelta(minutes=table.integer("retry_minutes", 60, 5, 7 * 24 * 60)),
        entries=table.names("entries"),
    )


def parse_operator_config(path: Path, data: bytes) -> OperatorConfig:
    """The operator configuration (``operator.toml``) in ``data``, from ``path``."""
    tables = _load_tables(path, data, _OPERATOR_SCHEMA)
    top = tables[""]
    return OperatorConfig(
        path=path,
        name=top.checked("name", check_name),
        coordinator=top.checked("coordinator", check_address),
        server_name=top.checked("server_name", check_server_name),
        tls=_tls_files(tables["keys"]),
    )


def parse_federation_config(path: Path, data: bytes) -> FederationConfig:
    """The description of a federation folder (``federation.toml``) in ``data``, from
    ``path``."""
    top = _load_tables(path, data, _FEDERATION_SCHEMA)[""]
    return FederationConfig(
        path=path,
        name=top.checked("name", check_name),
        origin=top.checked("origin", check_origin),
        address=top.checked("address", check_address),
        server_name=top.checked("server_name", check_server_name),
    )
