"""Attestations and crisis mode with real daemons: a lender verifies an attestation offline
and refuses a forged, stale, equivocating, over-pledged or someone else's one; a crisis is
declared, needs and offers are posted, a match is revealed only after both acceptances, the
coordinator keeps all of it across a restart, and the audit checks it."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.fetch import fetch_log
from auditor.verify import audit
from coordinator._status import Context, served
from coordinator.admin_client import AdminClient
from coordinator.log import ProtocolLog
from edge.config import (
    load_coordinator_config,
    load_node_config,
    load_operator_config,
    read_governance_key,
)
from edge.transport import secure_channel
from governance.local import sign_catalogue
from node.attest import AttestStore, Request, _Issue, _Pledge, _registry
from node.client import MemberClient, RefusedCallError
from node.governance import held_registry
from node.store import verified_checkpoint
from protos.scfed.v1 import messages_pb2 as pb
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed import pki, wire
from scfed.attest import figure_commitment, pledge_commitment
from scfed.wire import attest
from scfed.wire.envelope import Envelope
from scfed.wire.tasks import Receipt, receipt_to_proto
from tests.integration.test_readme_walkthrough import free_port
from tests.integration.test_rollback import (
    HostileCoordinator,
    _ReplayingNodes,
    copy_log,
    signing_key,
)
from tools import demo_data
from tools.demo import setup
from tools.processes import Processes, processes, start_coordinator, wait_for

pytestmark = pytest.mark.integration

KYUSHU = demo_data.KYUSHU_ANALOG
BORROWER = demo_data.BORROWER  # fab-kumamoto, holding 1800 finished and 1200 in progress
FIRMS = ("fab-kumamoto", "auto-nagoya", "fab-oita", "osat-kaohsiung")


@dataclass
class Federation:
    directory: Path
    procs: Processes
    address: str
    monday: dt.date

    def node(self, name: str) -> Path:
        return self.directory / "members" / name / "node.toml"

    def scfed(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "scfed", *args], capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def member(self, name: str, *args: str, check: bool = True) -> str:
        """A member's command, with its node's config and the coordinator's address."""
        done = self.scfed(
            *args, "--config", str(self.node(name)), "--coordinator", self.address, check=check
        )
        return done.stdout + done.stderr

    def verify(self, file: Path, lender: str, *extra: str) -> subprocess.CompletedProcess[str]:
        public = str(self.directory / "governance" / "public")
        return self.scfed(
            "attest", "verify", str(file), "--federation", public, "--lender", lender, *extra,
            check=False,
        )  # fmt: skip

    def restart_coordinator(self) -> None:
        """Stop the coordinator (SIGTERM) and start it again on its port; the nodes
        reconnect by themselves."""
        running = self.procs.running["coordinator"]
        running.send_signal(signal.SIGTERM)
        running.wait(timeout=20)
        port = self.directory / "coordinator" / "port"
        port.unlink()
        config = self.directory / "coordinator" / "coordinator.toml"
        self.procs.start(
            "coordinator", "coordinator", "serve", "--config", str(config), "--listen",
            self.address, "--port-file", str(port),
        )  # fmt: skip
        wait_for("the coordinator to listen again", port.exists, self.procs, "coordinator")


@pytest.fixture(scope="module", name="fed")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    directory = tmp_path_factory.mktemp("market")
    today = dt.datetime.now(dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    firms = tuple(f for f in demo_data.FIRMS if f.name in FIRMS)
    setup(directory, firms, monday)
    borrower = directory / "members" / BORROWER / "node.toml"
    for path in demo_data.write_stock(borrower.parent, firms[0], monday):
        subprocess.run(
            [sys.executable, "-m", "scfed", "node", "import", "--config", str(borrower),
             str(path)], check=True, capture_output=True,
        )  # fmt: skip
    with borrower.open("a", encoding="utf-8") as handle:
        handle.write('\n[attest]\nlenders = ["kyushu-bank", "fukuoka-bank", "saga-bank"]\n')
    catalogue = directory / "catalogue.toml"
    with catalogue.open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[[crisis]]\nname = "kyushu-legacy"\ncommodities = ["{KYUSHU}"]\n'
            f'start = "{today - dt.timedelta(days=1)}"\nend = "{today + dt.timedelta(days=30)}"\n'
        )
    sign_catalogue(directory, catalogue)
    with processes(directory / "logs") as procs:
        address = f"127.0.0.1:{start_coordinator(directory, procs)}"
        fed = Federation(directory, procs, address, monday)
        for name in FIRMS:  # each node starts once, to hold the registry
            procs.start(name, "node", "serve", "--config", str(fed.node(name)),
                        "--coordinator", address)  # fmt: skip
        held = lambda: all("registry version" in procs.log_text(n) for n in FIRMS)  # noqa: E731
        wait_for("the nodes to hold the registry", held, procs, "coordinator")
        yield fed


