"""A node's side of one secure-aggregation round, as a pure state machine.

Theory of operation. The coordinator pushes tasks; the node answers each with at most one
signed message. On the announce it checks the round against its policy and its privacy
budget, computes its contribution (its figures, bounded, clipped if the privacy unit says so,
plus its share of the discrete Gaussian noise), and advertises two fresh X25519 keys. On the
key set it checks every peer's signature against the registry and that its own keys came
back unchanged, then Shamir-shares its self-mask seed b_u and its mask key s_sk_u among those
peers, each pair of shares encrypted for its holder. On the masking task it opens the shares
addressed to it and sends x_u + e_u + PRG(b_u) +/- the pairwise masks. On the unmask request
it reveals shares of b_v for survivors and of s_sk_v for dropped nodes, after the checks of
docs/architecture.md step 5, and only ever for one request per round, which the injected
``UnmaskGuard`` remembers across restarts together with the privacy budget the release costs.
Neither step runs without a ``Witnessed`` proof (``scfed.witness``) that a quorum of the
round's candidates cosigned the log: one for this round, with at least the witness quorum
the node froze at the announce from the signed policy it held (``scfed.policy``).
Any violation raises ``RefusedError`` (``PrivacyBudgetError`` for the budget and noise rules)
and abandons the round: the node never reveals anything for it afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import TypeVar

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from scfed import masking, shamir, wire
from scfed.catalogue import check_announce, check_current
from scfed.dp.contribution import Ints, contribution
from scfed.dp.ledger import Charge, period_label, window_label
from scfed.dp.sampler import Keystream
from scfed.errors import (
    LocalProtocolError,
    PrivacyBudgetError,
    RefusedError,
    RemoteProtocolError,
    ScfedError,
)
from scfed.groups import groups
from scfed.policy import planned_release_rho, release_rho, witness_quorum
from scfed.secagg._table import NODE, NodeEvent, Phase
from scfed.secagg.graph import round_graph
from scfed.secagg.node_rules import NodePolicy, UnmaskGuard, previous_answer
from scfed.secagg.refusals import refusal
from scfed.wire import envelope as env
from scfed.wire.codec import (
    decode_abort,
    decode_advertise_keys,
    decode_announce,
    decode_result,
    decode_unmask_request,
    encode,
)
from scfed.wire.envelope import Envelope
from scfed.wire.messages import (
    AdvertiseKeys,
    Announce,
    MaskedInput,
    Registry,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
)
from scfed.wire.policy import CatalogueEntry, Policy
from scfed.wire.tasks import KeySet, MaskingTask
from scfed.witness import Witnessed

Random = Callable[[int], bytes]
Inputs = Callable[[Announce], Ints]  # the node's figures on the round's grid
_T = TypeVar("_T")


def _checked_input(x: Ints, dim: int) -> Ints:
    """The input, which must be ``dim`` int64 values on the round's grid."""
    if x.shape != (dim,) or x.dtype != np.int64:
        raise LocalProtocolError(f"the input must be {dim} int64 values")
    return x


@dataclass(frozen=True)
class Identity:
    """Who a node is in the federation and what it trusts."""

    member_id: str
    key: Ed25519PrivateKey
    registry: Registry

    @property
    def origin(self) -> str:
        return self.registry.origin


@dataclass(frozen=True)
class _Release:
    """What a round releases if it completes: its entry (None: ad hoc), budget period and
    cadence window ("" for ad hoc)."""

    entry: CatalogueEntry | None
    period: str
    window: str


