"""``scfed audit export``, ``witness`` and ``vkey``: take the log away, and witness it.

``export`` copies the coordinator's whole protocol log, read through its log service with an
operator's or member's certificate, into a self-contained directory that ``scfed audit
verify --log`` checks offline. ``witness`` is an independent witness: it keeps the latest
checkpoint it verified in a state directory, accepts a new one only with a consistency proof
from the one before, and prints its C2SP cosignature of it. ``vkey`` prints the verifier key
of the coordinator's checkpoints, from the governance-signed registry. Edge code: files and
network.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from edge.config import load_operator_config, read_governance_key, read_registry_file
from edge.files import read_private_key_file, write_private, write_public
from edge.transport import secure_channel
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1 import service_pb2_grpc as rpc
from scfed import pki
from scfed.errors import ConfigError
from scfed.note import Verifier, parse_verifier_key
from scfed.witness import LogView, cosign

RPC_TIMEOUT_S = 60.0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser("export", help="copy the protocol log into a directory")
    _service_arguments(export)
    export.add_argument("out", type=Path, metavar="DIR", help="a new directory to write")
    export.set_defaults(func=_export)
    witness = commands.add_parser("witness", help="verify the latest checkpoint and cosign it")
    _service_arguments(witness)
    witness.add_argument("--vkey", required=True, help="the coordinator's note verifier key")
    witness.add_argument("--name", required=True, help="this witness's name in its cosignatures")
    witness.add_argument("--key", type=Path, required=True, help="Ed25519 key (made if absent)")
    witness.add_argument("--state", type=Path, required=True, help="where the last checkpoint is")
    witness.set_defaults(func=_witness)
    vkey = commands.add_parser("vkey", help="print the coordinator's checkpoint verifier key")
    vkey.add_argument("--registry", type=Path, required=True, help="the signed registry file")
    vkey.add_argument("--governance-key", type=Path, required=True, help="governance.pub")
    vkey.add_argument("--origin", required=True, help="the federation's origin")
    vkey.set_defaults(func=_vkey)


def _service_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="an operator.toml")
    parser.add_argument("--coordinator", help="HOST:PORT, overriding the configuration")


def _log_stub(args: argparse.Namespace) -> tuple[rpc.LogServiceStub, grpc.Channel]:
    config = load_operator_config(args.config)
    address = args.coordinator or config.coordinator
    channel = secure_channel(config.tls, address, config.server_name)
    return rpc.LogServiceStub(channel), channel


def _export(args: argparse.Namespace) -> int:
    from auditor.fetch import fetch_log
    from edge.logdir import write_log_dir

    stub, channel = _log_stub(args)
    with channel:
        entries, checkpoint = fetch_log(stub)
    write_log_dir(args.out, entries, checkpoint)
    print(f"exported {len(entries)} entries and the latest checkpoint to {args.out}")
    return 0


def _witness(args: argparse.Namespace) -> int:
    coordinator = _coordinator_verifier(args.vkey)
    key = _witness_key(args.key, args.name)
    state = args.state / "checkpoint"
    previous = state.read_bytes() if state.exists() else None
    stub, channel = _log_stub(args)
    with channel:
        view = LogView(coordinator.name, coordinator.public_key, previous)
        latest = stub.GetCheckpoint(spb.CheckpointRequest(), timeout=RPC_TIMEOUT_S).note

        def proofs(size1: int, size2: int) -> list[bytes]:
            request = spb.ProofRequest(first=size1, second=size2)
            return list(stub.GetConsistencyProof(request, timeout=RPC_TIMEOUT_S).hashes)

        verified = view.advance(latest, proofs)
    args.state.mkdir(parents=True, exist_ok=True)
    if view.latest is not None:
        write_public(state, view.latest.note)
    size = verified.checkpoint.size
    print(f"checkpoint {size} is consistent with every checkpoint this witness saw before")
    print(cosign(verified, args.name, key, int(time.time())), end="")
    return 0


def _vkey(args: argparse.Namespace) -> int:
    governance = read_governance_key(args.governance_key)
    registry, _ = read_registry_file(args.registry, args.origin, governance)
    public = Ed25519PublicKey.from_public_bytes(registry.coordinator_key)
    print(Verifier.ed25519(registry.origin, public).key_text)
    return 0


def _coordinator_verifier(text: str) -> Verifier:
    verifier = parse_verifier_key(text)
    if verifier.signature_type != 0x01:
        raise ConfigError("--vkey must be the coordinator's Ed25519 note key (type 0x01)")
    return verifier


def _witness_key(path: Path, name: str) -> Ed25519PrivateKey:
    """The witness's signing key; made (owner-only) on first use, and its vkey printed."""
    if path.exists():
        return pki.load_ed25519_private_pem(read_private_key_file(path))
    key = Ed25519PrivateKey.generate()
    write_private(path, pki.private_key_pem(key))
    vkey = Verifier.cosigner(name, key.public_key()).key_text
    print(f"made a new witness key; its cosigner verifier key is {vkey}")
    return key
