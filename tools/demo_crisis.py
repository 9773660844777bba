"""The Kyushu squeeze becomes a crisis: ``scfed demo --crisis``.

The federation of ``tools.demo`` runs its demand-capacity round, and the Kyushu legacy analog
squeeze turns red. Governance then declares a crisis for that commodity (``scfed crisis
declare``, signed as the next policy) with a catalogue entry for the aggregate need and
spare capacity. Buyers post needs and fabs post offers through their nodes, in bands; the
coordinator proposes matches, each side seeing only the other post's description; one match
is accepted by both sides and only then revealed to them. A round of the new entry publishes
the aggregate need against the spare capacity with secure aggregation, noise and the
disclosure rules. Last, a Kyushu fab attests its stock to two banks in turn, each of which
verifies its attestation offline, and an outside audit of the log checks the pledges and the
reveal. Every command is run as a user would run it; every process is stopped at the end.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from coordinator.admin_client import AdminClient
from edge.config import load_operator_config
from governance.local import sign_catalogue
from protos.scfed.v1 import service_pb2 as spb
from scfed.errors import ConfigError
from scfed.wire import ABORT
from scfed.wire.envelope import Envelope
from tools import demo_data
from tools.demo import _scfed, audit_log, setup
from tools.processes import processes, start_coordinator, wait_for


def run_crisis_demo(directory: Path) -> int:
    """The crisis demo in ``directory``; the exit code."""
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=today.weekday())
    firms = demo_data.FIRMS
    setup(directory, firms, start)
    _prepare(directory, firms, start)
    names = sorted(f.name for f in firms)
    print(f"federation of {len(firms)} firms in {directory}; each imported its own files")
    with processes(directory / "logs") as procs:
        address = f"127.0.0.1:{start_coordinator(directory, procs)}"
        for name in names:
            procs.start(name, "node", "serve", "--config", str(_node(directory, name)),
                        "--coordinator", address)  # fmt: skip
        operator = load_operator_config(directory / "operators" / "operator" / "operator.toml")
        with AdminClient(operator, address) as admin:
            connected = lambda: len(admin.status().connected) == len(names)  # noqa: E731
            wait_for(f"{len(names)} nodes to connect", connected, procs, "coordinator")
            code = _picture(admin, directory, names, start)
            weeks = [start + dt.timedelta(weeks=w) for w in demo_data.CRISIS_WEEKS]
            _declare(directory, today)
            _post(directory, weeks, address)
            code = max(code, _match(directory, address))
            code = max(code, _aggregate(admin, directory, names, start, weeks))
        code = max(code, _attest(directory, start, address))
        code = max(code, audit_log(directory, address))
    print(f"\nthe federation is kept in {directory}; remove it with: rm -r {directory}")
    return code


def _node(directory: Path, name: str) -> Path:
    return directory / "members" / name / "node.toml"


def _prepare(directory: Path, firms: tuple[demo_data.Firm, ...], start: dt.date) -> None:
    """Each firm allows both entries a year of rho 1; the borrower imports its stock and
    consents to its two banks."""
    for firm in firms:
        config = _node(directory, firm.name)
        text = config.read_text(encoding="utf-8")
        text = text.replace(
            f'opt_in = ["{demo_data.ENTRY}"]',
            f'opt_in = ["{demo_data.ENTRY}", "{demo_data.CRISIS_ENTRY}"]',
        )
        text = text.replace('rho_cap = "0.5"', f'rho_cap = "{demo_data.CRISIS_RHO_CAP}"', 1)
        if firm.name == demo_data.BORROWER:
            text += f"\n[attest]\nlenders = {list(demo_data.LENDERS)!r}\n".replace("'", '"')
            for path in demo_data.write_stock(config.parent, firm, start):
                _scfed("node", "import", "--config", str(config), str(path))
        config.write_text(text, encoding="utf-8")
    catalogue = directory / "catalogue.toml"
    text = catalogue.read_text(encoding="utf-8")
    catalogue.write_text(
        text.replace('rho_cap = "0.5"', f'rho_cap = "{demo_data.CRISIS_RHO_CAP}"'),
        encoding="utf-8",
    )
    sign_catalogue(directory, catalogue)


def _round(
    admin: AdminClient, entry: str, names: list[str], start: dt.date
) -> tuple[Envelope, float]:
    request = spb.StartRoundRequest(
        query=entry, entry=entry, week=start.isoformat(), candidates=names,
        phase_timeout_ms=20_000,
    )  # fmt: skip
    began = time.perf_counter()
    _, outcome = admin.start_round(request, timeout=180)
    return outcome, time.perf_counter() - began


def _picture(admin: AdminClient, directory: Path, names: list[str], start: dt.date) -> int:
    """The demand-capacity round: the Kyushu squeeze turns red."""
    outcome, took = _round(admin, demo_data.ENTRY, names, start)
    if outcome.type == ABORT:
        print("MISMATCH: the demand-capacity round aborted")
        return 1
    print(f"\nround {demo_data.ENTRY} finished in {took:.1f} s; the Kyushu lights:")
    config = directory / "coordinator" / "coordinator.toml"
    shown = _scfed("coordinator", "results", "--config", str(config), "--entry", demo_data.ENTRY)
    lights = [line for line in shown.splitlines() if "light:" in line and "JP-Kyushu" in line]
    print("\n".join(lights))
    if not any(" red" in line for line in lights):
        print("MISMATCH: the Kyushu squeeze did not turn red")
        return 1
    return 0


def _declare(directory: Path, today: dt.date) -> None:
    """Governance declares the crisis, with the entry of its aggregate, and signs."""
    catalogue = directory / "catalogue.toml"
    with catalogue.open("a", encoding="utf-8") as handle:
        handle.write(demo_data.crisis_entry())
    end = today + dt.timedelta(weeks=8)
    print("\n$ scfed crisis declare ...   (governance)")
    print(
        _scfed(
            "crisis", "declare", "--catalogue", str(catalogue), "--name", demo_data.CRISIS,
            "--commodity", demo_data.KYUSHU_ANALOG, "--start", today.isoformat(),
            "--end", end.isoformat(), "--purpose", "the Kyushu legacy analog squeeze",
        ).splitlines()[0]
    )  # fmt: skip
    policy = sign_catalogue(directory, catalogue)
    print(f"governance signed policy version {policy.version}; the operator installed it")


def _post(directory: Path, weeks: list[dt.date], address: str) -> None:
    """Buyers post needs and fabs offers, through their nodes, for each red week."""
    print(f"\nfirms post for the weeks of {weeks[0]} to {weeks[-1]} (only a band leaves "
          "each node):")  # fmt: skip
    for firm, side, quantity in demo_data.POSTS:
        each = [arg for week in weeks for arg in ("--week", week.isoformat())]
        shown = _scfed(
            "crisis", "post", "--config", str(_node(directory, firm)), "--crisis",
            demo_data.CRISIS, f"--{side}", "--commodity", demo_data.KYUSHU_ANALOG, *each,
            "--quantity", str(quantity), "--coordinator", address,
        )  # fmt: skip
        print(f"  {firm}: {shown.splitlines()[0]}" + (f" (and {len(weeks) - 1} more weeks)"
              if len(weeks) > 1 else ""))  # fmt: skip


def _inbox(directory: Path, firm: str, address: str) -> str:
    config = str(_node(directory, firm))
    return _scfed("crisis", "inbox", "--config", config, "--coordinator", address)


def _accept(directory: Path, firm: str, match: str, address: str) -> str:
    config = str(_node(directory, firm))
    return _scfed("crisis", "accept", match, "--config", config, "--coordinator", address)


def _match(directory: Path, address: str) -> int:
    """The first need and the first offer are proposed to each other; each accepts; only
    then is each revealed to the other."""
    need, offer = demo_data.POSTS[0][0], next(f for f, s, _ in demo_data.POSTS if s == "offer")
    config = directory / "operators" / "operator" / "operator.toml"
    print("\n$ scfed crisis status   (the operator: no firm is named)")
    print(_scfed("crisis", "status", "--config", str(config), "--coordinator", address).rstrip())
    shown = _inbox(directory, need, address)
    first = "\n".join(shown.splitlines()[:3])
    print(f"\n$ scfed crisis inbox   ({need}; its first post of {len(demo_data.CRISIS_WEEKS)})")
    print(first)
    match = next(
        (line.split()[1].rstrip(":") for line in shown.splitlines() if "match " in line), None
    )
    if match is None or offer in shown:
        print("MISMATCH: no proposal, or the other firm was named before both accepted")
        return 1
    print(f"\n$ scfed crisis accept {match}   ({need})")
    print(_accept(directory, need, match, address).rstrip())
    if offer in _inbox(directory, need, address):
        print("MISMATCH: revealed after one acceptance")
        return 1
    print(f"$ scfed crisis accept {match}   ({offer})")
    print(_accept(directory, offer, match, address).rstrip())
    revealed = _inbox(directory, need, address)
    if f"revealed: {offer}" not in revealed:
        print("MISMATCH: the match was not revealed after both accepted")
        return 1
    print(f"both accepted: {need} and {offer} now know each other; no other firm does")
    return 0


def _aggregate(
    admin: AdminClient, directory: Path, names: list[str], start: dt.date, weeks: list[dt.date]
) -> int:
    """The round of the crisis entry: the aggregate need against the spare capacity."""
    outcome, took = _round(admin, demo_data.CRISIS_ENTRY, names, start)
    if outcome.type == ABORT:
        print("MISMATCH: the need and spare capacity round aborted")
        return 1
    config = directory / "coordinator" / "coordinator.toml"
    shown = _scfed("coordinator", "results", "--config", str(config), "--entry",
                   demo_data.CRISIS_ENTRY)  # fmt: skip
    print(f"\nround {demo_data.CRISIS_ENTRY} finished in {took:.1f} s: need against spare "
          "capacity in Kyushu")  # fmt: skip
    red = [line for line in shown.splitlines()[2:] if any(w.isoformat() in line for w in weeks)]
    print("\n".join([*shown.splitlines()[:2], *red]))
    true = {side: sum(q for _, s, q in demo_data.POSTS if s == side) for side in ("need", "offer")}
    print(f"(each of those weeks in truth, which only the demo knows: need {true['need']:,}, "
          f"spare {true['offer']:,})")  # fmt: skip
    if sum("suppressed" not in line for line in red) < len(red) // 2:
        print("MISMATCH: the aggregate need and spare capacity were mostly suppressed")
        return 1
    return 0


def _attest(directory: Path, start: dt.date, address: str) -> int:
    """The borrower attests its stock to one bank, then to another; each verifies offline."""
    config = str(_node(directory, demo_data.BORROWER))
    public = str(directory / "governance" / "public")
    code = 0
    for lender, amount in zip(demo_data.LENDERS, ("2000", "800"), strict=True):
        out = directory / f"attestation-{lender}.scfed"
        print(f"\n$ scfed attest issue --lender {lender} --amount {amount}   "
              f"({demo_data.BORROWER})")  # fmt: skip
        print(_scfed(
            "attest", "issue", "--config", config, "--lender", lender, "--commodity",
            demo_data.KYUSHU_ANALOG, "--week", start.isoformat(), "--amount", amount,
            "--out", str(out), "--coordinator", address,
        ).rstrip())  # fmt: skip
        print(f"$ scfed attest verify {out.name} --lender {lender}   ({lender}, offline)")
        shown = _scfed("attest", "verify", str(out), "--federation", public, "--lender", lender)
        print(shown.rstrip())
        code = max(code, 0 if shown.startswith("VERIFIED") else 1)
    return code


def check_crisis_args(nodes: int, dropouts: int) -> None:
    """The crisis demo runs the whole demo federation, with no dropouts."""
    if nodes != len(demo_data.FIRMS) or dropouts:
        raise ConfigError("--crisis runs every demo firm, without dropouts")
