"""Known-answer vectors of one secure-aggregation round: ``python -m tools.round_vectors OUT``.

The round has four nodes, t = 3, n_min 3 and six cells; node-003 goes silent once it has
shared its keys, so the unmask step rebuilds both the survivors' self-mask seeds and
node-003's mask key. It runs through the real round machines and the witnessing steps of the
in-memory driver. Every party's randomness is the SHAKE-256 output of a stated seed string,
read front to back; identity keys are Ed25519 keys made from 32 such bytes; cosignatures
carry one fixed timestamp. The transcript (seeds, keys, registry, policies, each node's input
and contribution, every message in protocol order as its exact bytes and their SHA-256, the
protocol log's order and the result) is written as JSON to ``OUT/round-4x6.json``.
tests/vectors/README.md states the construction, so that another implementation can make
every byte again. Writing that one file is this module's only I/O.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import wire
from scfed.dp.contribution import Ints
from scfed.dp.params import MAGNITUDE, Noise
from scfed.secagg import CoordinatorRound, Identity, MemoryGuard, NodePolicy, NodeRound, Phase
from scfed.secagg.coordinator import Outgoing, Task
from scfed.secagg.driver import MAX_SERVED_COSIGNATURES, Federation, MemoryLog, Witness
from scfed.wire.codec import decode_result, decode_unmask_request
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce, Member, Registry, layout_hash
from scfed.wire.tasks import KeySet, MaskingTask, task_to_proto
from scfed.witness import Witnessed, cosign

#: Every seed string starts with this; a change of construction changes the version.
SEED = "scfed/round-vectors/v1"
ROUND_ID_SEED = f"{SEED}/round-id"
ORIGIN = "scfed.example/round-vectors"
FILE = "round-4x6.json"
MEMBERS = ("node-000", "node-001", "node-002", "node-003")
PARTIES = (wire.GOVERNANCE, wire.COORDINATOR, *MEMBERS)
THRESHOLD = 3
N_MIN = 3
CELLS = tuple(f"cell-{i}" for i in range(6))
QUERY = "vectors.round-4x6"
#: node-003 goes silent once it is in this phase: after it sent its share keys.
DROPOUTS = {"node-003": Phase.SHARING}
#: The timestamp of every cosignature: 2025-01-01T00:00:00Z.
TIMESTAMP = 1_735_689_600
#: The budget period of the nodes' clocks and of the coordinator's charge.
PERIOD = "2025"
#: sigma 40 over R = 10: each node adds N_Z(0, 800); a release costs rho 1/32.
NOISE = Noise("40", 1, MAGNITUDE, 10, "1", 10**6)
POLICY = NodePolicy(adhoc=True)
INPUTS = {
    "node-000": (120, 0, 45, 300, 7, 88),
    "node-001": (95, 12, 60, -25, 3, 140),
    "node-002": (200, 5, 0, 410, 9, 61),
    "node-003": (80, 30, 22, 150, 0, 99),
}
#: The transcript's types of the messages that are not signed envelopes.
KEYS_TASK = "task.keys"
MASKING_TASK = "task.masking"
CHECKPOINT = "checkpoint"
COSIGNATURE = "cosignature"
COSIGNED = "checkpoint.cosigned"


class Stream:
    """A party's randomness: SHAKE-256 of its seed string, read front to back.

    Each call returns the next ``n`` bytes of the one output, so only the order of the reads
    matters, not how they are split.
    """

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode("utf-8")
        self._read = 0

    def __call__(self, n: int) -> bytes:
        start, self._read = self._read, self._read + n
        return hashlib.shake_256(self._seed).digest(self._read)[start:]


def identity_seed(party: str) -> str:
    return f"{SEED}/identity/{party}"


def random_seed(member: str) -> str:
    return f"{SEED}/random/{member}"


def tls_seed(member: str) -> str:
    return f"{SEED}/tls/{member}"


def identity_key(party: str) -> Ed25519PrivateKey:
    """The Ed25519 key whose 32-byte seed is the start of the party's identity stream."""
    return Ed25519PrivateKey.from_private_bytes(Stream(identity_seed(party))(32))


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def federation() -> Federation:
    """The registry (version 1, one corporate group per member) and every party's key."""
    keys = {m: identity_key(m) for m in MEMBERS}
    members = tuple(
        Member(m, m, _public(key), Stream(tls_seed(m))(32), m) for m, key in keys.items()
    )
    coordinator = identity_key(wire.COORDINATOR)
    registry = Registry(ORIGIN, 1, _public(coordinator), members, ())
    return Federation(registry, keys, coordinator, identity_key(wire.GOVERNANCE))


def announce(registry: Registry) -> Announce:
    """The ad-hoc round the coordinator announces."""
    return Announce(
        Stream(ROUND_ID_SEED)(16), QUERY, len(CELLS), MEMBERS, THRESHOLD, N_MIN,
        registry.version, 60_000, layout_hash(CELLS), NOISE, CELLS,
    )  # fmt: skip


