"""In-memory rounds (scfed.secagg.driver.run_round) checked against a plain numpy sum.

Each node adds its noise before masking, so a result must equal, exactly, the sum of what
the survivors contributed (x_u + e_u), and each contribution must differ from its input by
a small noise share. The driver runs the witnessing steps with real cosignatures: a node that
vanished cosigns nothing, so with fewer than t survivors left the unmask request never goes
out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from scfed import wire
from scfed.errors import VerificationError
from scfed.secagg import Identity, NodePolicy, NodeRound, UnmaskGuard, driver
from scfed.secagg._table import Phase
from scfed.secagg.coordinator import NO_WITNESS_QUORUM
from scfed.secagg.driver import Federation, Report, federation
from scfed.wire.codec import decode_abort
from scfed.wire.envelope import Envelope
from scfed.witness import LogView, Witnessed, witnessed
from tests.unit._support import Random, Rng, make_announce

Int64s = npt.NDArray[np.int64]
DROP_POINTS = (Phase.ADVERTISING, Phase.SHARING, Phase.MASKING)
_FEDERATIONS: dict[int, Federation] = {}


def _federation(n: int) -> Federation:
    if n not in _FEDERATIONS:
        _FEDERATIONS[n] = federation(n, Rng(b"round-federation"))
    return _FEDERATIONS[n]


@dataclass
class Observed:
    """What the nodes of one run_round did, seen from inside the driver."""

    report: Report
    nodes: dict[str, NodeRound] = field(default_factory=dict)
    unmask_requests: list[str] = field(default_factory=list)


def _observed_round(
    fed: Federation,
    inputs: Mapping[str, Int64s],
    vanish_after: Mapping[str, Phase],
    *,
    threshold: int,
    n_min: int = 3,
    seed: bytes = b"",
) -> Observed:
    nodes: dict[str, NodeRound] = {}
    unmasked: list[str] = []

    class Recording(NodeRound):
        def __init__(
            self, identity: Identity, policy: NodePolicy, guard: UnmaskGuard, rng: Random,
            **kwargs: Any,
        ) -> None:  # fmt: skip
            super().__init__(identity, policy, guard, rng, **kwargs)
            nodes[identity.member_id] = self

        def on_unmask(self, request: Envelope, witnessed: Witnessed) -> Envelope:
            unmasked.append(self.identity.member_id)
            return super().on_unmask(request, witnessed)

    candidates = tuple(sorted(inputs))
    dim = len(next(iter(inputs.values())))
    announce = make_announce(fed, candidates, threshold, n_min, dim=dim, round_seed=seed)
    with mock.patch.object(driver, "NodeRound", Recording):
        report = driver.run_round(
            fed, announce, inputs, Rng(b"run:" + seed), vanish_after=vanish_after
        )
    for member, contributed in report.contributions.items():
        if contributed.size:
            _assert_small_noise(contributed - inputs[member])
    return Observed(report, nodes, unmasked)


def _assert_small_noise(noise: Int64s) -> None:
    """The test announce's sigma_l^2 is 8: a share beyond 20 sigma_l would be absurd."""
    assert np.all(np.abs(noise) <= 57), noise


def _decoded_sums(report: Report) -> Int64s:
    result = report.result
    assert result is not None, decode_abort(report.outcome.body).reason
    return np.frombuffer(result.sums, dtype="<i8").astype(np.int64)


def _expected(observed: Observed, survivors: list[str]) -> Int64s:
    stacked = np.stack([observed.report.contributions[m] for m in survivors])
    total: Int64s = np.sum(stacked, axis=0, dtype=np.int64)
    return total


