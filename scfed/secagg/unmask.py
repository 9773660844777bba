"""Removing the masks from a round's masked total: the sum the coordinator publishes and an
auditor recomputes from the log, with this one function. Pure, no I/O.

From t unmask responses, each survivor's self-mask seed b_v and each dropped node's mask key
s_sk_v are rebuilt by Lagrange interpolation at zero (``scfed.shamir``); the survivors' self
masks and the dropped nodes' pairwise masks with every survivor are then subtracted
(``scfed.masking``). A rebuilt key that does not match the public key its node advertised is
the responders' fault (RemoteProtocolError).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from scfed import masking, shamir
from scfed.errors import RemoteProtocolError
from scfed.wire.messages import AdvertiseKeys, Announce, UnmaskRequest, UnmaskResponse


def unmasked_sum(
    announce: Announce,
    advertised: Mapping[str, AdvertiseKeys],
    masked_total: masking.Vector,
    request: UnmaskRequest,
    responses: Sequence[tuple[str, UnmaskResponse]],
) -> masking.Vector:
    """The sum of the survivors' inputs: their masked total with every mask removed.

    ``responses`` are t (sender, unmask response) pairs; each
    survivor's seed b_v and each dropped node's mask key s_sk_v is rebuilt from them. The
    coordinator and an auditor replaying the log compute the result with this one function.
    Raises RemoteProtocolError when a rebuilt key does not match its advertised public key.
    """
    coefficients = shamir.lagrange_at_zero([announce.point(sender) for sender, _ in responses])
    seeds = _rebuild([r.seed_shares for _, r in responses], coefficients)
    keys = _rebuild([r.key_shares for _, r in responses], coefficients)
    total = masked_total.copy()
    expander = masking.Expander(announce.dim)
    for seed in seeds:
        expander.subtract(total, masking.self_mask_key(seed, announce.round_id))
    for v, key in zip(request.dropped, keys, strict=True):
        _remove_pair_masks(
            total,
            expander,
            announce=announce,
            advertised=advertised,
            dropped=(v, key),
            survivors=request.survivors,
        )
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


def _rebuild(columns: list[tuple[tuple[str, bytes], ...]], coefficients: list[int]) -> list[bytes]:
    """Rebuild one secret per owner from each responder's list of (owner, share)."""
    owners = len(columns[0]) if columns else 0
    return [
        shamir.combine([shamir.decode_share(column[i][1]) for column in columns], coefficients)
        for i in range(owners)
    ]
