"""One round's leaves, gathered, and the checks of its announce, signers and order. Pure.

A round is every authenticated leaf that carries its round id. Its first announce is the one
the round is checked against; a second, different announce for the same round id is a split
view. Node messages count only when they refer to that announce and come from one of its
candidates, and of each node's messages of one type the first counts (a second, different one
is equivocation, reported here). Messages that refer to an announce which did not decode name
its leaf and the reason, so a round whose announce was refused says why.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from auditor.leaves import NODE_TYPES, Leaf
from auditor.model import MAX_LISTED, require
from scfed import wire
from scfed.catalogue import check_announce
from scfed.errors import RefusedError, VerificationError
from scfed.secagg.graph import check_sparse, planned_dropout, round_graph
from scfed.secagg.node_rules import NodePolicy
from scfed.wire.messages import (
    REFUSAL_CODES,
    Announce,
    Refusal,
    ReleaseCharge,
    RoundMessage,
    ShareKeys,
    UnmaskRequest,
)

#: A round's messages in protocol order; an outcome is a result or an abort.
RANK = {name: wire.MESSAGE_TYPES[name].step for name in wire.ROUND_TYPES}
#: Node messages that refer to the announce (those before the unmask request), in the
#: order each node sends them.
NODE_STEPS = tuple(
    name
    for name in wire.ROUND_TYPES
    if name in NODE_TYPES and RANK[name] < RANK[wire.UNMASK_REQUEST]
)
OUTCOMES = wire.OUTCOMES

_M = TypeVar("_M", bound=RoundMessage)


def message(leaf: Leaf, kind: type[_M]) -> _M:
    """The leaf's decoded message, which its type guarantees is a ``kind``."""
    if not isinstance(leaf.message, kind):
        raise VerificationError(f"leaf {leaf.index} does not hold a {kind.__name__}")
    return leaf.message


def distinct(leaves: Sequence[Leaf]) -> list[Leaf]:
    """The leaves with different bytes, first of each: the same bytes twice count once."""
    seen: dict[bytes, Leaf] = {}
    for leaf in leaves:
        seen.setdefault(leaf.data, leaf)
    return list(seen.values())


@dataclass(frozen=True)
class RoundView:
    """One round's leaves in log order and the messages that count."""

    round_id: bytes
    leaves: tuple[Leaf, ...]
    announce_leaf: Leaf | None
    #: Node step type -> sender -> the sender's first message of that type for this announce.
    nodes: Mapping[str, Mapping[str, Leaf]]
    request_leaf: Leaf | None
    outcome_leaf: Leaf | None
    charge_leaf: Leaf | None
    #: Announces the round's messages refer to that did not decode: hash -> (leaf, why).
    rejected: Mapping[bytes, tuple[int, str]] = field(default_factory=dict)

    @property
    def announce(self) -> Announce | None:
        return None if self.announce_leaf is None else message(self.announce_leaf, Announce)

    @property
    def request(self) -> UnmaskRequest | None:
        return None if self.request_leaf is None else message(self.request_leaf, UnmaskRequest)

    @property
    def charge(self) -> ReleaseCharge | None:
        return None if self.charge_leaf is None else message(self.charge_leaf, ReleaseCharge)

    def of(self, *types: str) -> list[Leaf]:
        """The round's leaves of these types, in log order."""
        return [leaf for leaf in self.leaves if leaf.type in types]


def group_rounds(
    leaves: Sequence[Leaf], rejected: Mapping[bytes, tuple[int, str]] | None = None
) -> list[RoundView]:
    """The rounds of the log, in the order their first leaf appears; ``rejected`` are the
    log's announces that did not decode, by hash, with the reason."""
    by_round: dict[bytes, list[Leaf]] = {}
    for leaf in leaves:
        by_round.setdefault(leaf.message.round_id, []).append(leaf)
    return [_view(round_id, tuple(group), rejected or {}) for round_id, group in by_round.items()]


def _announce_hash(leaf: Leaf) -> bytes | None:
    return getattr(leaf.message, "announce_hash", None)


def _view(
    round_id: bytes, leaves: tuple[Leaf, ...], rejected: Mapping[bytes, tuple[int, str]]
) -> RoundView:
    announces = [leaf for leaf in leaves if leaf.type == wire.ANNOUNCE]
    first = announces[0] if announces else None
    ours = [leaf for leaf in leaves if first is not None and _announce_hash(leaf) == first.digest]
    candidates = message(first, Announce).candidates if first is not None else ()
    nodes: dict[str, dict[str, Leaf]] = {step: {} for step in NODE_STEPS}
    for leaf in ours:
        if leaf.type in nodes and leaf.signer in candidates:
            nodes[leaf.type].setdefault(leaf.signer, leaf)
    return RoundView(
        round_id,
        leaves,
        first,
        nodes,
        _first(ours, wire.UNMASK_REQUEST),
        _first(ours, *OUTCOMES),
        _first(ours, wire.CHARGE),
        _referred(leaves, rejected),
    )


