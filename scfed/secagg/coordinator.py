"""The coordinator's side of one secure-aggregation round, as a pure state machine.

Theory of operation. ``start`` signs the announce for the candidates. Each phase collects
one signed message per expected node; it closes when all have arrived or when the edge calls
``close`` at the phase deadline. Closing moves the round on with the nodes that answered
(U1 advertised keys, U2 shared keys, S sent masked inputs) or aborts it, without unmasking
anything, once fewer than max(t, n_min) remain. The masking tasks and the unmask request are
made when the phase before theirs closes, then held in a witnessing step: the edge logs the
unmask request, asks the nodes the held tasks go to for cosignatures of the log's checkpoint
(``checkpoint``) and hands in each cosignature it verified (``cosigned``). The tasks go out
only once the round's witness quorum (``scfed.policy.witness_quorum``) of those nodes has
cosigned that checkpoint; the step's deadline aborts the round without them. A replay of the
log passes the step on a logged message of the next phase (``logged``), which no node signs
without a quorum.
The masked inputs are summed as they arrive; after the unmask responses the coordinator
rebuilds each survivor's seed b_v and each dropped node's mask key s_sk_v from any t
responders, removes the masks, and signs the result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import masking, shamir, wire
from scfed.dp.ledger import rho_text
from scfed.errors import (
    LocalProtocolError,
    OutOfOrderError,
    PermissionDeniedError,
    RemoteProtocolError,
)
from scfed.policy import release_rho, witness_quorum
from scfed.secagg._table import COORDINATOR, MESSAGE_PHASES, CoordinatorEvent, Phase, successor
from scfed.secagg.graph import round_graph
from scfed.secagg.unmask import unmasked_sum
from scfed.wire import envelope as env
from scfed.wire.codec import (
    decode_advertise_keys,
    decode_masked_input,
    decode_result,
    decode_share_keys,
    decode_unmask_response,
    encode,
)
from scfed.wire.envelope import Envelope
from scfed.wire.messages import (
    Abort,
    AdvertiseKeys,
    Announce,
    Registry,
    ReleaseCharge,
    Result,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
)
from scfed.wire.policy import Policy
from scfed.wire.tasks import KeySet, MaskingTask

Task = Envelope | KeySet | MaskingTask
_COLLECTING = (Phase.ADVERTISING, Phase.SHARING, Phase.MASKING, Phase.UNMASKING)
#: The abort reason of a witnessing step whose deadline passed without a quorum.
NO_WITNESS_QUORUM = "no quorum of witnesses cosigned the log"


@dataclass(frozen=True)
class Outgoing:
    """A task for one node."""

    to: str
    task: Task


class CoordinatorRound:
    """One round from the coordinator's side. Feed it node messages; it returns tasks."""

    def __init__(
        self, announce: Announce, registry: Registry, key: Ed25519PrivateKey, *,
        policy: Policy | None = None,
    ) -> None:  # fmt: skip
        unregistered = [c for c in announce.candidates if registry.member(c) is None]
        if unregistered:
            raise LocalProtocolError(f"unregistered candidates: {', '.join(unregistered)}")
        if announce.registry_version != registry.version:
            raise LocalProtocolError("the announce names another registry version")
        if announce.quorum > len(announce.candidates):
            raise LocalProtocolError("the announce needs more participants than it names")
        self.announce = announce
        self.registry = registry
        self.phase = Phase.NEW
        self.outcome: Envelope | None = None
        self.announce_envelope = env.seal(
            key, wire.ANNOUNCE, wire.COORDINATOR, registry.origin, encode(announce)
        )
        self.announce_hash = self.announce_envelope.digest(registry.origin)
        self._key = key
        # The SHA-256 of the envelope bytes received per phase and sender, to tell a
        # duplicate from a second, different message without holding N masked vectors.
        self.received: dict[Phase, dict[str, bytes]] = {p: {} for p in _COLLECTING}
        self._advertised: dict[str, AdvertiseKeys] = {}
        self._advertisements: dict[str, bytes] = {}  # the signed envelopes, for the key sets
        self._shares: dict[str, ShareKeys] = {}
        self._sum = np.zeros(announce.dim, dtype=np.uint64)
        #: Each candidate's neighbours in the round's graph (every other one if complete).
        self._graph = round_graph(announce)
        self._request: tuple[Envelope, UnmaskRequest] | None = None
        self._responses: dict[str, UnmaskResponse] = {}
        #: Cosignatures of the nodes a witnessing step asks, out of the signed policy.
        self.witness_quorum = witness_quorum(policy, announce)
        self._held: list[Outgoing] = []  # the next phase's tasks, until they are witnessed
        self._checkpoint: int | None = None  # the size the witnesses are asked to cosign
        #: The step's witnesses that cosigned that checkpoint.
        self.cosigners: frozenset[str] = frozenset()

    @property
    def participants(self) -> tuple[str, ...]:
        """The nodes the current phase expects a message from."""
        match self.phase:
            case Phase.ADVERTISING:
                return self.announce.candidates
            case Phase.SHARING:
                return tuple(sorted(self._advertised))
            case Phase.MASKING:
                return tuple(sorted(self._shares))
            case Phase.UNMASKING if self._request is not None:
                return self._request[1].survivors
        return ()

    @property
    def unmask_request(self) -> Envelope | None:
        """The signed unmask request, once the masking phase has closed (the edge logs it
        before its witnessing step asks for cosignatures)."""
        return None if self._request is None else self._request[0]

    @property
    def witnessing(self) -> bool:
        """Whether the round is in a witnessing step, waiting for cosignatures."""
        return (self.phase, CoordinatorEvent.COSIGNATURE) in COORDINATOR

    @property
    def witnesses(self) -> tuple[str, ...]:
        """The nodes a witnessing step asks to cosign the log: those its held tasks go to."""
        return tuple(out.to for out in self._held)

    @property
    def checkpoint_size(self) -> int | None:
        """The size of the checkpoint the current or latest witnessing step counted the
        cosignatures of: the masking tasks and the unmask request go out with it."""
        return self._checkpoint

    def start(self) -> list[Outgoing]:
        """Announce the round to every candidate."""
        if self.phase is not Phase.NEW:
            raise LocalProtocolError("the round has already started")
        self.phase = Phase.ADVERTISING
        return [Outgoing(c, self.announce_envelope) for c in self.announce.candidates]

    def receive(self, sender: str, envelope: Envelope) -> list[Outgoing]:
        """Take one signed message from ``sender`` (the TLS identity); return tasks to send."""
        try:
            event = CoordinatorEvent(envelope.type)
        except ValueError:
            raise RemoteProtocolError(f"nodes do not send {envelope.type} messages") from None
        before = self.phase
        if event not in _HANDLERS or (before, event) not in COORDINATOR:
            raise OutOfOrderError(f"{envelope.type} is out of order in phase {before.value}")
        self._authenticate(sender, envelope)
        data = hashlib.sha256(envelope.to_bytes()).digest()
        received = self.received[before]
        if sender in received:
            if received[sender] != data:
                raise RemoteProtocolError(f"{sender} sent a second, different {envelope.type}")
            return []
        _HANDLERS[event](self, sender, envelope)
        received[sender] = data
        outgoing = self.close() if len(received) == len(self.participants) else []
        self._moved(before, event)
        return outgoing

    def checkpoint(self, size: int) -> None:
        """The edge asked the witnesses of this step to cosign the log's checkpoint of
        ``size``, which holds every message of the round so far: only cosignatures of that
        checkpoint count from now on."""
        before = self._edge_event(CoordinatorEvent.CHECKPOINT)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise LocalProtocolError(f"no checkpoint of size {size!r} can be witnessed")
        self._checkpoint, self.cosigners = size, frozenset()
        self._moved(before, CoordinatorEvent.CHECKPOINT)

    def cosigned(self, witness: str, size: int) -> list[Outgoing]:
        """``witness`` cosigned the log's checkpoint of ``size`` (the edge verified the line).

        Returns the held masking tasks or unmask request once a quorum of the step's
        witnesses cosigned the checkpoint it asked for, and nothing before: another size
        or a node the tasks do not go to does not count.
        """
        before = self.phase
        if (before, CoordinatorEvent.COSIGNATURE) not in COORDINATOR:
            raise OutOfOrderError(f"a cosignature is out of order in phase {before.value}")
        if size != self._checkpoint or witness not in self.witnesses:
            return []
        self.cosigners |= {witness}
        if len(self.cosigners) < self.witness_quorum:
            return []
        return self._release(before, CoordinatorEvent.COSIGNATURE)

    def logged(self, evidence: Envelope) -> None:
        """Pass this witnessing step while replaying the log, sending nothing again.

        ``evidence`` is the logged message of the next phase a witness of the step signed:
        a node sends one only for a task that came with a quorum's cosignatures, so the
        live round had passed the step. Cosignatures are not leaves of the log.
        """
        before = self._edge_event(CoordinatorEvent.LOGGED)
        if evidence.type != _EVIDENCE[before]:
            raise OutOfOrderError(f"a {evidence.type} does not show a {before.value} passed")
        if evidence.signer not in self.witnesses:
            raise PermissionDeniedError(f"{evidence.signer} is no witness of {before.value}")
        member = self.registry.member(evidence.signer)
        if member is None:
            raise PermissionDeniedError(f"{evidence.signer} is not registered")
        env.verify(evidence, self.registry.origin, evidence.type, member.identity_key)
        self._release(before, CoordinatorEvent.LOGGED)

    def abandon(self, reason: str) -> list[Outgoing]:
        """Abort the round now, without unmasking anything more, for a reason of the edge's."""
        before = self._edge_event(CoordinatorEvent.ABANDON)
        outgoing = self._abort(reason)
        self._moved(before, CoordinatorEvent.ABANDON)
        return outgoing

    def close(self) -> list[Outgoing]:
        """End the current phase with whoever answered (all of them, or the deadline passed);
        a witnessing step without its quorum by then aborts the round."""
        before = self._edge_event(CoordinatorEvent.CLOSE)
        witnessing = self.witnessing
        outgoing = self._abort(NO_WITNESS_QUORUM) if witnessing else self._close_collecting()
        self._moved(before, CoordinatorEvent.CLOSE)
        return outgoing

    # -- the table -------------------------------------------------------------------------

    def _edge_event(self, event: CoordinatorEvent) -> Phase:
        """The current phase; LocalProtocolError if the table has no ``event`` for it."""
        if (self.phase, event) not in COORDINATOR:
            raise LocalProtocolError(f"{event.value} is out of order in phase {self.phase.value}")
        return self.phase

    def _moved(self, before: Phase, event: CoordinatorEvent) -> None:
        if self.phase not in COORDINATOR[(before, event)]:
            raise LocalProtocolError(
                f"{event.value} took the round from {before.value} to {self.phase.value}"
            )

    def _move_on(self, event: CoordinatorEvent) -> None:
        """Enter the phase the table names after the current one on ``event``."""
        self.phase = successor(self.phase, event)

    def _release(self, before: Phase, event: CoordinatorEvent) -> list[Outgoing]:
        """End a witnessing step: move on and hand out the tasks it held."""
        held, self._held = self._held, []
        self._move_on(event)
        self._moved(before, event)
        return held

    # -- receiving -------------------------------------------------------------------------

    def _authenticate(self, sender: str, envelope: Envelope) -> None:
        if envelope.signer != sender:
            raise PermissionDeniedError(f"{sender} submitted a message signed as another node")
        if sender not in self.participants:
            raise PermissionDeniedError(
                f"{sender} is not a participant in phase {self.phase.value}"
            )
        member = self.registry.member(sender)
        if member is None:
            raise PermissionDeniedError(f"{sender} is not registered")
        env.verify(envelope, self.registry.origin, envelope.type, member.identity_key)

    def _check_round(self, round_id: bytes, announce_hash: bytes) -> None:
        if round_id != self.announce.round_id or announce_hash != self.announce_hash:
            raise RemoteProtocolError("the message belongs to another round or announce")

    def _on_advertise(self, sender: str, envelope: Envelope) -> None:
        keys = decode_advertise_keys(envelope.body)
        self._check_round(keys.round_id, keys.announce_hash)
        masking.check_public_key(keys.c_public_key, sender)
        masking.check_public_key(keys.s_public_key, sender)
        self._advertised[sender] = keys
        self._advertisements[sender] = envelope.to_bytes()

    def _on_share(self, sender: str, envelope: Envelope) -> None:
        shares = decode_share_keys(envelope.body)
        self._check_round(shares.round_id, shares.announce_hash)
        receivers = [receiver for receiver, _ in shares.shares]
        neighbours = self._graph[sender]
        if receivers != [v for v in sorted(self._advertised) if v in neighbours]:
            raise RemoteProtocolError(f"{sender} did not send shares to exactly its peers")
        self._shares[sender] = shares

    def _on_masked_input(self, sender: str, envelope: Envelope) -> None:
        masked = decode_masked_input(envelope.body)
        self._check_round(masked.round_id, masked.announce_hash)
        vector = masking.decode_vector(masked.vector, self.announce.dim)
        np.add(self._sum, vector, out=self._sum)

    def _on_unmask_response(self, sender: str, envelope: Envelope) -> None:
        response = decode_unmask_response(envelope.body)
        request_envelope, request = self._unmask_request()
        if response.round_id != self.announce.round_id or response.request_hash != (
            request_envelope.digest(self.registry.origin)
        ):
            raise RemoteProtocolError(f"{sender} answered another unmask request")
        held = self._near(sender, self._shares)
        if [o for o, _ in response.seed_shares] != [v for v in request.survivors if v in held] or [
            o for o, _ in response.key_shares
        ] != [v for v in request.dropped if v in held]:
            raise RemoteProtocolError(f"{sender} did not reveal exactly the requested shares")
        for _, share in response.seed_shares + response.key_shares:
            shamir.decode_share(share)
        self._responses[sender] = response

    def _unmask_request(self) -> tuple[Envelope, UnmaskRequest]:
        if self._request is None:
            raise LocalProtocolError("no unmask request has been made")
        return self._request

    def charge(self, period: str, policy: Policy | None) -> Envelope | None:
        """The signed budget charge of this round's result in ``period``; None for an abort.

        A release costs rho for its actual survivors (README, Differential privacy), by the rule
        every node applies (scfed.policy.release_rho).
        """
        if self.outcome is None or self.outcome.type != wire.RESULT:
            return None
        survivors = decode_result(self.outcome.body).survivors
        rho = release_rho(policy, self.announce, self.registry, survivors)
        m = len(survivors)
        body = ReleaseCharge(self.announce.round_id, self.announce_hash, period, m, rho_text(rho))
        return self._seal(wire.CHARGE, encode(body))

    # -- closing phases --------------------------------------------------------------------

    def _seal(self, type_: str, body: bytes) -> Envelope:
        return env.seal(self._key, type_, wire.COORDINATOR, self.registry.origin, body)

    def _abort(self, reason: str) -> list[Outgoing]:
        abort = Abort(self.announce.round_id, self.announce_hash, reason)
        self.outcome = self._seal(wire.ABORT, encode(abort))
        self.phase, self._held = Phase.ABORTED, []
        return [Outgoing(c, self.outcome) for c in self.announce.candidates]

    def _close_collecting(self) -> list[Outgoing]:
        answered = tuple(sorted(self.received[self.phase]))
        needed = self.announce.threshold if self.phase is Phase.UNMASKING else self.announce.quorum
        if len(answered) < needed:
            what = _WHAT[self.phase]
            return self._abort(f"only {len(answered)} nodes {what}, {needed} are needed")
        return _CLOSERS[self.phase](self, answered)

    def _near(self, node: str, among: Collection[str]) -> tuple[str, ...]:
        """``node`` and its neighbours among ``among``, sorted."""
        neighbourhood = self._graph[node] | {node}
        return tuple(v for v in sorted(among) if v in neighbourhood)

    def _witness(self, held: list[Outgoing]) -> list[Outgoing]:
        """Hold the next phase's tasks in the witnessing step the table names next."""
        self._held, self._checkpoint, self.cosigners = held, None, frozenset()
        self._move_on(CoordinatorEvent.CLOSE)
        return []

    def _close_advertising(self, answered: tuple[str, ...]) -> list[Outgoing]:
        """Each node gets the keys its neighbourhood advertised (all of them if complete)."""
        sent, round_id = self._advertisements, self.announce.round_id
        self._move_on(CoordinatorEvent.CLOSE)
        return [
            Outgoing(v, KeySet(round_id, tuple(sent[u] for u in self._near(v, answered))))
            for v in answered
        ]

    def _close_sharing(self, answered: tuple[str, ...]) -> list[Outgoing]:
        inbox: dict[str, list[tuple[str, bytes]]] = {v: [] for v in answered}
        for sender in answered:
            for receiver, ciphertext in self._shares[sender].shares:
                if receiver in inbox:
                    inbox[receiver].append((sender, ciphertext))
        round_id = self.announce.round_id
        return self._witness(
            [
                Outgoing(v, MaskingTask(round_id, self._near(v, answered), tuple(inbox[v])))
                for v in answered
            ]
        )

    def _close_masking(self, answered: tuple[str, ...]) -> list[Outgoing]:
        dropped = tuple(v for v in sorted(self._shares) if v not in answered)
        request = UnmaskRequest(self.announce.round_id, self.announce_hash, answered, dropped)
        envelope = self._seal(wire.UNMASK_REQUEST, encode(request))
        self._request = (envelope, request)
        return self._witness([Outgoing(v, envelope) for v in answered])

    def _close_unmasking(self, answered: tuple[str, ...]) -> list[Outgoing]:
        _, request = self._unmask_request()
        try:
            total = self._unmasked_sum(request, answered)
        except RemoteProtocolError as exc:
            return self._abort(f"unmasking failed: {exc}")
        sums = total.view("<i8").tobytes()
        result = Result(self.announce.round_id, self.announce_hash, request.survivors, sums)
        self.outcome = self._seal(wire.RESULT, encode(result))
        self._move_on(CoordinatorEvent.CLOSE)
        return [Outgoing(c, self.outcome) for c in self.announce.candidates]

    def _unmasked_sum(self, request: UnmaskRequest, responders: tuple[str, ...]) -> masking.Vector:
        responses = [(r, self._responses[r]) for r in responders]
        return unmasked_sum(self.announce, self._advertised, self._sum, request, responses)


