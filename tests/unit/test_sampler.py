"""Unit tests for scfed.dp.sampler: exactness in distribution, determinism, validation.

Every test draws from AES-CTR key streams under fixed keys, so each statistical check is a
deterministic computation: it either always passes or always fails. Goodness of fit uses a
chi-square test at significance 1e-4 with tail bins pooled until each expects >= 5 draws.
"""

from __future__ import annotations

import ast
import dataclasses
import decimal
import math
from collections.abc import Callable
from fractions import Fraction
from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from scfed.dp import sampler
from scfed.dp.distribution import pmf, support_radius
from scfed.dp.sampler import Keystream, sample
from scfed.errors import PrivacyParameterError

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

DRAWS = 200_000
SIGMA2S = [
    Fraction(1, 4),
    Fraction(1, 2),
    Fraction(1),
    Fraction(2),
    Fraction(9, 4),
    Fraction(10),
    Fraction(100),
    Fraction(1000),
    Fraction(800),
    Fraction(10**4),
    Fraction(90_000),
    Fraction(10**6),
    Fraction(8 * 10**6),
]
#: Standard normal quantile at 1 - 1e-4.
Z_1E4 = 3.7190164854556804
#: Width, in standard errors, allowed to moment estimates.
MOMENT_SES = 5.0


def _key(label: int) -> bytes:
    return bytes([label]) * 32


