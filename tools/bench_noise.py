"""The exact discrete Gaussian sampler against its floor: ``scfed bench noise``. A benchmark.

``bench`` times ``scfed.dp.sampler.sample`` for ``cells`` draws of N_Z(0, sigma2) under an
AES-256-CTR key stream, counting what it consumed: key stream bytes, attempts (Algorithm 3's
discrete Laplace proposals) and the attempts that Algorithm 2's D did not restart. In the
same run it times the floor for that consumption, the work no implementation of the
algorithm can skip:

- the key stream: the same number of bytes from AES-CTR, in one ``cryptography`` call;
- one comparison of every 32-bit half of those bytes with a threshold (each Bernoulli
  trial reads its word once);
- Algorithm 2's arithmetic: U from its word (one division per attempt), the compaction of
  the attempts to those D keeps, and X = U + t V for them;
- Algorithm 3's arithmetic: the exponent's numerator (X q t - p)^2 and its whole and
  fractional parts (four passes over the kept attempts), the compaction to the accepted
  outputs, and their signs.

Each of those is one numpy pass over an array of the size the sampler saw. Sampler and floor
run alternately after one untimed run of each; each reports its fastest of ``repeat`` runs.
Before them the benchmark allocates and frees one 24 MB array: glibc then serves arrays of
up to that size from its heap instead of mapping fresh pages for each (its default for
arrays above 128 kB), as it does in a process that has been working a while; otherwise
both columns measure page faults more than work. Floats appear only in the reporting.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from unittest import mock

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from scfed.dp import sampler
from scfed.errors import ScfedError

#: The sigma_l^2 a node meets: the smallest allowed, a rational one, the round vectors'
#: 800 (sigma 40, n_min 3), sigma 600 over four honest nodes, and sigma 4000 at n_min 3.
DEFAULT_SIGMA2 = ("4", "9/4", "800", "90000", "8000000")
HEADER = (
    "| cells | sigma2 | sampler ms | floor ms | ratio | key stream B/cell |\n"
    "|--:|--:|--:|--:|--:|--:|"
)


@dataclass(frozen=True)
class Consumption:
    """What one call of the sampler used: key stream bytes, attempts, attempts kept by D."""

    stream_bytes: int
    attempts: int
    kept: int


@dataclass(frozen=True)
class Run:
    """One row of the table: the fastest sampler and floor times, in seconds."""

    cells: int
    sigma2: str
    sampler_s: float
    floor_s: float
    used: Consumption

    @property
    def ratio(self) -> float:
        return self.sampler_s / self.floor_s

    @property
    def bytes_per_cell(self) -> float:
        return self.used.stream_bytes / self.cells

    def summary(self) -> dict[str, object]:
        """The row as JSON-ready values, milliseconds and bytes."""
        return {
            "cells": self.cells,
            "sigma2": self.sigma2,
            "sampler_ms": round(self.sampler_s * 1e3, 3),
            "floor_ms": round(self.floor_s * 1e3, 3),
            "ratio": round(self.ratio, 3),
            "stream_bytes": self.used.stream_bytes,
            "bytes_per_cell": round(self.bytes_per_cell, 2),
            "attempts": self.used.attempts,
            "kept_by_d": self.used.kept,
        }


class _Counting:
    """A key stream that counts the bytes drawn from it."""

    def __init__(self, key: bytes) -> None:
        self._stream = sampler.Keystream(key)
        self.stream_bytes = 0

    def uint64(self, n: int) -> NDArray[np.uint64]:
        self.stream_bytes += 8 * n
        return self._stream.uint64(n)


def parse_sigma2(text: str) -> Fraction:
    """A sigma2 given as P/Q (or P, or a decimal), refused unless the sampler takes it."""
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ScfedError(f"--sigma2 {text!r} is not a fraction P/Q") from None
    sampler._params(value)  # raises PrivacyParameterError outside the sampler's range
    return value


def bench(cells: int, sigma2: Fraction, repeat: int) -> Run:
    """Time ``repeat`` samples of ``cells`` draws and the floor for their consumption."""
    if not 1 <= cells <= 10_000_000 or not 1 <= repeat <= 1000:
        raise ScfedError("--cells must be 1..1e7 and --repeat 1..1000")
    used = consumption(cells, sigma2)
    params = sampler._params(sigma2)
    _settle_allocator()
    key, zeros = os.urandom(32), bytes(used.stream_bytes + 16)
    times: dict[str, list[float]] = {"sampler": [], "floor": []}
    work: dict[str, Callable[[], object]] = {
        "sampler": lambda: sampler.sample(sigma2, cells, sampler.Keystream(key)),
        "floor": lambda: floor(used, cells, params, zeros),
    }
    for rep in range(repeat + 1):
        for name, run in work.items():
            started = time.perf_counter()
            run()
            if rep:  # the first round warms up
                times[name].append(time.perf_counter() - started)
    return Run(cells, str(sigma2), min(times["sampler"]), min(times["floor"]), used)


def _settle_allocator() -> None:
    """Allocate and free 24 MB, which raises glibc's threshold for mapping fresh pages."""
    settle = np.ones(3 << 20)
    del settle


