"""Do all revealed shares lie on their owners' polynomials, and who revealed a wrong one? Pure.

The coordinator rebuilds each secret from the first t responders in sorted order; when more
responses are logged, the others must agree with them. All owners are checked at once on a
random linear combination of their shares: a combination of polynomials of degree below t is
one more such polynomial, so honest shares pass with one interpolation per extra responder.
The coefficients are a hash of every share, so whoever wrote the log could not choose shares
that cancel out. Only when the combination fails are responders looked at one by one.

Naming the culprit assumes the wrong shares are few: a responder is named when the extra
responses that agree with the polynomial outnumber those that do not; with only t + 1
responses, or several wrong shares among the first t, the inconsistency is reported unnamed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from auditor.rounds import names
from auditor.unmasking import Responses
from scfed import shamir
from scfed.errors import VerificationError
from scfed.wire.messages import Announce, UnmaskRequest

PRIME = shamir.PRIME


class Interpolation:
    """The polynomial of degree < len(xs) through points at ``xs``, evaluated anywhere."""

    def __init__(self, xs: Sequence[int]) -> None:
        self.xs = list(xs)
        self._weights = []
        for i, xi in enumerate(self.xs):
            product = 1
            for j, xj in enumerate(self.xs):
                if i != j:
                    product = product * (xi - xj) % PRIME
            self._weights.append(pow(product, -1, PRIME))

    def coefficients(self, x: int) -> list[int]:
        """l_i(x), so that the value at x is sum(l_i(x) * y_i)."""
        n = len(self.xs)
        prefix, suffix = [1] * (n + 1), [1] * (n + 1)
        for i in range(n):
            prefix[i + 1] = prefix[i] * (x - self.xs[i]) % PRIME
            suffix[n - i - 1] = suffix[n - i] * (x - self.xs[n - i - 1]) % PRIME
        return [prefix[i] * suffix[i + 1] * w % PRIME for i, w in enumerate(self._weights)]


def value_at(coefficients: Sequence[int], ys: Sequence[int]) -> int:
    return sum(c * y for c, y in zip(coefficients, ys, strict=True)) % PRIME


@dataclass(frozen=True)
class Shares:
    """Each responder's point and shares, owners in request order (seeds, then mask keys)."""

    responders: list[str]
    points: list[int]
    columns: list[list[int]]  # columns[responder][owner]
    owners: list[str]


def shares_of(responses: Responses, announce: Announce, request: UnmaskRequest) -> Shares:
    """The decoded shares of responses that already passed the response checks."""
    columns = [
        [shamir.decode_share(s) for _, s in r.seed_shares + r.key_shares] for _, r in responses
    ]
    owners = [f"{v}'s seed" for v in request.survivors]
    owners += [f"{v}'s mask key" for v in request.dropped]
    points = [announce.point(sender) for sender, _ in responses]
    return Shares([sender for sender, _ in responses], points, columns, owners)


def _combination(shares: Shares, round_id: bytes) -> list[int]:
    """Each responder's random linear combination of its shares, one value per responder."""
    transcript = hashlib.sha256(round_id)
    for column in shares.columns:
        for share in column:
            transcript.update(shamir.encode_share(share))
    seed = transcript.digest()
    weights = [
        int.from_bytes(hashlib.sha256(seed + i.to_bytes(4, "big")).digest()[:16], "big")
        for i in range(len(shares.owners))
    ]
    return [value_at(weights, column) for column in shares.columns]


def _off(
    points: Sequence[int], values: Sequence[int], base: list[int], rest: list[int]
) -> list[int]:
    """The indices in ``rest`` whose value is off the polynomial through ``base``."""
    curve = Interpolation([points[i] for i in base])
    ys = [values[i] for i in base]
    return [i for i in rest if value_at(curve.coefficients(points[i]), ys) != values[i]]


