"""A node's view of the protocol log: checkpoints, receipts, cosignatures. Pure: no I/O.

Theory of operation. A node trusts no checkpoint it has not checked. It keeps the latest
checkpoint it verified and accepts a new one only if the coordinator signed it for this
federation and an RFC 9162 consistency proof shows that the new tree extends the old one (or
the two are the same tree). Each message the node sent must come back with a receipt: an
inclusion proof of its exact bytes against such a checkpoint. Before a privacy-critical step
the node also wants the checkpoint cosigned by a quorum of the federation's members, who are
the witnesses: they only cosign checkpoints consistent with their own views, so a coordinator
cannot show two groups two different logs. Any inconsistency raises ``LogInconsistencyError``,
which carries the evidence (both checkpoints and the proof) for the node to keep.

The quorum reaches the node's round machine as a ``Witnessed`` proof, which only
``witnessed`` builds, once the cosignatures on a checkpoint verify under the registry
identity keys of the round's candidates: the machine masks and reveals only with one for its
round at the quorum it froze (``scfed.secagg.node``).

Consistency proofs come from the coordinator's log service; the caller passes a function
that fetches one, so this module stays free of I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from scfed import note, tlog
from scfed.checkpoint import Checkpoint, parse_checkpoint
from scfed.errors import LocalProtocolError, VerificationError
from scfed.note_format import parse_note
from scfed.tlog_verify import verify_consistency, verify_inclusion
from scfed.wire.messages import Announce, Registry

#: Fetches the consistency proof between two tree sizes (size1 < size2).
ProofSource = Callable[[int, int], Sequence[bytes]]


@dataclass(frozen=True)
class Evidence:
    """What proves a coordinator showed this node two logs that cannot both be true."""

    reason: str
    older: bytes
    newer: bytes
    proof: tuple[bytes, ...]

    def to_text(self) -> str:
        """A self-contained evidence file: the reason, both signed notes, the proof."""
        proof = "".join(f"{h.hex()}\n" for h in self.proof)
        return (
            f"scfed log inconsistency\nreason: {self.reason}\n\n"
            f"--- older checkpoint ---\n{self.older.decode('utf-8', 'replace')}"
            f"--- newer checkpoint ---\n{self.newer.decode('utf-8', 'replace')}"
            f"--- consistency proof (hex, bottom up) ---\n{proof}"
        )


class LogInconsistencyError(VerificationError):
    """The coordinator's log forked or was rewritten: this node stops taking part."""

    def __init__(self, evidence: Evidence) -> None:
        super().__init__(f"the protocol log is inconsistent: {evidence.reason}")
        self.evidence = evidence


@dataclass(frozen=True)
class Verified:
    """A checkpoint whose signature was checked: the parsed body and the note as received."""

    checkpoint: Checkpoint
    note: bytes


class LogView:
    """The latest checkpoint this node verified, and the checks against it."""

    def __init__(self, origin: str, coordinator_key: bytes, latest: bytes | None = None) -> None:
        self.origin = origin
        self.verifier = note.Verifier.ed25519(
            origin, Ed25519PublicKey.from_public_bytes(coordinator_key)
        )
        # ``latest`` comes from this party's own store, verified before it was kept, perhaps
        # with a coordinator key since rotated: it is read, not verified again.
        self.latest: Verified | None = None if latest is None else self._kept(latest)

    def _kept(self, signed: bytes) -> Verified:
        text, _ = parse_note(signed)
        checkpoint = parse_checkpoint(text)
        if checkpoint.origin != self.origin:
            raise VerificationError(f"a checkpoint of {checkpoint.origin!r}, not {self.origin!r}")
        return Verified(checkpoint, signed)

    def rekeyed(self, coordinator_key: bytes) -> LogView:
        """This view under a new coordinator key (a newer registry named it): the latest
        checkpoint stays, verified once with the key in force when it arrived."""
        view = LogView(self.origin, coordinator_key)
        view.latest = self.latest
        return view

    def opened(self, signed: bytes) -> Verified:
        """A checkpoint signed by the coordinator for this federation, or VerificationError."""
        opened = note.open_note(signed, [self.verifier])
        checkpoint = parse_checkpoint(opened.text)
        if checkpoint.origin != self.origin:
            raise VerificationError(f"a checkpoint of {checkpoint.origin!r}, not {self.origin!r}")
        return Verified(checkpoint, signed)

    def advance(self, signed: bytes, proofs: ProofSource) -> Verified:
        """Check a new checkpoint against the latest one and keep the larger of the two.

        Raises LogInconsistencyError when no consistency proof joins them.
        """
        new = self.opened(signed)
        old = self.latest
        if old is None:
            self.latest = new
            return new
        small, large = sorted((old, new), key=lambda v: v.checkpoint.size)
        proof: Sequence[bytes] = ()
        try:
            if small.checkpoint.size == large.checkpoint.size:
                if small.checkpoint.root != large.checkpoint.root:
                    raise VerificationError("two different roots for the same tree size")
            elif small.checkpoint.size > 0:
                proof = proofs(small.checkpoint.size, large.checkpoint.size)
                verify_consistency(
                    small.checkpoint.size,
                    large.checkpoint.size,
                    proof,
                    small.checkpoint.root,
                    large.checkpoint.root,
                )
        except VerificationError as exc:
            evidence = Evidence(str(exc), old.note, new.note, tuple(proof))
            raise LogInconsistencyError(evidence) from exc
        self.latest = large
        return new

    def check_receipt(
        self, leaf: bytes, *, index: int, signed: bytes, inclusion: Sequence[bytes],
        proofs: ProofSource,
    ) -> Verified:  # fmt: skip
        """Check that ``leaf`` (a message's exact bytes) is in a checkpoint consistent with ours."""
        verified = self.advance(signed, proofs)
        cp = verified.checkpoint
        verify_inclusion(tlog.leaf_hash(leaf), index, cp.size, inclusion, cp.root)
        return verified


