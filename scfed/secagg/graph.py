"""The SecAgg+ graph: who shares keys and masks with whom, and the (k, t) that keep it safe. Pure.

SecAgg+ (Bell, Bonawitz, Gascón, Lepoint, Raykova, "Secure Single-Server Aggregation with
(Poly)Logarithmic Overhead", CCS 2020) replaces the complete graph of Bonawitz et al. (CCS
2017) by a random k-regular Harary graph: each node agrees masks only with its k neighbours
and Shamir-shares its secrets among its neighbourhood of k + 1 nodes (itself included) with
threshold t.

The graph (``neighbourhoods``). The candidates, in sorted order, are shuffled by Fisher-Yates
driven by the extendable output of SHAKE-256(b"scfed/secagg+/graph\\n" + seed): for i from n - 1
down to 1, j is the first of successive big-endian integers of ceil(b / 8) bytes, masked to
their b = bitlen(i) low bits, that is at most i (rejection, so no modulo bias), and positions
i and j swap. The shuffled list is a ring and each node is joined to the k / 2 nearest on each
side: the Harary graph H(n, k) with its nodes randomly permuted, as in the paper.

The parameters (``sparse_graph``, ``check_sparse``). Of the n nodes at most C = floor(corrupt
n) collude with the coordinator and at most D = floor(dropout n) drop out; B = C + D nodes are
"absent" (corrupt or dropped). The paper's three conditions are bounded here exactly, with
hypergeometric tails in integer arithmetic (``math.comb``; no floating point decides) and a
union bound over the n nodes, for a statistical security parameter sigma (40 bits by default)
and a correctness parameter eta (20 bits):

- connectivity: the honest survivors' graph stays connected. Removing a set from H(n, k)
  disconnects it only if the set holds two disjoint runs of k / 2 ring-consecutive nodes; a
  union bound over the n (n - k - 1) / 2 such pairs of runs, each all absent with probability
  B! (n - k)! / ((B - k)! n!) under the random permutation, must stay below 2^-(sigma + 1);
- secrecy: an honest node's k neighbours are a uniform k-subset of the n - 1 others, so its
  number c of corrupt neighbours is hypergeometric (n - 1, C, k). In the semi-malicious model
  the coordinator may ask some honest neighbours for the shares of a node's self-mask and
  others for those of its key; as each honest member of the neighbourhood answers one kind
  only, it learns both unless 2t > k + 1 + c (which also gives c < t, the semi-honest
  condition). Pr[c >= 2t - k - 1] must stay below 2^-(sigma + 1) / n; with the connectivity
  bound the security failure is below 2^-sigma;
- correctness: every node (a dropped one too, whose key must be rebuilt) keeps at least t
  answering neighbours. Corrupt nodes count as absent here as well (a conservative choice:
  the paper counts only dropouts), so the number of absent neighbours, hypergeometric (n - 1,
  B, k), may exceed k - t with probability below 2^-eta / n only: below 2^-eta in all.

``sparse_graph`` takes the smallest even k < n - 1 meeting all three, with the smallest t.
The paper's own statement of the bounds was not at hand; the conditions and the way they are
bounded (runs of k / 2 in the ring, hypergeometric quantiles, the budget split in two halves
of 2^-(sigma + 1)) follow the reference code of the authors' team (Google's fcp,
``secagg/server/graph_parameter_finder.cc``), which works in floating point over a population
of n, with 2t > k + c and only dropouts against correctness: each difference makes the bounds
here stricter (about 1.4 times its k at corrupt 1/20 and dropout 1/10). The tails are walked
incrementally with k and t, a few big-integer steps per k.

Limits. The bounds hold when the corrupt and dropped sets do not depend on the seed: the seed
must not be chosen (or ground) by the coordinator alone, and a coordinator that picks which
nodes drop after seeing the graph is not covered: nodes must themselves refuse to reveal
shares when fewer nodes survive than the dropout fraction allows. The bounds are worst cases
over at most C corrupt and D dropped nodes, so a small n can meet them with certainty (n = 20
at 1/20 and 1/10 means one corrupt and two dropped nodes: k = 10, t = 7). The search returns
None at once when 3 C + 2 D is too large for any k; near that edge it may scan every k below
n - 1 (about 0.1 s for n = 10,000), and its answers are cached.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scfed.wire.messages import Announce

SEED_BYTES = 32
DOMAIN = b"scfed/secagg+/graph\n"
SECURITY_BITS = 40
CORRECTNESS_BITS = 20


# --- the graph ---------------------------------------------------------------------------


class _Stream:
    """The SHAKE-256 output of one seed, read in order (a longer digest extends a shorter)."""

    def __init__(self, seed: bytes, expected: int) -> None:
        self._xof = hashlib.shake_256(DOMAIN + seed)
        self._buffer = self._xof.digest(max(expected, 64))
        self._used = 0

    def take(self, count: int) -> bytes:
        end = self._used + count
        if end > len(self._buffer):
            self._buffer = self._xof.digest(max(end, 2 * len(self._buffer)))
        chunk = self._buffer[self._used : end]
        self._used = end
        return chunk

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound), by rejection of masked big-endian draws."""
        bits = (bound - 1).bit_length()
        mask = (1 << bits) - 1
        while True:
            value = int.from_bytes(self.take((bits + 7) // 8), "big") & mask
            if value < bound:
                return value


def _ring(names: Sequence[str], seed: bytes) -> list[str]:
    """``names`` shuffled by Fisher-Yates driven by the seed's stream."""
    order = list(names)
    stream = _Stream(seed, 2 * len(order))
    for i in range(len(order) - 1, 0, -1):
        j = stream.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def _complete(names: Sequence[str]) -> dict[str, frozenset[str]]:
    everyone = frozenset(names)
    return {name: everyone - {name} for name in names}


def _harary(ring: Sequence[str], k: int) -> dict[str, frozenset[str]]:
    half = k // 2
    around = [*ring[-half:], *ring, *ring[:half]]  # position p of the ring is p + half here
    return {
        node: frozenset(around[p : p + half] + around[p + half + 1 : p + k + 1])
        for p, node in enumerate(ring)
    }


def neighbourhoods(candidates: Sequence[str], k: int, seed: bytes) -> dict[str, frozenset[str]]:
    """Each candidate's neighbours (never itself). k == 0 means the complete graph (every other
    candidate), and so does any k >= len(candidates) - 1. Otherwise k must be even and >= 2 and
    seed SEED_BYTES long: the Harary graph H(n, k) on the ring of the candidates permuted by a
    Fisher-Yates shuffle driven by SHAKE-256(b"scfed/secagg+/graph\\n" + seed); each node is
    joined to the k/2 nearest on each side. Symmetric. Raises ValueError for bad k or seed.
    Deterministic: the same (sorted candidates, k, seed) always gives the same graph;
    candidates are taken in sorted order whatever order they are passed in."""
    names = sorted(candidates)
    if len(set(names)) != len(names):
        raise ValueError("the candidates repeat a name")
    if k < 0:
        raise ValueError(f"k = {k} is negative")
    if k == 0 or k >= len(names) - 1:
        return _complete(names)
    if k % 2 or k < 2:
        raise ValueError(f"k = {k} must be even and at least 2 (or 0 for the complete graph)")
    if len(seed) != SEED_BYTES:
        raise ValueError(f"the graph seed must be {SEED_BYTES} bytes, not {len(seed)}")
    return _harary(_ring(names, seed), k)


def round_graph(announce: Announce) -> Mapping[str, frozenset[str]]:
    """The graph of an announced round: its candidates, ``neighbours`` (k) and graph seed.
    Derived once per round: every party of it asks again and again."""
    return _graph(announce.candidates, announce.neighbours, announce.graph_seed)


def planned_dropout(announce: Announce) -> Fraction:
    """The fraction of the candidates a round's noise plans to lose: the dropouts its sparse
    graph must tolerate (the node refuses to unmask past them)."""
    planned = announce.noise.planned_for(announce.n_min)
    return max(Fraction(0), 1 - Fraction(planned, len(announce.candidates)))


def rule_graph(n: int, corrupt: Fraction, dropout: Fraction) -> SparseGraph | None:
    """``sparse_graph``, or None when the colluders and dropouts leave nobody honest."""
    return sparse_graph(n, corrupt, dropout) if corrupt + dropout < 1 else None


@lru_cache(maxsize=64)
def _graph(candidates: tuple[str, ...], k: int, seed: bytes) -> Mapping[str, frozenset[str]]:
    return neighbourhoods(candidates, k, seed)  # shared: typed read-only


# --- the parameters ----------------------------------------------------------------------


@dataclass(frozen=True)
class SparseGraph:
    k: int  # neighbours of each node
    threshold: int  # Shamir threshold within each neighbourhood (of k + 1 nodes, the node included)


@dataclass(frozen=True)
class _Model:
    """The worst case the bounds are taken over, in whole nodes, and their scales: a tail
    ``tail`` of ``total`` k-subsets passes when tail * scale <= total."""

    n: int
    corrupt: int  # C, the most nodes colluding with the coordinator
    absent: int  # B = C + D, the most nodes corrupt or dropped
    security_bits: int
    correctness_bits: int

    @property
    def others(self) -> int:
        return self.n - 1

    @property
    def secrecy_scale(self) -> int:
        return self.n << (self.security_bits + 1)

    @property
    def correctness_scale(self) -> int:
        return self.n << self.correctness_bits


def _model(
    n: int, corrupt: Fraction, dropout: Fraction, security_bits: int, correctness_bits: int
) -> _Model:
    if n < 1:
        raise ValueError(f"n = {n}: there must be at least one node")
    if not (0 <= corrupt < 1 and 0 <= dropout < 1 and corrupt + dropout < 1):
        raise ValueError(f"fractions corrupt {corrupt} and dropout {dropout} must be in [0, 1)")
    if security_bits < 0 or correctness_bits < 0:
        raise ValueError("the security and correctness parameters must not be negative")
    c, d = math.floor(corrupt * n), math.floor(dropout * n)
    return _Model(n, c, c + d, security_bits, correctness_bits)


def _tail(population: int, marked: int, draws: int, at_least: int) -> int:
    """How many draws-subsets of the population hold at least ``at_least`` marked members."""
    return sum(
        math.comb(marked, x) * math.comb(population - marked, draws - x)
        for x in range(max(at_least, 0), min(marked, draws) + 1)
    )


def _connected(model: _Model, k: int, absent_runs: int, all_runs: int) -> bool:
    """The union bound on a split: pairs of runs times Pr[one pair all absent] <= 2^-(sigma+1),
    with ``absent_runs`` = B!/(B-k)! and ``all_runs`` = n!/(n-k)!."""
    n = model.n
    pairs_twice = n * (n - k - 1)
    return pairs_twice * absent_runs << (model.security_bits + 1) <= 2 * all_runs


def _least_threshold(k: int, corrupt_neighbours: int) -> int:
    """The smallest t with 2t > k + 1 + c: c = the most corrupt neighbours not negligible."""
    return (k + 1 + corrupt_neighbours) // 2 + 1


def _fail(bound: str, k: int, threshold: int, why: str) -> ValueError:
    return ValueError(f"(k = {k}, threshold = {threshold}) fails the {bound} bound: {why}")


def check_sparse(
    n: int,
    k: int,
    threshold: int,
    corrupt: Fraction,
    dropout: Fraction,
    *,
    security_bits: int = SECURITY_BITS,
    correctness_bits: int = CORRECTNESS_BITS,
) -> None:
    """ValueError naming the failed bound unless (k, threshold) meets the bounds for these
    fractions: the rule a node applies to the graph a coordinator announces."""
    model = _model(n, corrupt, dropout, security_bits, correctness_bits)
    if k % 2 or not 2 <= k < n - 1:
        raise ValueError(f"k = {k} must be even, at least 2 and below n - 1 = {n - 1}")
    if not 1 <= threshold <= k + 1:
        raise ValueError(f"threshold {threshold} outside 1..{k + 1}")
    total = math.comb(model.others, k)
    if not _connected(model, k, math.perm(model.absent, k), math.perm(n, k)):
        why = f"the honest survivors may split with probability above 2^-{security_bits + 1}"
        raise _fail("connectivity", k, threshold, why)
    many = 2 * threshold - k - 1
    if _tail(model.others, model.corrupt, k, many) * model.secrecy_scale > total:
        why = (
            f"a node may have {many} or more corrupt neighbours (2t > k + 1 + corrupt "
            f"neighbours fails) with probability above 2^-{security_bits + 1} / {n}"
        )
        raise _fail("secrecy", k, threshold, why)
    if _tail(model.others, model.absent, k, k - threshold + 1) * model.correctness_scale > total:
        why = (
            f"a node may keep fewer than {threshold} answering neighbours with probability "
            f"above 2^-{correctness_bits} / {n}"
        )
        raise _fail("correctness", k, threshold, why)


class _Cursor:
    """The tail of a hypergeometric law kept exactly as draws and the bound grow: ``tail`` =
    how many k-subsets of the population hold at least ``at_least`` marked members, and
    ``below`` = how many hold exactly ``at_least - 1``. Invariant: at_least <= k + 1."""

    def __init__(self, population: int, marked: int) -> None:
        self.population, self.marked = population, marked
        self.k = self.at_least = 0
        self.tail, self.below = 1, 0

    def _exactly(self, x: int) -> int:
        return math.comb(self.marked, x) * math.comb(self.population - self.marked, self.k - x)

    def draw(self) -> None:
        """One more draw: Pr_k+1[X >= a] = Pr_k[X >= a] + Pr_k[X = a - 1] (K - a + 1) / (N - k)."""
        big, marked, k, a = self.population, self.marked, self.k, self.at_least
        self.tail = (self.tail * (big - k) + self.below * (marked - a + 1)) // (k + 1)
        self.below = self.below * (big - marked - k + a - 1) // (k - a + 2)
        self.k = k + 1

    def raise_to(self, at_least: int) -> None:
        """Move the bound up to ``at_least`` (at most k + 1), dropping the terms below it."""
        while self.at_least < at_least:
            a, k, other = self.at_least, self.k, self.population - self.marked
            if self.below:
                term = self.below * (self.marked - a + 1) * (k - a + 1) // (a * (other - k + a))
            else:
                term = self._exactly(a)
            self.tail -= term
            self.below = term
            self.at_least = a + 1


def _infeasible(model: _Model) -> bool:
    """No k can work: E[c] <= m - 1 + k Pr[c >= m] and E[absent] <= r - 1 + k Pr[absent >= r],
    with m + 2r = k + 1 (m = 2t - k - 1, r = k - t + 1), need
    k (1 - (C + 2B) / N + eps_s + 2 eps_c) >= 2."""
    others = model.others
    eps = Fraction(1, model.secrecy_scale) + Fraction(2, model.correctness_scale)
    return others == 0 or 1 - Fraction(model.corrupt + 2 * model.absent, others) + eps <= 0


@lru_cache(maxsize=256)
def _search(model: _Model) -> SparseGraph | None:
    if model.n < 4 or _infeasible(model):
        return None
    others = model.others
    corrupt, absent = _Cursor(others, model.corrupt), _Cursor(others, model.absent)
    total, connected = 1, False
    for k in range(1, model.n - 1):
        corrupt.draw()
        absent.draw()
        total = total * (others - k + 1) // k
        if k % 2:
            continue
        # Connectivity only gets easier as k grows: once met, it need not be tested again.
        connected = connected or _connected(
            model, k, math.perm(model.absent, k), math.perm(model.n, k)
        )
        while corrupt.tail * model.secrecy_scale > total:
            corrupt.raise_to(corrupt.at_least + 1)
        threshold = _least_threshold(k, corrupt.at_least - 1)
        if connected and _answering(absent, k - threshold + 1) * model.correctness_scale <= total:
            return SparseGraph(k, threshold)
    return None


def _answering(absent: _Cursor, at_least: int) -> int:
    """The tail of the absent neighbours from ``at_least``: by the cursor, which only moves up
    (k - t + 1 never falls as k grows by 2, since c and so t grow by 2 at most)."""
    if at_least < absent.at_least:
        return _tail(absent.population, absent.marked, absent.k, at_least)
    absent.raise_to(at_least)
    return absent.tail


def sparse_graph(
    n: int,
    corrupt: Fraction,
    dropout: Fraction,
    *,
    security_bits: int = SECURITY_BITS,
    correctness_bits: int = CORRECTNESS_BITS,
) -> SparseGraph | None:
    """The smallest even k (with its t) that meets the paper's security and correctness bounds
    for n nodes of which at most a `corrupt` fraction collude with the coordinator and at most a
    `dropout` fraction drop out; None if no k < n - 1 does (then the complete graph is used)."""
    return _search(_model(n, corrupt, dropout, security_bits, correctness_bits))
