"""Loading configuration and the files it names: the governance key, the policy, the registry.
Edge code: it reads files and hands their bytes to the pure parsers.

``load_*_config`` make the path absolute, read the TOML file and parse it with
``scfed.config`` (which checks every value); the ``read_*`` functions read a signed file and
open it with the core's verification against the governance key. Every problem raises
ConfigError (or VerificationError for a bad signature) naming the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edge.files import absolute, read_public_file
from scfed import pki
from scfed.config import (
    CoordinatorConfig,
    FederationConfig,
    NodeConfig,
    OperatorConfig,
    parse_coordinator_config,
    parse_federation_config,
    parse_node_config,
    parse_operator_config,
)
from scfed.errors import ConfigError, RemoteProtocolError, VerificationError
from scfed.policy import open_policy
from scfed.registry import open_registry
from scfed.wire.envelope import Envelope
from scfed.wire.messages import Registry
from scfed.wire.policy import Policy

_C = TypeVar("_C")


def _loaded(path: Path, parse: Callable[[Path, bytes], _C]) -> _C:
    """The configuration file at ``path`` (made absolute: paths in it are relative to it)."""
    path = absolute(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from exc
    return parse(path, data)


def load_node_config(path: Path) -> NodeConfig:
    """The node configuration (``node.toml``) at ``path``."""
    return _loaded(path, parse_node_config)


def load_coordinator_config(path: Path) -> CoordinatorConfig:
    """The coordinator configuration (``coordinator.toml``) at ``path``."""
    return _loaded(path, parse_coordinator_config)


def load_operator_config(path: Path) -> OperatorConfig:
    """The operator configuration (``operator.toml``) at ``path``."""
    return _loaded(path, parse_operator_config)


def load_federation_config(path: Path) -> FederationConfig:
    """The description of a federation folder (``federation.toml``) at ``path``."""
    return _loaded(path, parse_federation_config)


def read_governance_key(path: Path) -> bytes:
    """The raw 32-byte governance public key from a file holding ``ed25519:BASE64``."""
    data = read_public_file(path)
    try:
        key = pki.parse_ed25519_public_text(data.decode("ascii").strip())
    except (UnicodeDecodeError, ConfigError) as exc:
        raise ConfigError(f"{path}: not an Ed25519 public key file: {exc}") from exc
    return pki.ed25519_public_raw(key)


def read_policy_file(path: Path, origin: str, governance_key: bytes) -> tuple[Policy, Envelope]:
    """The policy stored at ``path`` (a serialized envelope), verified against governance."""
    data = read_public_file(path)
    try:
        envelope = Envelope.from_bytes(data)
        return open_policy(envelope, origin, governance_key), envelope
    except (VerificationError, RemoteProtocolError) as exc:
        raise ConfigError(
            f"{path}: not a policy signed by this federation's governance: {exc}"
        ) from exc


def read_registry_file(path: Path, origin: str, governance_key: bytes) -> tuple[Registry, Envelope]:
    """The registry stored at ``path`` (a serialized envelope), verified against governance."""
    data = read_public_file(path)
    try:
        envelope = Envelope.from_bytes(data)
        return open_registry(envelope, origin, governance_key), envelope
    except VerificationError as exc:
        raise VerificationError(f"{path}: {exc}") from exc
    except RemoteProtocolError as exc:
        raise ConfigError(f"{path}: not a valid signed registry: {exc}") from exc


def kind_of(config: Path) -> str:
    """ "node", "coordinator", "operator" or "federation" (governance's federation.toml):
    which role's config ``config`` is, by its keys."""
    try:
        top = tomllib.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{config}: cannot read it as TOML: {exc}") from None
    if "member_id" in top:
        return "node"
    if "listen" in top or "signing_key" in top.get("keys", {}):
        return "coordinator"
    if "address" in top and "origin" in top:
        return "federation"
    if "name" in top:
        return "operator"
    raise ConfigError(
        f"{config}: not the config of a node, the coordinator, an operator or a federation"
    )
