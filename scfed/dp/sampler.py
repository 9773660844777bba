"""Exact sampling from the discrete Gaussian N_Z(0, sigma^2), vectorised with numpy.

This implements Algorithms 1-3 of Canonne, Kamath and Steinke, "The Discrete Gaussian for
Differential Privacy" (NeurIPS 2020): Bernoulli(exp(-gamma)) for rational gamma by von
Neumann's method, the discrete Laplace by rejection, and the discrete Gaussian by rejection
from the discrete Laplace with scale t = floor(sigma) + 1. ``sigma2`` is an exact rational
p/q and every step uses integer or rational arithmetic only: there is no floating point
anywhere in the sampling path, so the output follows N_Z(0, sigma2) exactly, up to the
quality of the random source.

The vectorised path works on int64/uint64 arrays: each loop pass is one numpy operation
over the candidates still undecided. Parameters are refused (PrivacyParameterError) unless

    2 * p * q * t**2 <= 2**60,

where sigma2 = p/q in lowest terms, t = floor(sigma) + 1 and 2 p q t^2 is the denominator of
the acceptance exponent gamma = (|Y| q t - p)^2 / (2 p q t^2). Since 2 p q t^2 is about
2 p^2, this means p <= about 7.6e8: integer sigma2 up to 759222915, sigma2 up to about
1.9e8 with denominator 4 and about 7.6e6 with denominator 100; small sigma2 = 1/q are
admitted for q up to 2^59.

Within the bound the common case never leaves 64 bits. The rare element whose intermediate
integers would not fit (Algorithm 1 reaching a K with den * K > 2^63, or a Laplace candidate
so large that (|Y| q t - p)^2 exceeds int64) is not truncated, capped or redrawn, since
conditioning on such an event would bias the output: its computation continues exactly,
from the state it had reached, with Python integers (the scalar fallback).

Randomness comes only from the ``Source`` passed in: this module never uses ``random``,
``numpy.random`` or the operating system's generator. ``Keystream`` is the intended source,
an AES-256-CTR key stream, so one key always yields the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import isqrt
from typing import Protocol

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from scfed.errors import PrivacyParameterError

__all__ = ["Keystream", "Source", "sample"]

_Ints = NDArray[np.int64]
_Words = NDArray[np.uint64]
_Flags = NDArray[np.bool_]

_KEY_BYTES = 32
_WORD_BYTES = 8
_AES_BLOCK = 16
#: Largest bound the vectorised uniform sampler takes: its rejection then keeps >= 1/2.
_SPAN = 1 << 63
#: Largest denominator 2 p q t^2 accepted, leaving den * K in 64 bits up to K = 8.
_MAX_DENOMINATOR = 1 << 60
#: Largest |a| with a * a inside int64.
_ROOT_INT64 = isqrt((1 << 63) - 1)
#: Upper limit on candidates per batch, to bound memory for very large n.
_MAX_BATCH = 1 << 20


class Source(Protocol):
    """Anything that hands out independent uniform 64-bit words."""

    def uint64(self, n: int) -> _Words:
        """``n`` independent uniform uint64 values."""
        ...


class Keystream:
    """A CSPRNG: AES-256-CTR keystream from `cryptography` under a 32-byte key (zero nonce).

    The key stream is read as little-endian uint64 words; consecutive calls continue the
    same stream, so one key always produces one sequence of words.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise PrivacyParameterError(
                f"a keystream key must be {_KEY_BYTES} bytes, not {len(key)}"
            )
        self._encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(_AES_BLOCK))).encryptor()
        self._zeros = bytearray()
        self._out = bytearray()

    def uint64(self, n: int) -> _Words:
        """``n`` uniform uint64 values, the next 8n bytes of the stream read little-endian."""
        if n < 0:
            raise PrivacyParameterError("cannot draw a negative number of words")
        size = _WORD_BYTES * n
        if len(self._zeros) < size:
            # Growing geometrically keeps reallocation rare; the buffers are reused because
            # allocating per call costs more than the encryption for small draws.
            self._zeros = bytearray(max(size, 2 * len(self._zeros)))
            self._out = bytearray(len(self._zeros) + _AES_BLOCK - 1)
        self._encryptor.update_into(memoryview(self._zeros)[:size], self._out)
        return np.frombuffer(self._out, dtype="<u8", count=n).astype(np.uint64)


