"""Exact sampling from the discrete Gaussian N_Z(0, sigma^2), vectorised with numpy.

This implements Algorithms 1-3 of Canonne, Kamath and Steinke, "The Discrete Gaussian for
Differential Privacy" (NeurIPS 2020): Bernoulli(exp(-gamma)) for rational gamma by von
Neumann's method, the discrete Laplace by rejection, and the discrete Gaussian by rejection
from the discrete Laplace with scale t = floor(sigma) + 1. ``sigma2`` is an exact rational
p/q and every step uses integer or rational arithmetic only: there is no floating point
anywhere in the sampling path, so the output follows N_Z(0, sigma2) exactly, up to the
quality of the random source.

Each Bernoulli trial of Algorithm 1, Bernoulli(x / d) for integers 0 <= x < d, takes one
uniform w-bit word c, with w = 32 while d < 2^32 and w = 64 beyond: with s = floor(2^w / d),
a word below s d is uniform on s d values, and x s of them lie below x s, so c < x s has
probability x / d exactly. A word at or above s d (fewer than d of the 2^w) is redrawn.
Algorithm 1's loop runs a block of trials at a time: the words for trials K = k, ...,
k + m - 1 of every undecided element come from one call, and only the elements whose m
trials all succeed (probability gamma^m / m!) need another pass. The words of the trials
after an element's first failure go unused; since every trial has fresh words, that
changes no probability.

Where the paper draws Bernoulli(exp(-gamma)) for gamma from a fixed set, by Algorithm 1 or by
chaining Bernoulli(exp(-1)) draws, this module draws the same law with one uniform u in
[0, 1) compared with e^-gamma: Algorithm 2's D (gamma = U/t for U < t), its V (the number of
Bernoulli(exp(-1)) successes before the first failure, P(V >= v) = e^-v, is the number of
v >= 1 with u < e^-v) and the whole part W of Algorithm 3's exponent (W draws that must all
succeed: u < e^-W). The thresholds floor(e^-gamma 2^32) are exact integers, computed once
from rational bounds on the series of e^gamma (for U/t, from exact fixed-point powers of
e^-1/t); the first 32 bits of u decide unless they equal the threshold, and then u takes 64
more bits at a time, compared with further bits of e^-gamma computed the same way.
Algorithm 1 remains for the fractional part of the acceptance exponent, whose numerator
differs from element to element.

The 32-bit words are the halves of the source's 64-bit words, low half first, and a random
sign takes one bit. Batches of at most _MAX_BATCH attempts bound the memory for large n.

The vectorised path works on integer arrays. Parameters are refused (PrivacyParameterError)
unless

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
from functools import cache, lru_cache
from math import isqrt
from typing import Any, Protocol

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from scfed.errors import PrivacyParameterError

__all__ = ["Keystream", "Source", "sample"]

_Ints = NDArray[np.int64]
_Words = NDArray[np.uint64]
_Halves = NDArray[np.uint32]
_Unsigned = NDArray[np.unsignedinteger[Any]]
_Flags = NDArray[np.bool_]

_KEY_BYTES = 32
_WORD_BYTES = 8
_AES_BLOCK = 16
_WORD_BITS = 64
_HALF_BITS = 32
#: Trials of Bernoulli(x / d) take 32-bit words while d is below this.
_NARROW = 1 << _HALF_BITS
#: Largest d a vectorised trial takes: den * K up to 2^63.
_SPAN = 1 << 63
#: Largest denominator 2 p q t^2 accepted, leaving den * K in 64 bits up to K = 8.
_MAX_DENOMINATOR = 1 << 60
#: Largest |a| with a * a inside int64.
_ROOT_INT64 = isqrt((1 << 63) - 1)
#: Upper limit on candidates per batch, to bound memory for very large n.
_MAX_BATCH = 1 << 17
#: Algorithm 1's trials in a first pass: for gamma spread over [0, 1), two leave 1/6 undecided.
_FIRST_BLOCK = 2
#: Algorithm 1's trials in each later pass: four leave at most 1/360 of those undecided.
_LATER_BLOCK = 4
#: V is counted against this many thresholds e^-v in one pass over all elements; those
#: below the last (fewer than 2%) are counted against the rest.
_QUICK = 4


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

    def uint64(self, n: int) -> _Words:
        """``n`` uniform uint64 values, the next 8n bytes of the stream read little-endian."""
        if n < 0:
            raise PrivacyParameterError("cannot draw a negative number of words")
        size = _WORD_BYTES * n
        if len(self._zeros) < size:
            # Growing geometrically keeps reallocation of the (all-zero) plaintext rare.
            self._zeros = bytearray(max(size, 2 * len(self._zeros)))
        # The key stream is written straight into a fresh array, with the room for one
        # block that update_into asks for: no copy, and no later call overwrites it.
        out = np.empty(n + _AES_BLOCK // _WORD_BYTES, dtype="<u8")
        self._encryptor.update_into(memoryview(self._zeros)[:size], out.data.cast("B"))
        return out[:n].astype(np.uint64, copy=False)


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


# ---- uniform words and integers ----


def _words(source: Source, count: int) -> _Words:
    """``count`` uniform 64-bit words, little-endian in memory and writable (rejected words
    are redrawn in place); a copy only if the source's are not."""
    words = source.uint64(count).astype("<u8", copy=False)
    return words if words.flags.writeable else words.copy()


