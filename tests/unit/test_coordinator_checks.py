"""The coordinator refuses a node's unusable key before it can spoil the round for others."""

from __future__ import annotations

import pytest

from scfed import wire
from scfed.errors import RemoteProtocolError
from scfed.secagg import CoordinatorRound, Phase
from scfed.secagg.driver import federation
from scfed.wire import envelope as env
from scfed.wire.codec import encode
from scfed.wire.messages import AdvertiseKeys
from tests.unit._support import Rng, make_announce


@pytest.mark.parametrize("which", ["c", "s"])
def test_a_low_order_key_is_refused_at_advertise_naming_its_sender(which: str) -> None:
    rng = Rng(b"degenerate")
    fed = federation(4, rng)
    members = tuple(sorted(fed.member_keys))
    announce = make_announce(fed, members, threshold=3, n_min=3)
    coordinator = CoordinatorRound(announce, fed.registry, fed.coordinator_key)
    coordinator.start()
    good = bytes(range(9, 41))
    keys = AdvertiseKeys(
        coordinator.announce.round_id,
        coordinator.announce_hash,
        bytes(32) if which == "c" else good,
        bytes(32) if which == "s" else good,
    )
    sender = members[0]
    envelope = env.seal(
        fed.member_keys[sender], wire.ADVERTISE_KEYS, sender, fed.registry.origin, encode(keys)
    )
    with pytest.raises(RemoteProtocolError, match=f"{sender} advertised an unusable X25519 key"):
        coordinator.receive(sender, envelope)
    assert coordinator.phase is Phase.ADVERTISING
    assert sender not in coordinator.received[Phase.ADVERTISING]
