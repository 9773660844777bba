"""Every ``scfed`` command of the README's ``sh`` blocks, run as written, in the order a user
meets them, in one folder standing for the parties' machines.

Only what a user's own environment supplies is substituted: the coordinator's address
(``coordinator.example.org:7443`` becomes a free loopback port, given to ``federation init``
as the README's own ``--address``, so every configuration names it), the demo's temporary
folder, and the README's CAPITAL placeholders, filled in from earlier steps. The input files
the README names are written here from the formats it documents. What the README only
mentions in its text (more firms enrolled like the first, their data imported, the catalogue
signed and installed, a node opting in) runs as extra commands, not counted as README lines.
At the end the lines run must be exactly the README's: a new command without a run fails.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from tests.integration.conftest import allow_adhoc, demo_cells, synthetic_figures
from tests.unit.test_readme import README, command_lines
from tools import demo_data
from tools.processes import Processes, processes, wait_for

pytestmark = pytest.mark.integration

KYUSHU = demo_data.KYUSHU_ANALOG
ENTRY = "weekly-demand-capacity"  # the README's catalogue example
#: Four more firms enrolled as the README enrols fab-kumamoto: the catalogue entry's k (and
#: so its n_min) is 5, and an ad-hoc round needs 3.
OTHERS = {firm.name: firm for firm in demo_data.FIRMS[1:5]}
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "catenax"
TIMEOUT_S = 120


def _key(line: str) -> tuple[str, ...]:
    return tuple(shlex.split(line))


class Walkthrough:
    """Runs README lines in ``cwd`` (the working directory of the test and its children)."""

    def __init__(self, cwd: Path, procs: Processes, address: str) -> None:
        self.cwd, self.procs, self.address = cwd, procs, address
        self.readme = {_key(line): line for line in command_lines()}
        self.ran: set[tuple[str, ...]] = set()

    def _args(self, line: str, subs: dict[str, str]) -> list[str]:
        """The README line's arguments with the user's own values put in."""
        key = _key(line)
        assert key in self.readme, f"not a command of the README: {line}"
        self.ran.add(key)
        subs = {"coordinator.example.org:7443": self.address, **subs}
        return [subs.get(arg, arg) for arg in key[1:]]

    def run(self, line: str, **subs: str) -> str:
        """A README line run to its end; its output, once it exited 0."""
        args = self._args(line, subs)
        done = subprocess.run(
            [sys.executable, "-m", "scfed", *args], cwd=self.cwd, capture_output=True,
            text=True, timeout=TIMEOUT_S, check=False,
        )  # fmt: skip
        with (self.cwd / "transcript.txt").open("a", encoding="utf-8") as transcript:
            transcript.write(f"$ {shlex.join(['scfed', *args])}\n{done.stdout}{done.stderr}\n")
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, line: str, **subs: str) -> None:
        """A daemon line, started in the background (stopped when the test ends)."""
        self.procs.start(name, *self._args(line, subs))

    def stop(self, name: str) -> None:
        process = self.procs.running[name]
        process.terminate()
        process.wait(15)

    def wait(self, what: str, check: Callable[[], bool], name: str) -> None:
        wait_for(what, check, self.procs, name)


def scfed(cwd: Path, *args: str) -> str:
    """A command the README describes in its text but does not show as a line of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "scfed", *args], cwd=cwd, capture_output=True, text=True,
        timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"scfed {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    return check


def connected(walk: Walkthrough, members: set[str]) -> Callable[[], bool]:
    """``coordinator status`` shows each of ``members`` connected."""

    def check() -> bool:
        out = walk.run("scfed coordinator status --config ops/operator.toml")
        match = re.search(r"^\d+ connected: (.*)$", out, flags=re.MULTILINE)
        return match is not None and members <= set(match.group(1).split(", "))

    return check


def dashboard_url(procs: Processes, name: str) -> Callable[[], bool]:
    return lambda: re.search(r"dashboard: http://\S+/ ", procs.log_text(name)) is not None


def get_dashboard(procs: Processes, name: str) -> str:
    """The URL the dashboard printed, after an HTTP GET of it answered 200 with a page."""
    match = re.search(r"dashboard: (http://\S+/) ", procs.log_text(name))
    assert match is not None
    with urllib.request.urlopen(match.group(1), timeout=30) as response:
        assert response.status == 200
        assert "<html" in response.read().decode("utf-8").lower()
    return match.group(1)