def cosign(verified: Verified, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    """This witness's cosignature line for a checkpoint it has verified as consistent."""
    return note.cosign(verified.checkpoint.format(), name, key, timestamp)


def cosigners(
    signed: bytes, coordinator: note.Verifier, witnesses: Mapping[str, bytes]
) -> tuple[str, ...]:
    """The witnesses (member id -> identity key) whose cosignatures on the note verify.

    A cosignature line that claims a known witness but does not verify is VerificationError.
    """
    return _cosigners_of(_opened(signed, coordinator, witnesses), witnesses)


def check_quorum(
    signed: bytes, coordinator: note.Verifier, witnesses: Mapping[str, bytes], quorum: int
) -> tuple[str, ...]:
    """The cosigners of the note; VerificationError if fewer than ``quorum`` witnesses."""
    return _at_least(cosigners(signed, coordinator, witnesses), quorum)


def _opened(signed: bytes, coordinator: note.Verifier, witnesses: Mapping[str, bytes]) -> note.Note:
    """The note opened with the coordinator's key and the keys of the witnesses that signed
    a line of it (looking only those up: a round may have a thousand candidates)."""
    _, lines = parse_note(signed)
    named = {line.name for line in lines}
    verifiers = [coordinator] + [
        note.Verifier.cosigner(name, Ed25519PublicKey.from_public_bytes(witnesses[name]))
        for name in sorted(named & witnesses.keys())
    ]
    return note.open_note(signed, verifiers)


def _cosigners_of(opened: note.Note, witnesses: Mapping[str, bytes]) -> tuple[str, ...]:
    found = {s.name for s in opened.signatures if s.timestamp is not None}
    return tuple(sorted(found & set(witnesses)))


def _at_least(found: tuple[str, ...], quorum: int) -> tuple[str, ...]:
    if len(found) < quorum:
        raise VerificationError(
            f"the checkpoint carries {len(found)} witness cosignatures, {quorum} are needed"
        )
    return found


#: True only while ``witnessed`` builds a proof: nothing else can make a ``Witnessed``.
_BUILDING: ContextVar[bool] = ContextVar("building a Witnessed proof", default=False)


@dataclass(frozen=True)
class Witnessed:
    """Proof that a quorum of a round's candidates cosigned a checkpoint: what a node's round
    machine needs before it masks its input or reveals shares.

    It binds the round and the witness quorum the round froze. Only ``witnessed`` builds
    one, after checking the cosignatures; a direct construction, ``dataclasses.replace``
    included, raises LocalProtocolError.
    """

    round_id: bytes
    quorum: int
    size: int  # of the cosigned checkpoint
    cosigners: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _BUILDING.get():
            raise LocalProtocolError("only scfed.witness.witnessed builds a Witnessed proof")


@contextmanager
def _building() -> Iterator[None]:
    token = _BUILDING.set(True)
    try:
        yield
    finally:
        _BUILDING.reset(token)


def witnessed(
    verified: Verified, coordinator: note.Verifier, announce: Announce, registry: Registry,
    quorum: int,
) -> Witnessed:  # fmt: skip
    """The proof that ``quorum`` of the round's candidates cosigned ``verified``.

    The coordinator must have signed the checkpoint, and each cosignature counts under the
    registry identity key of a candidate of ``announce``. VerificationError otherwise, or
    when fewer than ``quorum`` (at least one) of them cosigned.
    """
    if quorum < 1:
        raise LocalProtocolError("a witness quorum is at least one cosignature")
    candidates = set(announce.candidates)
    witnesses = {m.member_id: m.identity_key for m in registry.members if m.member_id in candidates}
    opened = _opened(verified.note, coordinator, witnesses)
    signer = (coordinator.name, coordinator.key_id)
    if not any((s.name, s.key_id) == signer and s.timestamp is None for s in opened.signatures):
        raise VerificationError("the checkpoint does not carry the coordinator's signature")
    checkpoint = parse_checkpoint(opened.text)
    found = _at_least(_cosigners_of(opened, witnesses), quorum)
    with _building():
        return Witnessed(announce.round_id, quorum, checkpoint.size, found)
