"""The demo's synthetic firms: who they are, their files, and the catalogue they share.

Fabs, OSATs, wafer and materials suppliers and automotive and industrial buyers across
Japan, Taiwan, Korea and the US. Each firm writes its own CSV files (demand and capacity, in
wafers) with its own material numbers, and a mapping of those numbers onto the public
commodity taxonomy; only taxonomy keys and weeks ever leave a node. Legacy analog capacity in
Kyushu (90-180 nm, 200 mm) is squeezed: demand for it climbs week by week past what the fabs
there can run. Randomness comes from ``secrets`` (this is a demo, not a test).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from scfed.dp.ledger import windows_per_period
from scfed.dp.plan import entry_noise

ENTRY = "demand-capacity"
HORIZON = 6
K = 3

KYUSHU_ANALOG = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
HSINCHU_LOGIC = "fabrication/logic/14-28nm/300mm/TW-Hsinchu"
GYEONGGI_MEMORY = "fabrication/memory/14-28nm/300mm/KR-Gyeonggi"
ARIZONA_LOGIC = "fabrication/logic/<=5nm/300mm/US-Arizona"
COMMODITIES = (KYUSHU_ANALOG, HSINCHU_LOGIC, GYEONGGI_MEMORY, ARIZONA_LOGIC)


@dataclass(frozen=True)
class Firm:
    """A member: its role, and the capacity (wafers a week) or demand it has per commodity."""

    name: str
    role: str
    capacity: dict[str, int] = field(default_factory=dict)
    demand: dict[str, int] = field(default_factory=dict)


#: Ordered so that any first few firms already hold both sides of the Kyushu market. No
#: buyer holds much of Kyushu's demand, so that the dominance rule still publishes it when
#: one of them drops out of a round.
FIRMS = (
    Firm("fab-kumamoto", "foundry", capacity={KYUSHU_ANALOG: 3600}),
    Firm("auto-nagoya", "automotive", demand={KYUSHU_ANALOG: 2400, HSINCHU_LOGIC: 6000}),
    Firm("fab-oita", "foundry", capacity={KYUSHU_ANALOG: 3400}),
    Firm("osat-kaohsiung", "OSAT", demand={HSINCHU_LOGIC: 9000, KYUSHU_ANALOG: 2200}),
    Firm("fab-nagasaki", "IDM", capacity={KYUSHU_ANALOG: 3200}, demand={KYUSHU_ANALOG: 1200}),
    Firm("fab-kagoshima", "foundry", capacity={KYUSHU_ANALOG: 3000}),
    Firm("auto-detroit", "automotive", demand={KYUSHU_ANALOG: 2200, ARIZONA_LOGIC: 3000}),
    Firm("fab-kitakyushu", "foundry", capacity={KYUSHU_ANALOG: 2800}),
    Firm("industrial-osaka", "industrial", demand={KYUSHU_ANALOG: 1900, GYEONGGI_MEMORY: 2500}),
    Firm("fab-miyazaki", "foundry", capacity={KYUSHU_ANALOG: 2600}),
    Firm("fab-hsinchu", "foundry", capacity={HSINCHU_LOGIC: 41000, ARIZONA_LOGIC: 9000}),
    Firm("osat-incheon", "OSAT", demand={GYEONGGI_MEMORY: 7000, KYUSHU_ANALOG: 1500}),
    Firm("fab-pyeongtaek", "IDM", capacity={GYEONGGI_MEMORY: 30000}),
    Firm("wafer-niigata", "wafer supplier", demand={KYUSHU_ANALOG: 1100}),
    Firm("materials-ulsan", "materials supplier", demand={GYEONGGI_MEMORY: 800}),
)

#: A quarterly plan: a firm's year of rho 0.5 spread over four releases (scfed.dp.plan).
CADENCE = "quarterly"
PRESENCE_THRESHOLD = 1000
#: Q per commodity: demand, actual and maximum capacity (Kyushu demand climbs 3.5-fold).
SCALES = {
    KYUSHU_ANALOG: (30_000, 14_000, 15_000),
    HSINCHU_LOGIC: (12_000, 30_000, 33_000),
    GYEONGGI_MEMORY: (8_000, 22_000, 24_000),
    ARIZONA_LOGIC: (6_000, 7_000, 8_000),
}


def _entry(name: str, purpose: str, metric: str, commodities: tuple[str, ...], *,
           presence: int, scales: str, least_scale: int) -> str:  # fmt: skip
    """A catalogue entry of the demo's shape, its noise planned for the default budget of a
    firm at the entry's cadence (the overlap its presence threshold and smallest scale give)."""
    noise = entry_noise(
        bound=100, rho_release=Fraction(1, 2) / windows_per_period(CADENCE, "year"),
        overlap=Fraction(2 * presence + 1, 2 * least_scale), plausible=1_000_000,
    )  # fmt: skip
    return f"""
[[entry]]
name = "{name}"
purpose = "{purpose}"
metric = "{metric}"
commodities = [{", ".join(f'"{c}"' for c in commodities)}]
horizon_weeks = {HORIZON}
cadence = "{CADENCE}"
sigma = "{noise.sigma}"
presence_sigma = "{noise.presence_sigma}"
concentration_sigma = "{noise.concentration_sigma}"
bound = 100
unit = "magnitude"
grid = "1"
plausible = 1000000
t_collude = 1
min_contributors = {K}
dominance = "0.6"
presence_threshold = {presence}
{scales}
recipients = ["members"]
"""


