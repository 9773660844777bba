"""The governance-signed policy as a message: its catalogue entries and their wire form. Pure.

A catalogue entry fixes everything a round of it may do: the metric and the commodities its
cells group by, the horizon, the noise and privacy unit, the disclosure rules (k contributors,
the dominance limit, presence threshold and concentration scales), the cadence and who may
receive the results. Entries and policies check themselves on construction, like every
message; the rules that read them are in ``scfed.policy``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from protos.scfed.v1 import messages_pb2 as pb
from scfed.dp.ledger import CADENCES, PERIODS, Budget, parse_rho
from scfed.dp.params import Noise, parse_decimal
from scfed.errors import ConfigError, MessageError, PrivacyParameterError, RemoteProtocolError
from scfed.wire.codec import from_peer, noise_from_proto, noise_to_proto, parse
from scfed.wire.messages import MAX_NAME, MAX_PARTICIPANTS, check_noise

#: Bins of the days-of-supply and quoted lead-time histograms: (label, lower bound).
DOS_BINS = (("0-7d", 0), ("7-14d", 7), ("14-30d", 14), ("30-60d", 30), ("60d+", 60))
LEAD_BINS = (("0-8w", 0), ("8-16w", 8), ("16-26w", 16), ("26-52w", 26), ("52w+", 52))
#: The components of each metric's cells, in layout order.
METRIC_COMPONENTS: dict[str, tuple[str, ...]] = {
    "demand-capacity": ("demand", "capacity_actual", "capacity_max"),
    "stock": ("stock_finished", "stock_wip"),
    "book-to-bill": ("bookings", "billings"),
    "utilisation": ("utilisation",),
    "days-of-supply": tuple(f"dos:{label}" for label, _ in DOS_BINS),
    "lead-time": tuple(f"lead:{label}" for label, _ in LEAD_BINS),
    # What firms posted in a crisis: their exact need and spare capacity (scfed.crisis).
    "need-spare": ("need", "spare"),
}
METRICS = tuple(METRIC_COMPONENTS)
MAX_ENTRIES = 200
MAX_CRISES = 50
MAX_COMMODITIES = 5000
MAX_HORIZON_WEEKS = 104
MAX_PURPOSE = 1000
DEFAULT_MIN_CONTRIBUTORS = 5
DEFAULT_PLANNED_PERCENT = 80
#: A catalogue entry's graph: the coordinator's default by N, the complete graph, or SecAgg+.
GRAPHS = ("", "complete", "sparse")
#: A cell is published only when it is clear that no one firm holds this share of it.
DEFAULT_DOMINANCE = "0.6"
#: Largest presence threshold or concentration scale, in grid units: squares stay exact.
MAX_SCALE = 2**26
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_RECIPIENT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    purpose: str
    metric: str
    commodities: tuple[str, ...]
    horizon_weeks: int
    noise: Noise
    min_contributors: int
    dominance: str
    presence_threshold: int
    concentration_scale: int
    recipients: tuple[str, ...]
    cadence: str = "weekly"
    planned_percent: int = DEFAULT_PLANNED_PERCENT
    #: Q per commodity, or per commodity and component (commodity-major); () for
    #: concentration_scale everywhere.
    concentration_scales: tuple[int, ...] = ()
    #: "complete", "sparse" (SecAgg+ where the rule allows it), or "" (by N): GRAPHS.
    graph: str = ""

    def __post_init__(self) -> None:
        name = self.name
        if not _NAME.fullmatch(name) or self.metric not in METRICS:
            raise MessageError(f"catalogue entry {name[:64]!r}: bad name or metric {self.metric!r}")
        self._check_commodities()
        if (
            not 1 <= self.horizon_weeks <= MAX_HORIZON_WEEKS
            or not 2 <= self.min_contributors <= 1000
        ):
            raise MessageError(f"{name}: horizon 1..{MAX_HORIZON_WEEKS}, k 2..1000")
        if self.cadence not in CADENCES or not 1 <= self.planned_percent <= 100:
            raise MessageError(
                f"{name}: cadence one of {', '.join(CADENCES)}, planned survivors 1..100 percent"
            )
        if self.graph not in GRAPHS:
            raise MessageError(f"{name}: graph {self.graph[:20]!r} is not complete or sparse")
        if not self.noise.disclosure or self.noise.planned:
            raise MessageError(f"{name}: an entry's noise must cover its disclosure cells")
        check_noise(self.noise, self.min_contributors)
        self._check_disclosure()
        if not self.recipients or any(not _RECIPIENT.fullmatch(r) for r in self.recipients):
            raise MessageError(f"{name}: recipients must be names like 'members' or 'public'")
        if len(self.purpose) > MAX_PURPOSE:
            raise MessageError(f"{name}: the purpose is longer than {MAX_PURPOSE} characters")

    def _check_commodities(self) -> None:
        from scfed.taxonomy import parse_commodity

        name, commodities = self.name, self.commodities
        if not 0 < len(commodities) <= MAX_COMMODITIES or list(commodities) != sorted(
            set(commodities)
        ):
            raise MessageError(f"{name}: 1 to {MAX_COMMODITIES} sorted, distinct commodities")
        for key in commodities:
            try:
                parse_commodity(key)
            except ValueError as exc:
                raise MessageError(f"{name}: commodity {key[:80]!r}: {exc}") from None

    def _check_disclosure(self) -> None:
        name = self.name
        try:
            limit = parse_decimal(self.dominance, "the dominance limit")
        except PrivacyParameterError as exc:
            raise MessageError(f"{name}: {exc}") from None
        per_cell = len(self.commodities) * len(METRIC_COMPONENTS[self.metric])
        if len(self.concentration_scales) not in (0, len(self.commodities), per_cell):
            raise MessageError(
                f"{name}: one concentration scale per commodity, or per commodity and component"
            )
        scales = (self.concentration_scale, *self.concentration_scales)
        if (
            limit > 1
            or not 1 <= self.presence_threshold <= MAX_SCALE
            or not all(1 <= q <= MAX_SCALE for q in scales)
        ):
            raise MessageError(
                f"{name}: dominance at most 1, presence threshold and concentration scales 1..2^26"
            )

    def scale(self, commodity: str, component: str) -> int:
        """The concentration scale Q of a cell."""
        scales = self.concentration_scales
        if not scales:
            return self.concentration_scale
        k = self.commodities.index(commodity)
        if len(scales) == len(self.commodities):
            return scales[k]
        components = METRIC_COMPONENTS[self.metric]
        return scales[k * len(components) + components.index(component)]

    @property
    def dominance_limit(self) -> Fraction:
        """The share of a cell no one firm may hold for the cell to be published."""
        return parse_decimal(self.dominance, "the dominance limit")

    def planned(self, candidates: int) -> int:
        """The survivors a round with ``candidates`` plans its noise for."""
        return max(self.min_contributors, self.planned_percent * candidates // 100)

    @property
    def overlap(self) -> Fraction:
        """(2 P + 1) / 2 Q for the smallest scale Q: how far the two disclosure segments
        move together (Noise.rho)."""
        return Fraction(2 * self.presence_threshold + 1, 2 * min(self._scales))

    @property
    def _scales(self) -> tuple[int, ...]:
        return self.concentration_scales or (self.concentration_scale,)

    def rho_planned(self, group: int = 1) -> Fraction:
        """The most one release costs when the planned survivors (or more) survive, with
        corporate groups of at most ``group`` members."""
        return self.noise.planned_rho(group, self.overlap)


@dataclass(frozen=True)
class Crisis:
    """A shortage governance declares: while it is on (``start`` to ``end``, inclusive), firms
    may post needs and offers of its commodities (keys, each with its region)."""

    name: str
    purpose: str
    commodities: tuple[str, ...]
    start: str
    end: str

    def __post_init__(self) -> None:
        from scfed.taxonomy import parse_commodity

        name = self.name
        if not _NAME.fullmatch(name):
            raise MessageError(f"crisis {name[:64]!r}: a name of a-z, 0-9 and hyphens")
        if not 0 < len(self.commodities) <= MAX_COMMODITIES or list(self.commodities) != sorted(
            set(self.commodities)
        ):
            raise MessageError(
                f"crisis {name}: 1 to {MAX_COMMODITIES} sorted, distinct commodities"
            )
        for key in self.commodities:
            try:
                parse_commodity(key)
            except ValueError as exc:
                raise MessageError(f"crisis {name}: commodity {key[:80]!r}: {exc}") from None
        try:
            start, end = date.fromisoformat(self.start), date.fromisoformat(self.end)
            if start.isoformat() != self.start or end.isoformat() != self.end:
                raise ValueError(self.start)
        except ValueError:
            raise MessageError(f"crisis {name}: start and end are days, YYYY-MM-DD") from None
        if not start <= end <= start + timedelta(days=366):
            raise MessageError(f"crisis {name}: it ends on or after its start, within a year")
        if len(self.purpose) > MAX_PURPOSE:
            raise MessageError(
                f"crisis {name}: the purpose is longer than {MAX_PURPOSE} characters"
            )

    def on(self, day: date) -> bool:
        """Whether the crisis is declared on ``day``."""
        return date.fromisoformat(self.start) <= day <= date.fromisoformat(self.end)


@dataclass(frozen=True)
class Policy:
    origin: str
    version: int
    taxonomy_version: str
    rho_cap: str
    period: str
    entries: tuple[CatalogueEntry, ...]
    witness_quorum: int = 0
    crises: tuple[Crisis, ...] = ()

    def __post_init__(self) -> None:
        if len(self.crises) > MAX_CRISES or len({c.name for c in self.crises}) != len(self.crises):
            raise MessageError(f"a policy declares at most {MAX_CRISES} crises, each named once")
        if len(self.entries) > MAX_ENTRIES:
            raise MessageError(f"a catalogue holds at most {MAX_ENTRIES} entries")
        if len({e.name for e in self.entries}) != len(self.entries):
            raise MessageError("two catalogue entries share a name")
        if not self.origin or len(self.origin) > MAX_NAME or self.version < 1:
            raise MessageError("a policy needs an origin and a version from 1")
        if not 0 <= self.witness_quorum <= MAX_PARTICIPANTS:
            raise MessageError(f"a witness quorum above {MAX_PARTICIPANTS} cannot be met")
        if self.period not in PERIODS or not self.taxonomy_version:
            raise MessageError(f"the policy's period must be one of {', '.join(PERIODS)}")
        try:
            self.budget  # noqa: B018 - validates the cap
        except ConfigError as exc:
            raise MessageError(f"the policy's budget: {exc}") from None

    @property
    def budget(self) -> Budget:
        return Budget(parse_rho(self.rho_cap), self.period)

    def entry(self, name: str) -> CatalogueEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def crisis(self, name: str) -> Crisis | None:
        return next((c for c in self.crises if c.name == name), None)


def encode_policy(policy: Policy) -> bytes:
    entries = [
        pb.CatalogueEntry(**(vars(e) | {"noise": noise_to_proto(e.noise)})) for e in policy.entries
    ]
    crises = [pb.Crisis(**vars(c)) for c in policy.crises]
    fields = vars(policy) | {"entries": entries, "crises": crises}
    return pb.Policy(**fields).SerializeToString()


def decode_policy(body: bytes) -> Policy:
    """A validated policy; RemoteProtocolError names the first thing wrong."""
    m = parse(pb.Policy(), body, "policy")
    if len(m.entries) > MAX_ENTRIES or len(m.crises) > MAX_CRISES:
        raise RemoteProtocolError(
            f"a policy holds at most {MAX_ENTRIES} entries and {MAX_CRISES} crises"
        )
    return from_peer(
        lambda: Policy(
            m.origin,
            m.version,
            m.taxonomy_version,
            m.rho_cap,
            m.period,
            tuple(_entry(e) for e in m.entries),
            m.witness_quorum,
            tuple(
                Crisis(c.name, c.purpose[:MAX_PURPOSE], tuple(c.commodities), c.start, c.end)
                for c in m.crises
            ),
        )
    )


def _entry(m: pb.CatalogueEntry) -> CatalogueEntry:
    if not m.HasField("noise"):
        raise MessageError(f"{m.name[:64]}: an entry's noise must cover its disclosure cells")
    return CatalogueEntry(
        m.name, m.purpose[:MAX_PURPOSE], m.metric, tuple(m.commodities), m.horizon_weeks,
        noise_from_proto(m.noise), m.min_contributors, m.dominance, m.presence_threshold,
        m.concentration_scale, tuple(m.recipients), m.cadence, m.planned_percent,
        tuple(m.concentration_scales), m.graph,
    )  # fmt: skip
