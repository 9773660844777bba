"""A node's refusal, from the rule it applied to the operator's screen: its code, what it
carries (never the firm's figures), the coordinator's checks, and the round it ends."""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np
import pytest

from scfed import wire
from scfed.errors import ImportRowError, PrivacyBudgetError, RefusedError, RemoteProtocolError
from scfed.secagg import CoordinatorRound, NodePolicy
from scfed.secagg.driver import Federation, federation
from scfed.secagg.refusals import check_refusal, hopeless_after, refusal_code, summary
from scfed.wire import envelope as env
from scfed.wire.codec import decode_refusal, encode
from scfed.wire.messages import Refusal
from tests.unit._support import Rng, make_announce, new_node


@functools.cache
def _fed() -> Federation:
    return federation(5, Rng(b"refusals"))


def _round(threshold: int = 3) -> CoordinatorRound:
    fed = _fed()
    announce = make_announce(fed, tuple(sorted(fed.member_keys)), threshold, 3)
    active = CoordinatorRound(announce, fed.registry, fed.coordinator_key)
    active.start()
    return active


def _refused_by(member: str, active: CoordinatorRound, policy: NodePolicy) -> Refusal:
    """The refusal ``member``'s node signs when the announce breaks its ``policy``."""
    node = new_node(_fed(), member, policy=policy)
    with pytest.raises((RefusedError, PrivacyBudgetError)) as caught:
        node.on_announce(active.announce_envelope, lambda a: np.zeros(a.dim, dtype=np.int64))
    signed = node.refusal(caught.value)
    assert signed is not None
    return check_refusal(signed, member, active.announce, active.announce_hash, _fed().registry)


def test_a_node_s_refusal_names_the_rule_and_the_coordinator_checks_it() -> None:
    active = _round()
    floor = _refused_by("node-000", active, NodePolicy(adhoc=True, noise_floor=Fraction(1000)))
    assert (floor.code, floor.round_id) == ("noise-floor", active.announce.round_id)
    assert "noise floor" in floor.detail
    n_min = _refused_by("node-001", active, NodePolicy(adhoc=True, min_n_min=4))
    assert n_min.code == "parameters"
    adhoc = _refused_by("node-002", active, NodePolicy(adhoc=False))
    assert adhoc.code == "catalogue"
    node = new_node(_fed(), "node-003")
    signed = env.seal(_fed().member_keys["node-003"], wire.REFUSAL, "node-003",
                      _fed().registry.origin, encode(floor))  # fmt: skip
    other = _round(4)  # another announce of the same round id
    with pytest.raises(RemoteProtocolError, match="another round or announce"):
        check_refusal(signed, "node-003", other.announce, other.announce_hash, _fed().registry)
    with pytest.raises(RemoteProtocolError, match="does not verify"):
        check_refusal(signed, "node-004", active.announce, active.announce_hash, _fed().registry)
    assert node.refusal(RefusedError("x")) is None  # no announce read: nothing to refer to


def test_a_refusal_for_a_bad_file_says_so_and_nothing_of_the_file() -> None:
    error = ImportRowError("figures.csv:7: field 'value': '12345.6x' is not a number")
    active = _round()
    node = new_node(_fed(), "node-000")
    node.on_announce(active.announce_envelope, lambda a: np.zeros(a.dim, dtype=np.int64))
    signed = node.refusal(error)
    assert signed is not None
    body = decode_refusal(signed.body)
    assert (body.code, body.detail) == ("data", "")
    assert refusal_code(PrivacyBudgetError("past its cap 0.5")) == "budget"


def test_the_round_ends_when_the_refusals_leave_fewer_than_it_needs() -> None:
    active = _round(threshold=3)  # five candidates, max(t, n_min) = 3
    one = {"node-000": Refusal(active.announce.round_id, active.announce_hash, "budget", "")}
    assert hopeless_after(active, one) == ""
    three = one | {
        m: Refusal(active.announce.round_id, active.announce_hash, "noise-floor", "")
        for m in ("node-001", "node-002")
    }
    assert hopeless_after(active, three) == "2 of the 5 nodes in advertising left, 3 needed"
    codes = {m: r.code for m, r in three.items()}
    assert summary(codes) == (
        "3 nodes refused: noise below their floor (2), past their privacy budget (1)"
    )
    assert summary({"node-000": "week"}) == "1 node refused: not the current week by their clock"
    assert summary({}) == ""
