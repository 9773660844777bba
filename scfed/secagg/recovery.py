"""Finishing a round the coordinator was stopped in, from its protocol log alone. Pure.

Theory of operation. The log holds, as exact signed bytes and in the order the round took
them in, everything the coordinator's round machine was fed: the announce, each node message
it accepted and the unmask request it made. Replaying them through a fresh
``CoordinatorRound`` under the same key rebuilds its state. Ed25519 signatures are
deterministic, so the announce and unmask request the replay signs are byte for byte the
logged ones, which is checked; a phase the live round closed at its deadline is closed where
the log shows the next phase began. Cosignatures are not leaves of the log, so a witnessing
step is passed on the first logged message of the phase it led to (``logged``): its signer
sent it only for a task that came with a quorum's cosignatures. A round stopped inside a
witnessing step never sent what the step held, and the replay stops there too. The round
then ends as docs/architecture.md step 7 says. A release is a release: once t unmask responses
are logged, anyone holding the log can rebuild the noisy sum, so the round publishes its
result, and its charge, exactly as the live round would have. Every other round is
abandoned with a signed abort. An outcome or charge the log holds already is taken as it is,
never signed a second time.

``LogReplay`` takes the log one leaf at a time, keeping O(cells) per round rather than its
leaves, and knows the registry and the governance-signed policy in force at each announce as
an auditor reads them: a version takes effect only when it is newer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import wire
from scfed.errors import LocalProtocolError, RemoteProtocolError, VerificationError
from scfed.policy import open_policy
from scfed.registry import open_registry
from scfed.secagg._table import COORDINATOR_RUNNING, MESSAGE_PHASES, Phase
from scfed.secagg.coordinator import CoordinatorRound
from scfed.wire import envelope as env
from scfed.wire.codec import (
    decode_announce,
    encode,
)
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Abort, Announce, Registry
from scfed.wire.policy import Policy

#: The abort reason of a round that cannot be finished after a restart.
RESTARTED = "the coordinator restarted during the round"


class _InRound(Protocol):
    @property
    def round_id(self) -> bytes: ...


@dataclass(frozen=True)
class Recovered:
    """How an interrupted round ends: its outcome and, for a result, its charge."""

    announce: Announce
    #: The governance-signed policy in force at the announce (None for a federation without).
    policy: Policy | None
    outcome: Envelope
    charge: Envelope | None
    #: The outcome's leaf, when the log holds it already.
    outcome_index: int | None
    #: What the log does not hold yet, to append in this order.
    unlogged: tuple[Envelope, ...]
    #: False when the announce never reached the log: no node saw the round, and its abort
    #: is kept by the coordinator only (a logged outcome without its announce is no round).
    announced: bool = True


class _Replayed:
    """One round's machine, fed the round's leaves in log order."""

    def __init__(self, machine: CoordinatorRound, policy: Policy | None) -> None:
        self.machine = machine
        self.policy = policy
        self.outcome: tuple[int, Envelope] | None = None
        self.charge: Envelope | None = None

    def take(self, index: int, envelope: Envelope) -> None:
        phase = MESSAGE_PHASES.get(envelope.type)
        if phase is not None:
            self._advance(phase, index, envelope)
            self.machine.receive(envelope.signer, envelope)
        elif envelope.type == wire.UNMASK_REQUEST:
            self._advance(Phase.WITNESSING_UNMASKING, index)  # logged before it was witnessed
            if self.machine.unmask_request != envelope:
                raise LocalProtocolError(f"leaf {index}: the log's unmask request does not replay")
        elif envelope.type in (wire.RESULT, wire.ABORT):
            self.outcome = self.outcome or (index, envelope)
        elif envelope.type == wire.CHARGE:
            self.charge = self.charge or envelope

    def _advance(self, phase: Phase, index: int, evidence: Envelope | None = None) -> None:
        """Close the phases the live round closed at their deadlines, up to ``phase``, and
        pass its witnessing steps on the ``evidence`` of a node message of ``phase``."""
        machine = self.machine
        while machine.phase is not phase:
            if not _before(machine.phase, phase) or (machine.witnessing and evidence is None):
                raise LocalProtocolError(
                    f"leaf {index}: a {phase.value} message does not replay in phase "
                    f"{machine.phase.value}"
                )
            if machine.witnessing and evidence is not None:
                machine.logged(evidence)
            else:
                machine.close()

    def finish(self, period: str, reason: str) -> Recovered:
        """The logged outcome if there is one (a result checked against the replay), else
        the one the replay gives; and the charge a result is due."""
        logged = self.outcome
        if logged is not None and logged[1].type == wire.ABORT:
            return self._recovered(logged[1], None, logged[0])
        outcome = self._replayed_outcome(reason, None if logged is None else logged[1])
        charge = self.charge or self.machine.charge(period, self.policy)
        return self._recovered(outcome, charge, None if logged is None else logged[0])

    def _replayed_outcome(self, reason: str, logged: Envelope | None) -> Envelope:
        machine = self.machine
        if logged is None:
            self._end(reason)
        elif not machine.phase.terminal:
            machine.close()  # the live round closed unmasking at its deadline
        outcome = machine.outcome
        if outcome is None or (logged is not None and outcome != logged):
            raise LocalProtocolError("the logged result is not the one the logged shares give")
        return outcome

    def _recovered(
        self, outcome: Envelope, charge: Envelope | None, index: int | None
    ) -> Recovered:
        unlogged = [] if index is not None else [outcome]
        if charge is not None and self.charge is None:
            unlogged.append(charge)
        announce = self.machine.announce
        return Recovered(announce, self.policy, outcome, charge, index, tuple(unlogged))

    def _end(self, reason: str) -> None:
        """Publish a release the log already holds; abandon any other round."""
        machine = self.machine
        if machine.phase.terminal:
            return  # every survivor answered: the replay has published already
        answered = len(machine.received[Phase.UNMASKING])
        if machine.phase is Phase.UNMASKING and answered >= machine.announce.threshold:
            machine.close()
        else:
            machine.abandon(reason)


def _before(phase: Phase, later: Phase) -> bool:
    """Whether a running round in ``phase`` reaches ``later`` by closing phases (and
    passing witnessing steps)."""
    running = COORDINATOR_RUNNING
    return phase in running and running.index(phase) < running.index(later)


class LogReplay:
    """Reads the protocol log in order and finishes the rounds named in ``announces``
    (round id -> the signed announce the coordinator stored when it started the round)."""

    def __init__(
        self,
        announces: Mapping[bytes, Envelope],
        *,
        origin: str,
        governance_key: bytes,
        key: Ed25519PrivateKey,
    ) -> None:
        self._announces = dict(announces)
        self._origin, self._governance_key, self._key = origin, governance_key, key
        self._registry: Registry | None = None
        self._policy: Policy | None = None
        self._rounds: dict[bytes, _Replayed] = {}

    def read(self, index: int, data: bytes) -> None:
        """Take the log's leaf ``index``; leaves come in log order. A leaf that does not
        decode or verify under today's rules (one logged under older ones, say) takes no
        effect, as it takes none for an auditor."""
        try:
            envelope = Envelope.from_bytes(data)
            if envelope.type in (wire.REGISTRY, wire.POLICY):
                self._take_signed(envelope)
                return
            decode = wire.MESSAGE_TYPES[envelope.type].decode
            round_id = cast("_InRound", decode(envelope.body)).round_id
        except (RemoteProtocolError, VerificationError):
            return
        if round_id not in self._announces:
            return
        replayed = self._rounds.get(round_id)
        if envelope.type == wire.ANNOUNCE:
            if replayed is None:
                self._rounds[round_id] = self._start(index, envelope)
            return
        if replayed is None:
            raise LocalProtocolError(f"leaf {index} belongs to a round before its announce")
        try:
            replayed.take(index, envelope)
        except RemoteProtocolError as exc:  # the live round accepted what the replay refuses
            raise LocalProtocolError(f"leaf {index} does not replay: {exc}") from exc

    def _take_signed(self, envelope: Envelope) -> None:
        """A governance-signed registry or policy takes effect when it is newer."""
        if envelope.type == wire.REGISTRY:
            registry = open_registry(envelope, self._origin, self._governance_key)
            if self._registry is None or registry.version > self._registry.version:
                self._registry = registry
            return
        policy = open_policy(envelope, self._origin, self._governance_key)
        if self._policy is None or policy.version > self._policy.version:
            self._policy = policy

    def _start(self, index: int, announce: Envelope) -> _Replayed:
        if announce != self._announces[decode_announce(announce.body).round_id]:
            raise LocalProtocolError(f"leaf {index}: not the announce the round was started with")
        if self._registry is None:
            raise LocalProtocolError(f"leaf {index}: an announce before any registry")
        machine = CoordinatorRound(
            decode_announce(announce.body), self._registry, self._key, policy=self._policy
        )
        if machine.announce_envelope != announce:
            raise LocalProtocolError(f"leaf {index}: the announce was signed by another key")
        machine.start()
        return _Replayed(machine, self._policy)

    def finish(self, round_id: bytes, *, period: str, reason: str = RESTARTED) -> Recovered:
        """How the round ends, its charge dated in budget ``period`` if one is due now."""
        replayed = self._rounds.get(round_id)
        if replayed is not None:
            return replayed.finish(period, reason)
        announce = self._announces[round_id]
        body = Abort(round_id, announce.digest(self._origin), reason)
        abort = env.seal(self._key, wire.ABORT, wire.COORDINATOR, self._origin, encode(body))
        return Recovered(decode_announce(announce.body), None, abort, None, None, (), False)
