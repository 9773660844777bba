"""SecAgg+ rounds on a sparse graph: the sum is exact, nodes refuse a graph they did not derive
or one below the rule, and the auditor re-derives the graph from the announce.

The graph and its (k, t) come from scfed.secagg.graph; the rounds run in memory through the
real machines (scfed.secagg.driver.run_round), with the witness steps.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import date
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.requests import Limits, announce_for
from protos.scfed.v1 import service_pb2 as spb
from scfed import wire
from scfed.errors import RefusedError, RemoteProtocolError
from scfed.secagg import NodePolicy, NodeRound
from scfed.secagg._table import Phase
from scfed.secagg.driver import Federation, Report, federation, run_round
from scfed.secagg.graph import round_graph, sparse_graph
from scfed.wire.codec import decode_abort, decode_share_keys, noise_to_proto
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce, ShareKeys
from scfed.wire.tasks import KeySet
from tests.unit._audit_support import Log, assert_caught, envelope, failed, forge, run_audit
from tests.unit._support import TEST_NOISE, Rng, make_announce, new_node
from tests.unit._support import forge as seal_as_coordinator

Int64s = npt.NDArray[np.int64]
N, DROPOUT = 30, Fraction(1, 10)
RULE = sparse_graph(N, NodePolicy().sparse_corrupt, DROPOUT)
PLANNED = N - int(N * DROPOUT)  # the noise, and so the graph, is sized for 27 survivors
DROP_POINTS = (Phase.ADVERTISING, Phase.SHARING, Phase.MASKING)


@functools.cache
def _federation() -> Federation:
    return federation(N, Rng(b"sparse-federation"))


def _announce(seed: bytes, *, k: int | None = None, t: int | None = None, dim: int = 3) -> Announce:
    assert RULE is not None
    fed = _federation()
    base = make_announce(
        fed, tuple(sorted(fed.member_keys)), 2, 3, dim=dim, round_seed=seed,
        noise=dataclasses.replace(TEST_NOISE, sigma="20", planned=PLANNED),
    )  # fmt: skip
    return dataclasses.replace(
        base, neighbours=RULE.k if k is None else k, threshold=RULE.threshold if t is None else t,
        graph_seed=Rng(b"graph:" + seed)(32),
    )  # fmt: skip


def _run(announce: Announce, vanish: dict[str, Phase], seed: bytes) -> Report:
    fed = _federation()
    rng = Rng(b"inputs:" + seed)
    inputs = {
        m: np.frombuffer(rng(8 * announce.dim), dtype="<i8") % 10**9 for m in announce.candidates
    }
    return run_round(fed, announce, inputs, Rng(b"run:" + seed), vanish_after=vanish)


def _sums(report: Report) -> Int64s:
    result = report.result
    assert result is not None, decode_abort(report.outcome.body).reason
    return np.frombuffer(result.sums, dtype="<i8").astype(np.int64)


def test_the_rule_gives_a_sparse_graph_for_the_test_federation() -> None:
    assert RULE is not None
    assert RULE.k < N - 1
    assert 2 * RULE.threshold > RULE.k + 1


@settings(max_examples=10, deadline=None)
@given(
    seed=st.binary(min_size=1, max_size=4),
    drops=st.lists(
        st.tuples(st.integers(0, N - 1), st.sampled_from(DROP_POINTS)),
        max_size=N - PLANNED,
        unique_by=lambda d: d[0],
    ),
)
def test_a_sparse_round_equals_the_numpy_sum_of_its_survivors(
    seed: bytes, drops: list[tuple[int, Phase]]
) -> None:
    announce = _announce(seed)
    vanish = {announce.candidates[i]: phase for i, phase in drops}
    report = _run(announce, vanish, seed)
    result = report.result
    assert result is not None, decode_abort(report.outcome.body).reason
    survivors = result.survivors
    expected = sum(
        (report.contributions[m].astype(np.int64) for m in survivors),
        np.zeros(announce.dim, dtype=np.int64),
    )
    assert np.array_equal(_sums(report), expected)
    gone_before_input = {m for m, p in vanish.items() if p is not Phase.MASKING}
    assert set(survivors) == set(announce.candidates) - gone_before_input


def test_each_node_shares_keys_only_with_its_neighbours() -> None:
    announce = _announce(b"neighbours")
    report = _run(announce, {}, b"neighbours")
    graph = round_graph(announce)
    shares = [envelope(leaf) for leaf in report.log if envelope(leaf).type == wire.SHARE_KEYS]
    assert len(shares) == N
    for sealed in shares:
        receivers = {receiver for receiver, _ in decode_share_keys(sealed.body).shares}
        assert receivers == graph[sealed.signer]
        assert len(receivers) == announce.neighbours


def _joined(announce: Announce, member: str) -> tuple[NodeRound, list[bytes]]:
    """``member``'s node after the announce, and every candidate's advertisement."""
    fed = _federation()
    sealed = seal_as_coordinator(fed, wire.ANNOUNCE, announce)
    adverts, nodes = [], {}
    for m in announce.candidates:
        candidate = new_node(fed, m, policy=NodePolicy(adhoc=True))
        advert = candidate.on_announce(sealed, lambda a: np.zeros(a.dim, dtype=np.int64))
        adverts.append(advert.to_bytes())
        nodes[m] = candidate
    return nodes[member], adverts


def test_a_node_refuses_keys_of_nodes_outside_the_graph_it_derives() -> None:
    announce = _announce(b"outsider")
    me = announce.candidates[0]
    node, adverts = _joined(announce, me)
    with pytest.raises(RefusedError, match="outside this node's graph"):
        node.on_keys(KeySet(announce.round_id, tuple(adverts)))


@pytest.mark.parametrize(
    ("k", "t", "reason"),
    [(4, 3, "sparse graph"), (None, 4, "not above half of a neighbourhood")],
)
def test_a_node_refuses_a_sparse_graph_below_the_rule(k: int | None, t: int, reason: str) -> None:
    announce = _announce(b"small", k=k, t=t)
    fed = _federation()
    node = new_node(fed, announce.candidates[0], policy=NodePolicy(adhoc=True))
    with pytest.raises(RefusedError, match=reason):
        node.on_announce(
            seal_as_coordinator(fed, wire.ANNOUNCE, announce),
            lambda a: np.zeros(a.dim, dtype=np.int64),
        )


def test_a_node_refuses_to_unmask_past_the_dropouts_the_graph_was_chosen_for() -> None:
    announce = _announce(b"too-many")
    gone = dict.fromkeys(announce.candidates[: N - PLANNED + 1], Phase.SHARING)
    with pytest.raises(RefusedError, match="26 survivors are fewer than the 27"):
        _run(announce, gone, b"too-many")


def test_the_auditor_passes_a_sparse_round_and_fails_one_off_its_graph() -> None:
    announce = _announce(b"audit")
    report = _run(announce, {announce.candidates[3]: Phase.MASKING}, b"audit")
    log = Log(_federation(), tuple(report.log), (0,))
    assert failed(run_audit(log)) == {}
    index = next(i for i, leaf in enumerate(log.leaves) if envelope(leaf).type == wire.SHARE_KEYS)
    sealed = envelope(log.leaves[index])
    graph = round_graph(announce)
    stranger = next(
        m for m in announce.candidates if m != sealed.signer and m not in graph[sealed.signer]
    )

    def wider(original: Envelope) -> ShareKeys:
        body = decode_share_keys(sealed.body)
        shares = tuple(sorted((*body.shares, (stranger, b"\x00" * 16))))
        return dataclasses.replace(body, shares=shares)

    assert_caught(run_audit(log, forge(log, index, wider)), "round.graph", sealed.signer)


@functools.cache
def _large() -> Federation:
    return federation(120, Rng(b"sparse-operator"))


def _requested(graph: str, *, planned: int = 108, threshold: int = 0, n: int = 120) -> Announce:
    fed = _large()
    noise = dataclasses.replace(TEST_NOISE, sigma="40", planned=planned)
    request = spb.StartRoundRequest(
        query="test.inventory", cells=["a", "b"], candidates=sorted(fed.member_keys)[:n],
        noise=noise_to_proto(noise), graph=graph, threshold=threshold,
    )  # fmt: skip
    return announce_for(
        request, registry=fed.registry, policy=None, connected=(),
        limits=Limits(max_cells=100, phase_timeout_ms=1000), today=date(2026, 12, 7),
    )  # fmt: skip


def test_the_operator_gets_a_sparse_graph_by_default_from_100_candidates() -> None:
    rule = sparse_graph(120, NodePolicy().sparse_corrupt, Fraction(12, 120))
    assert rule is not None
    sparse = _requested("")
    assert (sparse.neighbours, sparse.threshold, len(sparse.graph_seed)) == (
        rule.k, rule.threshold, 32,
    )  # fmt: skip
    assert _requested("").graph_seed != sparse.graph_seed  # fresh public randomness
    assert not _requested("complete").sparse
    assert not _requested("", n=99).sparse  # below SPARSE_FROM
    assert not _requested("", threshold=61).sparse  # the operator's t is for the complete graph


@pytest.mark.parametrize(
    ("graph", "changes", "reason"),
    [
        ("tree", {}, "not complete or sparse"),
        ("sparse", {"threshold": 61}, "threshold comes from the SecAgg"),
        ("sparse", {"planned": 3}, "no sparse graph meets the rule"),
    ],
)
def test_the_operator_cannot_ask_for_a_graph_outside_the_rule(
    graph: str, changes: dict[str, int], reason: str
) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        _requested(graph, **changes)


@pytest.mark.parametrize("n", [12, 19, 30])
def test_a_sparse_graph_the_operator_gets_for_a_small_round_is_one_a_default_node_accepts(
    n: int,
) -> None:
    # Below 20 candidates one colluding candidate is more than the default 1/20: the
    # coordinator must assume what the nodes assume, or every node refuses its graph.
    announce = _requested("sparse", n=n, planned=n - 1)
    assert announce.sparse
    NodePolicy().check(announce, _large().registry)
    with pytest.raises(RemoteProtocolError, match="no sparse graph meets the rule for 8"):
        _requested("sparse", n=8, planned=7)
