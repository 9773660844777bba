"""Unit tests for scfed.registry and ``scfed federation init`` / ``enroll``."""

from __future__ import annotations

import argparse
import dataclasses
import stat
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import pki
from scfed.cli import _toml, federation
from scfed.config import (
    load_coordinator_config,
    load_federation_config,
    load_node_config,
    load_operator_config,
    read_governance_key,
    read_private_key_file,
    read_registry_file,
)
from scfed.envelope import Envelope
from scfed.errors import ConfigError, RemoteProtocolError, VerificationError
from scfed.messages import Member, Operator, Registry
from scfed.registry import open_registry, seal_registry, with_member, with_operator

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NAME = "fab"
ORIGIN = "scfed.example/fab"


# ---- scfed.registry ----


def _member(member_id: str, fingerprint: bytes | None = None) -> Member:
    tag = fingerprint or member_id.encode().ljust(32, b".")
    return Member(member_id, member_id.upper(), bytes(32), tag, "group")


def _empty() -> Registry:
    return Registry(ORIGIN, 1, bytes(32), (), ())


def test_with_member_keeps_members_sorted_and_counts_versions() -> None:
    registry = with_member(with_member(_empty(), _member("zeta")), _member("alpha"))
    assert registry.version == 3
    assert [m.member_id for m in registry.members] == ["alpha", "zeta"]


def test_with_member_refuses_a_present_id() -> None:
    registry = with_member(_empty(), _member("acme"))
    with pytest.raises(ConfigError, match="already in the registry"):
        with_member(registry, _member("acme", b"x" * 32))


def test_with_member_refuses_a_present_certificate() -> None:
    registry = with_member(_empty(), _member("acme", b"c" * 32))
    with pytest.raises(ConfigError, match="certificate"):
        with_member(registry, _member("other", b"c" * 32))


def test_with_member_refuses_an_invalid_id() -> None:
    with pytest.raises(ConfigError, match="invalid member id"):
        with_member(_empty(), _member("Not Valid"))


def test_with_operator_keeps_operators_sorted_and_refuses_duplicates() -> None:
    registry = with_operator(_empty(), Operator("ops-b", b"b" * 32))
    registry = with_operator(registry, Operator("ops-a", b"a" * 32))
    assert registry.version == 3
    assert [o.name for o in registry.operators] == ["ops-a", "ops-b"]
    with pytest.raises(ConfigError, match="already in the registry"):
        with_operator(registry, Operator("ops-a", b"z" * 32))


def test_seal_and_open_registry_round_trip() -> None:
    governance = Ed25519PrivateKey.generate()
    registry = with_member(_empty(), _member("acme"))
    envelope = seal_registry(registry, governance)
    assert (envelope.type, envelope.signer) == ("registry", "governance")
    key = pki.ed25519_public_raw(governance.public_key())
    assert open_registry(Envelope.from_bytes(envelope.to_bytes()), ORIGIN, key) == registry


def test_open_registry_refuses_another_signer_name() -> None:
    governance = Ed25519PrivateKey.generate()
    envelope = dataclasses.replace(seal_registry(_empty(), governance), signer="coordinator")
    key = pki.ed25519_public_raw(governance.public_key())
    with pytest.raises(VerificationError):
        open_registry(envelope, ORIGIN, key)


def test_open_registry_refuses_a_body_naming_another_origin() -> None:
    # Signed for ORIGIN, but the registry inside claims to belong to another federation.
    governance = Ed25519PrivateKey.generate()
    body = seal_registry(dataclasses.replace(_empty(), origin="elsewhere"), governance).body
    envelope = Envelope("registry", body, "governance", b"")
    envelope = dataclasses.replace(
        envelope, signature=governance.sign(b"scfed/v1/registry\n" + ORIGIN.encode() + b"\n" + body)
    )
    key = pki.ed25519_public_raw(governance.public_key())
    with pytest.raises(VerificationError, match="elsewhere"):
        open_registry(envelope, ORIGIN, key)