def on_wire(task: Task) -> tuple[str, bytes]:
    """A coordinator task's transcript type and exact bytes: an envelope's own bytes, or the
    serialized ``Task`` of a key set or masking task (without a receipt)."""
    match task:
        case Envelope():
            return task.type, task.to_bytes()
        case KeySet():
            return KEYS_TASK, task_to_proto(task).SerializeToString()
        case MaskingTask():
            return MASKING_TASK, task_to_proto(task).SerializeToString()


@dataclass
class Transcript:
    """Every message of the round in protocol order, and where the deadlines closed phases."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    deadlines: list[dict[str, Any]] = field(default_factory=list)

    def add(self, sender: str, to: Sequence[str], type_: str, data: bytes) -> None:
        self.messages.append(
            {
                "index": len(self.messages),
                "from": sender,
                "to": list(to),
                "type": type_,
                "sha256": hashlib.sha256(data).hexdigest(),
                "hex": data.hex(),
            }
        )

    def sent(self, tasks: Sequence[Outgoing]) -> None:
        """The coordinator's tasks, one message for each run of the same bytes."""
        for (type_, data), run in itertools.groupby(tasks, key=lambda out: on_wire(out.task)):
            self.add(wire.COORDINATOR, [out.to for out in run], type_, data)

    def deadline(self, phase: Phase) -> None:
        self.deadlines.append({"after": len(self.messages) - 1, "phase": phase.value})


class _Round:
    """The machines of the round, the protocol log, and the transcript they fill."""

    def __init__(self) -> None:
        self.fed = fed = federation()
        self.coordinator = CoordinatorRound(
            announce(fed.registry), fed.registry, fed.coordinator_key
        )
        self.nodes = {m: self._node(m) for m in MEMBERS}
        self.witnesses = {m: Witness(m, fed.member_keys[m], fed.registry) for m in MEMBERS}
        self.log = MemoryLog(fed)
        self.record = Transcript()
        self.record.add(wire.GOVERNANCE, PARTIES[1:], wire.REGISTRY, fed.signed_registry.to_bytes())
        self.cosigned = b""

    def _node(self, member: str) -> NodeRound:
        fed = self.fed
        identity = Identity(member, fed.member_keys[member], fed.registry)
        return NodeRound(
            identity, POLICY, MemoryGuard(), Stream(random_seed(member)), period=PERIOD
        )

    def run(self) -> None:
        coordinator = self.coordinator
        pending = coordinator.start()
        while pending or coordinator.witnessing:
            pending = self._witness() if coordinator.witnessing else self._exchange(pending)
        charge = coordinator.charge(PERIOD, None)
        if charge is None:
            raise AssertionError("the round ended without a result")
        self.log.append(charge)
        self.record.add(wire.COORDINATOR, [], wire.CHARGE, charge.to_bytes())

    def _silent(self, member: str) -> bool:
        return DROPOUTS.get(member) is self.nodes[member].phase

    def _exchange(self, tasks: list[Outgoing]) -> list[Outgoing]:
        """Send tasks, log and hand the coordinator the answers; close at the deadline."""
        coordinator = self.coordinator
        self.record.sent(tasks)
        self.log.coordinator_messages(tasks)
        replies = [(out.to, reply) for out in tasks if (reply := self._deliver(out)) is not None]
        pending: list[Outgoing] = []
        for member, reply in replies:
            self.log.append(reply)
            pending += coordinator.receive(member, reply)
        if not pending and not coordinator.phase.terminal and not coordinator.witnessing:
            self.record.deadline(coordinator.phase)
            pending = coordinator.close()
        return pending

    def _deliver(self, out: Outgoing) -> Envelope | None:
        member, task = out.to, out.task
        if self._silent(member):
            return None
        node = self.nodes[member]
        match task:
            case KeySet():
                reply = node.on_keys(task)
            case MaskingTask():
                reply = node.on_masking(task, self._proof(member))
            case Envelope() if task.type == wire.ANNOUNCE:
                reply = node.on_announce(task, lambda _: np.array(INPUTS[member], dtype=np.int64))
            case Envelope() if task.type == wire.UNMASK_REQUEST:
                reply = node.on_unmask(task, self._proof(member))
            case Envelope():
                node.on_outcome(task)
                return None
        self.record.add(member, [wire.COORDINATOR], reply.type, reply.to_bytes())
        return reply

    def _proof(self, member: str) -> Witnessed:
        return self.witnesses[member].proof(self.cosigned, self.log, self.nodes[member])

    def _witness(self) -> list[Outgoing]:
        """A witnessing step as the driver runs it, every cosignature at ``TIMESTAMP``: log
        the unmask request, sign a checkpoint, collect the present witnesses' cosignatures."""
        coordinator, log = self.coordinator, self.log
        request = coordinator.unmask_request
        if request is not None:
            log.append_once(request)
        size, signed = log.checkpoint()
        coordinator.checkpoint(size)
        self.record.add(wire.COORDINATOR, coordinator.witnesses, CHECKPOINT, signed)
        lines, released = self._cosignatures(signed, size)
        if coordinator.witnessing:
            raise AssertionError("the witnessing step found no quorum")
        self.cosigned = signed + "".join(sorted(lines)[:MAX_SERVED_COSIGNATURES]).encode()
        self.record.add(wire.COORDINATOR, [out.to for out in released], COSIGNED, self.cosigned)
        return released

    def _cosignatures(self, signed: bytes, size: int) -> tuple[list[str], list[Outgoing]]:
        """Each present witness's cosignature; those counted and the tasks they let go."""
        coordinator, lines, released = self.coordinator, [], []
        for member in coordinator.witnesses:
            if self._silent(member):
                continue
            verified = self.witnesses[member].view.advance(signed, self.log.consistency)
            line = cosign(verified, member, self.fed.member_keys[member], TIMESTAMP)
            self.record.add(member, [wire.COORDINATOR], COSIGNATURE, line.encode())
            if coordinator.witnessing:
                lines.append(line)
                released += coordinator.cosigned(member, size)
        return lines, released