def write_kumamoto_files(cwd: Path, monday: dt.date) -> None:
    """The files the README's import lines name, in its documented formats, and the firm's
    mapping of their items onto the taxonomy."""
    weeks = [monday + dt.timedelta(weeks=i) for i in range(4)]
    group = json.loads((VECTORS / "WeekBasedCapacityGroup.json").read_text(encoding="utf-8"))
    items = ["KUM-DEMAND-CSV", "半導体-A", "KUM-DEMAND-XLSX", "KUM-CAPACITY-XLSX"]
    mapping = ["item,commodity", *(f"{item},{KYUSHU}" for item in items)]
    mapping.append(f"{group['capacityGroupId']},{KYUSHU}")
    (cwd / "kumamoto/mapping.csv").write_text("\n".join(mapping) + "\n", encoding="utf-8")
    demand = ["# kind: demand", "item,week,quantity,unit,category"]
    csv_rows = [f"KUM-DEMAND-CSV,{w},{1200 + 10 * i},unit:piece,0001" for i, w in enumerate(weeks)]
    (cwd / "demand.csv").write_text("\n".join(demand + csv_rows) + "\n", encoding="utf-8")
    sjis = [f"半導体-A,{w:%G}-W{w:%V},{300 + i},unit:piece,0001" for i, w in enumerate(weeks)]
    text = "\n".join(["# 熊本工場 需要予測 ① (単位: 個)", *demand, *sjis]) + "\n"
    (cwd / "demand-sjis.csv").write_bytes(text.encode("cp932"))
    header: list[object] = ["item", "week", "quantity", "unit", "category"]
    mondays = [dt.datetime.combine(w, dt.time()) for w in weeks]  # date cells, as Excel has
    rows: list[list[object]] = [["KUM-DEMAND-XLSX", w, 400, "unit:piece", "0001"] for w in mondays]
    _book(cwd / "demand.xlsx", {"Demand": [["# kind: demand"], header, *rows]})
    capacity: list[list[object]] = [
        ["# kind: capacity"],
        ["item", "week", "actual", "maximum", "unit"],
    ]
    capacity += [["KUM-CAPACITY-XLSX", w.isoformat(), 3500, 3800, "unit:piece"] for w in weeks]
    _book(cwd / "plan.xlsx", {"Notes": [["capacity plan, FY2026"]], "Capacity": capacity})
    group["capacityGroupIsInactive"] = False  # the official example is an inactive group
    (point,) = group["capacities"]
    group["capacities"] = [{**point, "pointInTime": w.isoformat()} for w in weeks]
    (cwd / "WeekBasedCapacityGroup.json").write_text(json.dumps(group), encoding="utf-8")


def _book(path: Path, sheets: dict[str, list[list[object]]]) -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)


