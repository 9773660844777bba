"""A catalogue entry chooses its round's graph: governance signs "complete" or "sparse" (or
leaves the coordinator's default by N), the coordinator announces it, and a node refuses a
sparse round of an entry signed for the complete graph."""

from __future__ import annotations

import functools
from datetime import date, timedelta
from pathlib import Path

import pytest

from coordinator.requests import Limits, announce_for
from governance.catalogue import read_catalogue
from protos.scfed.v1 import service_pb2 as spb
from scfed.catalogue import check_announce
from scfed.errors import ConfigError, RefusedError, RemoteProtocolError
from scfed.secagg import NodePolicy
from scfed.secagg.driver import Federation, federation
from scfed.wire.messages import Announce
from scfed.wire.policy import Policy, decode_policy, encode_policy
from tests.unchecked import unchecked_replace
from tests.unit._support import Rng

TODAY = date(2026, 12, 7)
MONDAY = TODAY - timedelta(days=TODAY.weekday())
KYUSHU = "fabrication/analog/90-180nm/200mm/JP-Kyushu"


def _policy(tmp_path: Path, graph: str | None) -> Policy:
    lines = [
        "[[entry]]", 'name = "weekly-stock"', 'metric = "stock"', f'commodities = ["{KYUSHU}"]',
        "horizon_weeks = 1", "bound = 100", 'sigma = "1200"', 'concentration_sigma = "9000"',
        "concentration_scale = 10000", "planned_percent = 90",
        *([f'graph = "{graph}"'] if graph is not None else []),
    ]  # fmt: skip
    path = tmp_path / "catalogue.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_catalogue(path, "scfed.test/m", 1)


@functools.cache
def _federation() -> Federation:
    return federation(40, Rng(b"entry-graph"))


def _announce(policy: Policy, graph: str = "") -> Announce:
    fed = _federation()
    request = spb.StartRoundRequest(
        query="weekly-stock", entry="weekly-stock", week=MONDAY.isoformat(), graph=graph
    )
    return announce_for(
        request, registry=fed.registry, policy=policy, connected=tuple(sorted(fed.member_keys)),
        limits=Limits(10**6, 1000), today=TODAY,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("graph", "sparse"), [(None, False), ("complete", False), ("sparse", True)]
)
def test_the_entry_s_graph_is_the_round_s_and_a_default_node_accepts_it(
    tmp_path: Path, graph: str | None, sparse: bool
) -> None:
    policy = _policy(tmp_path, graph)
    assert decode_policy(encode_policy(policy)) == policy  # signed with the entry
    announce = _announce(policy)
    assert announce.sparse is sparse
    check_announce(policy.entries[0], announce)
    NodePolicy().check(announce, _federation().registry)


def test_the_operator_may_run_an_unsigned_choice_but_not_sparse_against_complete(
    tmp_path: Path,
) -> None:
    assert _announce(_policy(tmp_path, None), "sparse").sparse
    assert not _announce(_policy(tmp_path, "sparse"), "complete").sparse
    with pytest.raises(RemoteProtocolError, match="runs on the complete graph"):
        _announce(_policy(tmp_path, "complete"), "sparse")


def test_a_node_refuses_a_sparse_round_of_an_entry_signed_for_the_complete_graph(
    tmp_path: Path,
) -> None:
    sparse = _announce(_policy(tmp_path, "sparse"))
    complete = _policy(tmp_path, "complete").entries[0]
    with pytest.raises(RefusedError, match="runs on the complete graph, not sparse"):
        check_announce(complete, sparse)


def test_a_catalogue_file_names_a_graph_that_exists(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="graph 'tree' is not complete or sparse"):
        _policy(tmp_path, "tree")
    bad = unchecked_replace(_policy(tmp_path, None).entries[0], graph="tree")
    with pytest.raises(RemoteProtocolError, match="not complete or sparse"):
        decode_policy(encode_policy(Policy("scfed.test/m", 1, "2026.1", "0.5", "year", (bad,))))
