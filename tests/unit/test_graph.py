"""Unit tests for scfed.secagg.graph: the SecAgg+ Harary graph and the choice of (k, t).

For the record, at corrupt 1/20 and dropout 1/10 (sigma 40, eta 20) ``sparse_graph`` gives
k = 38, 56, 90, 110, 134, 140 for n = 100, 200, 500, 1000, 5000, 10000, against Flower's
k = 2 ceil(log2 n) + 1 = 15, 17, 19, 21, 27, 29: Flower's rule ignores the fractions and
the error bounds, and the exact bounds here need a neighbourhood five to seven times larger.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter, deque
from collections.abc import Mapping
from fractions import Fraction
from itertools import permutations

import pytest

from scfed.secagg import graph
from scfed.secagg.graph import SEED_BYTES, SparseGraph, check_sparse, neighbourhoods, sparse_graph

CORRUPT, DROPOUT = Fraction(1, 20), Fraction(1, 10)
#: (n, k, t) at CORRUPT and DROPOUT, sigma 40 and eta 20.
TABLE = [(100, 38, 23), (200, 56, 34), (500, 90, 57), (1000, 110, 70), (5000, 134, 85)]
TABLE += [(10000, 140, 89)]

Graph = Mapping[str, frozenset[str]]


def _names(n: int) -> list[str]:
    return [f"node-{i:05d}" for i in range(n)]


def _seed(i: int) -> bytes:
    return hashlib.sha256(b"test graph seed %d" % i).digest()


def _connected(g: Graph, keep: set[str]) -> bool:
    start = next(iter(keep))
    seen, todo = {start}, deque([start])
    while todo:
        for v in g[todo.popleft()] & keep:
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen == keep


# --- the graph ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k"), [(5, 2), (12, 4), (12, 10), (101, 6), (1000, 22)])
def test_the_graph_is_symmetric_regular_and_loop_free(n: int, k: int) -> None:
    g = neighbourhoods(_names(n), k, _seed(n))
    assert set(g) == set(_names(n))
    for u, near in g.items():
        assert len(near) == k
        assert u not in near
        assert all(u in g[v] for v in near)
    assert _connected(g, set(g))


def test_the_graph_is_a_ring_of_the_shuffled_candidates() -> None:
    names, k = _names(30), 6
    ring = graph._ring(names, _seed(1))
    assert sorted(ring) == names
    g = neighbourhoods(names, k, _seed(1))
    for p, u in enumerate(ring):
        assert g[u] == {ring[(p + d) % 30] for d in (-3, -2, -1, 1, 2, 3)}


def test_the_graph_is_deterministic_and_differs_between_seeds() -> None:
    names = _names(50)
    assert neighbourhoods(names, 4, _seed(1)) == neighbourhoods(list(names), 4, _seed(1))
    assert neighbourhoods(names, 4, _seed(1)) != neighbourhoods(names, 4, _seed(2))


def test_the_order_of_the_candidates_does_not_matter() -> None:
    names = _names(40)
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    assert neighbourhoods(shuffled, 6, _seed(3)) == neighbourhoods(names, 6, _seed(3))
    assert neighbourhoods(tuple(reversed(names)), 6, _seed(3)) == neighbourhoods(names, 6, _seed(3))


@pytest.mark.parametrize("k", [0, 9, 10, 11, 50])
def test_k_zero_or_at_least_n_minus_one_is_the_complete_graph(k: int) -> None:
    names = _names(10)
    g = neighbourhoods(names, k, b"")
    assert g == {u: frozenset(names) - {u} for u in names}


@pytest.mark.parametrize(
    ("k", "seed", "message"),
    [
        (3, bytes(SEED_BYTES), "even"),
        (1, bytes(SEED_BYTES), "even"),
        (-2, bytes(SEED_BYTES), "negative"),
        (4, bytes(SEED_BYTES - 1), "32 bytes"),
        (4, bytes(SEED_BYTES + 1), "32 bytes"),
        (4, b"", "32 bytes"),
    ],
)
def test_bad_k_or_seed_is_refused(k: int, seed: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        neighbourhoods(_names(10), k, seed)


def test_repeated_candidates_are_refused() -> None:
    with pytest.raises(ValueError, match="repeat"):
        neighbourhoods(["a", "b", "c", "d", "a"], 2, bytes(SEED_BYTES))


def _reference_ring(names: list[str], seed: bytes) -> list[str]:
    """The shuffle as the module docstring states it, written again from the text."""
    stream = hashlib.shake_256(b"scfed/secagg+/graph\n" + seed).digest(64 * len(names))
    order, used = list(names), 0
    for i in range(len(order) - 1, 0, -1):
        bits = i.bit_length()
        size = (bits + 7) // 8
        while True:
            j = int.from_bytes(stream[used : used + size], "big") & ((1 << bits) - 1)
            used += size
            if j <= i:
                break
        order[i], order[j] = order[j], order[i]
    return order


@pytest.mark.parametrize("n", [2, 5, 256, 257, 1000])
def test_the_shuffle_follows_its_specification(n: int) -> None:
    names = _names(n)
    assert graph._ring(names, _seed(n)) == _reference_ring(names, _seed(n))


def test_a_known_ring() -> None:
    # Pinned so that the derivation cannot change unnoticed: nodes rebuild the graph from it.
    assert graph._ring(list("abcdefgh"), bytes(SEED_BYTES)) == list("fhgdbeca")


def test_the_stream_reads_on_past_its_first_digest() -> None:
    stream = graph._Stream(_seed(0), 8)
    first = stream.take(100) + stream.take(1000)
    assert first == hashlib.shake_256(graph.DOMAIN + _seed(0)).digest(1100)


def _chi_square(counts: Counter[object], cells: int, draws: int) -> float:
    expected = draws / cells
    return sum((counts[c] - expected) ** 2 / expected for c in range(cells))


def test_every_position_of_a_node_is_about_equally_likely() -> None:
    names, draws = list("abcde"), 5000
    where: Counter[object] = Counter(graph._ring(names, _seed(i)).index("a") for i in range(draws))
    # 4 degrees of freedom: 30 is exceeded with probability about 5e-6.
    assert _chi_square(where, 5, draws) < 30


def test_every_permutation_is_about_equally_likely() -> None:
    names, draws = list("abcde"), 24000
    index = {p: i for i, p in enumerate(permutations(names))}
    seen: Counter[object] = Counter(
        index[tuple(graph._ring(names, _seed(i)))] for i in range(draws)
    )
    # 119 degrees of freedom (mean 119, deviation 15.4): 200 is over five deviations out.
    assert _chi_square(seen, 120, draws) < 200


def test_a_node_s_neighbours_are_about_equally_likely() -> None:
    names, draws = list("abcde"), 6000
    pairs = {p: i for i, p in enumerate(sorted(map(frozenset, _pairs("bcde"))))}
    seen: Counter[object] = Counter(
        pairs[neighbourhoods(names, 2, _seed(i))["a"]] for i in range(draws)
    )
    assert _chi_square(seen, 6, draws) < 30


def _pairs(letters: str) -> list[tuple[str, str]]:
    return [(x, y) for x in letters for y in letters if x < y]


# --- the parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k", "t"), TABLE)
def test_the_parameters_at_one_twentieth_corrupt_and_one_tenth_dropped(
    n: int, k: int, t: int
) -> None:
    assert sparse_graph(n, CORRUPT, DROPOUT) == SparseGraph(k, t)
    check_sparse(n, k, t, CORRUPT, DROPOUT)


def test_k_grows_like_log_n() -> None:
    ks = [sparse_graph(n, CORRUPT, DROPOUT) for n, _, _ in TABLE]
    degrees = [g.k for g in ks if g is not None]
    assert len(degrees) == len(TABLE)
    assert degrees == sorted(degrees)
    # From n = 1000 to 10000 log n grows by a third, and k by less; each tenfold n adds less.
    assert degrees[-1] < degrees[3] * 4 // 3
    assert degrees[-1] - degrees[3] < degrees[3] - degrees[0]
    assert all(g.k < 12 * math.log2(n) for (n, _, _), g in zip(TABLE, ks, strict=True) if g)


@pytest.mark.parametrize(
    ("n", "corrupt", "dropout"),
    [
        (3, CORRUPT, DROPOUT),  # no even k from 2 below n - 1
        (20, Fraction(1, 5), Fraction(1, 5)),  # 3 C + 2 D >= n - 1: no k can work
        (20, Fraction(0), Fraction(1, 2)),
        (10000, Fraction(0), Fraction(1, 2)),
        (20, Fraction(3, 20), Fraction(1, 5)),  # k would have to reach n - 1 or beyond
        (40, Fraction(1, 4), Fraction(1, 10)),
    ],
)
def test_no_sparse_graph_when_none_is_safe(n: int, corrupt: Fraction, dropout: Fraction) -> None:
    assert sparse_graph(n, corrupt, dropout) is None


def test_small_n_can_take_a_sparse_graph_outright() -> None:
    # n = 20 at 1/20 and 1/10: one corrupt and two dropped nodes at most, so k = 10 and t = 7
    # hold with certainty (a 10-connected graph survives 3 removals; 7 of 10 neighbours
    # answer; 2t > k + 1 + 1).
    assert sparse_graph(20, CORRUPT, DROPOUT) == SparseGraph(10, 7)


@pytest.mark.parametrize(("n", "k", "t"), TABLE[:4])
def test_check_refuses_a_smaller_k_or_threshold(n: int, k: int, t: int) -> None:
    with pytest.raises(ValueError, match="secrecy bound"):
        check_sparse(n, k, t - 1, CORRUPT, DROPOUT)
    with pytest.raises(ValueError, match="correctness bound"):
        check_sparse(n, k, k, CORRUPT, DROPOUT)
    for threshold in range(1, k):
        with pytest.raises(ValueError, match="bound"):
            check_sparse(n, k - 2, threshold, CORRUPT, DROPOUT)


def test_check_names_the_connectivity_bound() -> None:
    # Checked first: with 30 absent nodes two runs of one absent node each can cut the ring.
    with pytest.raises(ValueError, match="connectivity bound"):
        check_sparse(1000, 2, 2, Fraction(0), Fraction(3, 100))


def test_the_connectivity_bound_is_the_union_over_pairs_of_runs() -> None:
    # n = 10, k = 2 (a cycle), two absent nodes: 10 * 7 / 2 pairs of single positions, each
    # absent with probability 2 * 1 / (10 * 9), 35 / 45 in all: the exact chance that the two
    # are not adjacent, and so cut the cycle.
    model = graph._model(10, Fraction(0), Fraction(1, 5), 0, 20)
    assert not graph._connected(model, 2, math.perm(2, 2), math.perm(10, 2))  # 35/45 > 1/2
    assert graph._connected(model, 4, math.perm(2, 4), math.perm(10, 4))  # 2 < k: certain
    # n = 100, k = 4, four absent: 100 * 95 / 2 pairs times 4! / (100 * 99 * 98 * 97), about
    # 1.2e-3: below 2^-1, above 2^-41.
    lax = graph._model(100, Fraction(0), Fraction(1, 25), 0, 20)
    strict = graph._model(100, Fraction(0), Fraction(1, 25), 40, 20)
    assert graph._connected(lax, 4, math.perm(4, 4), math.perm(100, 4))
    assert not graph._connected(strict, 4, math.perm(4, 4), math.perm(100, 4))


@pytest.mark.parametrize(
    ("n", "k", "t", "message"),
    [
        (100, 37, 20, "even"),
        (100, 0, 1, "at least 2"),
        (100, 99, 60, "below n - 1"),
        (100, 38, 40, "outside"),
    ],
)
def test_check_refuses_malformed_parameters(n: int, k: int, t: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_sparse(n, k, t, CORRUPT, DROPOUT)


@pytest.mark.parametrize(
    ("corrupt", "dropout"),
    [(Fraction(-1, 10), Fraction(0)), (Fraction(1), Fraction(0)), (Fraction(1, 2), Fraction(1, 2))],
)
def test_fractions_outside_the_unit_interval_are_refused(
    corrupt: Fraction, dropout: Fraction
) -> None:
    with pytest.raises(ValueError, match="fractions"):
        sparse_graph(100, corrupt, dropout)
    with pytest.raises(ValueError, match="fractions"):
        check_sparse(100, 38, 23, corrupt, dropout)


def _brute(n: int, corrupt: Fraction, dropout: Fraction) -> SparseGraph | None:
    for k in range(2, n - 1, 2):
        for t in range(1, k + 2):
            try:
                check_sparse(n, k, t, corrupt, dropout)
            except ValueError:
                continue
            return SparseGraph(k, t)
    return None


@pytest.mark.parametrize("n", [4, 7, 10, 20, 33, 64, 150])
@pytest.mark.parametrize(
    ("corrupt", "dropout"),
    [
        (Fraction(0), Fraction(0)),
        (CORRUPT, DROPOUT),
        (Fraction(1, 5), Fraction(1, 10)),
        (Fraction(1, 3), Fraction(0)),
        (Fraction(0), Fraction(1, 3)),
    ],
)
def test_the_search_finds_what_checking_every_pair_finds(
    n: int, corrupt: Fraction, dropout: Fraction
) -> None:
    assert sparse_graph(n, corrupt, dropout) == _brute(n, corrupt, dropout)


@pytest.mark.parametrize(("population", "marked"), [(30, 0), (30, 7), (30, 29), (30, 30), (9, 4)])
def test_the_incremental_tails_equal_the_sums(population: int, marked: int) -> None:
    cursor = graph._Cursor(population, marked)
    for k in range(1, population + 1):
        cursor.draw()
        assert cursor.tail == graph._tail(population, marked, k, cursor.at_least)
        for at_least in range(cursor.at_least + 1, min(k + 1, cursor.at_least + 3) + 1):
            cursor.raise_to(at_least)
            assert cursor.tail == graph._tail(population, marked, k, at_least)


def test_the_tails_are_exact_hypergeometric_counts() -> None:
    # 10 draws of 20 with 5 marked: Pr[at least 3 marked] = 1 - (C(15,10) + 5 C(15,9)
    # + 10 C(15,8)) / C(20,10).
    low = math.comb(15, 10) + 5 * math.comb(15, 9) + 10 * math.comb(15, 8)
    assert graph._tail(20, 5, 10, 3) == math.comb(20, 10) - low


@pytest.mark.parametrize("n", [100, 1000])
def test_the_chosen_graph_survives_removals(n: int) -> None:
    chosen = sparse_graph(n, CORRUPT, DROPOUT)
    assert chosen is not None
    names = _names(n)
    removed = math.floor(CORRUPT * n) + math.floor(DROPOUT * n)
    draws = random.Random(f"removals {n}")
    for i in range(50):
        g = neighbourhoods(names, chosen.k, _seed(1000 + i))
        assert _connected(g, set(names))
        gone = set(draws.sample(names, removed))
        keep = set(names) - gone
        assert _connected(g, keep)
        # Every node, removed or not, keeps t answering neighbours (not counting itself).
        assert min(len(g[u] & keep) for u in names) >= chosen.threshold


def test_the_search_is_cached_and_fast_enough_to_be_repeated() -> None:
    first = sparse_graph(10000, CORRUPT, DROPOUT)
    assert sparse_graph(10000, Fraction(CORRUPT), Fraction(DROPOUT)) is first
