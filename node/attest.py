"""A firm's attestations of its holdings to its lenders: figure commitments and pledges kept
beside the node's data, logged through the coordinator, and the attestation file. Does I/O.

``issue`` makes one attestation: with the lender in the firm's ``[attest] lenders`` (its
consent), it reads the firm's stock of finished goods and work in progress for the commodity
and week from the node's data, commits to them once (a figure committed before stays the
figure, whatever was imported since: every lender is shown the same), logs a pledge of the
amount at the head of the figure's chain, and writes the member-signed attestation: the
holdings, every pledge on the figure opened, the federation's published figures for the same
commodity and week, and the log checkpoint all of it is proven against. Before writing, it
checks the attestation as the lender will (``scfed.attest.verify_attestation``). The openings
(nonces, lenders, amounts) stay in the node's database, in two tables of their own.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import read_governance_key
from edge.files import read_private_key_file
from edge.storage import fetch, fetch_read_only, open_database, transaction
from node.client import MemberClient, RefusedCallError
from node.governance import held_registry
from node.records import RecordStore
from node.store import verified_checkpoint
from scfed import pki, wire
from scfed.attest import (
    figure_commitment,
    market_of,
    pledge_commitment,
    pledgeable,
    quantity,
    verify_attestation,
)
from scfed.config import NodeConfig
from scfed.errors import RefusedError, StorageError
from scfed.wire import attest
from scfed.wire import envelope as env
from scfed.wire.attest import Attestation, Holdings, Logged, PledgeOpening
from scfed.wire.codec import decode_release
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.witness import LogView

SCHEMA = """
CREATE TABLE IF NOT EXISTS attest_figures (
    commodity TEXT NOT NULL,
    week TEXT NOT NULL,
    unit TEXT NOT NULL,
    stock_finished TEXT NOT NULL,
    stock_wip TEXT NOT NULL,
    nonce BLOB NOT NULL,
    envelope BLOB NOT NULL,
    log_index INTEGER,
    PRIMARY KEY (commodity, week)
);
CREATE TABLE IF NOT EXISTS attest_pledges (
    commodity TEXT NOT NULL,
    week TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    lender TEXT NOT NULL,
    amount TEXT NOT NULL,
    nonce BLOB NOT NULL,
    envelope BLOB NOT NULL,
    log_index INTEGER,
    issued_at REAL NOT NULL,
    PRIMARY KEY (commodity, week, sequence)
);
"""
#: What ``issue`` checks its own attestation against: no lender accepts an older one.
SELF_CHECK_AGE = 3600


@dataclass(frozen=True)
class Issued:
    """What ``issue`` made: the attestation's bytes and what it shows."""

    data: bytes
    holdings: Holdings
    pledged_before: Decimal
    amount: Decimal
    pledgeable: Decimal
    market: int
    drift: str  # "" or why the node's data no longer says what was committed


@dataclass(frozen=True)
class _Figure:
    holdings: Holdings
    envelope: Envelope
    index: int | None


@dataclass(frozen=True)
class _Pledge:
    sequence: int
    lender: str
    amount: str
    nonce: bytes
    envelope: Envelope
    index: int | None