@pytest.fixture(scope="module")
def pledged(fed: Federation) -> tuple[Path, Path]:
    """Two attestations of the borrower's stock of this week: 2000 to kyushu-bank, then 800
    to fukuoka-bank."""
    first, shown = issue(fed, "kyushu-bank", "2000", "first")
    assert "this pledge: 2000" in shown, shown
    second, shown = issue(fed, "fukuoka-bank", "800", "second")
    assert "pledged before: 2000; this pledge: 800" in shown, shown
    return first, second


def issue(fed: Federation, lender: str, amount: str, name: str) -> tuple[Path, str]:
    out = fed.directory / f"{name}.scfed"
    shown = fed.member(
        BORROWER, "attest", "issue", "--lender", lender, "--commodity", KYUSHU,
        "--week", fed.monday.isoformat(), "--amount", amount, "--out", str(out), check=False,
    )  # fmt: skip
    return out, shown


def test_lenders_verify_the_same_figure_and_every_pledge_before_theirs(
    fed: Federation, pledged: tuple[Path, Path]
) -> None:
    first, second = pledged
    verified = fed.verify(first, "kyushu-bank")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VERIFIED: fab-kumamoto attests to kyushu-bank" in verified.stdout
    assert "1800 finished goods + 1200 in progress = 3000" in verified.stdout
    assert "pledge 1 (yours): 2000" in verified.stdout
    verified = fed.verify(second, "fukuoka-bank")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "pledge 1: 2000 to kyushu-bank" in verified.stdout
    assert "pledge 2 (yours): 800" in verified.stdout
    assert "pledged in all: 2800 of 3000" in verified.stdout
    # Each lender's attestation is its own, and the node refuses what would pass the stock.
    assert "REFUSED: not-yours" in fed.verify(first, "fukuoka-bank").stdout
    _, shown = issue(fed, "saga-bank", "500", "over")
    assert "over-pledged: 2800 of 3000" in shown, shown
    _, shown = issue(fed, "osaka-bank", "1", "no-consent")
    assert "osaka-bank is not among the lenders this firm consents to" in shown, shown


def test_a_lender_refuses_a_forged_stale_or_unregistered_attestation(
    fed: Federation, pledged: tuple[Path, Path], tmp_path: Path
) -> None:
    good = pledged[0]
    data = bytearray(good.read_bytes())
    data[-5] ^= 1  # inside the member's signature
    forged = tmp_path / "forged.scfed"
    forged.write_bytes(bytes(data))
    assert "REFUSED: forged" in fed.verify(forged, "kyushu-bank").stdout
    time.sleep(1.1)
    stale = fed.verify(good, "kyushu-bank", "--max-age-days", "0.00001")
    assert stale.returncode == 1
    assert "REFUSED: stale: it was issued" in stale.stdout
    other = tmp_path / "other"
    (other).mkdir()
    key = pki.ed25519_public_text(Ed25519PrivateKey.generate().public_key())
    (other / "governance.pub").write_text(key + "\n", encoding="utf-8")
    public = fed.directory / "governance" / "public" / "federation.toml"
    (other / "federation.toml").write_bytes(public.read_bytes())
    outsider = fed.scfed("attest", "verify", str(good), "--federation", str(other), "--lender",
                         "kyushu-bank", check=False)  # fmt: skip
    assert "REFUSED: unregistered" in outsider.stdout, outsider.stdout


def _malicious(fed: Federation) -> tuple[_Issue, AttestStore, MemberClient]:
    """The borrower's node with its own checks skipped: what a firm could run against us."""
    config = replace(load_node_config(fed.node(BORROWER)), coordinator=fed.address)
    key = pki.load_ed25519_private_pem((fed.node(BORROWER).parent / "identity.key").read_bytes())
    store = AttestStore(config.database)
    client = MemberClient(config)
    registry, _ = _registry(config, read_governance_key(config.governance_key))
    return _Issue(config, key, store, client, registry.coordinator_key), store, client


