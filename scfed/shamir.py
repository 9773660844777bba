"""Shamir secret sharing of 32-byte secrets over the prime field GF(2^256 + 297).

Pure: randomness is passed in as a function returning bytes. A polynomial of degree t-1 with
the secret as constant term is evaluated at the points 1..n; any t shares reconstruct the
secret by Lagrange interpolation at zero, and t-1 shares are uniformly distributed whatever
the secret, so they reveal nothing about it. 2^256 + 297 is the smallest prime above 2^256,
so every 32-byte secret is a field element.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from scfed.errors import LocalProtocolError, RemoteProtocolError

PRIME = 2**256 + 297
SHARE_BYTES = 33
SECRET_BYTES = 32

Random = Callable[[int], bytes]
#: Horner steps between reductions: the same value, with fewer divisions of big numbers.
_REDUCE_EVERY = 8


def _random_element(rng: Random) -> int:
    # 64 extra bits make the bias of the reduction at most 2^-64.
    return int.from_bytes(rng(SHARE_BYTES + 8), "big") % PRIME


def split(secret: bytes, points: Sequence[int], threshold: int, rng: Random) -> list[int]:
    """Share ``secret`` at ``points``; any ``threshold`` of the shares rebuild it."""
    if len(secret) != SECRET_BYTES:
        raise LocalProtocolError(f"a secret must be {SECRET_BYTES} bytes, not {len(secret)}")
    if not 1 <= threshold <= len(points):
        raise LocalProtocolError(f"threshold {threshold} outside 1..{len(points)}")
    if len(set(points)) != len(points) or any(not 0 < x < PRIME for x in points):
        raise LocalProtocolError("share points must be distinct and non-zero")
    coefficients = [int.from_bytes(secret, "big")]
    coefficients += [_random_element(rng) for _ in range(threshold - 1)]
    coefficients.reverse()
    shares = []
    for x in points:
        y = 0
        for i, c in enumerate(coefficients):
            y = y * x + c
            if i % _REDUCE_EVERY == 0:  # Horner; the points are small, so reduce seldom
                y %= PRIME
        shares.append(y % PRIME)
    return shares


def lagrange_at_zero(points: Sequence[int]) -> list[int]:
    """Coefficients l_i with f(0) = sum l_i f(x_i); computed once per set of responders."""
    if len(set(points)) != len(points) or any(not 0 < x < PRIME for x in points):
        raise RemoteProtocolError("share points must be distinct and non-zero")
    # l_i = prod_{j != i} x_j / (x_j - x_i): the numerators from prefix and suffix products,
    # the denominators inverted together (Montgomery's trick: one inversion for all).
    n = len(points)
    before, after = [1] * (n + 1), [1] * (n + 1)
    for i, x in enumerate(points):
        before[i + 1] = before[i] * x % PRIME
    for i in range(n - 1, -1, -1):
        after[i] = after[i + 1] * points[i] % PRIME
    denominators = []
    for i, xi in enumerate(points):
        den = 1
        for j, xj in enumerate(points):
            if i != j:
                den *= xj - xi  # small points: one reduction at the end
        denominators.append(den % PRIME)
    inverses = _inverses(denominators)
    return [before[i] * after[i + 1] % PRIME * inverses[i] % PRIME for i in range(n)]


def _inverses(values: Sequence[int]) -> list[int]:
    """The inverses of non-zero field elements, with one modular inversion."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % PRIME)
    inverse = pow(prefix[-1], -1, PRIME)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inverse * prefix[i] % PRIME
        inverse = inverse * values[i] % PRIME
    return out


def combine(shares: Sequence[int], coefficients: Sequence[int]) -> bytes:
    """Rebuild a secret from shares at the points ``coefficients`` were computed for."""
    if len(shares) != len(coefficients):
        raise LocalProtocolError("one share per coefficient is needed")
    value = sum(s * c for s, c in zip(shares, coefficients, strict=True)) % PRIME
    if value >= 2 ** (8 * SECRET_BYTES):
        raise RemoteProtocolError("the shares do not interpolate to a 32-byte secret")
    return value.to_bytes(SECRET_BYTES, "big")


def reconstruct(shares: Mapping[int, int]) -> bytes:
    """Rebuild a secret from a mapping point -> share (at least threshold of them)."""
    points = sorted(shares)
    return combine([shares[x] for x in points], lagrange_at_zero(points))


def encode_share(value: int) -> bytes:
    """A share as 33 big-endian bytes."""
    return value.to_bytes(SHARE_BYTES, "big")


def decode_share(data: bytes) -> int:
    """Parse a share sent by a peer; anything but a field element is the peer's fault."""
    if len(data) != SHARE_BYTES:
        raise RemoteProtocolError(f"a share must be {SHARE_BYTES} bytes, not {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise RemoteProtocolError("a share is not a field element")
    return value