def blame(
    points: Sequence[int], values: Sequence[int], t: int
) -> tuple[list[int], list[int]] | None:
    """([], base) when all values lie on one polynomial of degree < t; (wrong, base) when the
    wrong ones can be told; None otherwise. ``base`` is a set of t indices taken as right."""
    k = len(points)
    base, extras = list(range(t)), list(range(t, k))
    off = _off(points, values, base, extras)
    if len(off) <= len(extras) - len(off):
        return off, base
    for left_out in range(t):  # one of the first t may be wrong: put the first extra in
        base = [i for i in range(t + 1) if i != left_out]
        rest = list(range(t + 1, k))
        off = _off(points, values, base, rest)
        if len(off) < len(rest) - len(off) and _off(points, values, base, [left_out]):
            return sorted([left_out, *off]), base
    return None


def _wrong_owners(shares: Shares, culprit: int, base: list[int]) -> list[str]:
    """Whose shares ``culprit`` revealed wrongly, judged against the responders in ``base``."""
    curve = Interpolation([shares.points[i] for i in base])
    coefficients = curve.coefficients(shares.points[culprit])
    return [
        owner
        for j, owner in enumerate(shares.owners)
        if value_at(coefficients, [shares.columns[i][j] for i in base])
        != shares.columns[culprit][j]
    ]


def check_shares(responses: Responses, announce: Announce, request: UnmaskRequest) -> str:
    """Every logged response's shares agree with the secrets rebuilt from the first t."""
    t = announce.threshold
    if announce.sparse:
        return _check_each_owner(responses, announce, request)
    if len(responses) <= t:
        return f"{len(responses)} responses for t = {t}: none beyond the t used"
    shares = shares_of(responses, announce, request)
    found = blame(shares.points, _combination(shares, announce.round_id), t)
    if found is None:
        raise VerificationError(
            f"the shares of {names(shares.responders)} do not lie on polynomials of degree "
            f"below {t}, and which responder is wrong cannot be told"
        )
    wrong, base = found
    if wrong:
        raise VerificationError(
            "; ".join(
                f"{shares.responders[i]} revealed a wrong share of "
                f"{names(_wrong_owners(shares, i, base), 4)}"
                for i in wrong
            )
        )
    return f"all {len(responses)} responses agree with the secrets rebuilt from the first {t}"


def _check_each_owner(responses: Responses, announce: Announce, request: UnmaskRequest) -> str:
    """On a sparse graph each secret has its own holders (the owner's neighbours): every
    secret's shares must lie on one polynomial of degree below t."""
    t, problems, checked = announce.threshold, [], 0
    for owner, what, column in _owner_columns(responses, request):
        if len(column) <= t:
            continue
        checked += 1
        senders = [sender for sender, _ in column]
        points = [announce.point(sender) for sender in senders]
        found = blame(points, [shamir.decode_share(share) for _, share in column], t)
        if found is None:
            problems.append(f"the shares of {owner}'s {what} do not lie on one polynomial")
        elif found[0]:
            wrong = names([senders[i] for i in found[0]])
            problems.append(f"{wrong} revealed a wrong share of {owner}'s {what}")
    if problems:
        raise VerificationError("; ".join(problems[:8]))
    return f"the shares of {checked} secrets held beyond t = {t} lie on their polynomials"


def _owner_columns(
    responses: Responses, request: UnmaskRequest
) -> list[tuple[str, str, list[tuple[str, bytes]]]]:
    """(owner, "seed" or "mask key", its (responder, share) pairs) for every secret."""
    seeds: dict[str, list[tuple[str, bytes]]] = {v: [] for v in request.survivors}
    keys: dict[str, list[tuple[str, bytes]]] = {v: [] for v in request.dropped}
    for sender, response in responses:
        for owner, share in response.seed_shares:
            seeds[owner].append((sender, share))
        for owner, share in response.key_shares:
            keys[owner].append((sender, share))
    return [(v, "seed", c) for v, c in seeds.items()] + [
        (v, "mask key", c) for v, c in keys.items()
    ]