def test_a_second_figure_and_an_over_pledge_are_refused(
    fed: Federation, pledged: tuple[Path, Path]
) -> None:
    run, store, client = _malicious(fed)
    config = load_node_config(fed.node(BORROWER))
    try:
        figure = store.figure(KYUSHU, fed.monday.isoformat())
        assert figure is not None
        assert figure.index is not None
        # A second, different figure for the same week: the coordinator logs one only.
        other = replace(figure.holdings, stock_finished="9000")
        commitment = figure_commitment(config.origin, config.member_id, other)
        body = attest.FigureCommitment(KYUSHU, fed.monday.isoformat(), commitment)
        second = run._seal(wire.FIGURE, attest.encode(body))
        with pytest.raises(RefusedCallError, match="one commitment per figure"):
            client.submit(second)
        # Shown to a lender anyway, as the figure of the logged commitment: equivocation.
        pledges = store.pledges(KYUSHU, fed.monday.isoformat())
        _, registry = _registry(config, read_governance_key(config.governance_key))
        request = Request("saga-bank", KYUSHU, fed.monday, 0)  # type: ignore[arg-type]
        lied = replace(figure, holdings=other)
        signed = run.attestation(lied, pledges, registry, request)
        path = fed.directory / "equivocating.scfed"
        path.write_bytes(signed.to_bytes())
        shown = fed.verify(path, "saga-bank").stdout
        assert "REFUSED: equivocating: the holdings shown do not open the commitment" in shown
        # A pledge past the holdings, logged at the head of the chain as the rules allow:
        # the next lender sees every pledge and refuses.
        head = pledges[-1]
        assert head.index is not None
        nonce = b"\x07" * 32
        commitment = pledge_commitment(
            config.origin, config.member_id, run._figure_commitment(figure),
            lender="saga-bank", amount="5000", nonce=nonce,
        )  # fmt: skip
        pledge = attest.Pledge(KYUSHU, fed.monday.isoformat(), figure.index,
                               head.sequence + 1, head.index, commitment)  # fmt: skip
        signed_pledge = run._seal(wire.PLEDGE, attest.encode(pledge))
        receipt = client.submit(signed_pledge)
        # A forked chain (another pledge after the same head) is refused by the coordinator.
        fork = replace(pledge, commitment=b"\x01" * 32)
        with pytest.raises(RefusedCallError, match="head of the figure's pledge chain"):
            client.submit(run._seal(wire.PLEDGE, attest.encode(fork)))
        over = [*pledges, _Pledge(head.sequence + 1, "saga-bank", "5000", nonce,
                                  signed_pledge, receipt.index)]  # fmt: skip
        signed = run.attestation(figure, over, registry, request)
        path = fed.directory / "over.scfed"
        path.write_bytes(signed.to_bytes())
        shown = fed.verify(path, "saga-bank").stdout
        assert "REFUSED: over-pledged" in shown, shown
        # Shown without a pledge on the figure, it is refused as incomplete.
        hidden = [p for p in over if p.lender != "kyushu-bank"]
        path.write_bytes(run.attestation(figure, hidden, registry, request).to_bytes())
        assert (
            "REFUSED: equivocating: the pledges shown skip one"
            in fed.verify(path, "saga-bank").stdout
        )
    finally:
        client.__exit__()
        store.close()


def _inbox(fed: Federation, name: str) -> str:
    return fed.member(name, "crisis", "inbox")


