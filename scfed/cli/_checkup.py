"""``scfed config check``: every finding about one role's config, before a daemon meets it.

Part of the command line, since it reads what each role's code reads: the config, its key
and certificate files, the signed files, the node's store (read-only), and it dials the
coordinator. Each check gives findings, "ok", "warning" or "error", one line each; a check
that raises is one error naming what failed, and the other checks still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc

from edge.config import (
    kind_of,
    load_coordinator_config,
    load_federation_config,
    load_node_config,
    load_operator_config,
    read_governance_key,
    read_policy_file,
    read_registry_file,
)
from edge.files import read_private_key_file
from edge.transport import check_tls_files, secure_channel
from scfed import pki
from scfed.config import NodeConfig, TlsFiles
from scfed.errors import ScfedError

#: How long the check waits for the coordinator's TLS handshake.
DIAL_TIMEOUT_S = 5.0

OK, WARNING, ERROR = "ok", "warning", "error"


@dataclass(frozen=True)
class Finding:
    level: str  # OK, WARNING or ERROR
    text: str

    def line(self) -> str:
        return f"{self.level}: {self.text}"


Check = Callable[[], Iterator[Finding]]
#: A role's config, parsed: what it is, and the checks that read it.
Parsed = tuple[Finding, list[Check]]


def check(path: Path, coordinator: str | None = None) -> list[Finding]:
    """Every finding about the config at ``path``; ``coordinator`` overrides its address."""
    roles = {"node": _node, "coordinator": _coordinator, "operator": _operator}
    try:  # nothing else can be read without the config
        parsed, checks = roles.get(kind_of(path), _federation)(path, coordinator)
    except ScfedError as exc:
        return [Finding(ERROR, str(exc))]
    found = [parsed]
    for step in checks:
        try:
            found += list(step())
        except ScfedError as exc:
            found.append(Finding(ERROR, str(exc)))
    return found


def _node(path: Path, coordinator: str | None) -> Parsed:
    config = load_node_config(path)

    def keys() -> Iterator[Finding]:
        pki.load_ed25519_private_pem(read_private_key_file(config.identity_key))
        yield Finding(OK, f"{config.identity_key}: the identity key, readable by its owner only")
        yield from _tls(config.tls)
        read_governance_key(config.governance_key)
        yield Finding(OK, f"{config.governance_key}: the governance key")

    def catalogue() -> Iterator[Finding]:
        yield from _opted_in(config)

    def reachable() -> Iterator[Finding]:
        yield _dial(config.tls, coordinator or config.coordinator, config.server_name)

    parsed = Finding(OK, f"{path}: a node's config for member {config.member_id}")
    return parsed, [keys, catalogue, reachable]


def _opted_in(config: NodeConfig) -> Iterator[Finding]:
    """The node's opted-in entries against the newest policy its node accepted, and their
    plan against its budget."""
    from node.releases import accepted_policies
    from scfed.policy import check_plan

    governance = read_governance_key(config.governance_key)
    policies = accepted_policies(config.database, config.origin, governance)
    if not policies:
        yield Finding(WARNING, "no signed policy yet: the opted-in entries are checked when "
                      "the node has received one (run scfed node serve)")  # fmt: skip
        return
    policy = policies[max(policies)]
    names = {e.name for e in policy.entries}
    for name in config.opt_in:
        if name in names:
            yield Finding(
                OK, f"opt_in {name!r} is in the signed catalogue (version {policy.version})"
            )
        else:
            close = ", ".join(sorted(names)) or "none"
            where = f"version {policy.version}; its entries: {close}"
            yield Finding(ERROR, f"opt_in {name!r} is not in the signed catalogue ({where})")
    if not config.opt_in:
        yield Finding(WARNING, "opt_in is empty: this node takes part in no catalogue entry")
    plan = check_plan(policy, config.opt_in, config.privacy.budget)
    yield Finding(OK, f"the opted-in entries plan rho {float(plan.total):.4g} a {plan.period}, "
                  f"within this node's cap {float(config.privacy.budget.cap):.4g}")  # fmt: skip


def _coordinator(path: Path, coordinator: str | None) -> Parsed:
    config = load_coordinator_config(path)

    def keys() -> Iterator[Finding]:
        pki.load_ed25519_private_pem(read_private_key_file(config.signing_key))
        yield Finding(OK, f"{config.signing_key}: the log's signing key, owner only")
        yield from _tls(config.tls)

    def signed() -> Iterator[Finding]:
        governance = read_governance_key(config.governance_key)
        registry, _ = read_registry_file(config.registry, config.origin, governance)
        yield Finding(OK, f"{config.registry}: registry version {registry.version}, "
                      f"{len(registry.members)} members, signed by governance")  # fmt: skip
        if not config.policy.exists():
            yield Finding(WARNING, f"{config.policy}: no signed policy installed: only ad-hoc "
                          "rounds can run")  # fmt: skip
            return
        policy, _ = read_policy_file(config.policy, config.origin, governance)
        yield Finding(OK, f"{config.policy}: policy version {policy.version}, "
                      f"{len(policy.entries)} catalogue entries")  # fmt: skip
        for name in config.schedule.entries:
            if policy.entry(name) is None:
                yield Finding(ERROR, f"[schedule] entries: {name!r} is not in the catalogue")
        state = "on" if config.schedule.enabled else "off"
        yield Finding(OK, f"schedule {state}")

    return Finding(OK, f"{path}: the coordinator's config for {config.origin}"), [keys, signed]


def _operator(path: Path, coordinator: str | None) -> Parsed:
    config = load_operator_config(path)

    def keys() -> Iterator[Finding]:
        yield from _tls(config.tls)

    def reachable() -> Iterator[Finding]:
        yield _dial(config.tls, coordinator or config.coordinator, config.server_name)

    return Finding(OK, f"{path}: operator {config.name}'s config"), [keys, reachable]


def _federation(path: Path, coordinator: str | None) -> Parsed:
    """Governance's ``GOV/public/federation.toml``: it parses, and, where governance's folder
    is beside it, its signing and CA keys are its owner's only and the CA is valid."""
    from governance.federation import CA_CERTIFICATE, CA_KEY, GOVERNANCE_KEY, PUBLIC

    config = load_federation_config(path)
    folder = path.parent.parent if path.parent.name == PUBLIC else None

    def keys() -> Iterator[Finding]:
        if folder is None or not (folder / GOVERNANCE_KEY).exists():
            yield Finding(OK, "governance's keys are not beside it (checked where they are)")
            return
        pki.load_ed25519_private_pem(read_private_key_file(folder / GOVERNANCE_KEY))
        yield Finding(OK, f"{folder / GOVERNANCE_KEY}: governance's signing key, owner only")
        pki.load_private_key_pem(read_private_key_file(folder / CA_KEY))
        yield Finding(OK, f"{folder / CA_KEY}: the CA key, owner only")
        ca = folder / PUBLIC / CA_CERTIFICATE
        left = pki.load_certificate_pem(ca.read_bytes()).not_valid_after_utc - datetime.now(UTC)
        level = ERROR if left.days < 0 else WARNING if left.days < 365 else OK
        yield Finding(level, f"{ca}: the federation CA, valid for {left.days} more days")

    return Finding(OK, f"{path}: federation {config.name}, coordinator {config.address}"), [keys]


def _tls(tls: TlsFiles) -> Iterator[Finding]:
    warnings = check_tls_files(tls, datetime.now(UTC))
    yield Finding(OK, f"{tls.certificate}: valid, for {tls.key}, issued by {tls.ca}")
    for warning in warnings:
        yield Finding(WARNING, warning)


def _dial(tls: TlsFiles, address: str, server_name: str) -> Finding:
    """Whether the coordinator answers a mutual-TLS handshake at ``address``."""
    with secure_channel(tls, address, server_name) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=DIAL_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            return Finding(ERROR, f"the coordinator at {address} did not answer a TLS "
                           f"handshake within {DIAL_TIMEOUT_S:.0f} s")  # fmt: skip
    return Finding(OK, f"the coordinator at {address} answers over mutual TLS")