def catalogue() -> str:
    """The catalogue governance signs for the demo."""
    scales = ", ".join(f'"{k}" = {list(q)}' for k, q in sorted(SCALES.items()))
    entry = _entry(
        ENTRY, "where demand will exceed capacity, per commodity and region, in the coming weeks",
        "demand-capacity", COMMODITIES, presence=PRESENCE_THRESHOLD,
        scales=f"concentration_scales = {{ {scales} }}",
        least_scale=min(min(q) for q in SCALES.values()),
    )  # fmt: skip
    return f'rho_cap = "0.5"\nperiod = "year"\n{entry}'


def weeks(start: date) -> list[date]:
    return [start + timedelta(weeks=i) for i in range(HORIZON)]


def _squeeze(week: int) -> Decimal:
    """Kyushu legacy demand over its first week's: 1, 1.1, 1.4, 1.9, 2.6, 3.5. Steep enough
    that by the last week demand passes maximum capacity even if the largest buyer drops out
    of the round, and gentle enough that the first weeks are still green."""
    return 1 + Decimal(week * week) / 10


def _jitter(base: int) -> int:
    return base + secrets.randbelow(max(base // 20, 1) + 1)


def write_firm(folder: Path, firm: Firm, start: date) -> dict[tuple[str, str, date], Decimal]:
    """Write the firm's demand, capacity and mapping files; its figures, for the check."""
    truth: dict[tuple[str, str, date], Decimal] = {}
    mapping = ["item,commodity"]
    demand = ["# kind: demand", "item,week,quantity,unit,category"]
    capacity = ["# kind: capacity", "item,week,actual,maximum,unit"]
    for n, commodity in enumerate(sorted(set(firm.demand) | set(firm.capacity))):
        item = f"{firm.name.upper()}-MAT-{n + 1:03d}"
        mapping.append(f"{item},{commodity}")
        for i, week in enumerate(weeks(start)):
            if commodity in firm.demand:
                ramp = _squeeze(i) if commodity == KYUSHU_ANALOG else Decimal(1)
                quantity = int(_jitter(firm.demand[commodity]) * ramp)
                demand.append(f"{item},{week.isoformat()},{quantity},unit:piece,0001")
                truth[("demand", commodity, week)] = Decimal(quantity)
            if firm.capacity.get(commodity):
                actual = _jitter(firm.capacity[commodity])
                maximum = int(actual * Decimal("1.08"))
                capacity.append(f"{item},{week.isoformat()},{actual},{maximum},unit:piece")
                truth[("capacity_actual", commodity, week)] = Decimal(actual)
                truth[("capacity_max", commodity, week)] = Decimal(maximum)
    _write(folder / "mapping.csv", mapping)
    _write(folder / "demand.csv", demand)
    _write(folder / "capacity.csv", capacity)
    return truth


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def opt_in(node_toml: Path) -> None:
    """The firm opts into the demo's catalogue entry in its own configuration."""
    text = node_toml.read_text(encoding="utf-8")
    node_toml.write_text(text.replace("opt_in = []", f'opt_in = ["{ENTRY}"]'), encoding="utf-8")


# ---- crisis mode (scfed demo --crisis) ----

CRISIS = "kyushu-legacy"
CRISIS_ENTRY = "kyushu-need-spare"
#: The weeks of the horizon the firms post for (0 is the first): all of them. The k and
#: dominance rules read contributors and concentration over the horizon's weeks, so posts
#: for a few weeks only would leave the aggregate suppressed.
CRISIS_WEEKS = (0, 1, 2, 3, 4, 5)
#: Who posts what, in this order: (firm, "need" or "offer", units a week). Needs come first,
#: so that each week's first offer is matched with its first need. No firm holds a large
#: share of either side, so the dominance rule publishes both.
POSTS = (
    ("auto-nagoya", "need", 1800),
    ("osat-kaohsiung", "need", 1600),
    ("industrial-osaka", "need", 1400),
    ("auto-detroit", "need", 1500),
    ("osat-incheon", "need", 1200),
    ("wafer-niigata", "need", 1000),
    ("fab-oita", "offer", 1900),
    ("fab-kumamoto", "offer", 1500),
    ("fab-kagoshima", "offer", 1400),
    ("fab-kitakyushu", "offer", 1300),
    ("fab-miyazaki", "offer", 1200),
    ("fab-nagasaki", "offer", 1100),
)
#: The firm that attests its stock to its banks, and the banks it consents to.
BORROWER = "fab-kumamoto"
LENDERS = ("kyushu-bank", "fukuoka-bank")
#: Its stock of the Kyushu commodity each week: finished wafers and wafers in progress.
STOCK = (1800, 1200)
#: Both entries together fit a firm's year of rho 1 (each at the quarterly cadence).
CRISIS_RHO_CAP = "1"
CRISIS_PRESENCE = 1000
CRISIS_SCALE = 6_000


def crisis_entry() -> str:
    """The catalogue entry of the aggregate need and spare capacity, as governance adds it
    when it declares the crisis."""
    return _entry(
        CRISIS_ENTRY, "the aggregate need and spare capacity firms posted in the Kyushu crisis",
        "need-spare", (KYUSHU_ANALOG,), presence=CRISIS_PRESENCE,
        scales=f"concentration_scale = {CRISIS_SCALE}", least_scale=CRISIS_SCALE,
    )  # fmt: skip


def write_stock(folder: Path, firm: Firm, start: date) -> list[Path]:
    """The borrower's finished goods and work in progress of the Kyushu commodity."""
    item = next(
        line.split(",")[0]
        for line in (folder / "mapping.csv").read_text(encoding="utf-8").splitlines()
        if line.endswith(KYUSHU_ANALOG)
    )
    finished = ["# kind: finished_goods", "item,week,quantity,unit"]
    wip = ["# kind: work_in_progress", "item,week,quantity,unit"]
    for week in weeks(start):
        finished.append(f"{item},{week.isoformat()},{STOCK[0]},unit:piece")
        wip.append(f"{item},{week.isoformat()},{STOCK[1]},unit:piece")
    paths = [folder / "finished_goods.csv", folder / "work_in_progress.csv"]
    _write(paths[0], finished)
    _write(paths[1], wip)
    assert firm.name == BORROWER
    return paths