class AttestStore:
    """The figures this member committed to and its pledges, with their openings."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, SCHEMA)

    def close(self) -> None:
        self._db.close()

    def figure(self, commodity: str, week: str) -> _Figure | None:
        rows = fetch(
            self._db, "SELECT unit, stock_finished, stock_wip, nonce, envelope, log_index "
            "FROM attest_figures WHERE commodity = ? AND week = ?", (commodity, week),
        )  # fmt: skip
        if not rows:
            return None
        unit, finished, wip, nonce, signed, index = rows[0]
        holdings = Holdings(commodity, week, str(unit), str(finished), str(wip), _bytes(nonce))
        return _Figure(holdings, Envelope.from_bytes(_bytes(signed)), _index(index))

    def keep_figure(self, holdings: Holdings, signed: Envelope) -> None:
        h = holdings
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO attest_figures VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (h.commodity, h.week, h.unit, h.stock_finished, h.stock_wip, h.nonce,
                 signed.to_bytes()),
            )  # fmt: skip

    def pledges(self, commodity: str, week: str) -> list[_Pledge]:
        rows = fetch(
            self._db, "SELECT sequence, lender, amount, nonce, envelope, log_index "
            "FROM attest_pledges WHERE commodity = ? AND week = ? ORDER BY sequence",
            (commodity, week),
        )  # fmt: skip
        return [
            _Pledge(int(str(s)), str(lender), str(amount), _bytes(nonce),
                    Envelope.from_bytes(_bytes(e)), _index(i))
            for s, lender, amount, nonce, e, i in rows
        ]  # fmt: skip

    def keep_pledge(self, commodity: str, week: str, pledge: _Pledge) -> None:
        with transaction(self._db) as db:
            db.execute(
                "INSERT INTO attest_pledges VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (commodity, week, pledge.sequence, pledge.lender, pledge.amount, pledge.nonce,
                 pledge.envelope.to_bytes(), time.time()),
            )  # fmt: skip

    def logged(self, table: str, commodity: str, week: str, index: int, sequence: int = 0) -> None:
        """Where the coordinator logged a figure (``sequence`` 0) or a pledge."""
        where = "commodity = ? AND week = ?" + (" AND sequence = ?" if sequence else "")
        params: tuple[object, ...] = (index, commodity, week, *((sequence,) if sequence else ()))
        with transaction(self._db) as db:
            db.execute(f"UPDATE {table} SET log_index = ? WHERE {where}", params)  # noqa: S608

    def forget_pledge(self, commodity: str, week: str, sequence: int) -> None:
        """A pledge the coordinator refused is no pledge."""
        with transaction(self._db) as db:
            db.execute(
                "DELETE FROM attest_pledges WHERE commodity = ? AND week = ? AND sequence = ? "
                "AND log_index IS NULL", (commodity, week, sequence),
            )  # fmt: skip


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StorageError("the node database holds a value of the wrong type")
    return value


def _index(value: object) -> int | None:
    return None if value is None else int(str(value))


@dataclass(frozen=True)
class Request:
    lender: str
    commodity: str
    week: date
    amount: Decimal


def issue(config: NodeConfig, request: Request, *, address: str | None = None) -> Issued:
    """Commit (once), pledge and attest ``request.amount`` of the holdings to the lender."""
    if request.lender not in config.lenders:
        raise RefusedError(
            f"{request.lender} is not among the lenders this firm consents to attest to: add "
            f"it to [attest] lenders in {config.path}"
        )
    if not request.amount > 0:
        raise RefusedError("a pledge is of a positive amount")
    key = pki.load_ed25519_private_pem(read_private_key_file(config.identity_key))
    governance = read_governance_key(config.governance_key)
    registry, registry_envelope = _registry(config, governance)
    store = AttestStore(config.database)
    try:
        with MemberClient(config, address) as client:
            run = _Issue(config, key, store, client, registry.coordinator_key)
            figure, drift = run.figure(request.commodity, request.week.isoformat())
            pledges = run.pledge(figure, request)
            signed = run.attestation(figure, pledges, registry_envelope, request)
    finally:
        store.close()
    now = int(time.time())
    shown = verify_attestation(
        signed, origin=config.origin, governance_key=governance, lender=request.lender,
        now=now, max_age=SELF_CHECK_AGE,
    )  # fmt: skip
    earlier = sum((a for _, a in shown.earlier), Decimal(0))
    return Issued(
        signed.to_bytes(), figure.holdings, earlier, shown.amount, shown.pledgeable,
        len(shown.market), drift,
    )  # fmt: skip


def _registry(config: NodeConfig, governance: bytes) -> tuple[Registry, Envelope]:
    """The registry the attestation carries: the newest the node accepted, naming it."""
    registry, signed = held_registry(config.database, config.origin, governance)
    if registry.member(config.member_id) is None:
        raise RefusedError(f"{config.member_id} is not in registry version {registry.version}")
    return registry, signed


class _Issue:
    """One attestation's work. Its view of the log starts at the latest checkpoint the node
    verified, and every receipt and the attestation's checkpoint must extend it in turn."""

    def __init__(
        self, config: NodeConfig, key: Ed25519PrivateKey, store: AttestStore,
        client: MemberClient, coordinator_key: bytes,
    ) -> None:  # fmt: skip
        self._config, self._key, self._store, self._client = config, key, store, client
        latest = verified_checkpoint(config.database)
        self._view = LogView(config.origin, coordinator_key, latest)

    def _seal(self, kind: str, body: bytes) -> Envelope:
        return env.seal(self._key, kind, self._config.member_id, self._config.origin, body)

    def figure(self, commodity: str, week: str) -> tuple[_Figure, str]:
        """The committed figure, committing now if this is its first attestation; and why
        the node's data no longer says the same, if it does not."""
        held = self._store.figure(commodity, week)
        current = self._holdings(commodity, week, held)
        if held is None:
            commitment = figure_commitment(self._config.origin, self._config.member_id, current)
            signed = self._seal(
                wire.FIGURE, attest.encode(attest.FigureCommitment(commodity, week, commitment))
            )
            self._store.keep_figure(current, signed)
            held = _Figure(current, signed, None)
        if held.index is None:  # kept, not yet known to be logged: submitting again is safe
            index = self._submit(held.envelope)
            self._store.logged("attest_figures", commodity, week, index)
            held = _Figure(held.holdings, held.envelope, index)
        drift = ""
        if (current.stock_finished, current.stock_wip) != (
            held.holdings.stock_finished, held.holdings.stock_wip,
        ):  # fmt: skip
            drift = (
                f"the figure committed for the week of {week} stays {_holding(held.holdings)}; "
                f"the node's data now says {_holding(current)}"
            )
        return held, drift

    def _holdings(self, commodity: str, week: str, held: _Figure | None) -> Holdings:
        records = RecordStore(self._config.database)
        try:
            day = date.fromisoformat(week)
            finished = records.weekly("stock_finished", [day]).get((commodity, day))
            wip = records.weekly("stock_wip", [day]).get((commodity, day))
            units = records.unit_classes("stock_finished", commodity) | records.unit_classes(
                "stock_wip", commodity
            )
        finally:
            records.close()
        if finished is None and wip is None:
            if held is not None:
                return held.holdings
            raise RefusedError(
                f"the node holds no finished goods or work in progress of {commodity} for the "
                f"week of {week}: import them first (scfed node import)"
            )
        if len(units) != 1:
            raise RefusedError(f"the holdings of {commodity} are in {len(units)} units, not one")
        nonce = held.holdings.nonce if held is not None else secrets.token_bytes(attest.NONCE_BYTES)
        zero = Decimal(0)
        return Holdings(
            commodity, week, units.pop(), _text(finished or zero), _text(wip or zero), nonce
        )

    def pledge(self, figure: _Figure, request: Request) -> list[_Pledge]:
        """Every pledge on the figure, the new one last, each logged."""
        commodity, week = figure.holdings.commodity, figure.holdings.week
        pledges = [self._logged(commodity, week, p) for p in self._store.pledges(commodity, week)]
        pledged = sum((quantity(p.amount, "a pledged amount") for p in pledges), Decimal(0))
        total = pledgeable(figure.holdings)
        if pledged + request.amount > total:
            raise RefusedError(
                f"over-pledged: {pledged} of {total} {figure.holdings.unit} is pledged already; "
                f"{request.amount} more would pass the holdings"
            )
        assert figure.index is not None  # logged by ``figure``
        previous = pledges[-1].index if pledges else figure.index
        assert previous is not None  # every earlier pledge is logged by ``_logged``
        nonce, amount = secrets.token_bytes(attest.NONCE_BYTES), _text(request.amount)
        commitment = pledge_commitment(
            self._config.origin, self._config.member_id, self._figure_commitment(figure),
            lender=request.lender, amount=amount, nonce=nonce,
        )  # fmt: skip
        sequence = len(pledges) + 1
        body = attest.Pledge(commodity, week, figure.index, sequence, previous, commitment)
        new = _Pledge(sequence, request.lender, amount, nonce,
                      self._seal(wire.PLEDGE, attest.encode(body)), None)  # fmt: skip
        self._store.keep_pledge(commodity, week, new)
        try:
            index = self._submit(new.envelope)
        except RefusedCallError:
            self._store.forget_pledge(commodity, week, sequence)
            raise
        # Any other failure keeps it: it may be logged, and is submitted again next time.
        self._store.logged("attest_pledges", commodity, week, index, sequence)
        return [*pledges, _Pledge(sequence, new.lender, amount, nonce, new.envelope, index)]

    def _logged(self, commodity: str, week: str, pledge: _Pledge) -> _Pledge:
        """A pledge kept but not known to be logged is submitted again (the same bytes)."""
        if pledge.index is not None:
            return pledge
        index = self._submit(pledge.envelope)
        self._store.logged("attest_pledges", commodity, week, index, pledge.sequence)
        return _Pledge(pledge.sequence, pledge.lender, pledge.amount, pledge.nonce,
                       pledge.envelope, index)  # fmt: skip

    def _submit(self, signed: Envelope) -> int:
        """Where the coordinator logged ``signed``, once its receipt checks out against the
        log this node witnesses (LogInconsistencyError, VerificationError otherwise): a
        message is kept as logged only when it is, in the one log."""
        receipt = self._client.submit(signed)
        self._view.check_receipt(
            signed.to_bytes(), index=receipt.index, signed=receipt.checkpoint,
            inclusion=receipt.inclusion, proofs=self._client.consistency,
        )  # fmt: skip
        return receipt.index

    def _figure_commitment(self, figure: _Figure) -> bytes:
        found = wire.MESSAGE_TYPES[wire.FIGURE].decode(figure.envelope.body)
        assert isinstance(found, attest.FigureCommitment)  # the table's decoder
        return found.commitment

    def attestation(
        self, figure: _Figure, pledges: list[_Pledge], registry: Envelope, request: Request
    ) -> Envelope:
        """The signed attestation, every message in it proven against one fresh checkpoint."""
        checkpoint = self._client.checkpoint()
        size = self._size(checkpoint)

        def logged(index: int | None, signed: Envelope) -> Logged:
            assert index is not None  # every message here was logged above
            return Logged(index, signed, self._client.inclusion(index, size))

        openings = tuple(
            PledgeOpening(logged(p.index, p.envelope), p.lender, p.amount, p.nonce) for p in pledges
        )
        market = tuple(
            logged(index, signed) for index, signed in self._market(figure.holdings) if index < size
        )
        days = self._days_of_supply(figure.holdings)
        body = Attestation(
            request.lender, int(time.time()), registry, figure.holdings,
            logged(figure.index, figure.envelope), openings, market, checkpoint, days,
        )  # fmt: skip
        return self._seal(wire.ATTESTATION, attest.encode(body))

    def _size(self, checkpoint: bytes) -> int:
        """The size of the coordinator's checkpoint, once it extends the latest checkpoint
        this node verified (a coordinator may not show the firm's lenders another log than
        the one the node witnesses): LogInconsistencyError otherwise."""
        return self._view.advance(checkpoint, self._client.consistency).checkpoint.size

    def _market(self, holdings: Holdings) -> list[tuple[int, Envelope]]:
        """The newest release of each entry the node holds for the commodity and week."""
        sql = "SELECT log_index, envelope FROM releases ORDER BY log_index"
        rows = fetch_read_only(self._config.database, sql)
        found = []
        for index, data in rows:
            signed = Envelope.from_bytes(_bytes(data))
            found.append((int(str(index)), signed, decode_release(signed.body)))
        return market_of(found, holdings.commodity, holdings.week)

    def _days_of_supply(self, holdings: Holdings) -> str:
        records = RecordStore(self._config.database)
        try:
            day = date.fromisoformat(holdings.week)
            days = records.weekly("days_of_supply", [day]).get((holdings.commodity, day))
        finally:
            records.close()
        return "" if days is None else _text(days)


def _holding(h: Holdings) -> str:
    return f"{h.stock_finished} finished and {h.stock_wip} in progress ({h.unit})"


def _text(value: Decimal) -> str:
    """A decimal as plain text, without exponent or trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"
