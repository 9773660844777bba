"""A lender's check of an attestation (``scfed.attest.verify_attestation``), on attestations
built in memory over a real Merkle tree and real signatures: an honest one verifies, and each
way a firm or a coordinator could mislead the lender is refused with its reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import tlog, wire
from scfed.attest import (
    AttestationError,
    figure_commitment,
    pledge_commitment,
    verify_attestation,
)
from scfed.secagg.driver import Federation, MemoryLog, federation
from scfed.wire import attest
from scfed.wire import envelope as env
from scfed.wire.attest import Attestation, Holdings, Logged, PledgeOpening
from scfed.wire.envelope import Envelope
from tests.unit._support import Rng

KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"
WEEK = "2026-12-07"
NOW = 1_796_000_000
FIRM = "node-000"


@dataclass
class Built:
    fed: Federation
    log: MemoryLog
    holdings: Holdings
    figure: Logged
    pledges: list[PledgeOpening]

    @property
    def origin(self) -> str:
        return self.fed.registry.origin

    def seal(self, kind: str, body: bytes, signer: str = FIRM) -> Envelope:
        return env.seal(self.fed.member_keys[signer], kind, signer, self.origin, body)

    def attestation(self, lender: str, **changes: object) -> Envelope:
        size, checkpoint = self.log.checkpoint()
        tree = tlog.MemoryTree(tlog.leaf_hash(leaf) for leaf in self.log.leaves)

        def proven(logged: Logged) -> Logged:
            return replace(logged, inclusion=tuple(tree.inclusion_proof(logged.index, size)))

        pledges = tuple(replace(p, pledge=proven(p.pledge)) for p in self.pledges)
        body = Attestation(
            lender, NOW, self.fed.signed_registry, self.holdings, proven(self.figure), pledges,
            (), checkpoint,
        )  # fmt: skip
        body = replace(body, **changes)  # type: ignore[arg-type]
        return self.seal(wire.ATTESTATION, attest.encode(body))

    def pledge(self, lender: str, amount: str) -> None:
        previous = self.pledges[-1].pledge.index if self.pledges else self.figure.index
        nonce = bytes([len(self.pledges) + 1]) * 32
        commitment = pledge_commitment(
            self.origin, FIRM, figure_commitment(self.origin, FIRM, self.holdings),
            lender=lender, amount=amount, nonce=nonce,
        )  # fmt: skip
        body = attest.Pledge(KYUSHU, WEEK, self.figure.index, len(self.pledges) + 1, previous,
                             commitment)  # fmt: skip
        self.pledges.append(PledgeOpening(self.logged(self.seal(wire.PLEDGE, attest.encode(body))),
                                          lender, amount, nonce))  # fmt: skip

    def logged(self, signed: Envelope) -> Logged:
        self.log.append(signed)
        return Logged(len(self.log.leaves) - 1, signed, ())


def build() -> Built:
    fed = federation(2, Rng(b"attest"))
    log = MemoryLog(fed)
    holdings = Holdings(KYUSHU, WEEK, "unit:piece", "1800", "1200", b"\x05" * 32)
    commitment = figure_commitment(fed.registry.origin, FIRM, holdings)
    built = Built(fed, log, holdings, Logged(0, fed.signed_registry, ()), [])
    body = attest.FigureCommitment(KYUSHU, WEEK, commitment)
    built.figure = built.logged(built.seal(wire.FIGURE, attest.encode(body)))
    built.pledge("bank-a", "2000")
    built.pledge("bank-b", "800")
    return built


def check(built: Built, signed: Envelope, lender: str = "bank-b", now: int = NOW) -> Decimal:
    governance = built.fed.governance_key.public_key().public_bytes_raw()
    shown = verify_attestation(
        signed, origin=built.origin, governance_key=governance, lender=lender, now=now,
        max_age=86_400,
    )  # fmt: skip
    return shown.pledged


def refused(reason: str, built: Built, signed: Envelope, **kw: object) -> None:
    with pytest.raises(AttestationError) as caught:
        check(built, signed, **kw)  # type: ignore[arg-type]
    assert caught.value.reason == reason, str(caught.value)


def test_an_honest_attestation_shows_the_holdings_and_every_pledge() -> None:
    built = build()
    assert check(built, built.attestation("bank-b")) == Decimal(2800)


def test_each_way_to_mislead_a_lender_is_refused_with_its_reason() -> None:
    built = build()
    good = built.attestation("bank-b")
    refused("not-yours", built, good, lender="bank-a")
    refused("stale", built, good, now=NOW + 2 * 86_400)
    refused("stale", built, good, now=NOW - 3_600)  # dated in the future
    other = federation(2, Rng(b"elsewhere"))
    forged = env.seal(other.member_keys[FIRM], wire.ATTESTATION, FIRM, built.origin, good.body)
    refused("forged", built, forged)
    refused("equivocating", built, built.attestation(
        "bank-b", holdings=replace(built.holdings, stock_finished="9000")))  # fmt: skip
    hidden = replace(built, pledges=built.pledges[1:])
    refused("equivocating", built, hidden.attestation("bank-b"))
    lied = [built.pledges[0], replace(built.pledges[1], amount="80")]
    refused("equivocating", built, replace(built, pledges=lied).attestation("bank-b"))
    # A proof that does not lead to the checkpoint's root: not in the log.
    size, checkpoint = built.log.checkpoint()
    unproven: Callable[[], Envelope] = lambda: built.attestation(  # noqa: E731
        "bank-b", figure=replace(built.figure, inclusion=(b"\x00" * 32,))
    )
    refused("not-logged", built, unproven())
    assert size == len(built.log.leaves)
    # A checkpoint signed by another key than the registry's coordinator key.
    refused("forged", built, built.attestation("bank-b", checkpoint=checkpoint[:-3] + b"AA\n"))


def test_an_over_pledge_is_refused() -> None:
    built = build()
    built.pledge("bank-c", "500")  # 2000 + 800 + 500 of 3000
    refused("over-pledged", built, built.attestation("bank-c"), lender="bank-c")


def test_a_registry_that_lacks_the_member_is_refused() -> None:
    built = build()
    registry = replace(built.fed.registry, members=built.fed.registry.members[1:])
    from scfed.registry import seal_registry

    signed = seal_registry(registry, built.fed.governance_key)
    refused("unregistered", built, built.attestation("bank-b", registry=signed))
    stranger = seal_registry(built.fed.registry, Ed25519PrivateKey.generate())
    refused("unregistered", built, built.attestation("bank-b", registry=stranger))