def _halves(source: Source, count: int) -> _Halves:
    """``count`` uniform 32-bit words: the halves of ceil(count / 2) words, low half first."""
    return _words(source, -(-count // 2)).view("<u4")[:count].astype(np.uint32, copy=False)


def _draw(source: Source, count: int, bits: int) -> _Unsigned:
    """``count`` uniform words of ``bits`` (32 or 64) bits."""
    if bits == _HALF_BITS:
        return _halves(source, count)
    return _words(source, count).astype(np.uint64, copy=False)


def _bits(source: Source, count: int) -> _Flags:
    """``count`` fair coins: the bits of ceil(count / 64) words, least significant first."""
    words = source.uint64(-(-count // _WORD_BITS)).astype("<u8", copy=False)
    coins = np.unpackbits(words.view(np.uint8), count=count, bitorder="little")
    return coins.view(np.bool_)


def _redraw(words: _Unsigned, top: int, source: Source) -> None:
    """Replace, in place, every word >= ``top`` by fresh words until none is left.

    This is rejection sampling: each word ends up uniform below ``top``.
    """
    if words.size == 0 or words.max() < top:
        return
    bound = words.dtype.type(top)
    redo = np.flatnonzero(words >= bound)
    while redo.size:
        fresh = _draw(source, redo.size, words.dtype.itemsize * 8)
        words[redo] = fresh
        redo = redo[fresh >= bound]


def _uniform(source: Source, bound: int, count: int) -> _Halves:
    """``count`` exact uniform draws from [0, bound), 2 <= bound <= 2^32.

    A 32-bit word below s * bound, s = floor(2^32 / bound), is uniform there, and its
    quotient by s is uniform on [0, bound); the words above are redrawn.
    """
    words = _halves(source, count)
    scale = _NARROW // bound
    if scale * bound < _NARROW:
        _redraw(words, scale * bound, source)
    return words // np.uint32(scale)


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


# ---- Algorithm 1: Bernoulli(exp(-gamma)) ----


def _scale(d: int, bits: int) -> int:
    """s = floor(2^bits / d): a word below s d is one of s d equally likely values.

    For d = 1, where the only numerator is 0, s = 2^bits - 1 keeps s a w-bit word.
    """
    return min((1 << bits) // d, (1 << bits) - 1)


def _fix_rejections(words: _Unsigned, tops: list[int], source: Source) -> None:
    """Redraw, in row j of ``words``, every word at or above tops[j]."""
    full = 1 << (words.dtype.itemsize * 8)
    lowest = min(tops)
    if lowest < full and words.size and words.max() >= lowest:
        for row, top in zip(words, tops, strict=True):
            if top < full:
                _redraw(row, top, source)


def _trial_pass(
    x: _Unsigned | _Ints, den: int, k: int, m: int, source: Source
) -> tuple[_Flags, _Flags]:
    """Algorithm 1's trials K = k, ..., k + m - 1, Bernoulli(gamma / K) with gamma = x / den,
    for numerators x below den, the words of all of them from one call.

    Returns Algorithm 1's answer (K odd at the first failing trial K) for the elements that
    fail one of these trials, and which elements pass all m and remain undecided.
    """
    bits = _HALF_BITS if den * (k + m - 1) < _NARROW else _WORD_BITS
    words = _draw(source, m * x.size, bits).reshape(m, x.size)
    divisors = [den * (k + j) for j in range(m)]
    scales = [_scale(d, bits) for d in divisors]
    _fix_rejections(words, [s * d for s, d in zip(scales, divisors, strict=True)], source)
    # Numerators are non-negative, so int64 ones can be read as uint64 without a copy.
    same = x.dtype.itemsize == words.dtype.itemsize
    n = x.view(words.dtype) if same else x.astype(words.dtype)
    word = words.dtype.type
    # lead: every trial so far succeeded. Each leading success moves the first failure one
    # K further, so the parity of the leading successes among the first m - 1 trials,
    # ``flips``, gives K's parity for every element that fails one of the m.
    lead = words[0] < n * word(scales[0])
    flips = lead
    for j in range(1, m):
        if j > 1:
            flips = flips ^ lead
        lead = lead & (words[j] < n * word(scales[j]))
    return (flips if k % 2 == 0 else ~flips), lead


def _block(den: int, k: int, size: int) -> int:
    """Trials for a pass from K = k: ``size``, fewer once den * K nears 2^63."""
    return max(0, min(size, _SPAN // den - k + 1))


def _bernoulli_exp_unit(num: _Unsigned | _Ints, den: int, source: Source, k: int = 1) -> _Flags:
    """Algorithm 1 for gamma = num/den in [0, 1): True with probability exp(-gamma).

    ``k`` is the value of K the loop resumes at. The first pass draws _FIRST_BLOCK trials,
    later ones _LATER_BLOCK. An element still undecided once den * K passes 2^63 finishes
    in Python integers from that same K.
    """
    m = _block(den, k, _FIRST_BLOCK)
    if not m:
        out = np.empty(num.size, dtype=np.bool_)
        return _finish_unit(num, np.arange(num.size), den, source, k=k, out=out)
    out, undecided = _trial_pass(num, den, k, m, source)
    live = np.flatnonzero(undecided)
    k += m
    while live.size and (m := _block(den, k, _LATER_BLOCK)):
        answer, undecided = _trial_pass(num.take(live), den, k, m, source)
        out[live] = answer
        live = live.take(np.flatnonzero(undecided))
        k += m
    return _finish_unit(num, live, den, source, k=k, out=out)


def _finish_unit(
    num: _Unsigned | _Ints, live: _Ints, den: int, source: Source, *, k: int, out: _Flags
) -> _Flags:
    """Algorithm 1 from K = k in Python integers for the elements ``live`` of ``out``."""
    for i in live.tolist():
        out[i] = _bernoulli_exp_unit_scalar(int(num[i]), den, source, k)
    return out


def _bernoulli_exp_unit_scalar(num: int, den: int, source: Source, k: int = 1) -> bool:
    """Algorithm 1 for gamma = num/den in [0, 1] in Python integers, resuming at K = k."""
    while _uniform_scalar(source, den * k) < num:
        k += 1
    return k % 2 == 1


# ---- Bernoulli(exp(-v)) for whole v, by exact comparison ----


@cache
def _exp_floor(r: Fraction | int, bits: int) -> int:
    """floor(e^-r 2^bits), exactly, for a rational r >= 0 and bits >= 0.

    e^r lies strictly between the partial sum S of its series up to r^N / N! and
    S + r^(N+1) / (N+1)! * (N+2) / (N+2-r), which bounds the rest for N + 2 > r (for r > 0).
    When 2^bits divided by either bound has the same floor, so does 2^bits / e^r; otherwise
    N doubles. For r > 0, e^-r 2^bits is irrational, so this ends; for r = 0 the bounds
    meet at once.
    """
    r = Fraction(r)
    terms = 2 * -(-r.numerator // r.denominator) + 16
    while True:
        low, term = Fraction(0), Fraction(1)
        for k in range(terms + 1):
            low += term
            term *= Fraction(r.numerator, r.denominator * (k + 1))
        top = (terms + 2) * r.denominator
        high = low + term * Fraction(top, top - r.numerator)
        at_high = (low.denominator << bits) // low.numerator
        at_low = (high.denominator << bits) // high.numerator
        if at_low == at_high:
            return at_high
        terms *= 2


@cache
def _exp_thresholds() -> _Halves:
    """floor(e^-v 2^32) at index v - 1, for v = 1 up to the first v where it is 0."""
    table = [_exp_floor(1, _HALF_BITS)]
    while table[-1]:
        table.append(_exp_floor(len(table) + 1, _HALF_BITS))
    return _frozen(table)


#: Bits of the fixed-point powers of e^-1/t that ``_exp_table`` multiplies.
_TABLE_BITS = 96


@lru_cache(maxsize=32)
def _exp_table(t: int) -> _Halves:
    """floor(e^-(u/t) 2^32) at index u, for u = 1, ..., t - 1, and 2^32 - 1 at index 0.

    Lower and upper bounds on e^-(u/t) 2^96 come from those on e^-(1/t) 2^96 by exact
    integer multiplication, rounded down and up; where both give the same 32 bits those are
    the threshold, and otherwise (almost never) ``_exp_floor`` works it out. Index 0 holds
    2^32 - 1, below e^0 2^32 = 2^32: a word equal to it is a tie that the exact comparison
    settles, since every u is below e^0.
    """
    shift = _TABLE_BITS - _HALF_BITS
    low = _exp_floor(Fraction(1, t), _TABLE_BITS)
    high = low + 1  # e^-(1/t) 2^96 is irrational, so strictly between
    table = [_NARROW - 1]
    below, above = 1 << _TABLE_BITS, 1 << _TABLE_BITS
    for u in range(1, t):
        below = (below * low) >> _TABLE_BITS
        above = -((-above * high) >> _TABLE_BITS)
        bits = below >> shift
        table.append(bits if bits == above >> shift else _exp_floor(Fraction(u, t), _HALF_BITS))
    return _frozen(table)


def _frozen(table: list[int]) -> _Halves:
    """A read-only uint32 array: the cached tables are shared by every call."""
    out = np.array(table, dtype=np.uint32)
    out.flags.writeable = False
    return out


class _Uniform:
    """A uniform real u in [0, 1) of which the first ``bits`` bits, ``prefix``, are known;
    the next bits are drawn from the source, 64 at a time, only when a comparison needs
    them."""

    def __init__(self, prefix: int, bits: int, source: Source) -> None:
        self.prefix, self.bits, self._source = prefix, bits, source

    def below_exp(self, v: Fraction | int) -> bool:
        """Whether u < e^-v, for a rational v >= 0.

        With f = floor(e^-v 2^bits): a prefix below f puts u below (prefix + 1) / 2^bits
        <= e^-v, a prefix above f puts u at or above (f + 1) / 2^bits > e^-v, and a prefix
        equal to f needs more bits.
        """
        while (bound := _exp_floor(v, self.bits)) == self.prefix:
            word = int(self._source.uint64(1)[0])
            self.prefix, self.bits = (self.prefix << _WORD_BITS) | word, self.bits + _WORD_BITS
        return self.prefix < bound


def _bernoulli_exp_whole(whole: _Ints, source: Source) -> _Flags:
    """Bernoulli(exp(-W)) for each whole W >= 1: u < e^-W for one uniform u each.

    That has the law of W Bernoulli(exp(-1)) draws all succeeding. The 32-bit word c of u
    decides unless c = floor(e^-W 2^32), where u takes more bits (``_Uniform``).
    """
    table = _exp_thresholds()
    c = _halves(source, whole.size)
    bound = table.take(np.minimum(whole, table.size) - 1)
    out = c < bound
    tie = c == bound
    if tie.any():
        for i in np.flatnonzero(tie).tolist():
            out[i] = _Uniform(int(c[i]), _HALF_BITS, source).below_exp(int(whole[i]))
    return out


def _bernoulli_exp_over_t(u: _Halves, t: int, source: Source) -> _Flags:
    """Algorithm 2's D, Bernoulli(exp(-U/t)) for each U in [0, t): w < e^-(U/t) for one
    uniform w each.

    The 32-bit word c of w decides unless it equals the threshold floor(e^-(U/t) 2^32) of
    ``_exp_table``, where w takes more bits (``_Uniform``).
    """
    c = _halves(source, u.size)
    bound = _exp_table(t).take(u)
    out = c < bound
    tie = c == bound
    if tie.any():
        for i in np.flatnonzero(tie).tolist():
            exponent = Fraction(int(u[i]), t)
            out[i] = _Uniform(int(c[i]), _HALF_BITS, source).below_exp(exponent)
    return out


def _bernoulli_exp(num: _Ints, den: int, source: Source) -> _Flags:
    """Bernoulli(exp(-num/den)) for each num >= 0, 1 <= den < 2^63.

    The product of Bernoulli(exp(-floor(gamma))), which stands for floor(gamma)
    Bernoulli(exp(-1)) draws that must all succeed, and Bernoulli(exp(-(gamma -
    floor(gamma)))) by Algorithm 1: two independent events.
    """
    # num >= 0, and unsigned division is the faster.
    unsigned, d = num.view(np.uint64), np.uint64(den)
    whole = unsigned // d
    # Each pass follows the last while its arrays are still in the cache.
    live = np.flatnonzero(unsigned >= d)
    whole_live = whole.take(live).view(np.int64)
    frac = np.subtract(unsigned, np.multiply(whole, d, out=whole), out=whole)
    # Algorithm 1 runs for every element, since skipping those whose whole part failed
    # would cost more passes than the trials it saves; their answer is unused.
    out = _bernoulli_exp_unit(frac, den, source)
    if live.size:
        out[live] &= _bernoulli_exp_whole(whole_live, source)
    return out


def _bernoulli_exp_scalar(num: int, den: int, source: Source) -> bool:
    """Bernoulli(exp(-num/den)) in Python integers, by the same decomposition."""
    whole, frac = divmod(num, den)
    if whole and not _Uniform(0, 0, source).below_exp(whole):
        return False
    return _bernoulli_exp_unit_scalar(frac, den, source)


# ---- Algorithms 2 and 3 ----


def _geometric(count: int, scale: int, source: Source) -> _Ints:
    """``scale`` times Algorithm 2's V, the number of Bernoulli(exp(-1)) successes before
    the first failure, whose law is P(V >= v) = e^-v: V is drawn by inversion as the number
    of v >= 1 with u < e^-v, for one uniform u each.

    The 32-bit word c of u decides V unless c equals a threshold floor(e^-v 2^32) (then
    v = V + 1, since the thresholds decrease), where u takes more bits (``_Uniform``).
    """
    table = _exp_thresholds()
    c = _halves(source, count)
    v = np.zeros(count, dtype=np.uint8)
    tied = False
    for bound in table[:_QUICK]:
        below = c < bound
        v += below.view(np.uint8)
        tied = tied or bool((c == bound).any())
    deep = np.flatnonzero(below)
    if deep.size:
        # The few left count the thresholds above their word among the others, ascending;
        # a word equal to one of those counts differently from the left and the right.
        rest, low = table[_QUICK:][::-1], c.take(deep)
        right = np.searchsorted(rest, low, side="right")
        v[deep] += (rest.size - right).astype(np.uint8)  # V < table.size here
        tied = tied or bool((np.searchsorted(rest, low, side="left") != right).any())
    out = np.multiply(v, np.int64(scale))
    if tied:
        _resolve_ties(c, v, out, scale, source)
    return out


def _resolve_ties(c: _Halves, v: _Unsigned, out: _Ints, scale: int, source: Source) -> None:
    """Finish V in Python integers where the word c is the threshold for V + 1."""
    table = _exp_thresholds()
    for i in np.flatnonzero(c == table.take(v)).tolist():
        u, k = _Uniform(int(c[i]), _HALF_BITS, source), int(v[i])
        while u.below_exp(k + 1):
            k += 1
        out[i] = k * scale


def _laplace(t: int, count: int, source: Source) -> _Ints:
    """Algorithm 2 with s = 1 on ``count`` attempts, up to its sign: U + t V for each attempt
    that D does not restart.

    For t = 1, U = 0 and D = 1 need no randomness.
    """
    u: _Unsigned | _Ints
    if t == 1:
        u = np.zeros(count, dtype=np.int64)
    else:
        drawn = _uniform(source, t, count)
        u = drawn.take(np.flatnonzero(_bernoulli_exp_over_t(drawn, t, source)))
    x = _geometric(u.size, t, source)
    x += u
    return x


def _accept(mag: _Ints, params: _Params, source: Source) -> _Flags:
    """Algorithm 3's test: Bernoulli(exp(-(|Y| - sigma2/t)^2 / (2 sigma2))) for each |Y|.

    With sigma2 = p/q the exponent is (|Y| q t - p)^2 / (2 p q t^2).
    """
    if not mag.size or mag.max() <= params.fast_limit:
        a = mag * np.int64(params.q * params.t)
        a -= np.int64(params.p)
        a *= a
        return _bernoulli_exp(a, params.den, source)
    fast = mag <= params.fast_limit
    out = np.empty(mag.size, dtype=np.bool_)
    index = np.flatnonzero(fast)
    a = mag.take(index) * np.int64(params.q * params.t) - np.int64(params.p)
    out[index] = _bernoulli_exp(a * a, params.den, source)
    for i in np.flatnonzero(~fast).tolist():
        big = int(mag[i]) * params.q * params.t - params.p
        out[i] = _bernoulli_exp_scalar(big * big, params.den, source)
    return out


def _candidates(params: _Params, count: int, source: Source) -> _Ints:
    """The accepted outputs of ``count`` independent attempts, in attempt order.

    The test of Algorithm 3 needs only |Y|, so the sign B is drawn after it; an attempt
    with B = 1 and |Y| = 0 is restarted (dropped), as Algorithm 2 says.
    """
    mag = _laplace(params.t, count, source)
    zero = mag == 0
    accepted = _accept(mag, params, source)
    minus = _bits(source, mag.size)
    keep = np.flatnonzero(accepted & ~(minus & zero))
    x, b = mag.take(keep), minus.take(keep)
    out: _Ints = x - 2 * (x * b)
    return out


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