class NodeRound:
    """One round from one node's side. Feed it tasks; it returns what to submit."""

    def __init__(
        self, identity: Identity, policy: NodePolicy, guard: UnmaskGuard, rng: Random, *,
        period: str, catalogue: Policy | None = None, opt_in: tuple[str, ...] = (),
        today: date | None = None,
    ) -> None:  # fmt: skip
        self.identity = identity
        self.policy = policy
        self.period = period  # the budget period this node's clock is in
        self.catalogue = catalogue  # the governance-signed policy this node holds
        self._opt_in = opt_in
        self._today = today
        self._release = _Release(None, period, "")
        self.phase = Phase.NEW
        self.outcome: Envelope | None = None
        #: Cosignatures a masking or unmask step needs, frozen at the announce.
        self.witness_quorum = 0
        self.contribution: Ints = np.zeros(0, dtype=np.int64)  # x_u + e_u, before masking
        self._guard = guard
        self._rng = rng
        self._announce: Announce | None = None
        self._announce_hash = b""
        #: The coordinator-signed announce read, and its hash: what a refusal refers to.
        self._refusing: tuple[Announce, bytes] | None = None
        self._x: masking.Vector = np.zeros(0, dtype=np.uint64)
        self._c_key = X25519PrivateKey.from_private_bytes(rng(32))
        self._s_key = X25519PrivateKey.from_private_bytes(rng(32))
        self._seed = b""
        self._advertised: dict[str, AdvertiseKeys] = {}
        self._held: dict[str, tuple[int, int]] = {}  # owner -> (seed share, key share)
        self._share_keys: dict[str, bytes] = {}
        self._shared: tuple[str, ...] = ()
        #: This node and its neighbours in the round's graph (every candidate if complete).
        self._neighbourhood: frozenset[str] = frozenset()

    # -- public surface --------------------------------------------------------------------

    @property
    def announce(self) -> Announce:
        if self._announce is None:
            raise LocalProtocolError("no round has been announced to this node")
        return self._announce

    def refusal(self, error: ScfedError) -> Envelope | None:
        """This node's signed refusal of its round, for ``error`` (None before an announce
        was read): what the operator is told of why it does not go on."""
        if self._refusing is None:
            return None
        announce, announce_hash = self._refusing
        return self._seal(wire.REFUSAL, encode(refusal(announce, announce_hash, error)))

    def on_announce(self, announce: Envelope, inputs: Inputs) -> Envelope:
        """Check an announce, compute our input for it, and advertise this round's keys."""
        return self._step(NodeEvent.ANNOUNCE, lambda: self._advertise(announce, inputs))

    def on_keys(self, keys: KeySet) -> Envelope:
        """Check every peer's advertised keys and send them shares of our secrets."""
        return self._step(NodeEvent.KEYS, lambda: self._share(keys))

    def on_masking(self, task: MaskingTask, witnessed: Witnessed) -> Envelope:
        """Open the shares addressed to us and send the masked input, once ``witnessed``
        shows a quorum of the round's candidates cosigned the log."""
        return self._step(NodeEvent.MASKING, lambda: self._mask(task, witnessed))

    def on_unmask(self, request: Envelope, witnessed: Witnessed) -> Envelope:
        """Check the unmask request and reveal the shares it may have, once per round, once
        ``witnessed`` shows a quorum of the round's candidates cosigned the log."""
        return self._step(NodeEvent.UNMASK, lambda: self._unmask(request, witnessed))

    def on_outcome(self, outcome: Envelope) -> None:
        """Verify and keep the signed result or abort of the round."""
        if outcome.type not in wire.OUTCOMES:
            raise RefusedError(f"{outcome.type} is not a round outcome")
        event = NodeEvent.RESULT if outcome.type == wire.RESULT else NodeEvent.ABORT
        self._step(event, lambda: self._finish(outcome))

    # -- machinery -------------------------------------------------------------------------

    def _step(self, event: NodeEvent, action: Callable[[], _T]) -> _T:
        allowed = NODE.get((self.phase, event))
        if allowed is None:
            raise RefusedError(f"{event.value} is out of order in phase {self.phase.value}")
        try:
            result = action()
        except RemoteProtocolError as exc:
            self.phase = Phase.ABORTED
            if isinstance(exc, RefusedError):
                raise
            raise RefusedError(str(exc)) from exc  # a peer broke the protocol: we abandon
        except ScfedError:
            self.phase = Phase.ABORTED
            raise
        (self.phase,) = allowed
        return result

    def _seal(self, type_: str, body: bytes) -> Envelope:
        me = self.identity
        return env.seal(me.key, type_, me.member_id, me.origin, body)

    def _verify_coordinator(self, envelope: Envelope, type_: str) -> None:
        registry = self.identity.registry
        try:
            env.verify(envelope, registry.origin, type_, registry.coordinator_key)
        except ScfedError as exc:
            raise RefusedError(str(exc)) from exc

    def _check_round(self, round_id: bytes, announce_hash: bytes, what: str) -> None:
        if round_id != self.announce.round_id or announce_hash != self._announce_hash:
            raise RefusedError(f"the {what} belongs to another round or announce")

    def _check_witnessed(self, proof: Witnessed, what: str) -> None:
        """RefusedError unless ``proof`` shows this round's quorum cosigned the log."""
        announce, needed = self.announce, self.witness_quorum
        if not isinstance(proof, Witnessed):  # an untyped caller's None, or an imitation
            raise RefusedError(f"the {what} came without a witness proof")
        if proof.round_id != announce.round_id:
            raise RefusedError(f"the witness proof for the {what} belongs to another round")
        if not set(proof.cosigners) <= set(announce.candidates):
            raise RefusedError(f"the witness proof for the {what} counts non-candidates")
        if min(proof.quorum, len(proof.cosigners)) < needed:
            raise RefusedError(
                f"the checkpoint before the {what} carries {len(proof.cosigners)} witness "
                f"cosignatures checked for a quorum of {proof.quorum}; the round froze "
                f"a quorum of {needed}"
            )

    # -- step 1 and 2: announce, advertise -------------------------------------------------

    def _advertise(self, envelope: Envelope, inputs: Inputs) -> Envelope:
        self._verify_coordinator(envelope, wire.ANNOUNCE)
        announce = decode_announce(envelope.body)
        self._refusing = (announce, envelope.digest(self.identity.origin))
        registry = self.identity.registry
        if announce.registry_version != registry.version:
            raise RefusedError(
                f"the round uses registry version {announce.registry_version}, "
                f"this node holds {registry.version}"
            )
        if self.identity.member_id not in announce.candidates:
            raise RefusedError("this node is not a candidate of the announced round")
        unregistered = [c for c in announce.candidates if registry.member(c) is None]
        if unregistered:
            raise RefusedError(f"unregistered candidates: {', '.join(unregistered[:5])}")
        self.policy.check(announce, registry)
        self._release = self._release_of(announce)
        planned = announce.noise.planned_for(announce.n_min)
        rho = planned_release_rho(self.catalogue, announce, registry)
        self.policy.check_floor(rho, planned)
        self._check_budget(rho)
        x = _checked_input(inputs(announce), announce.dim)
        source = Keystream(self._rng(32))
        self.contribution = contribution(
            x, announce.noise, n_min=announce.n_min, cells=announce.cells, source=source
        )
        self._x = self.contribution.view(np.uint64).copy()
        self._announce = announce
        self._announce_hash = envelope.digest(self.identity.origin)
        me = self.identity.member_id
        self._neighbourhood = round_graph(announce)[me] | {me}
        self.witness_quorum = witness_quorum(self.catalogue, announce)
        keys = AdvertiseKeys(
            announce.round_id,
            self._announce_hash,
            masking.public_bytes(self._c_key),
            masking.public_bytes(self._s_key),
        )
        return self._seal(wire.ADVERTISE_KEYS, encode(keys))

    def _release_of(self, announce: Announce) -> _Release:
        """Which release this round would be, once its rules hold: an ad-hoc one, if this
        node takes part in those, or the signed catalogue entry this node opted into, for
        the current week, in a cadence window this node has not released yet."""
        if not announce.week:
            if not self.policy.adhoc:
                raise RefusedError(
                    f"{announce.query!r} is an ad-hoc round and this node's policy takes part "
                    "only in catalogue entries ([privacy] adhoc = true to change that)"
                )
            return _Release(None, self.period, "")
        entry = None if self.catalogue is None else self.catalogue.entry(announce.query)
        if entry is None:
            raise RefusedError(f"{announce.query!r} is not in the signed catalogue this node holds")
        if entry.name not in self._opt_in:
            raise RefusedError(f"this node has not opted into catalogue entry {entry.name}")
        if self._today is None:
            raise LocalProtocolError("a catalogue round needs this node's date")
        week = check_announce(entry, announce)
        check_current(week, self._today)
        release = _Release(
            entry, period_label(self.policy.budget.period, week),
            window_label(entry.cadence, week),
        )  # fmt: skip
        self._check_window(release, announce.round_id)
        return release

    def _check_window(self, release: _Release, round_id: bytes) -> None:
        """RefusedError if this node took part in a release of the entry in the window."""
        entry = release.entry
        if entry is None:
            return
        if any(other != round_id for other in self._guard.released(entry.name, release.window)):
            raise RefusedError(
                f"this node already took part in a release of {entry.name} in its "
                f"{entry.cadence} window {release.window}"
            )

    def _check_budget(self, rho: Fraction) -> None:
        """PrivacyBudgetError unless ``rho`` fits the period's cap (and the ad-hoc cap)."""
        period = self._release.period
        self.policy.budget.check(self._guard.spent(period), rho, period)
        if self._release.entry is None:
            spent = sum(
                (c.rho for c in self._guard.charges_in(period) if not c.window), Fraction(0)
            )
            if spent + rho > self.policy.adhoc_cap:
                raise PrivacyBudgetError(
                    f"an ad-hoc release costing rho {float(rho):.4g} would take ad-hoc rounds "
                    f"in period {period} to {float(spent + rho):.4g}, past this node's cap "
                    f"for them of {float(self.policy.adhoc_cap):.4g}"
                )

    # -- step 3: share keys ----------------------------------------------------------------

    def _verified_advertisement(self, data: bytes) -> tuple[str, AdvertiseKeys]:
        envelope = Envelope.from_bytes(data)
        member = self.identity.registry.member(envelope.signer)
        if member is None or envelope.signer not in self.announce.candidates:
            raise RefusedError(f"keys advertised by a non-candidate {envelope.signer[:64]!r}")
        try:
            env.verify(envelope, self.identity.origin, wire.ADVERTISE_KEYS, member.identity_key)
        except ScfedError as exc:
            raise RefusedError(f"unsigned keys for {member.member_id}: {exc}") from exc
        keys = decode_advertise_keys(envelope.body)
        self._check_round(keys.round_id, keys.announce_hash, "advertised keys")
        return member.member_id, keys

    def _share(self, keyset: KeySet) -> Envelope:
        announce, me = self.announce, self.identity.member_id
        advertised = dict(self._verified_advertisement(a) for a in keyset.advertisements)
        if len(advertised) != len(keyset.advertisements):
            raise RefusedError("a node advertised keys twice")
        own = advertised.get(me)
        if own is None or (own.c_public_key, own.s_public_key) != (
            masking.public_bytes(self._c_key),
            masking.public_bytes(self._s_key),
        ):
            raise RefusedError("the key set does not carry this node's own keys unchanged")
        if not set(advertised) <= self._neighbourhood:
            raise RefusedError("the key set carries keys of nodes outside this node's graph")
        if len(advertised) < announce.local_quorum:
            raise RefusedError(f"{len(advertised)} peers are fewer than {announce.local_quorum}")
        self._advertised = advertised
        self._seed = self._rng(shamir.SECRET_BYTES)
        peers = sorted(advertised)
        points = [announce.point(v) for v in peers]
        s_raw = self._s_key.private_bytes_raw()
        seeds = shamir.split(self._seed, points, announce.threshold, self._rng)
        keys = shamir.split(s_raw, points, announce.threshold, self._rng)
        shares = []
        for peer, b, s in zip(peers, seeds, keys, strict=True):
            if peer == me:
                self._held[me] = (b, s)
                continue
            plaintext = shamir.encode_share(b) + shamir.encode_share(s)
            shares.append((peer, self._encrypt(peer, plaintext)))
        body = ShareKeys(announce.round_id, self._announce_hash, tuple(shares))
        return self._seal(wire.SHARE_KEYS, encode(body))

    def _share_key(self, peer: str) -> bytes:
        # Both directions of a pair use one key (fresh nonces), so agree once per peer.
        key = self._share_keys.get(peer)
        if key is None:
            shared = self._agree(self._c_key, peer, self._advertised[peer].c_public_key)
            key = masking.share_encryption_key(shared, self.announce.round_id)
            self._share_keys[peer] = key
        return key

    @staticmethod
    def _agree(private: X25519PrivateKey, peer: str, public: bytes) -> bytes:
        try:
            return masking.agree(private, public)
        except RemoteProtocolError as exc:
            raise RefusedError(f"the key set carries an unusable key of {peer}") from exc

    def _encrypt(self, peer: str, plaintext: bytes) -> bytes:
        nonce = self._rng(masking.NONCE_BYTES)
        context = masking.share_context(self.announce.round_id, self.identity.member_id, peer)
        return masking.encrypt_shares(self._share_key(peer), nonce, context, plaintext)

    # -- step 4: masked input --------------------------------------------------------------

    def _mask(self, task: MaskingTask, witnessed: Witnessed) -> Envelope:
        self._check_witnessed(witnessed, "masking task")
        announce, me = self.announce, self.identity.member_id
        shared = task.shared
        if task.round_id != announce.round_id:
            raise RefusedError("the masking task belongs to another round")
        if not set(shared) <= set(self._advertised) or me not in shared:
            raise RefusedError("the masking task names nodes that did not advertise keys")
        if len(shared) < announce.local_quorum:
            raise RefusedError(
                f"{len(shared)} nodes shared keys, fewer than {announce.local_quorum}"
            )
        senders = [sender for sender, _ in task.shares]
        if sorted(senders) != [v for v in shared if v != me]:
            raise RefusedError("the masking task does not carry shares from exactly those nodes")
        for sender, ciphertext in task.shares:
            self._held[sender] = self._open(sender, ciphertext)
        self._shared = shared
        vector = self._masked_vector(shared)
        body = MaskedInput(announce.round_id, self._announce_hash, masking.encode_vector(vector))
        return self._seal(wire.MASKED_INPUT, encode(body))

    def _open(self, sender: str, ciphertext: bytes) -> tuple[int, int]:
        context = masking.share_context(self.announce.round_id, sender, self.identity.member_id)
        plaintext = masking.decrypt_shares(self._share_key(sender), context, ciphertext, sender)
        if len(plaintext) != 2 * shamir.SHARE_BYTES:
            raise RefusedError(f"the shares from {sender} have the wrong length")
        n = shamir.SHARE_BYTES
        return shamir.decode_share(plaintext[:n]), shamir.decode_share(plaintext[n:])

    def _masked_vector(self, shared: tuple[str, ...]) -> masking.Vector:
        announce, me = self.announce, self.identity.member_id
        y = self._x  # our private copy; masked in place, once
        expander = masking.Expander(announce.dim)
        expander.add(y, masking.self_mask_key(self._seed, announce.round_id))
        for peer in shared:
            if peer == me:
                continue
            secret = self._agree(self._s_key, peer, self._advertised[peer].s_public_key)
            key = masking.pair_mask_key(secret, announce.round_id)
            if peer < me:
                expander.add(y, key)
            else:
                expander.subtract(y, key)
        return y

    # -- step 5: unmask --------------------------------------------------------------------

    def _unmask(self, envelope: Envelope, witnessed: Witnessed) -> Envelope:
        self._check_witnessed(witnessed, "unmask request")
        self._verify_coordinator(envelope, wire.UNMASK_REQUEST)
        request_hash = envelope.digest(self.identity.origin)
        round_id = self.announce.round_id
        prior = previous_answer(self._guard, round_id, request_hash)
        if prior is not None:
            return prior
        request = decode_unmask_request(envelope.body)
        self._check_unmask(request)
        charge = self._charge(request)
        response = UnmaskResponse(
            round_id,
            request_hash,
            tuple(
                (v, shamir.encode_share(self._held[v][0])) for v in self._ours(request.survivors)
            ),
            tuple((v, shamir.encode_share(self._held[v][1])) for v in self._ours(request.dropped)),
        )
        sealed = self._seal(wire.UNMASK_RESPONSE, encode(response))
        self._guard.record(round_id, request_hash, sealed.to_bytes(), charge)
        return sealed

    def _charge(self, request: UnmaskRequest) -> Charge:
        """What revealing for this request costs, checked now that the survivors are known:
        enough firms among them, the noise floor and the budget for them, the window."""
        announce, registry = self.announce, self.identity.registry
        firms = groups(registry, request.survivors).firms
        if firms < announce.n_min:
            raise RefusedError(
                f"the {len(request.survivors)} survivors belong to {firms} corporate groups, "
                f"fewer than n_min {announce.n_min}"
            )
        rho = release_rho(self.catalogue, announce, registry, request.survivors)
        self.policy.check_floor(rho, len(request.survivors))
        self._check_window(self._release, announce.round_id)
        self._check_budget(rho)
        release = self._release
        return Charge(
            announce.round_id, announce.query, release.period, len(request.survivors), rho,
            release.window,
        )  # fmt: skip

    def _check_unmask(self, request: UnmaskRequest) -> None:
        announce = self.announce
        self._check_round(request.round_id, request.announce_hash, "unmask request")
        survivors, dropped = set(request.survivors), set(request.dropped)
        if survivors & dropped:
            raise RefusedError("the unmask request lists nodes as both survivor and dropped")
        named = survivors | dropped
        if not named <= set(announce.candidates) or not named & self._neighbourhood <= set(
            self._shared
        ):
            raise RefusedError("the unmask request names nodes that never shared keys")
        if self.identity.member_id not in survivors:
            raise RefusedError("the unmask request does not count this node as a survivor")
        if len(survivors) < announce.quorum:
            raise RefusedError(f"{len(survivors)} survivors are fewer than {announce.quorum}")
        planned = announce.noise.planned_for(announce.n_min)
        if announce.sparse and len(survivors) < planned:
            # The sparse graph was checked for at most this many dropouts: beyond them the
            # honest survivors' graph may fall apart and the sum of a part would show.
            raise RefusedError(
                f"{len(survivors)} survivors are fewer than the {planned} the sparse graph "
                f"was chosen for"
            )

    def _ours(self, owners: tuple[str, ...]) -> tuple[str, ...]:
        """The owners among ``owners`` whose shares this node holds: its neighbours that
        shared keys, and itself (all of them on the complete graph)."""
        return tuple(v for v in owners if v in self._held)

    # -- step 6: outcome -------------------------------------------------------------------

    def _finish(self, envelope: Envelope) -> None:
        self._verify_coordinator(envelope, envelope.type)
        decode = decode_result if envelope.type == wire.RESULT else decode_abort
        outcome = decode(envelope.body)
        self._check_round(outcome.round_id, outcome.announce_hash, "outcome")
        self.outcome = envelope