def _referred(
    leaves: Sequence[Leaf], rejected: Mapping[bytes, tuple[int, str]]
) -> dict[bytes, tuple[int, str]]:
    """The rejected announces that these leaves refer to."""
    hashes = {hash_ for leaf in leaves if (hash_ := _announce_hash(leaf)) is not None}
    return {hash_: why for hash_, why in rejected.items() if hash_ in hashes}


def _first(leaves: Sequence[Leaf], *types: str) -> Leaf | None:
    return next((leaf for leaf in leaves if leaf.type in types), None)


def short(digest: bytes) -> str:
    """A hash as people compare it: the first 8 bytes in hex."""
    return digest[:8].hex()


def names(items: Sequence[str], limit: int = 8) -> str:
    """A readable, bounded list of member names."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ---- checks: each returns what it established or raises VerificationError ----------------


def check_single_announce(view: RoundView) -> str:
    """Exactly one announce per round id; two different ones are a split view."""
    announces = distinct(view.of(wire.ANNOUNCE))
    if not announces:
        raise VerificationError(_no_announce(view))
    if len(announces) == 1:
        return f"one announce, at leaf {announces[0].index}"
    views = []
    for leaf in announces[:MAX_LISTED]:  # a hostile log may hold very many
        referrers = sorted({x.signer for x in view.leaves if _announce_hash(x) == leaf.digest})
        views.append(
            f"leaf {leaf.index} (hash {short(leaf.digest)}, "
            f"referred to by {names(referrers) or 'nobody'})"
        )
    raise VerificationError(
        f"split view: {len(announces)} different announces for one round id: {'; '.join(views)}"
    )


def _no_announce(view: RoundView) -> str:
    """Why a round has no announce to check against: none logged, or its own did not decode."""
    count = len(view.leaves)
    if not view.rejected:
        return f"no announce is logged, yet {count} leaves name it"
    refused = "; ".join(_undecoded(*why) for why in list(view.rejected.values())[:MAX_LISTED])
    return f"no valid announce, yet {count} leaves name the round: {refused}"


def _undecoded(index: int, reason: str) -> str:
    return f"its messages refer to the announce at leaf {index}, which does not decode: {reason}"


def check_parameters(announce: Announce, announce_leaf: Leaf) -> str:
    """The announce's parameters are valid (decoding checked them) and name its registry."""
    in_force = announce_leaf.registry.version
    if announce.registry_version != in_force:
        raise VerificationError(
            f"the announce names registry version {announce.registry_version}, "
            f"version {in_force} is in force"
        )
    holders = announce.neighbours + 1 if announce.sparse else len(announce.candidates)
    if 2 * announce.threshold <= holders:
        # With t <= n/2, two disjoint halves could each rebuild a node's secrets.
        whose = "nodes of a neighbourhood" if announce.sparse else "candidates"
        raise VerificationError(
            f"threshold {announce.threshold} is not above half of the {holders} {whose}"
        )
    signed = _check_entry(announce, announce_leaf)
    return (
        f"{announce.dim} cells, t {announce.threshold}, n_min {announce.n_min}, "
        f"registry version {in_force}; noise parameters valid{signed}"
    )


def _check_entry(announce: Announce, announce_leaf: Leaf) -> str:
    """A catalogue round must be exactly its entry in the governance-signed policy."""
    if not announce.week:
        return ""
    policy = announce_leaf.policy
    entry = None if policy is None else policy.entry(announce.query)
    if policy is None or entry is None:
        raise VerificationError(f"catalogue round {announce.query!r} has no signed entry")
    try:
        check_announce(entry, announce)
    except RefusedError as exc:
        raise VerificationError(str(exc)) from exc
    return f"; equal to entry {entry.name} of policy version {policy.version}"


def check_candidates_registered(announce: Announce, announce_leaf: Leaf) -> str:
    registry = announce_leaf.registry
    unknown = [c for c in announce.candidates if registry.member(c) is None]
    if unknown:
        raise VerificationError(
            f"candidates not in registry version {registry.version}: {names(unknown)}"
        )
    return f"all {len(announce.candidates)} candidates are registered members"


def check_announce_hash(view: RoundView, announce_leaf: Leaf) -> str:
    """Every message of the round that names an announce names this one."""
    problems = [
        f"leaf {leaf.index}: {leaf.signer}'s {leaf.type} refers to announce "
        f"{short(hash_)}{_rejected(view, hash_)}, not {short(announce_leaf.digest)}"
        for leaf in view.leaves
        if (hash_ := _announce_hash(leaf)) is not None and hash_ != announce_leaf.digest
    ]
    return require(problems, f"every message refers to announce {short(announce_leaf.digest)}")