PLAUSIBLE = 2**52  # the test announce's plausibility bound
int64s = st.integers(-PLAUSIBLE, PLAUSIBLE)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(4, 12), dim=st.integers(1, 6), seed=st.binary(max_size=6))
def test_round_equals_numpy_sum_of_survivors(
    data: st.DataObject, n: int, dim: int, seed: bytes
) -> None:
    fed = _federation(12)
    candidates = sorted(fed.member_keys)[:n]
    threshold, n_min = n // 2 + 1, 3
    quorum = max(threshold, n_min)
    inputs = {
        m: np.array(data.draw(st.lists(int64s, min_size=dim, max_size=dim)), dtype=np.int64)
        for m in candidates
    }
    count = data.draw(st.integers(0, n), label="how many vanish")
    gone = data.draw(st.permutations(candidates), label="order")[:count]
    vanish = {m: data.draw(st.sampled_from(DROP_POINTS), label=m) for m in gone}
    observed = _observed_round(fed, inputs, vanish, threshold=threshold, n_min=n_min, seed=seed)
    shared = [m for m in candidates if vanish.get(m) is not Phase.ADVERTISING]
    survivors = [m for m in shared if vanish.get(m) is not Phase.SHARING]
    answering = [m for m in survivors if vanish.get(m) is not Phase.MASKING]
    outcome = observed.report.outcome
    if len(shared) < quorum or len(survivors) < quorum:
        # Too few inputs: abort without unmasking anything.
        event("aborted before unmasking")
        assert outcome.type == wire.ABORT
        assert observed.unmask_requests == []
        assert "unmasking" not in observed.report.phases
        assert all(node.phase is not Phase.UNMASKING for node in observed.nodes.values())
        assert all(node.phase is not Phase.FINISHED for node in observed.nodes.values())
    elif len(answering) < threshold:
        # Too few survivors are left to cosign the log: no unmask request goes out.
        event("aborted for want of witnesses before the unmask request")
        assert outcome.type == wire.ABORT
        assert decode_abort(outcome.body).reason == NO_WITNESS_QUORUM
        assert observed.unmask_requests == []
        assert "unmasking" not in observed.report.phases
        assert "witnessing-unmasking" in observed.report.phases
    else:
        event("completed")
        result = observed.report.result
        assert result is not None
        assert result.survivors == tuple(survivors)
        np.testing.assert_array_equal(
            _decoded_sums(observed.report), _expected(observed, survivors)
        )
        assert sorted(observed.unmask_requests) == answering
        for member in answering:
            assert observed.nodes[member].phase is Phase.FINISHED
            assert observed.nodes[member].outcome == outcome
    for member, phase in vanish.items():
        # It went silent once it reached that phase, unless the round ended before.
        assert observed.nodes[member].phase in (phase, Phase.ABORTED)


def _inputs(members: list[str], dim: int) -> dict[str, Int64s]:
    rng = Rng(b"fixed-inputs")
    return {m: np.frombuffer(rng(8 * dim), dtype="<i8") >> 12 for m in members}  # within 2^51


def test_round_without_dropouts() -> None:
    fed = _federation(5)
    members = sorted(fed.member_keys)
    inputs = _inputs(members, 50)
    inputs[members[0]][:3] = [-PLAUSIBLE, -1, PLAUSIBLE]
    observed = _observed_round(fed, inputs, {}, threshold=3, seed=b"none")
    np.testing.assert_array_equal(_decoded_sums(observed.report), _expected(observed, members))
    assert set(observed.report.phases) == {
        "advertising", "sharing", "witnessing-masking", "masking", "witnessing-unmasking",
        "unmasking", "finished",
    }  # fmt: skip
    assert all(node.phase is Phase.FINISHED for node in observed.nodes.values())


def test_round_result_is_not_any_single_input() -> None:
    fed = _federation(4)
    members = sorted(fed.member_keys)
    inputs = {m: np.full(2, i + 1, dtype=np.int64) for i, m in enumerate(members)}
    observed = _observed_round(fed, inputs, {}, threshold=3, seed=b"small")
    sums = _decoded_sums(observed.report)
    np.testing.assert_array_equal(sums, _expected(observed, members))
    assert np.all(np.abs(sums - 10) <= 4 * 57)  # 1 + 2 + 3 + 4, plus four noise shares