def test_open_registry_reports_an_undecodable_body_as_remote_error() -> None:
    governance = Ed25519PrivateKey.generate()
    body = b"\xff\xff"
    signature = governance.sign(b"scfed/v1/registry\n" + ORIGIN.encode() + b"\n" + body)
    key = pki.ed25519_public_raw(governance.public_key())
    with pytest.raises(RemoteProtocolError):
        open_registry(Envelope("registry", body, "governance", signature), ORIGIN, key)


# ---- The TOML writer ----


def test_format_toml_round_trips_awkward_strings() -> None:
    awkward = 'quote " backslash \\ newline \n tab \t del \x7f nul \x00 é 日本 \U0001f600'
    document: _toml.TomlDocument = {"text": awkward, "n": 7, "table": {"key": "v"}}
    data = _toml.format_toml("first line\nsecond line", document)
    assert data.startswith(b"# first line\n# second line\n")
    assert tomllib.loads(data.decode("utf-8")) == {"text": awkward, "n": 7, "table": {"key": "v"}}


@pytest.mark.parametrize(
    "document",
    [{"bad key": "x"}, {"ratio": 0.5}, {"text": "\ud800"}],
    ids=["key-with-space", "float", "lone-surrogate"],
)
def test_format_toml_refuses_what_it_cannot_write(document: _toml.TomlDocument) -> None:
    with pytest.raises(ConfigError):
        _toml.format_toml("comment", document)


# ---- init ----


def _init(directory: Path, hosts: tuple[str, ...] = ()) -> Path:
    federation.init_federation(directory, NAME, None, "127.0.0.1:7443", hosts, NOW)
    return directory


@pytest.fixture
def fed(tmp_path: Path) -> Path:
    return _init(tmp_path / "fed", ("coordinator.example.net", "10.0.0.5"))


def _governance_key(fed: Path) -> bytes:
    return read_governance_key(fed / "governance" / "governance.pub")


def _registry(fed: Path) -> Registry:
    return read_registry_file(fed / "registry.signed", ORIGIN, _governance_key(fed))[0]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _certificate(path: Path) -> x509.Certificate:
    return pki.load_certificate_pem(path.read_bytes())


INIT_FILES = [
    "federation.toml",
    "registry.signed",
    "governance/governance.key",
    "governance/governance.pub",
    "ca/ca.key",
    "ca/ca.pem",
    "coordinator/tls.key",
    "coordinator/tls.pem",
    "coordinator/ca.pem",
    "coordinator/signing.key",
    "coordinator/governance.pub",
    "coordinator/coordinator.toml",
]
PRIVATE_FILES = [
    "governance/governance.key",
    "ca/ca.key",
    "coordinator/tls.key",
    "coordinator/signing.key",
]


def test_init_creates_exactly_the_federation_files(fed: Path) -> None:
    written = sorted(str(p.relative_to(fed)) for p in fed.rglob("*") if p.is_file())
    assert written == sorted(INIT_FILES)


def test_init_private_keys_are_owner_only_and_public_files_readable(fed: Path) -> None:
    for relative in INIT_FILES:
        expected = 0o600 if relative in PRIVATE_FILES else 0o644
        assert _mode(fed / relative) == expected, relative
    assert _mode(fed / "governance") == 0o700
    assert _mode(fed / "ca") == 0o700


def test_init_private_keys_load(fed: Path) -> None:
    governance = pki.load_ed25519_private_pem(
        read_private_key_file(fed / "governance" / "governance.key")
    )
    assert pki.ed25519_public_raw(governance.public_key()) == _governance_key(fed)
    ca_key = pki.load_private_key_pem(read_private_key_file(fed / "ca" / "ca.key"))
    assert ca_key.public_key() == _certificate(fed / "ca" / "ca.pem").public_key()


def test_init_registry_verifies_with_the_governance_key(fed: Path) -> None:
    registry = _registry(fed)
    signing = pki.load_ed25519_private_pem(
        read_private_key_file(fed / "coordinator" / "signing.key")
    )
    assert registry.version == 1
    assert (registry.members, registry.operators) == ((), ())
    assert registry.origin == ORIGIN
    assert registry.coordinator_key == pki.ed25519_public_raw(signing.public_key())


