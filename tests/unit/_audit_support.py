"""Real protocol logs for the auditor's tests, and what a malicious coordinator does to them.

``honest_log`` runs four in-memory rounds of one federation (all survive; dropouts; an abort;
every member a candidate) and concatenates their leaves after one governance-signed registry.
The forging helpers re-sign changed messages with the coordinator's real key, or a member's,
as an attacker holding that key could. Nothing here opens a socket; ``write_log_dir`` writes
an exported log directory for the command-line tests.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import envelope as env
from scfed import note, tlog
from scfed.envelope import Envelope
from scfed.messages import Domain, Member, encode
from scfed.secagg._table import Phase
from scfed.secagg.driver import Federation, federation, run_round
from tests.unit._support import Rng, int64_vector, make_announce

DIM = 4


@dataclass(frozen=True)
class Log:
    fed: Federation
    leaves: tuple[bytes, ...]
    #: Where each round's leaves start, in order: all survive, dropouts, abort, everyone.
    starts: tuple[int, ...]

    @property
    def origin(self) -> str:
        return self.fed.registry.origin

    @property
    def governance_key(self) -> bytes:
        return self.fed.governance_key.public_key().public_bytes_raw()

    def round_leaves(self, number: int) -> range:
        stops = (*self.starts[1:], len(self.leaves))
        return range(self.starts[number], stops[number])


def _round(
    fed: Federation,
    candidates: tuple[str, ...],
    seed: bytes,
    vanish: dict[str, Phase] | None = None,
) -> list[bytes]:
    threshold = len(candidates) // 2 + 1  # nodes refuse t <= n / 2
    announce = make_announce(fed, candidates, threshold, 3, dim=DIM, round_seed=seed)
    inputs = {m: int64_vector(seed + m.encode(), DIM) for m in candidates}
    return run_round(fed, announce, inputs, Rng(b"run:" + seed), vanish_after=vanish).log


@functools.cache
def honest_log() -> Log:
    """Four rounds of six members: all five candidates survive; node-003 vanishes after
    advertising and node-004 after sharing keys (dropped); three vanish and the round aborts;
    all six take part, so six responses answer a t = 4 request."""
    fed = federation(6, Rng(b"audit-federation"))
    five = tuple(sorted(fed.member_keys))[:5]
    logs = [
        _round(fed, five, b"all"),
        _round(fed, five, b"dropouts", {"node-003": Phase.ADVERTISING, "node-004": Phase.SHARING}),
        _round(fed, five, b"abort", dict.fromkeys(five[2:], Phase.ADVERTISING)),
        _round(fed, tuple(sorted(fed.member_keys)), b"everyone"),
    ]
    leaves, starts = [logs[0][0]], []
    for log in logs:
        starts.append(len(leaves))
        leaves += log[1:]
    return Log(fed, tuple(leaves), tuple(starts))


def checkpoint(fed: Federation, leaves: Sequence[bytes], size: int | None = None) -> bytes:
    """The coordinator-signed checkpoint of the first ``size`` leaves (all by default)."""
    size = len(leaves) if size is None else size
    root = tlog.root_hash([tlog.leaf_hash(leaf) for leaf in leaves[:size]])
    text = note.Checkpoint(fed.registry.origin, size, root).format()
    return note.sign_note(text, [note.Signer(fed.registry.origin, fed.coordinator_key)])


def envelope(data: bytes) -> Envelope:
    return Envelope.from_bytes(data)


def find(log: Log, number: int, type_: str, signer: str | None = None) -> int:
    """The index of round ``number``'s first leaf of this type (and signer)."""
    for index in log.round_leaves(number):
        sealed = envelope(log.leaves[index])
        if sealed.type == type_ and signer in (None, sealed.signer):
            return index
    raise AssertionError(f"round {number} has no {type_} from {signer}")


def resign(fed: Federation, type_: str, signer: str, body: Domain | bytes) -> bytes:
    """A message signed with the real key of ``signer`` (the coordinator's, or a member's)."""
    key = fed.coordinator_key if signer == env.COORDINATOR else fed.member_keys[signer]
    raw = body if isinstance(body, bytes) else encode(body)
    return env.seal(key, type_, signer, fed.registry.origin, raw).to_bytes()


def forge(log: Log, index: int, change: Callable[[Envelope], Domain]) -> list[bytes]:
    """The log's leaves with leaf ``index`` changed and re-signed by its own signer's key."""
    sealed = envelope(log.leaves[index])
    leaves = list(log.leaves)
    leaves[index] = resign(log.fed, sealed.type, sealed.signer, change(sealed))
    return leaves


def sybil_log() -> Log:
    """A round in which the coordinator invented node-999: a member its own registry lists
    but the governance-signed registry does not; everything else is a real round."""
    base = honest_log().fed
    key = Ed25519PrivateKey.from_private_bytes(Rng(b"sybil")(32))
    sybil = Member("node-999", "node-999", key.public_key().public_bytes_raw(), bytes(32), "x")
    registry = replace(base.registry, members=(*base.registry.members, sybil))
    fed = Federation(
        registry, {**base.member_keys, "node-999": key}, base.coordinator_key, base.governance_key
    )
    candidates = ("node-000", "node-001", "node-002", "node-999")
    log = _round(fed, candidates, b"sybil")
    leaves = [base.signed_registry.to_bytes(), *log[1:]]
    return Log(base, tuple(leaves), (1,))


def substitute(value: bytes) -> bytes:
    """Different bytes of the same length."""
    return bytes([value[0] ^ 1]) + value[1:]


def shifted_sums(sums: bytes) -> bytes:
    """The sums with the first one changed by one."""
    values = np.frombuffer(sums, dtype="<i8").copy()
    values[0] += 1
    return values.tobytes()


def write_log_dir(path: Path, leaves: Sequence[bytes], note_bytes: bytes) -> None:
    """An exported log directory: ``checkpoint`` the note, ``entries`` length-prefixed leaves."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "checkpoint").write_bytes(note_bytes)
    (path / "entries").write_bytes(b"".join(len(x).to_bytes(4, "big") + x for x in leaves))
