"""The node daemon: one outbound mutual-TLS connection, tasks in, signed answers out. I/O.

The connection is re-established with exponential backoff whenever it breaks. Every task is
handled to completion before the next is read; a task that breaks a safety rule makes the
node abandon that round (logged as a refusal), and no input ever crashes the daemon. With
``[metrics]`` configured it serves its metrics and ``/healthz`` on loopback (``node.metrics``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import grpc

from edge.config import load_node_config, read_governance_key
from edge.files import read_private_key_file
from edge.observe import MetricsServer
from edge.transport import describe, secure_channel, unreachable
from node import crisis
from node.figures import input_vector
from node.governance import SignedVersions
from node.logcheck import NodeLog
from node.metrics import RECEIPT, NodeMetrics, reason_of
from node.records import RecordStore
from node.releases import accepted_policies, keep_release, notify
from node.store import NodeStore
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed import pki, wire
from scfed.catalogue import node_vector
from scfed.config import NodeConfig
from scfed.dp.contribution import Ints
from scfed.dp.ledger import period_label
from scfed.errors import (
    ImportRowError,
    LocalProtocolError,
    PrivacyBudgetError,
    RefusedError,
    ScfedError,
)
from scfed.groups import group_of, groups
from scfed.policy import check_plan
from scfed.secagg import Identity, NodePolicy, NodeRound, previous_answer
from scfed.wire import envelope as env
from scfed.wire.codec import decode_abort, decode_result, decode_unmask_request
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Announce, Registry
from scfed.wire.policy import Policy
from scfed.wire.tasks import (
    CheckpointTask,
    KeySet,
    MaskingTask,
    Receipt,
    Task,
    receipt_from_proto,
    task_from_proto,
    task_receipt,
)
from scfed.witness import Witnessed

log = logging.getLogger("scfed.node")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SUBMIT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: doubling from ``first`` up to ``most``, with random jitter."""

    first: float = 0.5
    most: float = 30.0

    def delay(self, attempt: int) -> float:
        jitter = int.from_bytes(os.urandom(2), "big") / 65536  # spreads reconnecting nodes
        return min(self.first * 2.0**attempt, self.most) * (0.5 + jitter / 2)


