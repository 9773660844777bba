"""The query catalogue file, read as a policy and signed by governance. Does file I/O.

``sign_catalogue`` reads a catalogue file (TOML, documented below), checks every entry as
nodes will, signs the next policy version with the governance key and writes
``public/policy.signed`` in governance's folder, for the operator to install (``scfed
coordinator install --policy``); ``scfed federation policy`` runs it.

``EXAMPLE`` below is a catalogue of one weekly entry, every key explained, that nodes with
the default settings take part in.

``scfed privacy plan --catalogue catalogue.toml`` shows what such a catalogue costs a firm.

Crises governance declares (``scfed.wire.policy.Crisis``) are ``[[crisis]]`` tables in the
same file, signed with the policy; ``scfed crisis declare`` appends one. While a crisis is on,
from ``start`` to ``end`` (days, both inclusive, at most a year apart), firms may post needs
and offers of its commodities. ``start`` and ``end`` are TOML dates or "YYYY-MM-DD" strings;
``purpose`` is optional. To end a crisis early, set its ``end`` and sign again::

    [[crisis]]
    name = "kyushu-legacy"
    purpose = "the Kyushu earthquake: legacy analog capacity"
    commodities = ["fabrication/analog/90-180nm/200mm/JP-Kyushu"]
    start = 2026-11-23
    end = 2027-02-28
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from edge.config import load_federation_config
from edge.files import read_private_key_file, write_public
from governance.federation import FEDERATION_FILE, GOVERNANCE_KEY, POLICY_FILE, PUBLIC
from scfed import pki
from scfed.dp.params import CONCENTRATION_LIPSCHITZ as LIPSCHITZ
from scfed.dp.params import Noise
from scfed.errors import ConfigError, MessageError, RemoteProtocolError
from scfed.policy import seal_policy
from scfed.wire.envelope import Envelope
from scfed.wire.policy import (
    DEFAULT_DOMINANCE,
    DEFAULT_MIN_CONTRIBUTORS,
    DEFAULT_PLANNED_PERCENT,
    METRIC_COMPONENTS,
    CatalogueEntry,
    Crisis,
    Policy,
    decode_policy,
)

#: A catalogue file of one weekly entry that a node with the default settings accepts
#: (``scfed federation policy --help`` and the README show it; a test signs it).
EXAMPLE = """\
rho_cap = "0.5"            # the federation's zCDP budget per period
period = "year"
witness_quorum = 0         # cosignatures before a privacy-critical step (0: t)
[[entry]]
name = "weekly-demand-capacity"
purpose = "where demand will exceed capacity, per commodity and region"
metric = "demand-capacity"  # or stock, utilisation, days-of-supply, lead-time, book-to-bill
commodities = ["fabrication/analog/90-180nm/200mm/JP-Kyushu"]
horizon_weeks = 13
cadence = "weekly"          # or monthly, quarterly: one release per window
planned_percent = 80        # survivors the noise is sized for, of the candidates
graph = ""                  # "complete", "sparse" (SecAgg+), "" (sparse from 100 nodes)
sigma = "1116"              # the values' noise, in grid units
presence_sigma = "1116"     # the presence segment's (default: sigma)
concentration_sigma = "14000"  # the concentration segment's (default: 9 x sigma)
bound = 100                 # privacy radius R (magnitude) or clip C (firm)
unit = "magnitude"
grid = "1"
plausible = 1000000
t_collude = 1
min_contributors = 5        # k
dominance = "0.6"           # published only if no one firm may hold this share
presence_threshold = 100    # a contributor of at least this counts as one (default: bound)
concentration_scale = 10000 # Q; needs Q >= sqrt(g) x dominance x the cell's value
concentration_scales = { "fabrication/analog/90-180nm/200mm/JP-Kyushu" = 9000 }
recipients = ["members"]
"""

_ENTRY_KEYS = frozenset(
    {
        "name", "purpose", "metric", "commodities", "horizon_weeks", "sigma", "presence_sigma",
        "concentration_sigma", "bound", "unit", "grid", "plausible", "t_collude",
        "min_contributors", "dominance", "presence_threshold", "concentration_scale",
        "concentration_scales", "recipients", "cadence", "planned_percent", "graph",
    }
)  # fmt: skip
_CRISIS_KEYS = frozenset({"name", "purpose", "commodities", "start", "end"})
_TOP_KEYS = frozenset({"rho_cap", "period", "witness_quorum", "entry", "crisis"})
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def sign_catalogue(directory: Path, catalogue: Path) -> Policy:
    """Sign the catalogue file as the next policy version, in governance's ``directory``."""
    settings = load_federation_config(directory / PUBLIC / FEDERATION_FILE)
    governance = pki.load_ed25519_private_pem(read_private_key_file(directory / GOVERNANCE_KEY))
    previous = directory / PUBLIC / POLICY_FILE
    version = _version(previous) + 1 if previous.exists() else 1
    policy = read_catalogue(catalogue, settings.origin, version)
    write_public(previous, seal_policy(policy, governance).to_bytes())
    return policy


