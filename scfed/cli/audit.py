"""``scfed audit``: check the protocol log and its signed artefacts.

``scfed audit verify`` audits a whole protocol log, read from an exported directory or from
the coordinator's read-only log service, against the governance key alone, and prints the
report (text or JSON); it exits 0 only when every check passed. ``scfed audit verify-note
--vkey VKEY FILE`` verifies a C2SP signed note (a checkpoint or any other note) against one or
more verifier keys and prints what it vouches for. Every failure raises an ``ScfedError``
whose one-line message the ``scfed`` entry point prints (exit 1).
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Sequence
from pathlib import Path

from edge.config import kind_of
from edge.files import read_bounded
from scfed.checkpoint import parse_checkpoint
from scfed.cli import audit_log
from scfed.dp.ledger import PERIODS, Budget, parse_rho
from scfed.errors import ConfigError, VerificationError
from scfed.note import Note, Verifier, open_note, parse_verifier_key

MAX_NOTE_BYTES = 1 << 20  # far above any note with the 100 signatures a note may carry
#: Large leaves (masked vectors of up to 1e6 cells) travel as blobs of up to 8 MB.
MAX_RECEIVE_BYTES = 64 << 20


def add_parser(roles: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = roles.add_parser("audit", help="check transparency-log artefacts offline")
    commands = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify_note = commands.add_parser(
        "verify-note",
        help="verify a signed note or checkpoint",
        description="Verify a C2SP signed note; print the checkpoint it holds and who signed it.",
    )
    verify_note.add_argument(
        "--vkey",
        action="append",
        required=True,
        metavar="VKEY",
        help="verifier key <name>+<key id>+<key>, or @FILE holding one per line; repeatable",
    )
    verify_note.add_argument("file", type=Path, metavar="FILE", help="the signed note")
    verify_note.set_defaults(func=_verify_note)
    _add_verify(commands)
    audit_log.add_commands(commands)


def _add_verify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser(
        "verify",
        help="audit a whole protocol log",
        description="Verify every signature, round, unmasking, result and budget charge of "
        "a protocol log against the governance key; exit 0 only if everything verifies.",
    )
    source = verify.add_mutually_exclusive_group()
    source.add_argument("--log", type=Path, metavar="DIR", help="an exported log directory")
    source.add_argument(
        "--coordinator", metavar="HOST:PORT", help="read the coordinator's log service"
    )
    verify.add_argument(
        "--config", type=Path, metavar="FILE",
        help="operator.toml (TLS) for --coordinator, or a member's node.toml: its TLS files, "
        "coordinator, governance key and origin, and the log must extend the checkpoint "
        "its node verified last",
    )  # fmt: skip
    verify.add_argument(
        "--governance-key", type=Path, metavar="FILE", help="(default: the node config's)"
    )
    verify.add_argument("--origin", help="the federation's log origin (default: the node config's)")
    verify.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="an older checkpoint (a node's or witness's) the log must extend; repeatable",
    )
    verify.add_argument("--rho-cap", default="0.5", help="the rho cap per period (0.5, 1/32)")
    verify.add_argument("--period", choices=PERIODS, default="year", help="the budget period")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from auditor.report import text, to_json
    from auditor.verify import audit
    from edge.config import read_governance_key

    older = [_read_note(path) for path in args.checkpoint]
    if args.config is not None and kind_of(args.config) == "node":
        older += _as_member(args)
    if args.log is None and args.coordinator is None:
        raise ConfigError("give --log DIR, or --coordinator HOST:PORT (or a node's --config)")
    if args.coordinator is not None and args.config is None:
        raise ConfigError("--coordinator needs --config operator.toml for its TLS files")
    if args.governance_key is None or args.origin is None:
        raise ConfigError("give --governance-key and --origin (a node's --config names both)")
    governance_key = read_governance_key(args.governance_key)
    budget = Budget(parse_rho(args.rho_cap), args.period)
    leaves, checkpoint = _read_log(args)
    report = audit(
        leaves,
        checkpoint=checkpoint,
        governance_key=governance_key,
        origin=args.origin,
        older_checkpoints=older,
        budget=budget,
    )
    print(to_json(report) if args.json else text(report))
    report.check()
    return 0


def _as_member(args: argparse.Namespace) -> list[bytes]:
    """Fill in from a member's node config what it names; the checkpoint its node verified
    last, which the log must extend."""
    from edge.config import load_node_config
    from edge.storage import fetch_read_only

    config = load_node_config(args.config)
    if args.log is None and args.coordinator is None:
        args.coordinator = config.coordinator
    args.governance_key = args.governance_key or config.governance_key
    args.origin = args.origin or config.origin
    rows = fetch_read_only(config.database, "SELECT checkpoint FROM log_view WHERE id = 1")
    return [row[0] for row in rows if isinstance(row[0], bytes)]


def _read_log(args: argparse.Namespace) -> tuple[list[bytes], bytes]:
    """The leaves and the latest checkpoint, from a directory or the coordinator."""
    if args.log is not None:
        return read_log_dir(args.log)
    from auditor.fetch import fetch_log
    from edge.config import load_node_config, load_operator_config
    from edge.transport import secure_channel
    from protos.scfed.v1.service_pb2_grpc import LogServiceStub

    member = kind_of(args.config) == "node"
    config = load_node_config(args.config) if member else load_operator_config(args.config)
    options = [("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
    channel = secure_channel(config.tls, args.coordinator, config.server_name, options)
    try:
        return fetch_log(LogServiceStub(channel))
    finally:
        channel.close()


def read_log_dir(path: Path) -> tuple[list[bytes], bytes]:
    """An exported log directory (``edge.logdir``, imported only when used)."""
    from edge.logdir import read_log_dir as read

    return read(path)


def _verify_note(args: argparse.Namespace) -> int:
    verifiers = [verifier for spec in args.vkey for verifier in verifier_keys(spec)]
    path: Path = args.file
    try:
        note = open_note(_read_note(path), verifiers)
    except VerificationError as exc:
        raise VerificationError(f"{path}: {exc}") from exc
    for line in describe(note):
        print(line)
    return 0


def verifier_keys(spec: str) -> list[Verifier]:
    """The verifiers named by one ``--vkey`` value: key text, or ``@path`` of key lines."""
    if not spec.startswith("@"):
        return [_verifier(spec, "--vkey")]
    path = Path(spec[1:])
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--vkey {spec}: cannot read verifier keys: {exc}") from exc
    keys = [
        _verifier(line.strip(), f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()
    ]
    if not keys:
        raise ConfigError(f"--vkey {spec}: the file holds no verifier key")
    return keys


def _verifier(text: str, where: str) -> Verifier:
    try:
        return parse_verifier_key(text)
    except VerificationError as exc:
        raise ConfigError(f"{where}: bad verifier key: {exc}") from exc


def _read_note(path: Path) -> bytes:
    try:
        data = read_bounded(path, MAX_NOTE_BYTES)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if data is None:
        raise VerificationError(f"{path}: larger than {MAX_NOTE_BYTES} bytes; not a signed note")
    return data


def describe(note: Note) -> Sequence[str]:
    """Lines saying what a verified note vouches for: the checkpoint, then the signers."""
    lines = _checkpoint_lines(note.text)
    for signature in note.signatures:
        when = "" if signature.timestamp is None else f" (cosigned at {signature.timestamp})"
        lines.append(f"signed by: {signature.name}+{signature.key_id:08x}{when}")
    return lines


def _checkpoint_lines(text: str) -> list[str]:
    """Origin, size and root when the note text is a checkpoint; nothing otherwise."""
    try:
        checkpoint = parse_checkpoint(text)
    except VerificationError:
        return []
    return [
        f"origin: {checkpoint.origin}",
        f"size: {checkpoint.size}",
        f"root: {base64.b64encode(checkpoint.root).decode('ascii')}",
        f"root hex: {checkpoint.root.hex()}",
    ]
