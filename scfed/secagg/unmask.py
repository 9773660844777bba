"""Removing the masks from a round's masked total: the sum the coordinator publishes and an
auditor recomputes from the log, with this one function. Pure, no I/O.

Each survivor's self-mask seed b_v and each dropped node's mask key s_sk_v is rebuilt by
Lagrange interpolation at zero (``scfed.shamir``) from the first t responses that hold a
share of it: on the complete graph every responder holds one of every node's, on a SecAgg+
sparse graph only a node's neighbours do (``scfed.secagg.graph``). The survivors' self masks
and the dropped nodes' pairwise masks with their surviving neighbours are then subtracted
(``scfed.masking``). A rebuilt key that does not match the public key its node advertised is
the responders' fault (RemoteProtocolError).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from scfed import masking, shamir
from scfed.errors import RemoteProtocolError
from scfed.secagg.graph import round_graph
from scfed.wire.messages import AdvertiseKeys, Announce, UnmaskRequest, UnmaskResponse

Responses = Sequence[tuple[str, UnmaskResponse]]


def short_of_shares(announce: Announce, request: UnmaskRequest, responses: Responses) -> str:
    """Why ``responses`` cannot unmask the round ("" when they can): the first owner whose
    secret fewer than t of them hold a share of."""
    seeds = _holders(responses, seed=True)
    keys = _holders(responses, seed=False)
    for owners, held, what in ((request.survivors, seeds, "seed"), (request.dropped, keys, "key")):
        for owner in owners:
            count = len(held.get(owner, ()))
            if count < announce.threshold:
                return (
                    f"{count} responses hold a share of {owner}'s {what}, "
                    f"{announce.threshold} are needed"
                )
    return ""


def unmasked_sum(
    announce: Announce,
    advertised: Mapping[str, AdvertiseKeys],
    masked_total: masking.Vector,
    request: UnmaskRequest,
    responses: Responses,
) -> masking.Vector:
    """The sum of the survivors' inputs: their masked total with every mask removed.

    ``responses`` are (sender, unmask response) pairs, at least t holding a share of each
    survivor's seed and of each dropped node's mask key (``short_of_shares``); the first t
    holders of each are used. The coordinator and an auditor replaying the log compute the
    result with this one function. Raises RemoteProtocolError when a rebuilt key does not
    match its advertised public key, or a secret has too few shares.
    """
    short = short_of_shares(announce, request, responses)
    if short:
        raise RemoteProtocolError(f"cannot unmask: {short}")
    seeds = _rebuild(announce, _holders(responses, seed=True), request.survivors)
    keys = _rebuild(announce, _holders(responses, seed=False), request.dropped)
    graph = round_graph(announce)
    total = masked_total.copy()
    expander = masking.Expander(announce.dim)
    for seed in seeds:
        expander.subtract(total, masking.self_mask_key(seed, announce.round_id))
    for v, key in zip(request.dropped, keys, strict=True):
        neighbours = tuple(u for u in request.survivors if u in graph[v])
        _remove_pair_masks(
            total, expander, announce=announce, advertised=advertised, dropped=(v, key),
            survivors=neighbours,
        )  # fmt: skip
    return total


def _remove_pair_masks(
    total: masking.Vector,
    expander: masking.Expander,
    *,
    announce: Announce,
    advertised: Mapping[str, AdvertiseKeys],
    dropped: tuple[str, bytes],
    survivors: tuple[str, ...],
) -> None:
    v, key_bytes = dropped
    key = X25519PrivateKey.from_private_bytes(key_bytes)
    if masking.public_bytes(key) != advertised[v].s_public_key:
        raise RemoteProtocolError(f"the revealed shares do not rebuild {v}'s mask key")
    for u in survivors:
        secret = masking.agree(key, advertised[u].s_public_key)
        pair_key = masking.pair_mask_key(secret, announce.round_id)
        # u added +PRG(s_uv) when v < u and -PRG(s_uv) when v > u; take it back out.
        if v < u:
            expander.subtract(total, pair_key)
        else:
            expander.add(total, pair_key)


def _holders(responses: Responses, *, seed: bool) -> dict[str, list[tuple[str, bytes]]]:
    """Each owner's (responder, share) pairs, in the order of ``responses``."""
    held: dict[str, list[tuple[str, bytes]]] = {}
    for sender, response in responses:
        for owner, share in response.seed_shares if seed else response.key_shares:
            held.setdefault(owner, []).append((sender, share))
    return held


def _rebuild(
    announce: Announce, held: Mapping[str, list[tuple[str, bytes]]], owners: Sequence[str]
) -> list[bytes]:
    """Rebuild each owner's secret from the first t shares held of it."""
    secrets = []
    for owner in owners:
        first = held[owner][: announce.threshold]
        points = tuple(announce.point(sender) for sender, _ in first)
        shares = [shamir.decode_share(share) for _, share in first]
        secrets.append(shamir.combine(shares, _coefficients(points)))
    return secrets


@lru_cache(maxsize=4096)
def _coefficients(points: tuple[int, ...]) -> list[int]:
    return shamir.lagrange_at_zero(list(points))