class NodeDaemon:
    """Takes part in rounds as the coordinator announces them, until stopped."""

    def __init__(self, config: NodeConfig, coordinator: str | None = None) -> None:
        self.config = config
        self._config_stamp = _stamp(config.path)
        self.address = coordinator or config.coordinator
        self.metrics = NodeMetrics.for_config(config, self.address)
        self._identity_key = pki.load_ed25519_private_pem(
            read_private_key_file(config.identity_key)
        )
        self._governance_key = read_governance_key(config.governance_key)
        privacy = config.privacy
        self._policy = NodePolicy(
            min_n_min=config.min_n_min,
            max_cells=config.max_cells,
            budget=privacy.budget,
            min_t_collude=privacy.t_collude,
            noise_floor=privacy.noise_floor,
            adhoc=privacy.adhoc,
            adhoc_cap=privacy.adhoc_cap,
        )
        self._store = NodeStore(config.database)
        self._log = NodeLog(self._store, config.database.parent / "evidence", config.member_id)
        self._registry: Registry | None = None
        self._catalogue: Policy | None = None  # the governance-signed policy
        self._refused: Policy | None = None  # a newer one whose plan passes this node's cap
        self._records = RecordStore(config.database)
        self._rounds: dict[bytes, NodeRound] = {}
        self._current: NodeRound | None = None  # the round of the task being handled
        self._stop = threading.Event()
        self._call: grpc.CallIterator[spb.Task] | None = None
        self._log_stub: rpc.LogServiceStub | None = None
        self._versions = SignedVersions(self._store, config.origin, self._governance_key)
        self._hold_stored()

    def stop(self) -> None:
        """End the connection and the run loop (safe from a signal handler)."""
        self._stop.set()
        call = self._call
        if call is not None:
            call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs

    def run(self, backoff: Backoff = Backoff()) -> None:
        """Stay connected and take part in rounds until ``stop``."""
        attempt, exposed = 0, None
        try:
            if self.config.metrics_listen:
                exposed = MetricsServer(
                    self.config.metrics_listen, self.metrics.registry,
                    {"/healthz": self.metrics.health},
                )  # fmt: skip
                exposed.start()
            while not self._stop.is_set():
                try:
                    if self._session():
                        attempt = 0
                except grpc.RpcError as exc:
                    if self._stop.is_set():
                        break
                    self._lost(exc)
                delay = backoff.delay(attempt)
                attempt += 1
                log.info("reconnecting in %.1f s", delay)
                self._stop.wait(delay)
        finally:
            if exposed is not None:
                exposed.close()
            self._store.close()
        log.info("stopped")

    def _lost(self, error: grpc.RpcError) -> None:
        """Log why the connection ended, or why there was none: the coordinator may not be
        up yet, so a node that cannot reach it keeps trying."""
        reason = unreachable(error)
        if reason is not None:
            log.warning("cannot reach the coordinator at %s: %s", self.address, reason)
        else:
            log.warning("connection to %s lost: %s", self.address, describe(error))

    def _session(self) -> bool:
        """One connection; True if the coordinator accepted us before it ended."""
        options: list[tuple[str, int | str]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 10_000),
        ]
        accepted = False
        tls, name = self.config.tls, self.config.server_name
        with secure_channel(tls, self.address, name, options) as channel:
            stub = rpc.NodeServiceStub(channel)
            self._log_stub = rpc.LogServiceStub(channel)
            if self._registry is not None:  # receipts are checked with this connection's log
                self._log.bind(self._registry, self._log_stub)
            version = self._registry.version if self._registry else 0
            request = spb.SubscribeRequest(
                registry_version=version, releases_from=self._store.releases_from()
            )
            stream = stub.Subscribe(request)
            self._call = stream
            if self._stop.is_set():
                stream.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs
            stream.initial_metadata()  # sent once the coordinator has taken the stream
            accepted = stream.is_active()
            if accepted:
                log.info("connected to the coordinator at %s", self.address)
                self.metrics.connected(True)
            try:
                for task in stream:
                    accepted = True
                    self.metrics.task(datetime.now(UTC))
                    self._handle(stub, task)
            finally:
                self.metrics.connected(False)
        return accepted

    def _handle(self, stub: rpc.NodeServiceStub, message: spb.Task) -> None:
        self._current = None
        self._reread_config()
        try:
            self._log.check_running()
            reply = self._dispatch(task_from_proto(message), task_receipt(message))
        except (RefusedError, PrivacyBudgetError, LocalProtocolError, ImportRowError) as exc:
            log.error("REFUSED: %s; this node abandons the round", exc)
            self.metrics.refused(reason_of(exc))
            self._tell_refusal(stub, exc)
            return
        except ScfedError as exc:
            log.warning("ignoring a bad task: %s", exc)
            return
        try:
            if isinstance(reply, spb.Cosignature):
                stub.Cosign(reply, timeout=SUBMIT_TIMEOUT_S)
            elif reply is not None:
                self._submit(stub, reply)
        except grpc.RpcError as exc:
            log.warning("the coordinator did not accept our answer: %s", describe(exc))

    def _reread_config(self) -> None:
        """Take a changed opt-in from node.toml at once; say plainly that any other change
        waits for a restart (keys, privacy and policy settings are read at start-up)."""
        stamp = _stamp(self.config.path)
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            new = load_node_config(self.config.path)
        except ScfedError as exc:
            log.error("node.toml changed but does not load (%s); keeping the running one", exc)
            return
        if new.opt_in != self.config.opt_in:
            self.config = replace(self.config, opt_in=new.opt_in)
            log.info("node.toml changed: opt_in is now %s", list(new.opt_in) or "empty")
            policy = self._catalogue or self._refused
            if policy is not None:
                self._hold_policy(policy)  # the plan of the new opt-in, against the cap
        if replace(new, opt_in=self.config.opt_in) != self.config:
            log.warning(
                "node.toml changed beyond opt_in: restart the node (scfed node serve) for the "
                "other changes to take effect"
            )

    def _tell_refusal(self, stub: rpc.NodeServiceStub, error: ScfedError) -> None:
        """Tell the coordinator why this node abandons its round: a signed refusal with the
        rule's code and words (nothing of the firm's figures), logged like any message."""
        node_round, self._current = self._current, None
        refusal = node_round.refusal(error) if node_round is not None else None
        if refusal is None:
            return
        try:
            stub.Submit(refusal.to_proto(), timeout=SUBMIT_TIMEOUT_S)
        except grpc.RpcError as exc:
            log.warning("the coordinator did not take our refusal: %s", describe(exc))

    def _submit(self, stub: rpc.NodeServiceStub, reply: Envelope) -> None:
        """Submit a message and check its receipt: it must be in the log as we sent it."""
        ack = stub.Submit(reply.to_proto(), timeout=SUBMIT_TIMEOUT_S)
        receipt = receipt_from_proto(ack.receipt) if ack.HasField("receipt") else None
        try:
            self._log.receipt(reply.to_bytes(), receipt, f"receipt for our {reply.type}")
        except ScfedError as exc:
            log.error("REFUSED: %s; this node abandons the round", exc)
            self.metrics.refused(RECEIPT)
            self._rounds.clear()
            return
        log.info("%s accepted", reply.type)

    def _dispatch(self, task: Task, receipt: Receipt | None) -> Envelope | spb.Cosignature | None:
        match task:
            case KeySet():
                return self._round(task.round_id).on_keys(task)
            case MaskingTask():
                node_round = self._round(task.round_id)
                return node_round.on_masking(task, self._witnessed(node_round, receipt))
            case CheckpointTask():
                return self._log.cosignature(task.note, self._identity_key)
            case Envelope() if task.type == wire.REGISTRY:
                self._update_registry(task)
            case Envelope() if task.type == wire.POLICY:
                self._update_policy(task)
            case Envelope() if task.type == wire.RELEASE:
                self._log.receipt(task.to_bytes(), receipt, task.type)
                self._keep_release(task, receipt)
            case Envelope():
                self._log.receipt(task.to_bytes(), receipt, task.type)
                return self._round_message(task, receipt)
        return None

    def _round_message(self, task: Envelope, receipt: Receipt | None) -> Envelope | None:
        if task.type == wire.ANNOUNCE:
            return self._join(task)
        if task.type == wire.UNMASK_REQUEST:
            return self._unmask(task, receipt)
        self._finish(task)
        return None

    def _witnessed(self, node_round: NodeRound, receipt: Receipt | None) -> Witnessed:
        """The proof the round machine needs: the task's checkpoint, consistent with this
        node's view, cosigned by the quorum the round froze at its announce."""
        announce, registry = node_round.announce, node_round.identity.registry
        return self._log.witnessed(receipt, announce, registry, node_round.witness_quorum)

    def _round(self, round_id: bytes) -> NodeRound:
        node_round = self._rounds.get(round_id)
        if node_round is None:
            raise ScfedError(f"a task for round {round_id.hex()}, which this node is not in")
        self._current = node_round
        return node_round

    def _hold_stored(self) -> None:
        """Hold the registry and policy accepted before a restart, before the coordinator
        sends anything: the node subscribes with that registry version."""
        registry = self._versions.stored_registry()
        if registry is not None:
            self._hold_registry(registry)
        policy = self._versions.stored_policy()
        if policy is not None:
            self._hold_policy(policy)

    def _update_registry(self, envelope: Envelope) -> None:
        """Take a signed registry unless it is older than the newest this node accepted
        (RefusedError): the node keeps that one, and an announce built on another registry
        version is refused."""
        self._hold_registry(self._versions.accept_registry(envelope))

    def _hold_registry(self, registry: Registry) -> None:
        self._registry = registry
        self._log.bind(registry, self._log_stub)
        self.metrics.registry_version(registry.version)
        log.info("registry version %d: %d members", registry.version, len(registry.members))

    def _update_policy(self, envelope: Envelope) -> None:
        """Take a signed policy unless it is older than the newest this node accepted
        (RefusedError): the node keeps that one, with its witness quorum and catalogue."""
        self._hold_policy(self._versions.accept_policy(envelope))

    def _hold_policy(self, policy: Policy) -> None:
        """Hold the policy; refuse its catalogue if what this node opted into would plan to
        spend past its cap (it then takes part in none of those entries)."""
        self.metrics.policy_version(policy.version)
        registry = self._registry
        members = [m.member_id for m in registry.members] if registry is not None else []
        largest = groups(registry, members).largest if registry is not None else 1
        try:
            plan = check_plan(policy, self.config.opt_in, self._policy.budget, largest)
        except PrivacyBudgetError as exc:
            self._catalogue, self._refused = None, policy
            log.error("REFUSED: %s", exc)
            self.metrics.refused(reason_of(exc))
            return
        self._catalogue, self._refused = policy, None
        log.info(
            "policy version %d: the opted-in entries plan rho %.4g of %.4g a %s",
            policy.version, float(plan.total), float(self._policy.budget.cap), plan.period,
        )  # fmt: skip

    def _keep_release(self, release: Envelope, receipt: Receipt | None) -> None:
        """Keep a release for this member, and tell of the alerts it raises."""
        registry = self._registry
        if registry is None or receipt is None:
            raise RefusedError("a release arrived before the registry, or without a receipt")
        policies = accepted_policies(self.config.database, registry.origin, self._governance_key)
        raised = keep_release(
            self._store,
            release,
            receipt,
            registry,
            member_id=self.config.member_id,
            policies=policies,
        )
        log.info("release at log index %d kept (%d alerts)", receipt.index, len(raised))
        self.metrics.release_kept(len(raised))
        notify(raised, self.config.alerts_webhook, self.config.alerts_command)

    def _join(self, announce: Envelope) -> Envelope:
        if self._registry is None:
            raise RefusedError("a round was announced before the registry arrived")
        identity = Identity(self.config.member_id, self._identity_key, self._registry)
        today = datetime.now(UTC).date()
        period = period_label(self._policy.budget.period, today)
        node_round = NodeRound(
            identity, self._policy, self._store, os.urandom, period=period,
            catalogue=self._catalogue, opt_in=self.config.opt_in, today=today,
        )  # fmt: skip
        self._rounds.clear()  # rounds run one at a time: an announce ends any older one here
        self._current = node_round
        reply = node_round.on_announce(announce, self._inputs)
        round_id = node_round.announce.round_id
        self._rounds[round_id] = node_round
        self.metrics.joined()
        log.info("round %s: joined (%d cells)", round_id.hex(), node_round.announce.dim)
        return reply

    def _inputs(self, announce: Announce) -> Ints:
        """This node's figures for the round: from its store for a catalogue entry (which
        the round machine has checked), or from its figures file for an ad-hoc round."""
        if not announce.week:
            return input_vector(self.config.figures, announce)
        entry = None if self._catalogue is None else self._catalogue.entry(announce.query)
        if entry is None or self._registry is None:
            raise RefusedError(f"{announce.query!r} is not in the signed catalogue this node holds")
        me = group_of(self._registry, self.config.member_id)
        group = groups(self._registry, announce.candidates).size(me)
        week = date.fromisoformat(announce.week)
        return node_vector(entry, week, self._weekly, group)

    def _weekly(self, metric: str, weeks: Sequence[date]) -> Mapping[tuple[str, date], Decimal]:
        """The firm's facts: imported, or for a crisis the need and spare capacity it posted."""
        if metric in crisis.COMPONENT_SIDES:
            return crisis.weekly(self.config.database, metric, weeks)
        return self._records.weekly(metric, weeks)

    def _unmask(self, request: Envelope, receipt: Receipt | None) -> Envelope:
        registry = self._registry
        if registry is None:
            raise RefusedError("an unmask request arrived before the registry")
        env.verify(request, registry.origin, wire.UNMASK_REQUEST, registry.coordinator_key)
        round_id = decode_unmask_request(request.body).round_id
        node_round = self._rounds.get(round_id)
        if node_round is not None:
            return node_round.on_unmask(request, self._witnessed(node_round, receipt))
        answer = previous_answer(self._store, round_id, request.digest(registry.origin))
        if answer is None:
            raise RefusedError(f"an unmask request for round {round_id.hex()}, unknown here")
        return answer

    def _finish(self, outcome: Envelope) -> None:
        decode = decode_result if outcome.type == wire.RESULT else decode_abort
        round_id = decode(outcome.body).round_id
        node_round = self._rounds.get(round_id)
        if node_round is None:
            self._keep_late_outcome(round_id, outcome)
            return
        node_round.on_outcome(outcome)
        self._store.keep_outcome(round_id, outcome)
        del self._rounds[round_id]
        self.metrics.completed(outcome.type)
        log.info("round %s: %s", round_id.hex(), outcome.type)

    def _keep_late_outcome(self, round_id: bytes, outcome: Envelope) -> None:
        """Keep the outcome of a round this node took part in (its store holds its unmask
        answer) but no longer holds: it restarted, or a newer round replaced it, e.g. an
        outcome a restarted coordinator finished from its log. Its receipt was checked."""
        registry = self._registry
        if registry is None or self._store.answered(round_id) is None:
            raise ScfedError(f"an outcome for round {round_id.hex()}, which this node is not in")
        env.verify(outcome, registry.origin, outcome.type, registry.coordinator_key)
        if outcome.type == wire.RESULT and (
            self.config.member_id not in decode_result(outcome.body).survivors
        ):
            raise RefusedError("a result that leaves out this node, which answered as a survivor")
        self._store.keep_outcome(round_id, outcome)
        log.info("round %s: %s, kept from a later connection", round_id.hex(), outcome.type)


def _stamp(path: Path) -> tuple[int, int]:
    """When a file last changed, and its size: (0, 0) if it cannot be read."""
    try:
        info = path.stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)
