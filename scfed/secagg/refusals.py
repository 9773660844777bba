"""Why a node refused a round, told to the operator: codes, checks and summaries. Pure.

A node that refuses or abandons a round signs a ``Refusal`` (type "round.refusal") with a
short code and the words of the rule it applied, and submits it; the coordinator checks it,
logs it, and ends at once a round whose quorum the refusals have made impossible. The
detail never carries a figure of the firm: a refusal because the firm's own data could not
be read says only that (``refusal_code``, ``refusal_detail``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from scfed import wire
from scfed.errors import (
    ImportRowError,
    LocalProtocolError,
    PrivacyBudgetError,
    RemoteProtocolError,
    ScfedError,
    VerificationError,
)
from scfed.secagg._table import Phase
from scfed.secagg.coordinator import CoordinatorRound
from scfed.wire import envelope as env
from scfed.wire.codec import decode_refusal
from scfed.wire.envelope import Envelope
from scfed.wire.messages import MAX_REFUSAL_DETAIL, REFUSAL_CODES, Announce, Refusal, Registry

#: Words of a refusal's reason and the code they mean, the first match winning.
_WORDS = (
    (("noise floor",), "noise-floor"),
    (("opted into", "not in the signed catalogue", "ad-hoc round"), "catalogue"),
    (("window",), "window"),
    (("current week",), "week"),
    (("graph", "neighbour"), "graph"),
    (("log", "checkpoint", "receipt", "cosign", "witness"), "log"),
    (("registry", "policy version"), "registry"),
)


def refusal_code(error: ScfedError) -> str:
    """The code of the rule that made a node refuse, from the error it raised."""
    if isinstance(error, ImportRowError):
        return "data"
    text = str(error).lower()
    for words, code in _WORDS:
        if any(word in text for word in words):
            return code
    if isinstance(error, PrivacyBudgetError):
        return "parameters" if "colluders" in text else "budget"
    if isinstance(error, LocalProtocolError) and not isinstance(error, RemoteProtocolError):
        return "protocol"
    return "parameters"


def refusal_detail(error: ScfedError) -> str:
    """What the operator may read of the refusal: the rule's words, bounded; nothing of a
    file of the firm's (its lines and values stay on its node)."""
    if isinstance(error, ImportRowError):
        return ""
    return str(error)[:MAX_REFUSAL_DETAIL]


def refusal(announce: Announce, announce_hash: bytes, error: ScfedError) -> Refusal:
    return Refusal(announce.round_id, announce_hash, refusal_code(error), refusal_detail(error))


def check_refusal(
    envelope: Envelope, sender: str, announce: Announce, announce_hash: bytes, registry: Registry
) -> Refusal:
    """The refusal of a candidate of this round, signed by it; RemoteProtocolError else."""
    member = registry.member(sender)
    if member is None or sender not in announce.candidates:
        raise RemoteProtocolError(f"{sender} is not a candidate of the round")
    try:
        env.verify(envelope, registry.origin, wire.REFUSAL, member.identity_key)
    except VerificationError as exc:
        raise RemoteProtocolError(f"the refusal does not verify: {exc}") from None
    if envelope.signer != sender:
        raise RemoteProtocolError(f"a refusal signed by {envelope.signer[:64]}, sent by {sender}")
    found = decode_refusal(envelope.body)
    if found.round_id != announce.round_id or found.announce_hash != announce_hash:
        raise RemoteProtocolError("a refusal of another round or announce")
    return found


def summary(codes: Mapping[str, str]) -> str:
    """Each refusing node's code, told: "3 nodes refused: noise below their floor (2), past
    their privacy budget (1)"; "" for none."""
    if not codes:
        return ""
    tally = Counter(codes.values())
    parts = ", ".join(
        REFUSAL_CODES[code] + (f" ({n})" if len(tally) > 1 else "")
        for code, n in tally.most_common()
    )
    count = len(codes)
    return f"{count} node{'' if count == 1 else 's'} refused: {parts}"


def hopeless_after(active: CoordinatorRound, refusals: Mapping[str, Refusal]) -> str:
    """Why the running round can no longer complete now that these nodes refused; "" while
    it still can, or once t unmask responses are in (the sum is released: it must finish)."""
    phase, announce = active.phase, active.announce
    expected = set(active.participants)
    if not expected or phase.terminal:
        return ""
    unmasking = phase is Phase.UNMASKING
    if unmasking and len(active.received[Phase.UNMASKING]) >= announce.threshold:
        return ""
    needed = announce.threshold if unmasking else announce.quorum
    left = expected - set(refusals)
    if len(left) >= needed:
        return ""
    return f"{len(left)} of the {len(expected)} nodes in {phase.value} left, {needed} needed"