def test_a_match_is_revealed_only_after_both_accept_and_survives_a_restart(
    fed: Federation, pledged: tuple[Path, Path]
) -> None:
    week = (fed.monday + dt.timedelta(weeks=2)).isoformat()
    post = ("crisis", "post", "--crisis", "kyushu-legacy", "--commodity", KYUSHU, "--week", week)
    shown = fed.member("auto-nagoya", *post, "--need", "--quantity", "1200")
    assert "posted a need" in shown, shown
    assert "band 500-1999" in shown, shown
    # Outside the declared commodities, or in no declared crisis: refused by the coordinator.
    wrong = ("crisis", "post", "--crisis", "kyushu-legacy", "--commodity", demo_data.HSINCHU_LOGIC,
             "--week", week, "--need", "--quantity", "10")  # fmt: skip
    assert "is not declared for" in fed.member("auto-nagoya", *wrong, check=False)
    fed.member("fab-oita", *post, "--offer", "--quantity", "1500")
    inbox = _inbox(fed, "auto-nagoya")
    assert "the other side posted an offer" in inbox, inbox
    assert "fab-oita" not in inbox, inbox
    match = next(line.split()[1].rstrip(":") for line in inbox.splitlines() if "match " in line)
    # A competitor that is not matched learns nothing; it cannot answer the match either.
    assert _inbox(fed, "osat-kaohsiung").strip() == "no posts yet"
    foreign = fed.member("osat-kaohsiung", "crisis", "accept", match, check=False)
    assert f"no proposal {match}" in foreign, foreign
    assert "you accepted" in fed.member("auto-nagoya", "crisis", "accept", match)
    assert "fab-oita" not in _inbox(fed, "auto-nagoya")
    assert "they accepted" in _inbox(fed, "fab-oita")
    fed.restart_coordinator()
    assert "they accepted" in _inbox(fed, "fab-oita")  # the answers were read back from the log
    shown = fed.member("fab-oita", "crisis", "accept", match)
    assert "revealed: auto-nagoya" in shown, shown
    assert "revealed: fab-oita" in _inbox(fed, "auto-nagoya")
    again = fed.member("fab-oita", "crisis", "decline", match, check=False)
    assert "revealed already" in again, again
    operator = fed.directory / "operators" / "operator" / "operator.toml"
    status = fed.scfed("crisis", "status", "--config", str(operator), "--coordinator",
                       fed.address).stdout  # fmt: skip
    assert "1 revealed" in status, status
    assert "auto-nagoya" not in status, status
    # The pledge chains were read back too: a pledge sent again gets its own leaf back.
    config = replace(load_node_config(fed.node(BORROWER)), coordinator=fed.address)
    store = AttestStore(config.database)
    try:
        first = store.pledges(KYUSHU, fed.monday.isoformat())[0]
        with MemberClient(config) as client:
            assert client.submit(first.envelope).index == first.index
    finally:
        store.close()
    assert pledged


def test_the_audit_checks_the_pledges_and_the_reveal(
    fed: Federation, pledged: tuple[Path, Path]
) -> None:
    fed.member("auto-nagoya", "crisis", "inbox")  # the crisis test's posts, whatever the order
    operator = load_operator_config(fed.directory / "operators" / "operator" / "operator.toml")
    with secure_channel(operator.tls, fed.address, operator.server_name) as channel:
        entries, checkpoint = fetch_log(rpc.LogServiceStub(channel))
    config = load_node_config(fed.node(BORROWER))
    report = audit(
        entries, checkpoint=checkpoint, origin=config.origin,
        governance_key=read_governance_key(config.governance_key),
    )  # fmt: skip
    found = {f.check: f for f in report.findings}
    assert found["attest.pledges"].passed, found["attest.pledges"]
    assert "2 pledges" in found["attest.pledges"].detail or "3 pledges" in (
        found["attest.pledges"].detail
    )
    assert found["crisis.reveals"].passed, found["crisis.reveals"]
    assert report.ok, [f for f in report.findings if not f.passed]
    logged = [Envelope.from_bytes(e).type for e in entries]
    assert wire.POST not in logged
    assert wire.ATTESTATION not in logged
    assert pledged


# ---- a hostile coordinator: the operator's keys, another log, scripted answers --------------


@dataclass
class _Scripted(_ReplayingNodes):
    """Logs what members submit in ``fork`` and answers inboxes with ``items``."""

    fork: ProtocolLog | None = None
    items: Sequence[spb.CrisisItem] = ()

    def _caller(self, context: Context) -> str:
        return self._member(context)

    @served(_caller)
    async def Submit(  # noqa: N802 - gRPC method name
        self, request: pb.Envelope, context: Context, member_id: str
    ) -> spb.Ack:
        assert self.fork is not None
        committed = self.fork.commit([Envelope.from_proto(request).to_bytes()])
        receipt = Receipt(committed.start, committed.checkpoint, committed.proofs[0])
        return spb.Ack(receipt=receipt_to_proto(receipt))

    @served(_caller)
    async def CrisisInbox(  # noqa: N802 - gRPC method name
        self, request: spb.CrisisInboxRequest, context: Context, member_id: str
    ) -> spb.CrisisInboxReply:
        return spb.CrisisInboxReply(items=self.items)