def read_catalogue(catalogue: Path, origin: str, version: int) -> Policy:
    """The catalogue file as a policy, checked entry by entry as nodes will check it."""
    return parse_catalogue(catalogue, _read(catalogue), origin, version)


def parse_catalogue(catalogue: Path, text: str, origin: str, version: int) -> Policy:
    """``text`` read as the catalogue file ``catalogue`` would be, errors naming that file:
    a change is checked before it is written (``scfed crisis declare``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{catalogue}: cannot read the catalogue: {exc}") from exc
    try:
        return Policy(
            origin=origin,
            version=version,
            taxonomy_version=_taxonomy_version(),
            rho_cap=str(data.get("rho_cap", "0.5")),
            period=str(data.get("period", "year")),
            witness_quorum=_quorum(catalogue, data.get("witness_quorum", 0)),
            entries=tuple(_entry(catalogue, e) for e in _entries(catalogue, data)),
            crises=tuple(_crisis(catalogue, c) for c in _crises(catalogue, data)),
        )
    except MessageError as exc:
        raise ConfigError(f"{catalogue}: {exc}") from None


def _quorum(path: Path, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{path}: witness_quorum must be a non-negative integer")
    return value


def _taxonomy_version() -> str:
    from scfed.taxonomy import VERSION

    return VERSION


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the catalogue: {exc}") from exc


def _version(path: Path) -> int:
    try:
        return decode_policy(Envelope.from_bytes(path.read_bytes()).body).version
    except (OSError, RemoteProtocolError) as exc:
        raise ConfigError(f"{path}: cannot read the current policy: {exc}") from exc


def _entries(path: Path, data: Mapping[str, object]) -> list[Mapping[str, object]]:
    entries = data.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: the catalogue's entries are [[entry]] tables")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    return entries


def _crises(path: Path, data: Mapping[str, object]) -> list[Mapping[str, object]]:
    crises = data.get("crisis", [])
    if not isinstance(crises, list) or not all(isinstance(c, dict) for c in crises):
        raise ConfigError(f"{path}: the catalogue's crises are [[crisis]] tables")
    names = [c.get("name") for c in crises]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise ConfigError(f"{path}: crisis {twice!r} is declared twice")
    return crises


def _crisis(path: Path, c: Mapping[str, object]) -> Crisis:
    unknown = set(c) - _CRISIS_KEYS
    if unknown:
        raise ConfigError(f"{path}: crisis {c.get('name')!r}: unknown keys {sorted(unknown)}")
    get = _Fields(path, c, "crisis")
    return Crisis(
        name=get.text("name"), purpose=get.text("purpose", ""),
        commodities=tuple(sorted(set(get.texts("commodities")))),
        start=get.day("start"), end=get.day("end"),
    )  # fmt: skip


def _entry(path: Path, e: Mapping[str, object]) -> CatalogueEntry:
    unknown = set(e) - _ENTRY_KEYS
    if unknown:
        raise ConfigError(f"{path}: entry {e.get('name')!r}: unknown keys {sorted(unknown)}")
    get = _Fields(path, e)
    sigma = get.text("sigma")
    noise = Noise(
        sigma=sigma, t_collude=get.number("t_collude", 1), unit=get.text("unit", "magnitude"),
        bound=get.number("bound"), grid=get.text("grid", "1"),
        plausible=get.number("plausible", 10**12), disclosure=True,
        presence_sigma=get.text("presence_sigma", sigma),
        concentration_sigma=get.text("concentration_sigma", _times(sigma, LIPSCHITZ)),
    )  # fmt: skip
    commodities = sorted(set(get.texts("commodities")))
    metric = get.text("metric")
    return CatalogueEntry(
        name=get.text("name"), purpose=get.text("purpose", ""), metric=metric,
        commodities=tuple(commodities), horizon_weeks=get.number("horizon_weeks"), noise=noise,
        min_contributors=get.number("min_contributors", DEFAULT_MIN_CONTRIBUTORS),
        dominance=get.text("dominance", DEFAULT_DOMINANCE),
        presence_threshold=get.number("presence_threshold", noise.bound),
        concentration_scale=get.number("concentration_scale", 10_000),
        concentration_scales=tuple(get.scales("concentration_scales", commodities, metric)),
        recipients=tuple(get.texts("recipients", ["members"])),
        cadence=get.text("cadence", "weekly"),
        planned_percent=get.number("planned_percent", DEFAULT_PLANNED_PERCENT),
        graph=get.text("graph", ""),
    )  # fmt: skip


def _times(sigma: str, factor: int) -> str:
    """A decimal sigma times an integer, as a canonical decimal; a sigma that is not a
    decimal is passed on, for the entry's check to report."""
    try:
        return format((Decimal(sigma) * factor).normalize(), "f")
    except ArithmeticError:
        return sigma