def _critical(dof: int) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile at 1 - 1e-4."""
    h = 2.0 / (9.0 * dof)
    return dof * (1.0 - h + Z_1E4 * math.sqrt(h)) ** 3


def _pool(observed: Floats, expected: Floats) -> tuple[Floats, Floats]:
    """Pool the tails of unimodal counts so that every bin expects at least 5."""
    core = np.flatnonzero(expected >= 5.0)
    lo, hi = int(core[0]), int(core[-1]) + 1
    obs = np.concatenate([[observed[:lo].sum()], observed[lo:hi], [observed[hi:].sum()]])
    exp = np.concatenate([[expected[:lo].sum()], expected[lo:hi], [expected[hi:].sum()]])
    for end, inner in ((0, 1), (-1, -2)):
        if exp[end] < 5.0:
            obs[inner] += obs[end]
            exp[inner] += exp[end]
            obs[end] = exp[end] = 0.0
    keep = exp > 0.0
    return obs[keep], exp[keep]


def _chi_square(draws: Ints, origin: int, probs: Floats) -> tuple[float, int]:
    """The statistic and degrees of freedom of ``draws`` against ``probs`` on origin, ..."""
    shifted = np.clip(draws - origin, 0, probs.size - 1)
    observed = np.bincount(shifted, minlength=probs.size).astype(np.float64)
    obs, exp = _pool(observed, draws.size * probs)
    return float(np.sum((obs - exp) ** 2 / exp)), obs.size - 1


def _assert_fits(draws: Ints, origin: int, probs: Floats) -> None:
    stat, dof = _chi_square(draws, origin, probs)
    assert dof >= 1
    assert stat < _critical(dof), f"chi-square {stat:.1f} on {dof} dof"


def _support(sigma2: Fraction) -> tuple[Ints, Floats]:
    radius = support_radius(sigma2)
    xs = np.arange(-radius, radius + 1, dtype=np.int64)
    return xs, pmf(sigma2, xs)


@cache
def _draws(sigma2: Fraction) -> Ints:
    return sample(sigma2, DRAWS, Keystream(_key(7)))


# ---- distribution ----


@pytest.mark.parametrize("sigma2", SIGMA2S, ids=str)
def test_draws_fit_the_discrete_gaussian(sigma2: Fraction) -> None:
    xs, probs = _support(sigma2)
    draws = _draws(sigma2)
    assert draws.dtype == np.int64
    assert draws.shape == (DRAWS,)
    _assert_fits(draws, int(xs[0]), probs)


@pytest.mark.parametrize("sigma2", SIGMA2S, ids=str)
def test_mean_is_zero_and_variance_is_exact(sigma2: Fraction) -> None:
    xs, probs = _support(sigma2)
    x2 = xs.astype(np.float64) ** 2
    variance = float(np.sum(x2 * probs))
    fourth = float(np.sum(x2 * x2 * probs))
    draws = _draws(sigma2).astype(np.float64)
    n = draws.size
    assert abs(draws.mean()) <= MOMENT_SES * math.sqrt(variance / n)
    assert abs(np.mean(draws**2) - variance) <= MOMENT_SES * math.sqrt((fourth - variance**2) / n)


def test_sum_of_node_shares_has_the_convolved_distribution() -> None:
    nodes, sigma2, length = 10, Fraction(50), 100_000
    total = np.zeros(length, dtype=np.int64)
    for node in range(nodes):
        total += sample(sigma2, length, Keystream(_key(100 + node)))
    xs, probs = _support(sigma2)
    x2 = xs.astype(np.float64) ** 2
    variance, fourth = float(np.sum(x2 * probs)), float(np.sum(x2 * x2 * probs))
    # The sum's second and fourth moments, for independent symmetric shares.
    sum_var = nodes * variance
    sum_fourth = nodes * fourth + 3 * nodes * (nodes - 1) * variance**2
    tolerance = MOMENT_SES * math.sqrt((sum_fourth - sum_var**2) / length)
    assert abs(np.mean(total.astype(np.float64) ** 2) - sum_var) <= tolerance
    convolved = probs
    for _ in range(nodes - 1):
        convolved = np.convolve(convolved, probs)
    _assert_fits(total, nodes * int(xs[0]), convolved)


def test_draws_near_the_overflow_bound_have_the_right_variance() -> None:
    sigma2 = Fraction(759_002_499, 100)  # 2 p q t^2 just below 2^60
    draws = sample(sigma2, 50_000, Keystream(_key(3))).astype(np.float64)
    se = math.sqrt(2.0 / draws.size)
    assert abs(np.mean(draws**2) / float(sigma2) - 1.0) <= MOMENT_SES * se


# ---- exact Bernoulli(exp(-gamma)) and its scalar fallback ----


def _assert_frequency(flags: NDArray[np.bool_], probability: float) -> None:
    se = math.sqrt(probability * (1.0 - probability) / flags.size)
    assert abs(flags.mean() - probability) <= MOMENT_SES * max(se, 1e-9)


@pytest.mark.parametrize(
    ("num", "den"),
    [(0, 1), (1, 3), (1, 1), (5, 2), (40, 7), (5 << 35, 2 << 35), (10**12 + 39, 3 * 10**12 + 117)],
    ids=["0", "1/3", "1", "5/2", "40/7", "5/2,64-bit", "1/3,64-bit"],
)
def test_bernoulli_exp_has_probability_exp_minus_gamma(num: int, den: int) -> None:
    count = 100_000
    flags = sampler._bernoulli_exp(np.full(count, num, dtype=np.int64), den, Keystream(_key(11)))
    _assert_frequency(flags, math.exp(-num / den))


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    original: Callable[..., bool] = getattr(sampler, name)

    def wrapped(*args: object) -> bool:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(sampler, name, wrapped)
    return calls


@pytest.mark.parametrize(
    ("num", "den"),
    [(6 * 10**18, 9 * 10**18), (7 * 10**18, 4 * 10**18)],
    ids=["gamma=2/3,K>1", "gamma=7/4,K>2"],
)
def test_bernoulli_exp_finishes_exactly_when_den_times_k_overflows(
    monkeypatch: pytest.MonkeyPatch, num: int, den: int
) -> None:
    calls = _counting(monkeypatch, "_bernoulli_exp_unit_scalar")
    count = 20_000
    flags = sampler._bernoulli_exp(np.full(count, num, dtype=np.int64), den, Keystream(_key(12)))
    assert len(calls) > count // 10
    _assert_frequency(flags, math.exp(-num / den))


def test_large_candidates_take_the_exact_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    sigma2 = Fraction(9, 4)
    forced = dataclasses.replace(sampler._params(sigma2), fast_limit=0)
    calls = _counting(monkeypatch, "_bernoulli_exp_scalar")
    source = Keystream(_key(13))
    parts: list[Ints] = []
    while sum(part.size for part in parts) < 20_000:
        parts.append(sampler._candidates(forced, 10_000, source))
    draws = np.concatenate(parts)
    assert len(calls) > draws.size // 2
    xs, probs = _support(sigma2)
    _assert_fits(draws, int(xs[0]), probs)


# ---- uniform integers ----


class _Scripted:
    """A source that hands out fixed words, one list per call."""

    def __init__(self, calls: list[list[int]]) -> None:
        self._calls = list(calls)

    def uint64(self, n: int) -> NDArray[np.uint64]:
        words = self._calls.pop(0)
        assert len(words) == n
        return np.array(words, dtype=np.uint64)

    def used_up(self) -> bool:
        return not self._calls


_SCALE3 = (1 << 32) // 3  # for bound 3 only the 32-bit word 2^32 - 1 is rejected


def test_uniform_redraws_only_the_rejected_words() -> None:
    top = (1 << 32) - 1
    # Halves, low first: [top, 2 s + 5, top]; then [top, s] for the two rejected; then [7].
    source = _Scripted([[top | (2 * _SCALE3 + 5) << 32, top], [top | _SCALE3 << 32], [7 | 9 << 32]])
    np.testing.assert_array_equal(sampler._uniform(source, 3, 3), [0, 2, 1])


@pytest.mark.parametrize("bound", [2, 6, 7, 1 << 20, (1 << 31) + 1, 1 << 32])
def test_uniform_stays_in_range_and_is_balanced(bound: int) -> None:
    draws = sampler._uniform(Keystream(_key(14)), bound, 60_000)
    assert draws.dtype == np.uint32
    assert int(draws.max()) < bound
    buckets = min(bound, 6)
    # Buckets of [0, bound) differ in width by at most one; expected counts use exact widths.
    pairs = list(pairwise(bound * i // buckets for i in range(buckets + 1)))
    observed = np.array([np.count_nonzero((draws >= lo) & (draws < hi)) for lo, hi in pairs])
    expected = np.array([draws.size * (hi - lo) / bound for lo, hi in pairs])
    stat = float(np.sum((observed - expected) ** 2 / expected))
    assert stat < _critical(buckets - 1)


def test_a_trial_redraws_the_words_above_the_largest_multiple() -> None:
    # Bernoulli(2/3), then Bernoulli(2/6): s = floor(2^32 / d), words >= s d are redrawn.
    s1, s2 = (1 << 32) // 3, (1 << 32) // 6
    first, second = (1 << 32) - 1, 6 * s2 + 1
    source = _Scripted([[first | second << 32], [0], [2 * s2]])
    answer, undecided = sampler._trial_pass(np.array([2], np.uint32), 3, 1, 2, source)
    # The redrawn 0 < 2 s1 passes K = 1, the redrawn 2 s2 fails K = 2: K even, so False.
    assert first >= 3 * s1
    assert not answer[0]
    assert not undecided[0]


def test_scalar_uniform_handles_bounds_beyond_64_bits() -> None:
    bound = 3 * (1 << 70) + 1
    source = Keystream(_key(15))
    draws = [sampler._uniform_scalar(source, bound) for _ in range(6_000)]
    assert all(0 <= d < bound for d in draws)
    thirds = np.bincount([3 * d // bound for d in draws], minlength=3)
    assert float(np.sum((thirds - 2_000) ** 2 / 2_000)) < _critical(2)


# ---- exact comparisons with e^-v ----


def _exp_floor_decimal(r: Fraction, bits: int) -> int:
    with decimal.localcontext() as context:
        context.prec = 200
        power = (decimal.Decimal(-r.numerator) / r.denominator).exp()
        return int((power * (1 << bits)).to_integral_value(decimal.ROUND_FLOOR))


@pytest.mark.parametrize(
    "r",
    [Fraction(v) for v in (0, 1, 2, 5, 22, 23, 40, 200)]
    + [Fraction(1, 3), Fraction(7, 29), Fraction(27555, 27556)],
    ids=str,
)
@pytest.mark.parametrize("bits", [0, 32, 96, 288])
def test_exp_floor_is_exact(r: Fraction, bits: int) -> None:
    assert sampler._exp_floor(r, bits) == _exp_floor_decimal(r, bits)


@pytest.mark.parametrize("t", [2, 3, 29, 301, 2829])
def test_exp_table_holds_the_thresholds_of_u_over_t(t: int) -> None:
    table = sampler._exp_table(t)
    assert table.dtype == np.uint32
    assert table.size == t
    assert int(table[0]) == (1 << 32) - 1  # below e^0 2^32 = 2^32: a tie settles it
    expected = [_exp_floor_decimal(Fraction(u, t), 32) for u in range(1, t)]
    assert table[1:].tolist() == expected


def test_d_resolves_a_word_equal_to_its_threshold() -> None:
    table = sampler._exp_table(3)
    t1, t2 = int(table[1]), int(table[2])
    top = (1 << 32) - 1
    # Words 2^32 - 1 (U = 0), T[1] (U = 1), T[2] + 1 (U = 2). The first is below e^0 2^32
    # without more bits; the second takes one more word, zeros, which puts it below.
    source = _Scripted([[top | t1 << 32, t2 + 1], [0]])
    u = np.array([0, 1, 2], dtype=np.uint32)
    np.testing.assert_array_equal(sampler._bernoulli_exp_over_t(u, 3, source), [True, True, False])
    assert source.used_up()


@pytest.mark.parametrize(("u", "t"), [(0, 5), (1, 3), (2, 3), (28, 29)])
def test_d_has_probability_exp_minus_u_over_t(u: int, t: int) -> None:
    drawn = np.full(100_000, u, dtype=np.uint32)
    flags = sampler._bernoulli_exp_over_t(drawn, t, Keystream(_key(18)))
    _assert_frequency(flags, math.exp(-u / t))


def test_exp_thresholds_run_until_the_first_zero() -> None:
    table = sampler._exp_thresholds()
    assert table.dtype == np.uint32
    assert table.tolist() == [_exp_floor_decimal(Fraction(v), 32) for v in range(1, table.size + 1)]
    assert table[-1] == 0 < table[-2]


@pytest.mark.parametrize(
    ("offset", "below"), [(-1, True), (1, False)], ids=["just below", "just above"]
)
def test_a_tied_uniform_takes_more_bits(offset: int, below: bool) -> None:
    v = 3
    prefix = sampler._exp_floor(v, 32)
    following = sampler._exp_floor(v, 96) & ((1 << 64) - 1)
    # The first extension ties again; the second decides by one unit in the last bit.
    last = sampler._exp_floor(v, 160) & ((1 << 64) - 1)
    source = _Scripted([[following], [last + offset]])
    assert sampler._Uniform(prefix, 32, source).below_exp(v) is below
    assert source.used_up()


def _geometric_pmf(size: int) -> Floats:
    v = np.arange(size, dtype=np.float64)
    return np.exp(-v) * (1.0 - math.exp(-1.0))


def test_v_has_the_geometric_law() -> None:
    draws = sampler._geometric(400_000, 1, Keystream(_key(16)))
    assert draws.dtype == np.int64
    _assert_fits(draws, 0, _geometric_pmf(40))
    assert abs(draws.mean() - 1 / (math.e - 1)) <= MOMENT_SES * math.sqrt(
        math.e / (math.e - 1) ** 2 / draws.size
    )


def test_v_resolves_a_word_equal_to_a_threshold() -> None:
    table = sampler._exp_thresholds()
    t1, t3 = int(table[0]), int(table[2])
    source = _Scripted(
        [
            [t1 | t3 << 32, 0 | (t1 + 1) << 32],  # words T_1, T_3, 0, T_1 + 1
            [0],  # T_1 extended by zeros: below e^-1, above e^-2
            [(1 << 64) - 1],  # T_3 extended by ones: above e^-3
            [1 << 63],  # 0 extended: u = 2^-33, between e^-23 and e^-22
        ]
    )
    # Scaled by t = 7, as Algorithm 2 needs t V.
    np.testing.assert_array_equal(sampler._geometric(4, 7, source), [7, 14, 154, 0])
    assert source.used_up()


def test_whole_exponents_resolve_ties_and_large_w() -> None:
    t1 = int(sampler._exp_thresholds()[0])
    whole = np.array([1, 30, 30, 2], dtype=np.int64)
    # Words T_1, 0, 0 (ties: T_30 = 0), T_1 (above T_2: no tie); then one word per tie.
    source = _Scripted([[t1, 0 | t1 << 32], [0], [1], [1 << 60]])
    np.testing.assert_array_equal(
        sampler._bernoulli_exp_whole(whole, source), [True, True, False, False]
    )
    assert source.used_up()


def test_whole_exponents_have_probability_exp_minus_w() -> None:
    for w in (1, 2, 4):
        flags = sampler._bernoulli_exp_whole(np.full(100_000, w, np.int64), Keystream(_key(17)))
        _assert_frequency(flags, math.exp(-w))


# ---- determinism and the key stream ----


def test_same_key_same_draws_other_key_other_draws() -> None:
    first = sample(Fraction(10**4), 5_000, Keystream(_key(1)))
    again = sample(Fraction(10**4), 5_000, Keystream(_key(1)))
    other = sample(Fraction(10**4), 5_000, Keystream(_key(2)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_keystream_is_aes_256_ctr_with_a_zero_nonce() -> None:
    key = bytes(range(32))
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    reference = np.frombuffer(encryptor.update(bytes(8 * 313)), dtype="<u8")
    stream = Keystream(key)
    pieces = [stream.uint64(size) for size in (1, 7, 0, 300, 5)]
    assert all(piece.dtype == np.uint64 for piece in pieces)
    np.testing.assert_array_equal(np.concatenate(pieces), reference)


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_keystream_wants_a_32_byte_key(size: int) -> None:
    with pytest.raises(PrivacyParameterError, match="32 bytes"):
        Keystream(bytes(size))


# ---- validation ----


@pytest.mark.parametrize(
    "sigma2",
    [0, -1, Fraction(0), Fraction(-1, 4), True, False, 2.5, Fraction(10**10 + 1, 100), 10**10],
    ids=repr,
)
def test_rejects_bad_or_oversized_sigma2(sigma2: Fraction | int) -> None:
    with pytest.raises(PrivacyParameterError, match="sigma"):
        sample(sigma2, 10, Keystream(_key(4)))


def test_rejects_negative_n() -> None:
    with pytest.raises(PrivacyParameterError, match="non-negative"):
        sample(Fraction(1), -1, Keystream(_key(4)))


def test_zero_draws_give_an_empty_int64_array() -> None:
    draws = sample(Fraction(1, 4), 0, Keystream(_key(4)))
    assert draws.dtype == np.int64
    assert draws.shape == (0,)


@pytest.mark.parametrize(
    "sigma2", [Fraction(1, 4), Fraction(1, 100), 10**8, Fraction(4 * 10**8 + 1, 4)], ids=str
)
def test_accepts_the_documented_range(sigma2: Fraction | int) -> None:
    draws = sample(sigma2, 1_001, Keystream(_key(5)))
    assert draws.shape == (1_001,)
    assert draws.dtype == np.int64


# ---- no floating point, no other randomness ----


def test_module_uses_no_floats_and_no_other_randomness() -> None:
    assert sampler.__file__ is not None
    tree = ast.parse(Path(sampler.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {alias.name for alias in node.names} & {"random", "secrets", "os"}
        elif isinstance(node, ast.ImportFrom):
            assert node.module not in {"random", "secrets", "os", "numpy.random"}
            if node.module == "math":
                assert {alias.name for alias in node.names} == {"isqrt"}
        elif isinstance(node, ast.Attribute):
            assert node.attr not in {"random", "urandom", "exp", "float64", "float32"}
        elif isinstance(node, ast.Name):
            assert node.id not in {"float", "random"}
        elif isinstance(node, ast.Constant):
            assert not isinstance(node.value, float)
        elif isinstance(node, ast.BinOp | ast.AugAssign):
            assert not isinstance(node.op, ast.Div), "true division yields floats"