def test_init_registry_fails_with_another_key(fed: Path) -> None:
    other = pki.ed25519_public_raw(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(VerificationError):
        read_registry_file(fed / "registry.signed", ORIGIN, other)


def test_init_registry_fails_with_a_wrong_origin(fed: Path) -> None:
    with pytest.raises(VerificationError):
        read_registry_file(fed / "registry.signed", "scfed.example/other", _governance_key(fed))


def test_init_server_certificate_names_and_issuer(fed: Path) -> None:
    ca = _certificate(fed / "ca" / "ca.pem")
    server = _certificate(fed / "coordinator" / "tls.pem")
    pki.verify_issued_by(server, ca, NOW)
    assert _certificate(fed / "coordinator" / "ca.pem") == ca
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert dns == {"coordinator.fab.scfed", "coordinator.example.net", "localhost"}
    assert ips == {"10.0.0.5", "127.0.0.1"}


def test_init_coordinator_config_loads(fed: Path) -> None:
    config = load_coordinator_config(fed / "coordinator" / "coordinator.toml")
    assert config.origin == ORIGIN
    assert config.listen == "127.0.0.1:7443"
    assert config.server_name == "coordinator.fab.scfed"
    assert config.registry == fed / "registry.signed"
    assert config.database == fed / "coordinator" / "coordinator.sqlite"
    for path in (config.tls.certificate, config.tls.key, config.tls.ca, config.signing_key):
        assert path.is_file()
    assert read_governance_key(config.governance_key) == _governance_key(fed)
    assert config.path.read_text().startswith("# scfed coordinator configuration")


def test_init_federation_toml(fed: Path) -> None:
    settings = load_federation_config(fed / "federation.toml")
    assert (settings.name, settings.origin) == (NAME, ORIGIN)
    assert (settings.address, settings.server_name) == ("127.0.0.1:7443", "coordinator.fab.scfed")


def test_init_with_explicit_origin(tmp_path: Path) -> None:
    directory = tmp_path / "fed"
    federation.init_federation(directory, "ring", "example.org/ring-1", "h:1", (), NOW)
    assert load_federation_config(directory / "federation.toml").origin == "example.org/ring-1"
    key = read_governance_key(directory / "governance" / "governance.pub")
    registry, _ = read_registry_file(directory / "registry.signed", "example.org/ring-1", key)
    assert registry.origin == "example.org/ring-1"


def test_init_with_placeholder_port_zero_gives_loadable_configs(tmp_path: Path) -> None:
    # The demo binds any free port and passes the real address on the command line.
    directory = tmp_path / "fed"
    federation.init_federation(directory, NAME, None, "127.0.0.1:0", (), NOW)
    folder = federation.enroll_member(directory, "acme", None, None, NOW)
    coordinator = load_coordinator_config(directory / "coordinator" / "coordinator.toml")
    assert coordinator.listen == "127.0.0.1:0"
    assert load_node_config(folder / "node.toml").coordinator == "127.0.0.1:0"


def test_init_into_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert (_init(tmp_path / "empty") / "registry.signed").is_file()


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    directory = tmp_path / "busy"
    directory.mkdir()
    (directory / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        _init(directory)
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        _init(tmp_path / "file")


@pytest.mark.parametrize(
    ("options", "option"),
    [
        (("Fab", None, "127.0.0.1:7443", ()), "--name"),
        (("fab", "has space", "127.0.0.1:7443", ()), "--origin"),
        (("fab", "x" * 201, "127.0.0.1:7443", ()), "--origin"),
        (("fab", None, "127.0.0.1", ()), "--address"),
        (("fab", None, "127.0.0.1:65536", ()), "--address"),
        (("fab", None, "127.0.0.1:7443", ("bad host",)), "--host"),
    ],
    ids=["upper-name", "origin-space", "origin-long", "no-port", "port-too-big", "bad-host"],
)
def test_init_rejects_bad_options_and_writes_nothing(
    tmp_path: Path, options: tuple[str, str | None, str, tuple[str, ...]], option: str
) -> None:
    directory = tmp_path / "fed"
    name, origin, address, hosts = options
    with pytest.raises(ConfigError, match=option):
        federation.init_federation(directory, name, origin, address, hosts, NOW)
    assert not directory.exists()


# ---- enroll ----


def test_enroll_member_writes_its_folder(fed: Path) -> None:
    folder = federation.enroll_member(fed, "acme", None, None, NOW)
    assert folder == fed / "members" / "acme"
    names = {"tls.key", "tls.pem", "ca.pem", "identity.key", "governance.pub", "node.toml"}
    assert {p.name for p in folder.iterdir()} == names
    assert _mode(folder / "tls.key") == _mode(folder / "identity.key") == 0o600
    assert _mode(folder) == 0o700
    assert not [p for p in (fed / "members").iterdir() if p.name.startswith(".")]


def test_enroll_member_updates_the_registry(fed: Path) -> None:
    folder = federation.enroll_member(fed, "acme", "ACME Foundry Ltd.", "acme-holdings", NOW)
    registry = _registry(fed)
    member = registry.member("acme")
    assert registry.version == 2
    assert member is not None
    assert member.display_name == "ACME Foundry Ltd."
    assert member.corporate_group == "acme-holdings"
    assert member.tls_cert_sha256 == pki.fingerprint_pem((folder / "tls.pem").read_bytes())
    identity = pki.load_ed25519_private_pem(read_private_key_file(folder / "identity.key"))
    assert member.identity_key == pki.ed25519_public_raw(identity.public_key())


def test_enroll_member_defaults_display_name_and_group(fed: Path) -> None:
    federation.enroll_member(fed, "acme", None, None, NOW)
    member = _registry(fed).member("acme")
    assert member is not None
    assert (member.display_name, member.corporate_group) == ("acme", "acme")


def test_enroll_member_certificate_verifies_against_the_ca(fed: Path) -> None:
    folder = federation.enroll_member(fed, "acme", None, None, NOW)
    ca = _certificate(fed / "ca" / "ca.pem")
    certificate = _certificate(folder / "tls.pem")
    pki.verify_issued_by(certificate, ca, NOW)
    assert _certificate(folder / "ca.pem") == ca
    role = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert [a.value for a in role] == ["member"]
    tls_key = pki.load_private_key_pem(read_private_key_file(folder / "tls.key"))
    assert tls_key.public_key() == certificate.public_key()


def test_enroll_members_increment_versions_and_stay_sorted(fed: Path) -> None:
    for name in ("zeta", "acme", "mid"):
        federation.enroll_member(fed, name, None, None, NOW)
    registry = _registry(fed)
    assert registry.version == 4
    assert [m.member_id for m in registry.members] == ["acme", "mid", "zeta"]
    assert len({m.tls_cert_sha256 for m in registry.members}) == 3


def test_enrolled_node_config_loads(fed: Path) -> None:
    folder = federation.enroll_member(fed, "acme", None, None, NOW)
    node = load_node_config(folder / "node.toml")
    assert (node.member_id, node.origin) == ("acme", ORIGIN)
    assert (node.coordinator, node.server_name) == ("127.0.0.1:7443", "coordinator.fab.scfed")
    assert node.tls.certificate == folder / "tls.pem"
    assert node.identity_key == folder / "identity.key"
    assert read_governance_key(node.governance_key) == _governance_key(fed)
    assert (node.figures, node.database) == (folder / "figures.csv", folder / "node.sqlite")
    assert (node.min_n_min, node.max_cells) == (3, 1_000_000)
    assert node.path.read_text().startswith("# scfed node configuration for member acme")


def test_enroll_operator(fed: Path) -> None:
    federation.enroll_member(fed, "acme", None, None, NOW)
    folder = federation.enroll_operator(fed, "ops", NOW)
    assert folder == fed / "operators" / "ops"
    assert {p.name for p in folder.iterdir()} == {"tls.key", "tls.pem", "ca.pem", "operator.toml"}
    assert _mode(folder / "tls.key") == 0o600
    registry = _registry(fed)
    certificate = _certificate(folder / "tls.pem")
    pki.verify_issued_by(certificate, _certificate(fed / "ca" / "ca.pem"), NOW)
    assert registry.version == 3
    assert registry.operator_by_certificate(pki.fingerprint(certificate)) == Operator(
        "ops", pki.fingerprint(certificate)
    )
    config = load_operator_config(folder / "operator.toml")
    assert (config.name, config.coordinator) == ("ops", "127.0.0.1:7443")
    assert config.tls.key == folder / "tls.key"


def test_enroll_same_member_twice_fails_and_changes_nothing(fed: Path) -> None:
    federation.enroll_member(fed, "acme", None, None, NOW)
    before = (fed / "registry.signed").read_bytes()
    with pytest.raises(ConfigError, match="already enrolled"):
        federation.enroll_member(fed, "acme", None, None, NOW)
    assert (fed / "registry.signed").read_bytes() == before


def test_enroll_operator_with_a_member_name_fails(fed: Path) -> None:
    federation.enroll_member(fed, "acme", None, None, NOW)
    with pytest.raises(ConfigError, match="already enrolled"):
        federation.enroll_operator(fed, "acme", NOW)
    assert not (fed / "operators" / "acme").exists()


def test_enroll_refuses_an_existing_member_folder(fed: Path) -> None:
    (fed / "members" / "acme").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already exists"):
        federation.enroll_member(fed, "acme", None, None, NOW)
    assert _registry(fed).version == 1
    assert list((fed / "members" / "acme").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "display", "group", "match"),
    [
        ("Acme", None, None, "invalid name"),
        ("acme", "", None, "--display-name"),
        ("acme", "x" * 201, None, "--display-name"),
        ("acme", None, "line\nbreak", "--group"),
    ],
    ids=["upper-name", "empty-display", "long-display", "control-in-group"],
)
def test_enroll_rejects_bad_values_and_writes_nothing(
    fed: Path, name: str, display: str | None, group: str | None, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        federation.enroll_member(fed, name, display, group, NOW)
    assert not (fed / "members").exists()
    assert _registry(fed).version == 1


def test_enroll_refuses_a_readable_governance_key(fed: Path) -> None:
    key = fed / "governance" / "governance.key"
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600") as caught:
        federation.enroll_member(fed, "acme", None, None, NOW)
    assert str(key) in str(caught.value)


def test_enroll_refuses_a_tampered_registry(fed: Path) -> None:
    path = fed / "registry.signed"
    envelope = Envelope.from_bytes(path.read_bytes())
    forged = seal_registry(_registry(fed), Ed25519PrivateKey.generate())
    path.write_bytes(dataclasses.replace(envelope, signature=forged.signature).to_bytes())
    with pytest.raises(VerificationError):
        federation.enroll_member(fed, "acme", None, None, NOW)


def test_enroll_outside_a_federation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"federation\.toml"):
        federation.enroll_member(tmp_path, "acme", None, None, NOW)


# ---- The argparse commands ----


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scfed")
    federation.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


def test_commands_init_and_enroll(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "fed"
    init = ["federation", "init", str(directory), "--name", "fab", "--host", "coord.example"]
    assert _run(init) == 0
    assert "created federation fab" in capsys.readouterr().out
    member = ["federation", "enroll", str(directory), "--member", "acme", "--group", "acme-g"]
    assert _run(member) == 0
    assert "enrolled member acme" in capsys.readouterr().out
    assert _run(["federation", "enroll", str(directory), "--operator", "ops"]) == 0
    assert "enrolled operator ops" in capsys.readouterr().out
    registry = _registry(directory)
    assert registry.version == 3
    member_entry = registry.member("acme")
    assert member_entry is not None
    assert member_entry.corporate_group == "acme-g"


def test_command_enroll_needs_exactly_one_of_member_and_operator(fed: Path) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["federation", "enroll", str(fed)])
    with pytest.raises(SystemExit):
        _parser().parse_args(["federation", "enroll", str(fed), "--member", "a", "--operator", "b"])


def test_command_enroll_operator_refuses_member_options(fed: Path) -> None:
    with pytest.raises(ConfigError, match="--member only"):
        _run(["federation", "enroll", str(fed), "--operator", "ops", "--group", "g"])
    assert not (fed / "operators").exists()