_HANDLERS: dict[CoordinatorEvent, Callable[[CoordinatorRound, str, Envelope], None]] = {
    CoordinatorEvent.ADVERTISE_KEYS: CoordinatorRound._on_advertise,
    CoordinatorEvent.SHARE_KEYS: CoordinatorRound._on_share,
    CoordinatorEvent.MASKED_INPUT: CoordinatorRound._on_masked_input,
    CoordinatorEvent.UNMASK_RESPONSE: CoordinatorRound._on_unmask_response,
}
#: The message of the next phase that shows, in a replayed log, that a witnessing step passed.
_EVIDENCE = {
    phase: message
    for message, accepted_in in MESSAGE_PHASES.items()
    for phase in (Phase.WITNESSING_MASKING, Phase.WITNESSING_UNMASKING)
    if successor(phase, CoordinatorEvent.LOGGED) == accepted_in
}
_CLOSERS: dict[Phase, Callable[[CoordinatorRound, tuple[str, ...]], list[Outgoing]]] = {
    Phase.ADVERTISING: CoordinatorRound._close_advertising,
    Phase.SHARING: CoordinatorRound._close_sharing,
    Phase.MASKING: CoordinatorRound._close_masking,
    Phase.UNMASKING: CoordinatorRound._close_unmasking,
}
_WHAT = {
    Phase.ADVERTISING: "advertised keys",
    Phase.SHARING: "shared keys",
    Phase.MASKING: "sent masked inputs",
    Phase.UNMASKING: "answered the unmask request",
}
