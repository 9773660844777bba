"""The round known-answer vectors (tests/vectors/round) regenerate byte for byte and replay.

The file is the transcript of one small round (tests/vectors/README.md). The generator, run
again from the stated seeds and inputs, must make every message byte for byte, and a
difference names the first message that differs. Fresh machines fed the recorded messages,
with each signature, checkpoint and cosignature verified rather than made again, must give
the recorded answers: the coordinator reaches the recorded result and charge, and each node,
with its randomness from its stated seed, sends the recorded replies. Keys and randomness are
derived here from the README's construction, not taken from the generator.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import deque
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protos.scfed.v1 import service_pb2 as spb
from scfed import note, tlog, wire
from scfed.checkpoint import parse_checkpoint
from scfed.dp.ledger import Budget
from scfed.errors import VerificationError
from scfed.note_format import parse_note
from scfed.registry import open_registry
from scfed.secagg import CoordinatorRound, Identity, MemoryGuard, NodePolicy, NodeRound
from scfed.secagg.coordinator import Outgoing, Task
from scfed.wire import envelope as env
from scfed.wire.codec import decode_announce, decode_result, decode_unmask_response
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.tasks import KeySet, MaskingTask, task_from_proto, task_to_proto
from scfed.witness import LogView, Witnessed, cosign, cosigners, witnessed
from tools import round_vectors

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "round" / "round-4x6.json"
TEXT = VECTORS.read_text(encoding="utf-8")
FILE: dict[str, Any] = json.loads(TEXT)
MESSAGES: list[dict[str, Any]] = FILE["messages"]
ORIGIN: str = FILE["registry"]["origin"]
TIMESTAMP: int = FILE["cosignature_timestamp"]
PERIOD: str = FILE["budget_period"]
MEMBERS = tuple(FILE["announce"]["candidates"])
DEADLINES = {d["after"] for d in FILE["deadlines"]}


class Stream:
    """The README's construction: SHAKE-256 of the seed string, read front to back."""

    def __init__(self, seed: str) -> None:
        self._output = hashlib.shake_256(seed.encode("utf-8")).digest(4096)
        self._read = 0

    def __call__(self, n: int) -> bytes:
        start, self._read = self._read, self._read + n
        assert self._read <= len(self._output), "a party read more than this test's stream"
        return self._output[start : self._read]