class _Fields:
    """Typed reads of one [[entry]] (or [[crisis]]) table; a wrong or missing value is a
    ConfigError naming the file and the table."""

    def __init__(self, path: Path, values: Mapping[str, object], kind: str = "entry") -> None:
        self._path, self._values, self._kind = path, values, kind

    def _get(self, key: str, default: object) -> object:
        value = self._values.get(key, default)
        if value is None:
            raise self._error(key, "is missing")
        return value

    def _error(self, key: str, problem: str) -> ConfigError:
        name = self._values.get("name", "?")
        return ConfigError(f"{self._path}: {self._kind} {name!r}: {key} {problem}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self._error(key, "must be a string")
        return value

    def day(self, key: str) -> str:
        """A day, a TOML date or a "YYYY-MM-DD" string, as "YYYY-MM-DD"."""
        value = self._get(key, None)
        if isinstance(value, str) and _DAY.fullmatch(value):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise self._error(key, f"{value!r} is no day of the calendar") from None
        if isinstance(value, datetime) or not isinstance(value, date):
            raise self._error(key, 'must be a day: a TOML date or "YYYY-MM-DD"')
        return value.isoformat()

    def number(self, key: str, default: int | None = None) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._error(key, "must be a non-negative integer")
        return value

    def scales(self, key: str, commodities: list[str], metric: str) -> list[int]:
        """Concentration scales: a table of commodity = Q, or = [Q per component]; every
        commodity named once, none missing. [] when the key is absent."""
        value = self._values.get(key)
        if value is None:
            return []
        if not isinstance(value, dict) or set(value) != set(commodities):
            raise self._error(key, "must name a scale for each of the entry's commodities")
        per_component = any(isinstance(v, list) for v in value.values())
        count = len(METRIC_COMPONENTS.get(metric, ()))
        out: list[int] = []
        for commodity in commodities:
            scale = value[commodity]
            items = scale if isinstance(scale, list) else [scale] * (count if per_component else 1)
            if len(items) != (count if per_component else 1) or not all(
                isinstance(q, int) and not isinstance(q, bool) and q > 0 for q in items
            ):
                raise self._error(key, f"{commodity}: a positive integer or one per component")
            out += items
        return out

    def texts(self, key: str, default: list[str] | None = None) -> list[str]:
        value = self._get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._error(key, "must be a list of strings")
        return value