def consumption(cells: int, sigma2: Fraction) -> Consumption:
    """Sample once, counting key stream bytes, attempts and the attempts D keeps."""
    attempts, kept = [0], [0]
    laplace = sampler._laplace

    def counted(t: int, count: int, source: sampler.Source) -> NDArray[np.int64]:
        out = laplace(t, count, source)
        attempts[0] += count
        kept[0] += out.size
        return out

    source = _Counting(os.urandom(32))
    with mock.patch.object(sampler, "_laplace", counted):
        sampler.sample(sigma2, cells, source)
    return Consumption(source.stream_bytes, attempts[0], kept[0])


def floor(
    used: Consumption, cells: int, params: sampler._Params, zeros: bytes
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """The floor's passes (see the module docstring) on arrays of the sampler's sizes.

    The halves of the key stream serve as every pass's random input; the compaction masks
    keep the sampler's shares of the attempts and of the kept ones. ``zeros`` is the
    plaintext, at least ``used.stream_bytes`` + 16 zero bytes, made once as the key stream's.
    """
    words = _keystream(used.stream_bytes, zeros)
    halves = words.view(np.uint32)
    below = halves < np.uint32(1 << 31)
    n_attempts, n_kept = used.attempts, used.kept
    scale = (1 << 32) // max(params.t, 2)
    u = halves[:n_attempts] // np.uint32(scale)
    kept = np.flatnonzero(halves[:n_attempts] < np.uint32(_share(n_kept, n_attempts)))
    v = (halves[n_attempts : n_attempts + kept.size] >> np.uint32(30)).astype(np.int64)
    x = u.take(kept).astype(np.int64) + np.int64(params.t) * v
    a = x * np.int64(params.q * params.t) - np.int64(params.p)
    num = (a * a).view(np.uint64)
    whole = num // np.uint64(params.den)
    frac = num - whole * np.uint64(params.den)
    accept = halves[-x.size :] < np.uint32(_share(cells, max(n_kept, 1)))
    out = x.take(np.flatnonzero(accept))
    sign = below[: out.size]
    return out - 2 * (out * sign), frac


def _share(part: int, whole: int) -> int:
    """A 32-bit threshold below which a uniform word falls with probability part/whole."""
    return min((part << 32) // whole, (1 << 32) - 1)


def _keystream(size: int, zeros: bytes) -> NDArray[np.uint64]:
    """``size`` bytes (rounded up to a 16-byte block) of AES-256-CTR, in one call."""
    blocks = -(-size // 16)
    encryptor = Cipher(algorithms.AES(bytes(32)), modes.CTR(bytes(16))).encryptor()
    out = np.empty(2 * blocks + 2, dtype="<u8")
    encryptor.update_into(memoryview(zeros)[: 16 * blocks], out.data.cast("B"))
    return out[: 2 * blocks]


def row(run: Run) -> str:
    """The run as a row of ``HEADER``."""
    return (
        f"| {run.cells:,} | {run.sigma2} | {run.sampler_s * 1e3:.2f} | {run.floor_s * 1e3:.2f} "
        f"| {run.ratio:.2f} | {run.bytes_per_cell:.1f} |"
    )