@dataclass(frozen=True, slots=True)
class _Params:
    """sigma2 = p/q in lowest terms, the Laplace scale t and the derived integer constants."""

    p: int
    q: int
    t: int
    den: int  # 2 p q t^2, the denominator of the acceptance exponent
    fast_limit: int  # largest |Y| whose exponent numerator fits int64


def _params(sigma2: Fraction | int) -> _Params:
    if isinstance(sigma2, bool) or not isinstance(sigma2, Fraction | int):
        raise PrivacyParameterError("sigma^2 must be an exact rational: an int or a Fraction")
    exact = Fraction(sigma2)
    if exact <= 0:
        raise PrivacyParameterError("sigma^2 must be positive")
    p, q = exact.numerator, exact.denominator
    t = isqrt(p // q) + 1
    den = 2 * p * q * t * t
    if den > _MAX_DENOMINATOR:
        raise PrivacyParameterError(
            f"sigma^2 = {exact} needs 2 p q t^2 = {den} > 2^60, beyond exact 64-bit sampling"
        )
    # den > 2 p^2 keeps p below _ROOT_INT64, so |Y| <= fast_limit gives |Y| q t - p in
    # [-_ROOT_INT64, _ROOT_INT64] and its square in int64.
    return _Params(p, q, t, den, (_ROOT_INT64 + p) // (q * t))


def _uniform(source: Source, bound: int, count: int) -> _Words:
    """``count`` exact uniform draws from [0, bound), 1 <= bound <= 2^63."""
    words = source.uint64(count)
    if bound & (bound - 1) == 0:
        return words & np.uint64(bound - 1)
    # The 2^64 - cut words at or above cut cover each residue equally often.
    cut = np.uint64((1 << 64) % bound)
    redo = np.flatnonzero(words < cut)
    while redo.size:
        fresh = source.uint64(redo.size)
        words[redo] = fresh
        redo = redo[fresh < cut]
    return words % np.uint64(bound)


def _uniform_scalar(source: Source, bound: int) -> int:
    """One exact uniform draw from [0, bound) for a Python integer bound of any size."""
    bits = (bound - 1).bit_length()
    count = -(-bits // 64)
    while True:
        value = 0
        for word in source.uint64(count).tolist():
            value = (value << 64) | word
        value >>= 64 * count - bits
        if value < bound:
            return value


def _bernoulli_exp_unit(num: _Ints, den: int, source: Source, k: int = 1) -> _Flags:
    """Algorithm 1 for gamma = num/den in [0, 1]: True with probability exp(-gamma).

    ``k`` is the value of K the loop resumes at. An element still undecided once den * K
    passes 2^63 finishes in Python integers from that same K.
    """
    out = np.empty(num.size, dtype=np.bool_)
    live = np.arange(num.size)
    bar = num.astype(np.uint64)
    k_max = _SPAN // den
    while live.size and k <= k_max:
        hit = _uniform(source, den * k, live.size) < bar
        out[live[~hit]] = k % 2 == 1
        live, bar = live[hit], bar[hit]
        k += 1
    for i in live.tolist():
        out[i] = _bernoulli_exp_unit_scalar(int(num[i]), den, source, k)
    return out


def _bernoulli_exp_unit_scalar(num: int, den: int, source: Source, k: int = 1) -> bool:
    """Algorithm 1 for gamma = num/den in [0, 1] in Python integers, resuming at K = k."""
    while _uniform_scalar(source, den * k) < num:
        k += 1
    return k % 2 == 1


def _bernoulli_exp_one(count: int, source: Source) -> _Flags:
    """``count`` draws of Bernoulli(exp(-1))."""
    # With gamma = 1 the first trial, Bernoulli(1/1), always succeeds: start at K = 2.
    return _bernoulli_exp_unit(np.ones(count, dtype=np.int64), 1, source, 2)


def _bernoulli_exp(num: _Ints, den: int, source: Source) -> _Flags:
    """Bernoulli(exp(-num/den)) for each num >= 0, 1 <= den < 2^63.

    floor(gamma) Bernoulli(exp(-1)) trials, stopping at the first failure, then one
    Bernoulli(exp(-(gamma - floor(gamma)))).
    """
    whole, frac = np.divmod(num, np.int64(den))
    out = np.ones(num.size, dtype=np.bool_)
    live = np.flatnonzero(whole)
    left = whole[live]
    while live.size:
        ok = _bernoulli_exp_one(live.size, source)
        out[live[~ok]] = False
        live, left = live[ok], left[ok] - 1
        more = left > 0
        live, left = live[more], left[more]
    live = np.flatnonzero(out)
    out[live] = _bernoulli_exp_unit(frac[live], den, source)
    return out


def _bernoulli_exp_scalar(num: int, den: int, source: Source) -> bool:
    """Bernoulli(exp(-num/den)) in Python integers, by the same decomposition."""
    whole, frac = divmod(num, den)
    for _ in range(whole):
        if not _bernoulli_exp_unit_scalar(1, 1, source, 2):
            return False
    return _bernoulli_exp_unit_scalar(frac, den, source)


def _geometric(count: int, source: Source) -> _Ints:
    """Algorithm 2's V: the number of Bernoulli(exp(-1)) successes before the first failure."""
    v = np.zeros(count, dtype=np.int64)
    live = np.arange(count)
    while live.size:
        live = live[_bernoulli_exp_one(live.size, source)]
        v[live] += 1
    return v


def _laplace(t: int, count: int, source: Source) -> _Ints:
    """Algorithm 2 with s = 1 on ``count`` attempts: the attempts that are not restarted.

    V grows by one per pass of ``_geometric``, so t * V could only overflow after billions
    of passes.
    """
    u = _uniform(source, t, count).astype(np.int64)
    u = u[_bernoulli_exp_unit(u, t, source)]
    y: _Ints = u + np.int64(t) * _geometric(u.size, source)
    minus = (source.uint64(y.size) >> np.uint64(63)).astype(np.bool_)
    keep: _Flags = ~(minus & (y == 0))
    y[minus] = -y[minus]
    return y[keep]


def _accept(y: _Ints, params: _Params, source: Source) -> _Flags:
    """Algorithm 3's test: Bernoulli(exp(-(|Y| - sigma2/t)^2 / (2 sigma2))) for each Y.

    With sigma2 = p/q the exponent is (|Y| q t - p)^2 / (2 p q t^2).
    """
    mag = np.abs(y)
    out = np.empty(y.size, dtype=np.bool_)
    fast = mag <= params.fast_limit
    index = np.flatnonzero(fast)
    a = mag[index] * np.int64(params.q * params.t) - np.int64(params.p)
    out[index] = _bernoulli_exp(a * a, params.den, source)
    for i in np.flatnonzero(~fast).tolist():
        big = int(mag[i]) * params.q * params.t - params.p
        out[i] = _bernoulli_exp_scalar(big * big, params.den, source)
    return out


def _candidates(params: _Params, count: int, source: Source) -> _Ints:
    """The accepted outputs of ``count`` independent attempts, in attempt order."""
    y = _laplace(params.t, count, source)
    return y[_accept(y, params, source)]


def _prior_rate(t: int) -> Fraction:
    """A slight underestimate of the fraction of attempts accepted, from the Laplace scale."""
    if t <= 2:
        return Fraction(1, 3)
    if t <= 10:
        return Fraction(2, 5)
    return Fraction(9, 20)


def _batch_size(remaining: int, accepted: int, tried: int, t: int) -> int:
    rate = Fraction(accepted, tried) if accepted else _prior_rate(t)
    expected = -(-remaining * rate.denominator // rate.numerator)
    # A little slack makes a second batch unlikely.
    return min(expected + remaining // 32 + 16, _MAX_BATCH)


def sample(sigma2: Fraction | int, n: int, source: Source) -> _Ints:
    """n independent draws of N_Z(0, sigma2).

    Raises PrivacyParameterError for sigma2 <= 0, a bool or a float, n < 0, or
    2 p q t^2 > 2^60 (see the module docstring). The output depends only on sigma2, n and the
    source's words.
    """
    params = _params(sigma2)
    if isinstance(n, bool) or n < 0:
        raise PrivacyParameterError("n must be a non-negative integer")
    parts: list[_Ints] = []
    have = accepted = tried = 0
    while have < n:
        size = _batch_size(n - have, accepted, tried, params.t)
        got = _candidates(params, size, source)
        accepted, tried = accepted + got.size, tried + size
        parts.append(got[: n - have])
        have += parts[-1].size
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