def key_of(party: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(Stream(FILE["seeds"]["identity"][party])(32))


def data(message: dict[str, Any]) -> bytes:
    return bytes.fromhex(message["hex"])


def named(message: dict[str, Any]) -> str:
    return f"message {message['index']} ({message['from']} {message['type']})"


def registry() -> Registry:
    governance = key_of(wire.GOVERNANCE).public_key().public_bytes_raw()
    return open_registry(Envelope.from_bytes(data(MESSAGES[0])), ORIGIN, governance)


def on_wire(task: Task) -> tuple[str, bytes]:
    """A task's transcript type and bytes: an envelope's, or a key set's or masking task's
    serialized Task."""
    if isinstance(task, Envelope):
        return task.type, task.to_bytes()
    kind = "task.keys" if isinstance(task, KeySet) else "task.masking"
    return kind, task_to_proto(task).SerializeToString()


LEAF_HASHES = [tlog.leaf_hash(data(MESSAGES[i])) for i in FILE["log"]]


def consistency(size1: int, size2: int) -> list[bytes]:
    return tlog.consistency_proof(size1, size2, LEAF_HASHES)


def first_difference(
    recorded: Sequence[dict[str, Any]], regenerated: Sequence[dict[str, Any]]
) -> str | None:
    """Which message differs first between the file and a regenerated round, if any."""
    for old, new in zip(recorded, regenerated, strict=False):
        if old != new:
            fields = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            return (
                f"{named(old)} differs in {', '.join(fields)}: sha256 {old['sha256']} in the "
                f"file, {new.get('sha256')} regenerated ({new.get('from')} {new.get('type')})"
            )
    if len(recorded) != len(regenerated):
        return f"the file has {len(recorded)} messages, the regenerated round {len(regenerated)}"
    return None


# ---- regeneration ----------------------------------------------------------------------------


def test_the_round_regenerates_byte_for_byte() -> None:
    regenerated = round_vectors.transcript()
    problem = first_difference(MESSAGES, regenerated["messages"])
    assert problem is None, problem
    for section, value in FILE.items():
        assert regenerated.get(section) == value, f"section {section!r} differs"
    assert regenerated.keys() == FILE.keys()
    assert round_vectors.dumps(regenerated) == TEXT


def test_a_difference_names_the_first_differing_message() -> None:
    changed = copy.deepcopy(MESSAGES)
    target = next(m for m in changed if m["type"] == wire.MASKED_INPUT)
    raw = bytearray(data(target))
    raw[-1] ^= 1
    target["hex"], target["sha256"] = raw.hex(), hashlib.sha256(raw).hexdigest()
    later = next(m for m in changed if m["type"] == wire.RESULT)
    later["hex"] = "00"
    problem = first_difference(MESSAGES, changed)
    assert problem is not None
    assert problem.startswith(f"message {target['index']} ({target['from']} round.masked_input)")
    assert "hex, sha256" in problem
    assert first_difference(MESSAGES, MESSAGES[:-1]) == (
        f"the file has {len(MESSAGES)} messages, the regenerated round {len(MESSAGES) - 1}"
    )


def test_the_generator_writes_the_same_file_every_time(tmp_path: Path) -> None:
    for run in ("first", "second"):
        assert round_vectors.main([str(tmp_path / run)]) == 0
    first = (tmp_path / "first" / VECTORS.name).read_bytes()
    assert first == (tmp_path / "second" / VECTORS.name).read_bytes()
    assert first == VECTORS.read_bytes()


# ---- what the file states --------------------------------------------------------------------


def test_the_stated_seeds_give_the_keys_the_registry_and_the_round() -> None:
    for party, public in FILE["keys"].items():
        assert key_of(party).public_key().public_bytes_raw().hex() == public, party
    held = registry()
    assert held.coordinator_key.hex() == FILE["keys"][wire.COORDINATOR]
    for member, stated in zip(held.members, FILE["registry"]["members"], strict=True):
        assert member.identity_key.hex() == FILE["keys"][member.member_id] == stated["identity_key"]
        tls = Stream(FILE["seeds"]["tls_cert_sha256"][member.member_id])(32)
        assert member.tls_cert_sha256.hex() == tls.hex() == stated["tls_cert_sha256"]
    announce = decode_announce(Envelope.from_bytes(data(MESSAGES[1])).body)
    assert announce.round_id == Stream(FILE["seeds"]["round_id"])(16)
    assert announce.round_id.hex() == FILE["announce"]["round_id"]
    assert list(announce.cells) == FILE["announce"]["cells"]
    assert vars(announce.noise) == FILE["announce"]["noise"]
    assert (announce.threshold, announce.n_min, announce.dim) == (3, 3, 6)


def test_every_message_carries_its_hash_and_every_signature_verifies() -> None:
    keys = {p: bytes.fromhex(k) for p, k in FILE["keys"].items()}
    checkpoint = b""
    for message in MESSAGES:
        raw = data(message)
        assert hashlib.sha256(raw).hexdigest() == message["sha256"], named(message)
        if message["type"] in wire.TYPES:
            envelope = Envelope.from_bytes(raw)
            assert (envelope.signer, envelope.type) == (message["from"], message["type"])
            env.verify(envelope, ORIGIN, envelope.type, keys[envelope.signer])
        elif message["type"] == "checkpoint":
            checkpoint = raw
            note.open_note(raw, [_coordinator_verifier()])
        elif message["type"] == "cosignature":
            witness = {message["from"]: keys[message["from"]]}
            assert cosigners(checkpoint + raw, _coordinator_verifier(), witness) == (
                message["from"],
            )
            opened = note.open_note(checkpoint + raw, [_cosigner(message["from"])])
            assert opened.signatures[0].timestamp == TIMESTAMP


def _coordinator_verifier() -> note.Verifier:
    return note.Verifier.ed25519(ORIGIN, key_of(wire.COORDINATOR).public_key())


def _cosigner(member: str) -> note.Verifier:
    return note.Verifier.cosigner(member, key_of(member).public_key())


def test_the_result_is_the_plain_sum_of_the_survivors_contributions() -> None:
    survivors = FILE["result"]["survivors"]
    contributions = {m: np.array(v, dtype=np.int64) for m, v in FILE["contributions"].items()}
    total = sum((contributions[m] for m in survivors), np.zeros(6, dtype=np.int64))
    assert [int(v) for v in total] == FILE["result"]["sums"]
    for member, values in FILE["inputs"].items():
        noise = contributions[member] - np.array(values, dtype=np.int64)
        assert noise.any(), member
        assert np.all(np.abs(noise) < 300), member  # sigma_l = sqrt(800)


def test_the_unmask_step_rebuilds_self_masks_and_the_dropped_nodes_pair_masks() -> None:
    survivors, dropped = FILE["result"]["survivors"], FILE["result"]["dropped"]
    assert dropped == ["node-003"] == list(FILE["dropouts"])
    senders = {t: [m["from"] for m in MESSAGES if m["type"] == t] for t in wire.TYPES}
    assert "node-003" in senders[wire.SHARE_KEYS]
    assert senders[wire.MASKED_INPUT] == survivors == senders[wire.UNMASK_RESPONSE]
    for message in MESSAGES:
        if message["type"] == wire.UNMASK_RESPONSE:
            response = decode_unmask_response(Envelope.from_bytes(data(message)).body)
            assert [owner for owner, _ in response.seed_shares] == survivors
            assert [owner for owner, _ in response.key_shares] == dropped


# ---- replay through fresh machines -----------------------------------------------------------


class CoordinatorReplay:
    """A fresh coordinator fed the file's node messages, cosignatures and deadlines, each
    verified; every message it sends must be the file's next one from it."""

    def __init__(self, messages: Sequence[dict[str, Any]]) -> None:
        self.messages = messages
        self.registry = registry()
        announce = decode_announce(Envelope.from_bytes(data(messages[1])).body)
        self.machine = CoordinatorRound(announce, self.registry, key_of(wire.COORDINATOR))
        self.verifier = _coordinator_verifier()
        self.sent: deque[tuple[str, str, bytes]] = deque()
        self.checkpoint, self.size = b"", 0

    def run(self) -> CoordinatorRound:
        self._let_go(self.machine.start())
        for message in self.messages:
            self._take(message)
            if message["index"] in DEADLINES:
                self._let_go(self.machine.close())
        assert not self.sent, f"the coordinator sent more: {list(self.sent)[:1]}"
        return self.machine

    def _let_go(self, tasks: list[Outgoing]) -> None:
        self.sent.extend((out.to, *on_wire(out.task)) for out in tasks)

    def _take(self, message: dict[str, Any]) -> None:
        sender, kind, raw = message["from"], message["type"], data(message)
        if sender == wire.GOVERNANCE:
            return
        if sender != wire.COORDINATOR:
            self._from_node(sender, kind, raw)
        elif kind == "checkpoint":
            self._checkpoint(raw)
        elif kind == "checkpoint.cosigned":
            witnesses = {m.member_id: m.identity_key for m in self.registry.members}
            assert raw.startswith(self.checkpoint), named(message)
            assert cosigners(raw, self.verifier, witnesses) == tuple(sorted(self.machine.cosigners))
        elif kind == wire.CHARGE:
            charge = self.machine.charge(PERIOD, None)
            assert charge is not None, named(message)
            assert charge.to_bytes() == raw, named(message)
        else:
            for to in message["to"]:
                got = self.sent.popleft() if self.sent else None
                assert got == (to, kind, raw), f"{named(message)} to {to} is not what was sent"

    def _from_node(self, sender: str, kind: str, raw: bytes) -> None:
        if kind != "cosignature":
            self._let_go(self.machine.receive(sender, Envelope.from_bytes(raw)))
            return
        witness = {sender: bytes.fromhex(FILE["keys"][sender])}
        assert cosigners(self.checkpoint + raw, self.verifier, witness) == (sender,)
        if self.machine.witnessing:
            self._let_go(self.machine.cosigned(sender, self.size))

    def _checkpoint(self, raw: bytes) -> None:
        """A checkpoint the coordinator signed over the file's log as it then stood."""
        checkpoint = parse_checkpoint(note.open_note(raw, [self.verifier]).text)
        assert checkpoint.origin == ORIGIN
        assert checkpoint.root == tlog.root_hash(LEAF_HASHES[: checkpoint.size])
        self.machine.checkpoint(checkpoint.size)
        self.checkpoint, self.size = raw, checkpoint.size


def test_a_fresh_coordinator_replays_the_recorded_messages_to_the_result() -> None:
    machine = CoordinatorReplay(MESSAGES).run()
    (result,) = [m for m in MESSAGES if m["type"] == wire.RESULT]
    assert machine.outcome is not None
    assert machine.outcome.to_bytes() == data(result)
    sums = np.frombuffer(decode_result(machine.outcome.body).sums, dtype="<i8")
    assert [int(v) for v in sums] == FILE["result"]["sums"]


def test_the_replay_refuses_a_node_message_with_a_broken_signature() -> None:
    forged = copy.deepcopy(MESSAGES)
    target = next(m for m in forged if m["type"] == wire.SHARE_KEYS)
    envelope = Envelope.from_bytes(data(target))
    signature = envelope.signature[:-1] + bytes([envelope.signature[-1] ^ 1])
    target["hex"] = (
        Envelope(envelope.type, envelope.body, envelope.signer, signature).to_bytes().hex()
    )
    with pytest.raises(VerificationError, match=envelope.signer):
        CoordinatorReplay(forged).run()


def node_policy() -> NodePolicy:
    stated = FILE["policy"]["node"]
    budget = Budget(Fraction(stated["budget"]["cap"]), stated["budget"]["period"])
    return NodePolicy(
        min_n_min=stated["min_n_min"], max_cells=stated["max_cells"], budget=budget,
        min_t_collude=stated["min_t_collude"], noise_floor=Fraction(stated["noise_floor"]),
        adhoc=stated["adhoc"], adhoc_cap=Fraction(stated["adhoc_cap"]),
    )  # fmt: skip


class NodeReplay:
    """A fresh node, its randomness from its stated seed, fed the file's messages to it:
    each answer (a reply of its machine or its witness's cosignature) must be its next
    message in the file."""

    def __init__(self, member: str) -> None:
        assert FILE["policy"]["catalogue"] is None
        self.member, self.key, self.registry = member, key_of(member), registry()
        identity = Identity(member, self.key, self.registry)
        rng = Stream(FILE["seeds"]["random"][member])
        self.node = NodeRound(identity, node_policy(), MemoryGuard(), rng, period=PERIOD)
        self.view = LogView(ORIGIN, self.registry.coordinator_key)
        self.cosigned = b""

    def run(self) -> NodeRound:
        own = iter(m for m in MESSAGES if m["from"] == self.member)
        silent = FILE["dropouts"].get(self.member)
        for message in MESSAGES:
            if self.member not in message["to"] or self.node.phase.value == silent:
                continue
            answer = self._answer(message["type"], data(message))
            if answer is not None:
                expected = next(own, None)
                assert expected is not None, f"{self.member} answered {named(message)}"
                assert answer == data(expected), (
                    f"{self.member}'s answer to {named(message)} is not {named(expected)}"
                )
        assert next(own, None) is None, f"{self.member} sent more in the file"
        return self.node

    def _answer(self, kind: str, raw: bytes) -> bytes | None:
        node = self.node
        if kind == "checkpoint":
            verified = self.view.advance(raw, consistency)
            return cosign(verified, self.member, self.key, TIMESTAMP).encode()
        if kind == "checkpoint.cosigned":
            self.cosigned = raw
            return None
        if kind in ("task.keys", "task.masking"):
            task = task_from_proto(spb.Task.FromString(raw))
            if isinstance(task, KeySet):
                return node.on_keys(task).to_bytes()
            assert isinstance(task, MaskingTask)
            return node.on_masking(task, self._proof()).to_bytes()
        return self._envelope(Envelope.from_bytes(raw))

    def _envelope(self, envelope: Envelope) -> bytes | None:
        node = self.node
        if envelope.type == wire.ANNOUNCE:
            inputs = np.array(FILE["inputs"][self.member], dtype=np.int64)
            return node.on_announce(envelope, lambda _: inputs).to_bytes()
        if envelope.type == wire.UNMASK_REQUEST:
            return node.on_unmask(envelope, self._proof()).to_bytes()
        if envelope.type == wire.REGISTRY:
            assert open_registry(envelope, ORIGIN, _governance()) == self.registry
            return None
        node.on_outcome(envelope)
        return None

    def _proof(self) -> Witnessed:
        """The witness proof built from the cosigned checkpoint the coordinator served."""
        verified = self.view.advance(self.cosigned, consistency)
        node = self.node
        return witnessed(
            verified, self.view.verifier, node.announce, self.registry, node.witness_quorum
        )


def _governance() -> bytes:
    return key_of(wire.GOVERNANCE).public_key().public_bytes_raw()


@pytest.mark.parametrize("member", MEMBERS)
def test_a_fresh_node_gives_its_recorded_answers(member: str) -> None:
    node = NodeReplay(member).run()
    assert [int(v) for v in node.contribution] == FILE["contributions"][member]
    (result,) = [m for m in MESSAGES if m["type"] == wire.RESULT]
    if member in FILE["dropouts"]:
        assert node.phase.value == FILE["dropouts"][member]
        assert node.outcome is None
    else:
        assert node.outcome is not None
        assert node.outcome.to_bytes() == data(result)


def test_the_log_holds_every_signed_message_once_in_order() -> None:
    signed = [m["index"] for m in MESSAGES if m["type"] in wire.TYPES]
    assert sorted(FILE["log"]) == signed
    request = next(m["index"] for m in MESSAGES if m["type"] == wire.UNMASK_REQUEST)
    before = FILE["log"].index(request)
    # The unmask request is logged before the checkpoint its witnesses cosign.
    last_checkpoint = [m for m in MESSAGES if m["type"] == "checkpoint"][-1]
    size = parse_checkpoint(parse_note(data(last_checkpoint))[0]).size
    assert before == size - 1