def test_survivors_vanishing_before_unmask_still_complete_with_t_answers() -> None:
    fed = _federation(7)
    members = sorted(fed.member_keys)
    inputs = _inputs(members, 8)
    vanish = {members[1]: Phase.MASKING, members[4]: Phase.MASKING, members[6]: Phase.MASKING}
    observed = _observed_round(fed, inputs, vanish, threshold=4, seed=b"late")
    result = observed.report.result
    assert result is not None
    assert result.survivors == tuple(members)  # their masked inputs arrived: they count
    np.testing.assert_array_equal(_decoded_sums(observed.report), _expected(observed, members))
    assert sorted(observed.unmask_requests) == [m for m in members if m not in vanish]


def test_too_few_survivors_left_to_witness_abort_before_the_unmask_request() -> None:
    fed = _federation(7)
    members = sorted(fed.member_keys)
    vanish = dict.fromkeys(members[:4], Phase.MASKING)
    observed = _observed_round(fed, _inputs(members, 4), vanish, threshold=4, seed=b"silent")
    assert observed.report.outcome.type == wire.ABORT
    assert decode_abort(observed.report.outcome.body).reason == NO_WITNESS_QUORUM
    assert observed.unmask_requests == []  # 3 witnesses of 7 survivors: t = 4 is needed
    assert all(observed.nodes[m].phase is Phase.ABORTED for m in members[4:])


def test_the_driver_builds_real_proofs_from_cosigned_checkpoints() -> None:
    fed = _federation(5)
    members = sorted(fed.member_keys)
    log = driver.MemoryLog(fed)
    witnesses = [driver.Witness(m, fed.member_keys[m], fed.registry) for m in members]
    size, signed = log.checkpoint()
    lines = [w.cosign(signed, log) for w in witnesses[:3]]
    announce = make_announce(fed, tuple(members), 3, 3)
    view = LogView(fed.registry.origin, fed.registry.coordinator_key)
    for count in (2, 3):
        cosigned = view.opened(signed + "".join(lines[:count]).encode())
        if count < 3:
            with pytest.raises(VerificationError, match="2 witness cosignatures, 3 are needed"):
                witnessed(cosigned, view.verifier, announce, fed.registry, 3)
            continue
        proof = witnessed(cosigned, view.verifier, announce, fed.registry, 3)
        assert (proof.round_id, proof.size, proof.cosigners) == (
            announce.round_id, size, tuple(members[:3]),
        )  # fmt: skip


def test_mixed_dropouts_sum_the_survivors_only() -> None:
    fed = _federation(9)
    members = sorted(fed.member_keys)
    inputs = _inputs(members, 16)
    vanish = {
        members[0]: Phase.ADVERTISING,
        members[3]: Phase.SHARING,
        members[5]: Phase.SHARING,
        members[8]: Phase.MASKING,
    }
    observed = _observed_round(fed, inputs, vanish, threshold=5, seed=b"mixed")
    survivors = [m for m in members if vanish.get(m) not in (Phase.ADVERTISING, Phase.SHARING)]
    np.testing.assert_array_equal(_decoded_sums(observed.report), _expected(observed, survivors))
    assert observed.report.result is not None
    assert observed.report.result.survivors == tuple(survivors)


@pytest.mark.parametrize("phase", [Phase.NEW, Phase.ADVERTISING, Phase.SHARING])
def test_too_few_before_masking_abort_without_unmask_request(phase: Phase) -> None:
    fed = _federation(6)
    members = sorted(fed.member_keys)
    vanish = dict.fromkeys(members[:3], phase)  # 3 of 6 remain, quorum is 4
    observed = _observed_round(fed, _inputs(members, 4), vanish, threshold=4, seed=b"few")
    assert observed.report.outcome.type == wire.ABORT
    assert observed.unmask_requests == []
    assert "unmasking" not in observed.report.phases
    assert all(node.phase in (Phase.ABORTED, phase) for node in observed.nodes.values()), {
        m: node.phase for m, node in observed.nodes.items()
    }
