"""How long an audit takes (``scfed bench audit``): a real log of many rounds, audited.

A benchmark, not a test: it draws keys and inputs from the operating system's randomness.
Every round runs the real nodes and coordinator (``scfed.secagg.driver``); the log is their
leaves after one governance-signed registry, closed by a coordinator-signed checkpoint.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np

from auditor.verify import audit
from scfed import note, tlog
from scfed.checkpoint import Checkpoint
from scfed.dp.contribution import Ints
from scfed.dp.ledger import MAX_RHO_CAP, Budget
from scfed.dp.params import MAGNITUDE, Noise
from scfed.errors import ScfedError
from scfed.secagg.driver import Federation, federation, run_round
from scfed.wire.messages import Announce, layout_hash
from tools.bench_secagg import on_graph

#: Sigma 4000 grid units for R = 1000: 100 releases of 50 stay far inside the default cap.
NOISE = Noise("4000", 1, MAGNITUDE, 1000, "1", 2**40)


def build_log(
    fed: Federation, rounds: int, dim: int, graph: str = "complete"
) -> tuple[list[bytes], bytes]:
    """The leaves of ``rounds`` rounds of every member on ``graph`` ("sparse": SecAgg+ with
    the rule's k and t), and a checkpoint of them."""
    members = tuple(sorted(fed.member_keys))
    cells = tuple(f"cell-{i}" for i in range(dim))
    noise = replace(NOISE, planned=len(members)) if graph == "sparse" else NOISE
    leaves = [fed.signed_registry.to_bytes()]
    for _ in range(rounds):
        announce = Announce(
            os.urandom(16), "bench", dim, members, len(members) // 2 + 1, 3,
            fed.registry.version, 60_000, layout_hash(cells), noise,
        )  # fmt: skip
        announce, policy = on_graph(announce, graph, 0)
        inputs = {m: _random_input(dim) for m in members}
        report = run_round(fed, announce, inputs, os.urandom, policy=policy)
        leaves += report.log[1:]  # one registry leaf
    origin = fed.registry.origin
    root = tlog.root_hash([tlog.leaf_hash(leaf) for leaf in leaves])
    text = Checkpoint(origin, len(leaves), root).format()
    return leaves, note.sign_note(text, [note.Signer(origin, fed.coordinator_key)])


def _random_input(dim: int) -> Ints:
    """Random 24-bit figures."""
    return (np.frombuffer(os.urandom(8 * dim), dtype=np.uint64) >> np.uint64(40)).astype(np.int64)


def bench_audit(
    rounds: int, nodes: int, dim: int, graph: str = "complete"
) -> tuple[float, float, int]:
    """(seconds to build the log, seconds to audit it, leaves); ScfedError if the audit
    fails."""
    if not 1 <= rounds <= 10_000 or not 3 <= nodes <= 1000 or not 1 <= dim <= 1_000_000:
        raise ScfedError("rounds must be 1..1e4, nodes 3..1000 and dim 1..1e6")
    fed = federation(nodes, os.urandom)
    started = time.perf_counter()
    leaves, checkpoint = build_log(fed, rounds, dim, graph)
    built = time.perf_counter()
    report = audit(
        leaves,
        checkpoint=checkpoint,
        governance_key=fed.governance_key.public_key().public_bytes_raw(),
        origin=fed.registry.origin,
        budget=Budget(MAX_RHO_CAP),
    )
    audited = time.perf_counter()
    report.check()
    return built - started, audited - built, len(leaves)