def readme_catalogue() -> str:
    """The catalogue file the README shows (``toml`` block with an entry)."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    (catalogue,) = [str(block) for block in blocks if "[[entry]]" in block]
    return catalogue


def test_every_readme_command_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the daemons' relative paths are the README's too
    cwd = tmp_path
    port = free_port()
    address = f"127.0.0.1:{port}"
    today = dt.datetime.now(dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    demo_dirs: list[Path] = []
    try:
        with processes(tmp_path / "logs") as procs:
            walk = Walkthrough(cwd, procs, address)
            demo_dirs.append(try_it(walk))
            demo_dirs.append(crisis_demo(walk))
            set_up(walk, monday)
            operate(walk, monday)
        assert set(walk.readme) - walk.ran == set(), "README commands the test did not run"
        assert walk.ran == set(walk.readme)
    finally:
        for folder in demo_dirs:
            shutil.rmtree(folder, ignore_errors=True)


def try_it(walk: Walkthrough) -> Path:
    """Try it: the demo in its own temporary folder, then the dashboard it points at."""
    out = walk.run("scfed demo")
    match = re.search(r"the federation, its logs and the release are kept in (\S+)", out)
    assert match is not None, out
    demo_dir = Path(match.group(1))
    assert "audit passed" in out, out
    assert "scfed dashboard --config" in out, out
    line = "scfed dashboard --config /tmp/scfed-demo-XXXX/members/fab-kumamoto/node.toml"
    config = demo_dir / "members/fab-kumamoto/node.toml"
    assert config.exists(), out
    walk.start("demo-dashboard", line, **{_key(line)[-1]: str(config)})
    walk.wait("the demo's dashboard", dashboard_url(walk.procs, "demo-dashboard"), "demo-dashboard")
    assert get_dashboard(walk.procs, "demo-dashboard") == "http://127.0.0.1:8080/"
    walk.stop("demo-dashboard")
    return demo_dir


def crisis_demo(walk: Walkthrough) -> Path:
    """The crisis demo, in its own temporary folder."""
    out = walk.run("scfed demo --crisis")
    match = re.search(r"the federation is kept in (\S+);", out)
    assert match is not None, out
    assert "revealed: auto-nagoya" in out, out
    assert out.count("VERIFIED: fab-kumamoto") == 2, out
    assert "audit passed" in out, out
    return Path(match.group(1))


def set_up(walk: Walkthrough, monday: dt.date) -> None:
    """Running a federation: the three parties' set-up, as written."""
    cwd, run = walk.cwd, walk.run
    run("scfed federation init gov --name acme-chips --address coordinator.example.org:7443")
    run("scfed coordinator init coord --federation gov/public/federation.toml"
        " --host coordinator.example.org")  # fmt: skip
    run("scfed federation enroll gov --request coord/coordinator.request")
    run("scfed coordinator install --config coord/coordinator.toml --certificate"
        " gov/issued/coordinator.pem --registry gov/public/registry.signed")  # fmt: skip
    run("scfed node init kumamoto --federation gov/public/federation.toml"
        ' --member fab-kumamoto --display-name "Kumamoto Fab" --group jasm')  # fmt: skip
    run("scfed federation enroll gov --request kumamoto/fab-kumamoto.request")
    run("scfed node install --config kumamoto/node.toml --certificate gov/issued/fab-kumamoto.pem")
    # The other firms, each the same three steps in its own folder, with their own data.
    for member, firm in OTHERS.items():
        folder = member.split("-")[1]
        scfed(cwd, "node", "init", folder, "--federation", "gov/public/federation.toml",
              "--member", member)  # fmt: skip
        scfed(cwd, "federation", "enroll", "gov", "--request", f"{folder}/{member}.request")
        scfed(cwd, "node", "install", "--config", f"{folder}/node.toml",
              "--certificate", f"gov/issued/{member}.pem")  # fmt: skip
        demo_data.write_firm(cwd / folder, firm, monday)
        for name in ("demand.csv", "capacity.csv"):
            scfed(cwd, "node", "import", "--config", f"{folder}/node.toml", f"{folder}/{name}")
    run("scfed operator init ops --federation gov/public/federation.toml --name ops")
    run("scfed federation enroll gov --request ops/ops.request")
    run("scfed operator install --config ops/operator.toml --certificate gov/issued/ops.pem")
    out = run("scfed coordinator install --config coord/coordinator.toml"
              " --registry gov/public/registry.signed")  # fmt: skip
    assert "installed registry version 7" in out, out  # the coordinator, five firms, ops
    # Each firm's figures for ad-hoc rounds, which its node.toml must allow; the cells file.
    cells = demo_cells(monday)
    (cwd / "cells.txt").write_text("\n".join(cells) + "\n", encoding="utf-8")
    for seed, folder in enumerate(folders()):
        figures = synthetic_figures(cells, seed)
        lines = ["cell,value", *(f"{c},{v}" for c, v in figures.items())]
        (cwd / folder / "figures.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        allow_adhoc(cwd / folder / "node.toml")
    write_kumamoto_files(cwd, monday)


def folders() -> list[str]:
    return ["kumamoto", *(member.split("-")[1] for member in OTHERS)]


def members() -> set[str]:
    return {"fab-kumamoto", *OTHERS}


def operate(walk: Walkthrough, monday: dt.date) -> None:
    run, procs = walk.run, walk.procs
    port = int(walk.address.rsplit(":", 1)[1])
    # Then each runs its part: the coordinator listens where federation.toml says.
    walk.start("coordinator", "scfed coordinator serve --config coord/coordinator.toml")
    walk.wait("the coordinator to listen", listening(port), "coordinator")
    walk.start("kumamoto", "scfed node serve --config kumamoto/node.toml")
    for folder in folders()[1:]:
        procs.start(folder, "node", "serve", "--config", f"{folder}/node.toml")
    walk.wait("five nodes to connect", connected(walk, members()), "coordinator")
    out = run("scfed coordinator round start --config ops/operator.toml"
              " --query weekly-demand --cells-file cells.txt --sigma 400 --bound 100")  # fmt: skip
    assert out.splitlines()[0].endswith(": round.result"), out
    assert f"5 contributors: {', '.join(sorted(members()))}" in out, out
    for line in (
        "scfed node ledger --config kumamoto/node.toml",
        "scfed coordinator ledger --config coord/coordinator.toml",
    ):
        out = run(line)
        assert re.search(r"round \w+ +weekly-demand +5 survivors +rho 0\.015625", out), out
    out = run("scfed audit verify --coordinator coordinator.example.org:7443"
              " --config ops/operator.toml --governance-key gov/public/governance.pub"
              " --origin scfed.example/acme-chips")  # fmt: skip
    assert "audit passed: 1 round" in out, out
    backups_and_checks(walk)
    firm_data(walk)
    catalogue_round(walk, monday)
    dashboards(walk)
    crisis_mode(walk, monday)
    attestations(walk, monday)
    logs_and_audit(walk)
    out = run("scfed bench noise")
    assert "sampler" in out, out
    out = run("scfed bench noise --cells 1e5 --sigma2 9/4 --repeat 10 --json")
    assert json.loads(out.splitlines()[-1])["cells"] == 100_000, out


def backups_and_checks(walk: Walkthrough) -> None:
    """Backups while the daemons run; a restore while the node is stopped, as it must be."""
    cwd, run = walk.cwd, walk.run
    (cwd / "backups").mkdir()  # the README's mkdir -p backups
    out = run("scfed node backup --config kumamoto/node.toml --to backups/node.sqlite")
    assert (cwd / "backups/node.sqlite").exists(), out
    run("scfed coordinator backup --config coord/coordinator.toml --to backups/")
    assert list((cwd / "backups").glob("coordinator-*.sqlite"))
    walk.stop("kumamoto")  # restore refuses while the daemon holds its lock
    out = run("scfed node restore --config kumamoto/node.toml --from backups/node.sqlite")
    assert list((cwd / "kumamoto").glob("node.sqlite.*.before-restore")), out
    walk.start("kumamoto-restored", "scfed node serve --config kumamoto/node.toml")
    walk.wait("the restored node", connected(walk, {"fab-kumamoto"}), "kumamoto-restored")
    out = run("scfed coordinator schedule --config coord/coordinator.toml")
    assert "no signed policy installed" in out, out  # the catalogue comes later
    out = run("scfed coordinator status --config ops/operator.toml")
    assert "5 connected" in out, out
    run("scfed config check --config kumamoto/node.toml")


def firm_data(walk: Walkthrough) -> None:
    """Firm data: every import line, then what the node holds."""
    cwd, run = walk.cwd, walk.run
    for line in (
        "scfed node import --config kumamoto/node.toml demand.csv",
        "scfed node import --config kumamoto/node.toml --encoding cp932 demand-sjis.csv",
        "scfed node import --config kumamoto/node.toml demand.xlsx",
        "scfed node import --config kumamoto/node.toml --sheet Capacity plan.xlsx",
        "scfed node import --config kumamoto/node.toml WeekBasedCapacityGroup.json",
    ):
        out = run(line)
        assert re.search(r"^imported \d+ .*\(new [1-9]", out), f"{line}: {out}"
    out = run("scfed node data --config kumamoto/node.toml")
    assert "capacity" in out, out
    assert "demand" in out, out
    run("scfed node data --config kumamoto/node.toml --format xlsx --output node-data.xlsx")
    assert (cwd / "node-data.xlsx").read_bytes()[:2] == b"PK"
    run("scfed node data --config kumamoto/node.toml --format csv --weeks 12 --output totals.csv")
    totals = (cwd / "totals.csv").read_text(encoding="utf-8")
    assert totals.startswith("metric,unit,week,quantity"), totals


def catalogue_round(walk: Walkthrough, monday: dt.date) -> None:
    """Governance signs the README's catalogue, the operator installs it, every firm opts in
    in its node.toml (read at the next task), and the entry's round releases to members."""
    cwd, run = walk.cwd, walk.run
    (cwd / "catalogue.toml").write_text(readme_catalogue(), encoding="utf-8")
    for folder in folders():
        config = cwd / folder / "node.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("opt_in = []", f'opt_in = ["{ENTRY}"]'), encoding="utf-8")
    scfed(cwd, "federation", "policy", "gov", "--catalogue", "catalogue.toml")
    scfed(cwd, "coordinator", "install", "--config", "coord/coordinator.toml",
          "--policy", "gov/public/policy.signed")  # fmt: skip
    out = run("scfed coordinator schedule --config coord/coordinator.toml")
    assert ENTRY in out, out
    out = run("scfed coordinator round start --config ops/operator.toml"
              " --query weekly-demand-capacity --entry weekly-demand-capacity")  # fmt: skip
    match = re.match(r"round ([0-9a-f]+): round.result$", out.splitlines()[0])
    assert match is not None, out
    round_id = match.group(1)
    out = run("scfed coordinator results --config coord/coordinator.toml --out results")
    assert f"week of {monday}, 5 contributors; recipients: members" in out, out
    # The README's entry needs k = 5 contributors at the count's 99% lower bound, which four
    # holders of Kyushu demand and three of its capacity cannot reach: the cells are held.
    held = rf"^{re.escape(KYUSHU)} +{monday} demand +suppressed"
    assert re.search(held, out, flags=re.MULTILINE), out
    assert "estimated contributors below 5" in out, out
    assert (cwd / "results/results.json").exists()
    listed = "scfed node results --config kumamoto/node.toml --list"
    walk.wait("the release at the firm", lambda: ENTRY in run(listed), "kumamoto-restored")
    assert f"week of {monday}" in run(listed)
    out = run("scfed node results --config kumamoto/node.toml")
    assert ENTRY in out, out
    assert KYUSHU in out, out
    run("scfed node results --config kumamoto/node.toml --entry weekly-demand-capacity"
        " --format xlsx --output release.xlsx")  # fmt: skip
    assert (cwd / "release.xlsx").read_bytes()[:2] == b"PK"
    # The README's --week, in its text: the release of that week (a Monday), here this one.
    out = scfed(cwd, "node", "results", "--config", "kumamoto/node.toml", "--entry", ENTRY,
                "--week", monday.isoformat(), "--format", "json")  # fmt: skip
    assert json.loads(out)["week"] == monday.isoformat(), out
    out = run("scfed coordinator results --config coord/coordinator.toml --round ROUND_ID"
              " --out results", ROUND_ID=round_id)  # fmt: skip
    assert KYUSHU in out, out


def dashboards(walk: Walkthrough) -> None:
    """The dashboard of the release the firm's node holds, on 8080 and on a free port."""
    walk.start("dashboard", "scfed dashboard --config kumamoto/node.toml")
    walk.wait("the dashboard", dashboard_url(walk.procs, "dashboard"), "dashboard")
    assert get_dashboard(walk.procs, "dashboard") == "http://127.0.0.1:8080/"
    walk.stop("dashboard")
    walk.start("dashboard-free", "scfed dashboard --config kumamoto/node.toml --port 0")
    walk.wait("the dashboard", dashboard_url(walk.procs, "dashboard-free"), "dashboard-free")
    assert get_dashboard(walk.procs, "dashboard-free") != "http://127.0.0.1:8080/"
    walk.stop("dashboard-free")


def crisis_mode(walk: Walkthrough, monday: dt.date) -> None:
    """Governance declares the README's crisis (from today), signs and hands it over; the
    firm offers, another firm needs, both accept and each learns who the other is."""
    cwd, run = walk.cwd, walk.run
    today = dt.datetime.now(dt.UTC).date()
    days = {
        "2027-01-04": today.isoformat(),
        "2027-03-31": (today + dt.timedelta(days=30)).isoformat(),
    }
    out = run("scfed crisis declare --catalogue catalogue.toml --name kyushu-legacy --commodity"
              f" {KYUSHU} --start 2027-01-04 --end 2027-03-31", **days)  # fmt: skip
    assert "kyushu-legacy" in out, out
    out = scfed(cwd, "federation", "policy", "gov", "--catalogue", "catalogue.toml")
    assert f"; crisis kyushu-legacy, {today} to " in out, out
    scfed(cwd, "coordinator", "install", "--config", "coord/coordinator.toml",
          "--policy", "gov/public/policy.signed")  # fmt: skip
    week = (monday + dt.timedelta(weeks=2)).isoformat()
    out = run("scfed crisis post --config kumamoto/node.toml --crisis kyushu-legacy --offer"
              f" --commodity {KYUSHU} --week 2027-01-18 --quantity 1500",
              **{"2027-01-18": week})  # fmt: skip
    assert "band 500-1999" in out, out
    scfed(cwd, "crisis", "post", "--config", "nagoya/node.toml", "--crisis", "kyushu-legacy",
          "--need", "--commodity", KYUSHU, "--week", week, "--quantity", "1200")  # fmt: skip
    out = run("scfed crisis inbox --config kumamoto/node.toml")
    match = re.search(r"match ([0-9a-f]{32}): the other side posted a need", out)
    assert match is not None, out
    out = run("scfed crisis accept MATCH_ID --config kumamoto/node.toml", MATCH_ID=match[1])
    assert "you accepted" in out, out
    out = scfed(cwd, "crisis", "accept", match[1], "--config", "nagoya/node.toml")
    assert "revealed: fab-kumamoto" in out, out
    assert "revealed: auto-nagoya" in run("scfed crisis inbox --config kumamoto/node.toml")
    out = run("scfed crisis status --config ops/operator.toml")
    assert "1 revealed" in out, out
    assert "fab-kumamoto" not in out, out


def attestations(walk: Walkthrough, monday: dt.date) -> None:
    """The firm consents to its bank, imports its stock, attests; the bank verifies."""
    cwd, run = walk.cwd, walk.run
    with (cwd / "kumamoto/node.toml").open("a", encoding="utf-8") as config:
        config.write('\n[attest]\nlenders = ["kyushu-bank"]\n')
    stock = ["# kind: finished_goods", "item,week,quantity,unit",
             f"KUM-DEMAND-CSV,{monday},2500,unit:piece"]  # fmt: skip
    (cwd / "stock.csv").write_text("\n".join(stock) + "\n", encoding="utf-8")
    scfed(cwd, "node", "import", "--config", "kumamoto/node.toml", "stock.csv")
    out = run("scfed attest issue --config kumamoto/node.toml --lender kyushu-bank --commodity"
              f" {KYUSHU} --week 2027-01-04 --amount 2000 --out attestation.scfed",
              **{"2027-01-04": monday.isoformat()})  # fmt: skip
    assert "holdings: 2500 finished goods, 0 in progress" in out, out
    out = run("scfed attest verify attestation.scfed --federation gov/public --lender kyushu-bank")
    assert out.startswith("VERIFIED: fab-kumamoto attests to kyushu-bank"), out


def logs_and_audit(walk: Walkthrough) -> None:
    """Both daemons restarted with the README's logging options, then every audit line."""
    cwd, run = walk.cwd, walk.run
    port = int(walk.address.rsplit(":", 1)[1])
    walk.stop("kumamoto-restored")
    walk.stop("coordinator")
    debug = "scfed --log-level debug coordinator serve --config coord/coordinator.toml"
    walk.start("coordinator-debug", debug)
    walk.wait("the coordinator to listen", listening(port), "coordinator-debug")
    walk.start("kumamoto-json", "scfed node serve --config kumamoto/node.toml"
               " --log-format json --log-level warning")  # fmt: skip
    walk.wait("the node", connected(walk, {"fab-kumamoto"}), "kumamoto-json")
    assert "DEBUG" in walk.procs.log_text("coordinator-debug").upper()
    for line in walk.procs.log_text("kumamoto-json").splitlines():
        assert json.loads(line)["level"] in ("WARNING", "ERROR"), line
    origin = "scfed.example/acme-chips"
    vkey = run("scfed audit vkey --registry gov/public/registry.signed --governance-key"
               " gov/public/governance.pub --origin ORIGIN", ORIGIN=origin)  # fmt: skip
    vkey = vkey.strip().splitlines()[-1]
    # The witness runs before the export and the offline verify: the verify's CHECKPOINT is
    # the older checkpoint the witness kept, which the exported log must extend.
    out = run("scfed audit witness --config ops/operator.toml --vkey VKEY --name NAME --key KEY"
              " --state DIR", VKEY=vkey, NAME="auditor.example/witness", KEY="witness.key",
              DIR="witness")  # fmt: skip
    assert "is consistent with every checkpoint" in out, out
    assert "auditor.example/witness" in out, out
    out = run("scfed audit export --config ops/operator.toml DIR", DIR="exported")
    assert (cwd / "exported/checkpoint").exists(), out
    out = run("scfed audit verify --log DIR --governance-key gov/public/governance.pub"
              " --origin ORIGIN --checkpoint CHECKPOINT --json", DIR="exported", ORIGIN=origin,
              CHECKPOINT="witness/checkpoint")  # fmt: skip
    assert json.loads(out)["ok"] is True, out
    out = run("scfed audit verify --config kumamoto/node.toml")
    assert "audit passed: 2 rounds" in out, out
    out = run("scfed audit verify-note --vkey VKEY FILE", VKEY=vkey, FILE="exported/checkpoint")
    assert f"origin: {origin}" in out, out
