"""Closing, at start-up, the rounds a stopped coordinator left without an outcome. Does I/O.

A round the store shows started but never finished was cut short by a crash or a kill. Its
protocol log is replayed (``scfed.secagg.recovery``): a round whose log holds t unmask
responses publishes its result and charge, since anyone holding the log can rebuild its noisy
sum; any other round ends in a signed abort. What the log lacks is appended in one
transaction, then the outcome and the charge are stored, so the federation ledger is charged.
A crash in between repeats nothing: the next start finds the logged outcome and reuses it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.log import ProtocolLog
from coordinator.store import Store
from scfed.dp.ledger import Charge, parse_rho
from scfed.errors import LocalProtocolError
from scfed.policy import release_window
from scfed.secagg.recovery import LogReplay, Recovered
from scfed.wire.codec import decode_charge
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce
from scfed.wire.policy import Policy

log = logging.getLogger("scfed.coordinator")

#: Leaf data read from the log per query while replaying it.
_BATCH_BYTES = 64 << 20


@dataclass(frozen=True)
class Closed:
    """An interrupted round as this start closed it, and what its candidates are sent."""

    announce: Announce
    outcome: Envelope
    #: The outcome's leaf in the log; None when the round never reached the log.
    index: int | None


def ledger_row(signed: Envelope, announce: Announce, policy: Policy | None) -> Charge:
    """The federation ledger's row for a signed charge of a round under ``policy``."""
    charge = decode_charge(signed.body)
    return Charge(
        announce.round_id,
        announce.query,
        charge.period,
        charge.survivors,
        parse_rho(charge.rho),
        release_window(policy, announce),
    )


def recover(
    store: Store,
    protocol_log: ProtocolLog,
    *,
    origin: str,
    governance_key: bytes,
    key: Ed25519PrivateKey,
    period: str,
) -> list[Closed]:
    """Finish every round the store holds without an outcome; a charge is dated ``period``."""
    unfinished = store.unfinished()
    if not unfinished:
        return []
    replay = LogReplay(unfinished, origin=origin, governance_key=governance_key, key=key)
    for index, data in _leaves(protocol_log):
        replay.read(index, data)
    return [_close(store, protocol_log, replay.finish(r, period=period)) for r in unfinished]


def _close(store: Store, protocol_log: ProtocolLog, recovered: Recovered) -> Closed:
    announce = recovered.announce
    appended = protocol_log.append_many(e.to_bytes() for e in recovered.unlogged)
    index = recovered.outcome_index
    if index is None and recovered.announced:
        index = appended[0]  # the outcome comes first among what was missing
    charge = recovered.charge
    row = None if charge is None else ledger_row(charge, announce, recovered.policy)
    store.round_finished(announce.round_id, time.time(), recovered.outcome, row)
    log.warning(
        "round %s was interrupted by a stop; closed with its %s%s",
        announce.round_id.hex(),
        recovered.outcome.type,
        "" if row is None else f" and a charge of rho {row.rho} in {row.period}",
    )
    return Closed(announce, recovered.outcome, index)


def _leaves(protocol_log: ProtocolLog) -> Iterator[tuple[int, bytes]]:
    """Every leaf of the log in order, a bounded batch of data in memory at a time."""
    start, size = 0, protocol_log.size
    while start < size:
        batch = protocol_log.listing(start, size, inline_max=_BATCH_BYTES, max_bytes=_BATCH_BYTES)
        for item in batch:
            if item.data is None:
                raise LocalProtocolError(f"leaf {item.index} of the log is over the batch size")
            yield item.index, item.data
        start = batch[-1].index + 1