def transcript() -> dict[str, Any]:
    """Run the round and return its transcript, the document the vector file holds."""
    run = _Round()
    run.run()
    fed, coordinator, messages = run.fed, run.coordinator, run.record.messages
    first = {m["hex"]: m["index"] for m in reversed(messages)}
    return {
        "description": (
            "A secure-aggregation round of 4 nodes, t = 3, n_min 3, 6 cells, in which "
            "node-003 goes silent after sending its share keys. See tests/vectors/README.md."
        ),
        "seeds": _seeds(),
        "keys": {p: _public(identity_key(p)).hex() for p in PARTIES},
        "registry": _registry(fed.registry),
        "policy": _policy(coordinator),
        "announce": _announce(coordinator.announce),
        "dropouts": {m: phase.value for m, phase in DROPOUTS.items()},
        "cosignature_timestamp": TIMESTAMP,
        "budget_period": PERIOD,
        "inputs": {m: list(values) for m, values in INPUTS.items()},
        "contributions": {m: _ints(node.contribution) for m, node in run.nodes.items()},
        "messages": messages,
        "deadlines": run.record.deadlines,
        "log": [first[leaf.hex()] for leaf in run.log.leaves],
        "result": _result(coordinator),
    }


def _seeds() -> dict[str, Any]:
    return {
        "identity": {p: identity_seed(p) for p in PARTIES},
        "random": {m: random_seed(m) for m in MEMBERS},
        "tls_cert_sha256": {m: tls_seed(m) for m in MEMBERS},
        "round_id": ROUND_ID_SEED,
    }


def _registry(registry: Registry) -> dict[str, Any]:
    members = [
        vars(m) | {"identity_key": m.identity_key.hex(), "tls_cert_sha256": m.tls_cert_sha256.hex()}
        for m in registry.members
    ]
    return {
        "origin": registry.origin,
        "version": registry.version,
        "coordinator_key": registry.coordinator_key.hex(),
        "members": members,
        "operators": [],
    }


def _policy(coordinator: CoordinatorRound) -> dict[str, Any]:
    node = vars(POLICY) | {
        "budget": {"cap": str(POLICY.budget.cap), "period": POLICY.budget.period},
        "noise_floor": str(POLICY.noise_floor),
        "adhoc_cap": str(POLICY.adhoc_cap),
        "sparse_corrupt": str(POLICY.sparse_corrupt),
    }
    return {"catalogue": None, "witness_quorum": coordinator.witness_quorum, "node": node}


def _announce(announce: Announce) -> dict[str, Any]:
    return vars(announce) | {
        "round_id": announce.round_id.hex(),
        "candidates": list(announce.candidates),
        "layout_hash": announce.layout_hash.hex(),
        "noise": vars(announce.noise),
        "cells": list(announce.cells),
        "graph_seed": announce.graph_seed.hex(),
    }


def _result(coordinator: CoordinatorRound) -> dict[str, Any]:
    outcome, request = coordinator.outcome, coordinator.unmask_request
    if outcome is None or outcome.type != wire.RESULT or request is None:
        raise AssertionError("the round ended without a result")
    result = decode_result(outcome.body)
    return {
        "survivors": list(result.survivors),
        "dropped": list(decode_unmask_request(request.body).dropped),
        "sums": _ints(np.frombuffer(result.sums, dtype="<i8")),
    }


def _ints(values: Ints) -> list[int]:
    return [int(v) for v in values]


def dumps(document: dict[str, Any]) -> str:
    """The vector file's exact text."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.round_vectors",
        description=f"Write the round known-answer vectors to OUT_DIR/{FILE}.",
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    args = parser.parse_args(argv)
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / FILE).write_text(dumps(transcript()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