def _rejected(view: RoundView, hash_: bytes) -> str:
    why = view.rejected.get(hash_)
    return "" if why is None else f" (at leaf {why[0]}, which does not decode: {why[1]})"


def check_signers(view: RoundView, announce: Announce) -> str:
    outsiders = [
        f"leaf {leaf.index}: {leaf.type} from {leaf.signer}, who is not a candidate"
        for leaf in view.leaves
        if leaf.type in NODE_TYPES and leaf.signer not in announce.candidates
    ]
    return require(outsiders, "every node message comes from a candidate")


def check_graph(view: RoundView, announce: Announce) -> str:
    """Each node shared keys with exactly its neighbours that advertised keys, in the graph
    the auditor derives from the announce (every other node on the complete graph); a sparse
    graph must meet the SecAgg+ rule for the colluders a default node assumes and the
    dropouts the round's noise plans for."""
    graph = round_graph(announce)
    advertised = set(view.nodes[wire.ADVERTISE_KEYS])
    problems = []
    for sender, leaf in view.nodes[wire.SHARE_KEYS].items():
        receivers = [receiver for receiver, _ in message(leaf, ShareKeys).shares]
        expected = sorted(advertised & graph.get(sender, frozenset()))
        if receivers != expected:
            problems.append(f"leaf {leaf.index}: {sender} shared keys with others than its peers")
    if announce.sparse:
        problems += _sparse_rule(announce)
    shape = f"k = {announce.neighbours}" if announce.sparse else "the complete graph"
    return require(problems, f"every node shared keys with exactly its peers on {shape}")


def _sparse_rule(announce: Announce) -> list[str]:
    n, dropout = len(announce.candidates), planned_dropout(announce)
    try:
        check_sparse(
            n, announce.neighbours, announce.threshold, NodePolicy().sparse_corrupt, dropout
        )
    except ValueError as exc:
        return [f"the sparse graph (k {announce.neighbours}, t {announce.threshold}): {exc}"]
    return []


def check_no_equivocation(view: RoundView) -> str:
    """No node sends two different messages of one type."""
    sent: dict[tuple[str, str], list[Leaf]] = {}
    for leaf in view.leaves:
        if leaf.type in NODE_TYPES:
            sent.setdefault((leaf.type, leaf.signer), []).append(leaf)
    problems = []
    for (type_, signer), leaves in sent.items():
        different = distinct(leaves)
        if len(different) > 1:
            where = ", ".join(str(leaf.index) for leaf in different)
            problems.append(f"{signer} sent {len(different)} different {type_} (leaves {where})")
    return require(problems, "no node sent two different messages of one type")


def check_phase_order(view: RoundView) -> str:
    """Messages come in protocol order, and each node takes its steps in order (a node may
    refuse at any step: its refusal stands outside the order)."""
    ordered = [leaf for leaf in view.leaves if leaf.type != wire.REFUSAL]
    if not ordered:
        return "messages come in phase order"
    problems, highest = [], ordered[0]
    for leaf in ordered[1:]:
        if RANK[leaf.type] < RANK[highest.type]:
            problems.append(f"leaf {leaf.index}: {leaf.type} after {highest.type}")
        elif RANK[leaf.type] > RANK[highest.type]:
            highest = leaf
    for before, after in itertools.pairwise(NODE_STEPS):
        for sender, leaf in view.nodes[after].items():
            earlier = view.nodes[before].get(sender)
            if earlier is None or earlier.index > leaf.index:
                problems.append(f"leaf {leaf.index}: {sender} sent {after} without {before} first")
    return require(problems, "messages come in phase order")


def check_refusals(view: RoundView, announce: Announce) -> str:
    """Who refused the round and why; each refusal by a candidate, about this announce."""
    refusals = view.of(wire.REFUSAL)
    for leaf in refusals:
        refusal = message(leaf, Refusal)
        if leaf.signer not in announce.candidates or (
            view.announce_leaf is not None and refusal.announce_hash != view.announce_leaf.digest
        ):
            raise VerificationError(
                f"leaf {leaf.index}: a refusal by {leaf.signer} of another round"
            )
    if not refusals:
        return "no node refused"
    tally = Counter(message(leaf, Refusal).code for leaf in refusals)
    parts = ", ".join(f"{n} {REFUSAL_CODES[code]}" for code, n in tally.most_common())
    return f"{len(refusals)} node{'' if len(refusals) == 1 else 's'} refused: {parts}"


def check_outcome(view: RoundView) -> str:
    """At most one outcome: a result or an abort, never both, never two different ones."""
    outcomes = distinct(view.of(*OUTCOMES))
    if len(outcomes) > 1:
        where = ", ".join(f"{leaf.type} at leaf {leaf.index}" for leaf in outcomes)
        raise VerificationError(f"{len(outcomes)} different outcomes: {where}")
    if not outcomes:
        return "no outcome logged yet: the round is in progress"
    return f"{outcomes[0].type} at leaf {outcomes[0].index}"