def _hostile(fed: Federation, log: ProtocolLog, items: Sequence[spb.CrisisItem] = ()) -> tuple[
    HostileCoordinator, str
]:  # fmt: skip
    config = load_coordinator_config(fed.directory / "coordinator" / "coordinator.toml")
    registry, _ = held_registry(fed.node(BORROWER).parent / "node.sqlite", config.origin,
                                read_governance_key(config.governance_key))  # fmt: skip
    address = f"127.0.0.1:{free_port()}"
    nodes = _Scripted(registry, (), fork=log, items=items)
    return HostileCoordinator(config, address, nodes, log), address


def test_a_coordinator_showing_the_lender_another_log_is_refused(
    fed: Federation, pledged: tuple[Path, Path], tmp_path: Path
) -> None:
    # A round first, so that the borrower's node holds a checkpoint it verified.
    operator = load_operator_config(fed.directory / "operators" / "operator" / "operator.toml")
    with AdminClient(operator, fed.address) as admin:
        wait_for("the nodes", lambda: len(admin.status().connected) == len(FIRMS), fed.procs,
                 "coordinator")  # fmt: skip
        request = spb.StartRoundRequest(
            query=demo_data.ENTRY, entry=demo_data.ENTRY, week=fed.monday.isoformat(),
            candidates=list(FIRMS), phase_timeout_ms=20_000,
        )  # fmt: skip
        admin.start_round(request, timeout=120)
    database = fed.node(BORROWER).parent / "node.sqlite"
    witnessed = lambda: verified_checkpoint(database) is not None  # noqa: E731
    wait_for("the borrower's view of the log", witnessed, fed.procs, BORROWER)
    # Another log under the coordinator's own key, longer than the one the node witnessed.
    config = load_coordinator_config(fed.directory / "coordinator" / "coordinator.toml")
    fork = ProtocolLog(tmp_path / "fork.sqlite", origin=config.origin, key=signing_key(config))
    fork.commit([f"another history, leaf {i}".encode() for i in range(500)])
    hostile, address = _hostile(fed, fork)
    with hostile:
        done = fed.scfed(
            "attest", "issue", "--config", str(fed.node(BORROWER)), "--coordinator", address,
            "--lender", "saga-bank", "--commodity", KYUSHU, "--week", fed.monday.isoformat(),
            "--amount", "1", "--out", str(tmp_path / "forked.scfed"), check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "scfed: error: the protocol log is inconsistent" in done.stderr, done.stderr
    assert not (tmp_path / "forked.scfed").exists()
    # The pledge the hostile coordinator took is not kept as logged: it is sent again later.
    store = AttestStore(database)
    try:
        assert store.pledges(KYUSHU, fed.monday.isoformat())[-1].index is None
    finally:
        store.close()


def test_a_reveal_without_both_acceptances_is_refused(fed: Federation, tmp_path: Path) -> None:
    # The honest inbox of a revealed match, as a hostile coordinator might show it: the
    # acceptances left out (every message shown is still in the log, a copy of the honest one).
    config = replace(load_node_config(fed.node("auto-nagoya")), coordinator=fed.address)
    with MemberClient(config) as client:
        items = [i for i in client.inbox() if i.HasField("reveal")]
    assert items, "the crisis test's match is revealed"
    stripped = spb.CrisisItem()
    stripped.CopyFrom(items[0])
    del stripped.answers[:]
    del stripped.answer_indices[:]
    coordinator = load_coordinator_config(fed.directory / "coordinator" / "coordinator.toml")
    log = copy_log(coordinator, tmp_path / "copy.sqlite", signing_key(coordinator))
    hostile, address = _hostile(fed, log, [stripped])
    with hostile:
        done = fed.scfed("crisis", "inbox", "--config", str(fed.node("auto-nagoya")),
                         "--coordinator", address, check=False)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the reveal does not follow both sides' acceptances" in done.stderr, done.stderr
