"""Unit tests for scfed.registry and three-party enrolment: ``scfed federation`` (governance),
``scfed node | operator | coordinator init | install | rotate`` (each party's own folder) and
``governance.local`` (every party on one machine)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.store import Store
from edge.config import (
    load_coordinator_config,
    load_federation_config,
    load_node_config,
    load_operator_config,
    read_governance_key,
    read_registry_file,
)
from edge.files import read_private_key_file, write_public
from governance import _toml, federation, install, local, party
from governance.catalogue import sign_catalogue
from scfed import enrolment, pki
from scfed.cli import build_parser
from scfed.config import CoordinatorConfig, TlsFiles
from scfed.enrolment import KIND_COORDINATOR, KIND_MEMBER, KIND_OPERATOR
from scfed.errors import ConfigError, MessageError, RemoteProtocolError, VerificationError
from scfed.registry import (
    open_registry,
    seal_registry,
    with_coordinator_key,
    with_member,
    with_member_keys,
    with_operator,
    with_operator_keys,
    without,
)
from scfed.wire.envelope import Envelope, signed_message
from scfed.wire.messages import Member, Operator, Registry

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NAME = "fab"
ORIGIN = "scfed.example/fab"
ADDRESS = "127.0.0.1:7443"
SERVER_NAME = "coordinator.fab.scfed"
HOSTS = ("coord.example.net", "10.0.0.5")
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


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


def test_a_member_with_an_invalid_id_cannot_be_made() -> None:
    with pytest.raises(MessageError, match="invalid member id"):
        _member("Not Valid")


def test_with_operator_keeps_operators_sorted_and_refuses_duplicates() -> None:
    registry = with_operator(_empty(), Operator("ops-b", b"b" * 32))
    registry = with_operator(registry, Operator("ops-a", b"a" * 32))
    assert registry.version == 3
    assert [o.name for o in registry.operators] == ["ops-a", "ops-b"]
    with pytest.raises(ConfigError, match="already in the registry"):
        with_operator(registry, Operator("ops-a", b"z" * 32))


def test_a_name_belongs_to_one_party_only() -> None:
    # ``without`` and the issued certificate files go by name: a member and an operator
    # of one name would be removed together.
    registry = with_member(_empty(), _member("acme"))
    with pytest.raises(ConfigError, match="member 'acme' is already in the registry"):
        with_operator(registry, Operator("acme", b"o" * 32))
    registry = with_operator(_empty(), Operator("ops", b"o" * 32))
    with pytest.raises(ConfigError, match="operator 'ops' is already in the registry"):
        with_member(registry, _member("ops"))


def test_without_removes_a_member_and_counts_one_version() -> None:
    registry = with_member(with_member(_empty(), _member("acme")), _member("beta"))
    smaller = without(registry, "acme")
    assert smaller.version == registry.version + 1
    assert [m.member_id for m in smaller.members] == ["beta"]


def test_without_removes_an_operator() -> None:
    registry = with_operator(with_member(_empty(), _member("acme")), Operator("ops", b"o" * 32))
    smaller = without(registry, "ops")
    assert (smaller.version, smaller.operators) == (registry.version + 1, ())
    assert smaller.members == registry.members


def test_without_refuses_an_absent_name() -> None:
    with pytest.raises(ConfigError, match="neither a member nor an operator"):
        without(with_member(_empty(), _member("acme")), "beta")


def test_with_member_keys_replaces_the_keys_and_counts_one_version() -> None:
    registry = with_member(with_member(_empty(), _member("acme")), _member("beta"))
    renewed = Member("acme", "ACME", b"k" * 32, b"n" * 32, "group")
    changed = with_member_keys(registry, renewed)
    assert changed.version == registry.version + 1
    assert changed.member("acme") == renewed
    assert changed.member("beta") == registry.member("beta")


def test_with_member_keys_refuses_an_absent_member() -> None:
    with pytest.raises(ConfigError, match="not in the registry"):
        with_member_keys(_empty(), _member("acme"))


def test_with_member_keys_refuses_a_certificate_another_member_holds() -> None:
    registry = with_member(with_member(_empty(), _member("acme")), _member("beta"))
    taken = _member("beta").tls_cert_sha256
    with pytest.raises(ConfigError, match="certificate"):
        with_member_keys(registry, _member("acme", taken))


def test_with_operator_keys_replaces_the_certificate_and_counts_one_version() -> None:
    registry = with_operator(_empty(), Operator("ops", b"o" * 32))
    changed = with_operator_keys(registry, Operator("ops", b"p" * 32))
    assert changed.version == registry.version + 1
    assert changed.operators == (Operator("ops", b"p" * 32),)


def test_with_operator_keys_refuses_an_absent_operator() -> None:
    with pytest.raises(ConfigError, match="not in the registry"):
        with_operator_keys(_empty(), Operator("ops", b"o" * 32))


def test_with_coordinator_key_names_the_new_key_and_counts_one_version() -> None:
    registry = with_member(_empty(), _member("acme"))
    changed = with_coordinator_key(registry, b"n" * 32)
    assert (changed.version, changed.coordinator_key) == (registry.version + 1, b"n" * 32)
    assert changed.members == registry.members


def test_with_coordinator_key_refuses_a_key_of_the_wrong_length() -> None:
    with pytest.raises(ConfigError, match="coordinator key must be 32 bytes"):
        with_coordinator_key(_empty(), b"short")


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
        envelope, signature=governance.sign(signed_message("registry", ORIGIN, body))
    )
    key = pki.ed25519_public_raw(governance.public_key())
    with pytest.raises(VerificationError, match="elsewhere"):
        open_registry(envelope, ORIGIN, key)


def test_open_registry_reports_an_undecodable_body_as_remote_error() -> None:
    governance = Ed25519PrivateKey.generate()
    body = b"\xff\xff"
    signature = governance.sign(signed_message("registry", ORIGIN, body))
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


# ---- Helpers: folders made by the real commands ----


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _certificate(path: Path) -> x509.Certificate:
    return pki.load_certificate_pem(path.read_bytes())


def _tls_public(key_file: Path) -> bytes:
    key = pki.load_private_key_pem(read_private_key_file(key_file))
    return key.public_key().public_bytes(*SPKI)


def _ed25519_public(key_file: Path) -> bytes:
    key = pki.load_ed25519_private_pem(read_private_key_file(key_file))
    return pki.ed25519_public_raw(key.public_key())


def _init_governance(directory: Path, name: str = NAME) -> Path:
    federation.init_federation(directory, name, None, ADDRESS, NOW)
    return directory


def _federation_file(governance: Path) -> Path:
    return governance / "public" / "federation.toml"


def _registry(governance: Path) -> Registry:
    key = read_governance_key(governance / "public" / "governance.pub")
    return read_registry_file(governance / "public" / "registry.signed", ORIGIN, key)[0]


def _coordinator() -> party.Who:
    return party.Who(KIND_COORDINATOR, "coordinator", hosts=HOSTS)


def _init(governance: Path, folder: Path, who: party.Who) -> Path:
    """``folder`` made for ``who`` from governance's public files; its request."""
    return party.init_party(folder, _federation_file(governance), who)


def _install(folder: Path, who: party.Who, certificate: Path) -> bool:
    """Install ``certificate`` into ``who``'s ``folder``, as its ``install`` command does."""
    config_file = folder / party.CONFIG_FILES[who.kind]
    if who.kind == KIND_MEMBER:
        node = load_node_config(config_file)
        tls, server_name = node.tls, node.server_name
    elif who.kind == KIND_OPERATOR:
        operator = load_operator_config(config_file)
        tls, server_name = operator.tls, operator.server_name
    else:
        coordinator = load_coordinator_config(config_file)
        tls, server_name = coordinator.tls, coordinator.server_name
    return install.install_certificate(tls, who, server_name, certificate, NOW)


@dataclass(frozen=True)
class Fed:
    """Governance's folder and the coordinator's, enrolled, beside room for more parties."""

    root: Path
    governance: Path
    coordinator: Path

    @property
    def registry_file(self) -> Path:
        return self.governance / "public" / "registry.signed"

    def coordinator_config(self) -> CoordinatorConfig:
        return load_coordinator_config(self.coordinator / "coordinator.toml")

    def join(self, who: party.Who, folder: Path | None = None) -> Path:
        """A folder for ``who``, its request enrolled and its certificate installed."""
        folder = folder or self.root / who.name
        issued = federation.enroll(self.governance, _init(self.governance, folder, who), NOW)
        _install(folder, who, issued.certificate)
        return folder


@pytest.fixture
def governance(tmp_path: Path) -> Path:
    return _init_governance(tmp_path / "governance")


@pytest.fixture
def fed(tmp_path: Path, governance: Path) -> Fed:
    folder = tmp_path / "coordinator"
    issued = federation.enroll(governance, _init(governance, folder, _coordinator()), NOW)
    _install(folder, _coordinator(), issued.certificate)
    made = Fed(tmp_path, governance, folder)
    install.install_registry(made.coordinator_config(), made.registry_file)
    return made


# ---- scfed federation init ----

GOVERNANCE_FILES = {
    "governance.key",
    "ca.key",
    "public/federation.toml",
    "public/ca.pem",
    "public/governance.pub",
}


def test_governance_init_writes_exactly_its_files(governance: Path) -> None:
    assert _files(governance) == GOVERNANCE_FILES


def test_governance_init_keeps_keys_owner_only_and_the_folder_private(governance: Path) -> None:
    for relative in GOVERNANCE_FILES:
        expected = 0o644 if relative.startswith("public/") else 0o600
        assert _mode(governance / relative) == expected, relative
    assert _mode(governance) == 0o700


def test_governance_keys_match_the_public_files(governance: Path) -> None:
    public = read_governance_key(governance / "public" / "governance.pub")
    assert _ed25519_public(governance / "governance.key") == public
    ca = _certificate(governance / "public" / "ca.pem")
    pki.verify_issued_by(ca, ca, NOW)
    assert pki.same_key(ca, pki.load_private_key_pem(read_private_key_file(governance / "ca.key")))


def test_governance_init_describes_the_federation(governance: Path) -> None:
    settings = load_federation_config(_federation_file(governance))
    assert (settings.name, settings.origin) == (NAME, ORIGIN)
    assert (settings.address, settings.server_name) == (ADDRESS, SERVER_NAME)


def test_governance_init_with_an_explicit_origin(tmp_path: Path) -> None:
    federation.init_federation(tmp_path / "gov", "ring", "example.org/ring-1", "h:1", NOW)
    assert load_federation_config(_federation_file(tmp_path / "gov")).origin == "example.org/ring-1"


def test_governance_init_into_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert _files(_init_governance(tmp_path / "empty")) == GOVERNANCE_FILES


def test_governance_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    directory = tmp_path / "busy"
    directory.mkdir()
    (directory / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        _init_governance(directory)
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("name", "origin", "address", "option"),
    [
        ("Fab", None, ADDRESS, "--name"),
        ("fab", "has space", ADDRESS, "--origin"),
        ("fab", "x" * 201, ADDRESS, "--origin"),
        ("fab", None, "127.0.0.1", "--address"),
        ("fab", None, "127.0.0.1:65536", "--address"),
    ],
    ids=["upper-name", "origin-space", "origin-long", "no-port", "port-too-big"],
)
def test_governance_init_names_the_bad_option_and_writes_nothing(
    tmp_path: Path, name: str, origin: str | None, address: str, option: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{option}: "):
        federation.init_federation(tmp_path / "gov", name, origin, address, NOW)
    assert not (tmp_path / "gov").exists()


@pytest.mark.parametrize(
    "who", [party.member("acme"), party.Who(KIND_OPERATOR, "ops")], ids=["member", "operator"]
)
def test_enroll_before_the_coordinator_is_refused(
    tmp_path: Path, governance: Path, who: party.Who
) -> None:
    request = _init(governance, tmp_path / who.name, who)
    with pytest.raises(ConfigError, match="enrol the coordinator's request first"):
        federation.enroll(governance, request, NOW)
    assert _files(governance) == GOVERNANCE_FILES


# ---- scfed node | operator | coordinator init ----

COMMON_FILES = {"tls.key", "ca.pem", "governance.pub"}
PARTY_FILES = {
    KIND_MEMBER: (party.member("acme"), {"identity.key", "node.toml", "acme.request"}),
    KIND_OPERATOR: (party.Who(KIND_OPERATOR, "ops"), {"operator.toml", "ops.request"}),
    KIND_COORDINATOR: (_coordinator(), {"signing.key", "coordinator.toml", "coordinator.request"}),
}
PRIVATE_FILES = {"tls.key", "identity.key", "signing.key"}


@pytest.mark.parametrize("kind", list(PARTY_FILES))
def test_party_init_makes_exactly_its_files(tmp_path: Path, governance: Path, kind: str) -> None:
    who, own = PARTY_FILES[kind]
    expected = COMMON_FILES | own
    folder = tmp_path / "party"
    assert _init(governance, folder, who) == folder / f"{who.name}.request"
    assert _files(folder) == expected
    for name in expected:
        assert _mode(folder / name) == (0o600 if name in PRIVATE_FILES else 0o644), name
    assert _mode(folder) == 0o700


@pytest.mark.parametrize("kind", list(PARTY_FILES))
def test_party_request_holds_public_parts_only_and_decodes(
    tmp_path: Path, governance: Path, kind: str
) -> None:
    who, _ = PARTY_FILES[kind]
    folder = tmp_path / "party"
    data = _init(governance, folder, who).read_bytes()
    assert b"PRIVATE KEY" not in data
    request = enrolment.decode(data)
    assert (request.kind, request.name, request.origin) == (kind, who.name, ORIGIN)
    assert request.tls_key.public_bytes(*SPKI) == _tls_public(folder / "tls.key")
    signing = {KIND_MEMBER: "identity.key", KIND_COORDINATOR: "signing.key"}.get(kind)
    assert request.key == (_ed25519_public(folder / signing) if signing else b"")


def test_party_init_copies_governance_public_files(tmp_path: Path, governance: Path) -> None:
    folder = tmp_path / "acme"
    _init(governance, folder, party.member("acme"))
    for name in ("ca.pem", "governance.pub"):
        assert (folder / name).read_bytes() == (governance / "public" / name).read_bytes()


def test_member_request_carries_display_name_and_group(tmp_path: Path, governance: Path) -> None:
    who = party.member("acme", "ACME Foundry Ltd.", "acme-holdings")
    request = enrolment.decode(_init(governance, tmp_path / "acme", who).read_bytes())
    assert (request.display_name, request.group) == ("ACME Foundry Ltd.", "acme-holdings")


def test_member_defaults_display_name_and_group_to_its_name() -> None:
    assert party.member("acme") == party.Who(KIND_MEMBER, "acme", "acme", "acme")


@pytest.mark.parametrize(
    ("display_name", "group", "option"),
    [("", None, "--display-name"), ("x" * 201, None, "--display-name"), (None, "a\nb", "--group")],
    ids=["empty-display-name", "long-display-name", "control-in-group"],
)
def test_member_refuses_a_bad_label_naming_the_option(
    display_name: str | None, group: str | None, option: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{option}: "):
        party.member("acme", display_name, group)


def test_party_init_refuses_a_bad_name_and_writes_nothing(tmp_path: Path, governance: Path) -> None:
    with pytest.raises(ConfigError, match="invalid name"):
        _init(governance, tmp_path / "bad", party.Who(KIND_OPERATOR, "Bad Name"))
    assert not (tmp_path / "bad").exists()


def test_party_init_refuses_a_non_empty_folder(tmp_path: Path, governance: Path) -> None:
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        _init(governance, folder, party.member("acme"))
    assert _files(folder) == {"notes.txt"}


def test_party_configs_load_and_point_into_the_folder(tmp_path: Path, governance: Path) -> None:
    member, operator, coordinator = tmp_path / "acme", tmp_path / "ops", tmp_path / "coordinator"
    _init(governance, member, party.member("acme"))
    _init(governance, operator, party.Who(KIND_OPERATOR, "ops"))
    _init(governance, coordinator, _coordinator())
    node = load_node_config(member / "node.toml")
    assert (node.member_id, node.origin, node.coordinator) == ("acme", ORIGIN, ADDRESS)
    assert (node.server_name, node.identity_key) == (SERVER_NAME, member / "identity.key")
    assert node.tls == TlsFiles(member / "tls.pem", member / "tls.key", member / "ca.pem")
    ops = load_operator_config(operator / "operator.toml")
    assert (ops.name, ops.coordinator, ops.server_name) == ("ops", ADDRESS, SERVER_NAME)
    config = load_coordinator_config(coordinator / "coordinator.toml")
    assert (config.origin, config.listen, config.server_name) == (ORIGIN, ADDRESS, SERVER_NAME)
    assert (config.signing_key, config.registry) == (
        coordinator / "signing.key",
        coordinator / "registry.signed",
    )


# ---- scfed federation enroll ----


def test_coordinator_enrolled_first_makes_registry_version_one(fed: Fed) -> None:
    registry = _registry(fed.governance)
    assert (registry.version, registry.origin) == (1, ORIGIN)
    assert (registry.members, registry.operators) == ((), ())
    assert registry.coordinator_key == _ed25519_public(fed.coordinator / "signing.key")


def test_coordinator_certificate_names_the_server_and_the_requested_hosts(fed: Fed) -> None:
    certificate = _certificate(fed.governance / "issued" / "coordinator.pem")
    pki.verify_issued_by(certificate, _certificate(fed.governance / "public" / "ca.pem"), NOW)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {
        SERVER_NAME,
        "coord.example.net",
        "localhost",
    }
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {
        "10.0.0.5",
        "127.0.0.1",
    }
    assert (fed.coordinator / "tls.pem").read_bytes() == (
        fed.governance / "issued" / "coordinator.pem"
    ).read_bytes()


def test_member_certificate_verifies_against_the_ca_and_names_the_member(fed: Fed) -> None:
    folder = fed.join(party.member("acme"))
    certificate = _certificate(folder / "tls.pem")
    pki.verify_issued_by(certificate, _certificate(fed.governance / "public" / "ca.pem"), NOW)
    pki.check_subject(certificate, KIND_MEMBER, "acme")
    assert pki.same_key(certificate, pki.load_private_key_pem((folder / "tls.key").read_bytes()))


def test_member_registry_entry_carries_what_the_request_said(fed: Fed) -> None:
    who = party.member("acme", "ACME Foundry Ltd.", "acme-holdings")
    folder = fed.root / "acme"
    request = enrolment.decode(_init(fed.governance, folder, who).read_bytes())
    done = federation.enroll(fed.governance, folder / "acme.request", NOW)
    registry = _registry(fed.governance)
    assert (done.version, registry.version) == (2, 2)
    assert registry.member("acme") == Member(
        "acme",
        "ACME Foundry Ltd.",
        request.key,
        pki.fingerprint_pem(done.certificate.read_bytes()),
        "acme-holdings",
    )
    assert request.key == _ed25519_public(folder / "identity.key")


def test_operator_enrolled_gets_a_client_certificate_and_an_entry(fed: Fed) -> None:
    folder = fed.join(party.Who(KIND_OPERATOR, "ops"))
    certificate = _certificate(folder / "tls.pem")
    pki.check_subject(certificate, KIND_OPERATOR, "ops")
    assert _registry(fed.governance).operators == (Operator("ops", pki.fingerprint(certificate)),)


def test_members_enrolled_count_versions_and_stay_sorted(fed: Fed) -> None:
    for name in ("zeta", "acme", "mid"):
        fed.join(party.member(name))
    registry = _registry(fed.governance)
    assert registry.version == 4
    assert [m.member_id for m in registry.members] == ["acme", "mid", "zeta"]


def _refused(fed: Fed, request: Path, match: str, *, replace: bool = False) -> None:
    """``request`` is refused with ``match`` and governance's files stay as they were."""
    before = {name: (fed.governance / name).read_bytes() for name in _files(fed.governance)}
    with pytest.raises(ConfigError, match=match):
        federation.enroll(fed.governance, request, NOW, replace=replace)
    after = {name: (fed.governance / name).read_bytes() for name in _files(fed.governance)}
    assert after == before


def test_enroll_refuses_a_request_for_another_federation(fed: Fed) -> None:
    other = _init_governance(fed.root / "other-governance", "other")
    request = _init(other, fed.root / "acme", party.member("acme"))
    _refused(fed, request, "for federation 'scfed.example/other'")


def test_enroll_refuses_a_display_name_changed_after_signing(fed: Fed) -> None:
    request = _init(fed.governance, fed.root / "acme", party.member("acme", "ACME"))
    text = request.read_bytes()
    request.write_bytes(text.replace(b'display_name = "ACME"', b'display_name = "EMCA"'))
    _refused(fed, request, "signature does not verify")


def test_enroll_refuses_a_swapped_csr(fed: Fed) -> None:
    request = _init(fed.governance, fed.root / "acme", party.member("acme"))
    original = enrolment.decode(request.read_bytes())
    swapped = dataclasses.replace(original, csr=pki.certificate_request(pki.new_tls_key(), "acme"))
    request.write_bytes(enrolment.encode(swapped, "swapped"))
    _refused(fed, request, "signature does not verify")


def test_enroll_refuses_an_unknown_field(fed: Fed) -> None:
    request = _init(fed.governance, fed.root / "acme", party.member("acme"))
    request.write_bytes(request.read_bytes() + b'admin = "yes"\n')
    _refused(fed, request, "unknown field 'admin'")


def test_enroll_refuses_an_oversized_file(fed: Fed) -> None:
    request = _init(fed.governance, fed.root / "acme", party.member("acme"))
    request.write_bytes(request.read_bytes() + b"#" * enrolment.MAX_REQUEST_BYTES)
    _refused(fed, request, f"at most {enrolment.MAX_REQUEST_BYTES} bytes")


def test_enroll_refuses_a_taken_name_without_replace(fed: Fed) -> None:
    fed.join(party.member("acme"))
    again = _init(fed.governance, fed.root / "acme-again", party.member("acme"))
    _refused(fed, again, "already in the registry")


def test_enroll_refuses_an_operator_named_as_a_member(fed: Fed) -> None:
    fed.join(party.member("acme"))
    operator = _init(fed.governance, fed.root / "ops", party.Who(KIND_OPERATOR, "acme"))
    _refused(fed, operator, "member 'acme' is already in the registry")


def test_enroll_refuses_a_second_coordinator_without_replace(fed: Fed) -> None:
    again = _init(fed.governance, fed.root / "coordinator-again", _coordinator())
    _refused(fed, again, "coordinator is enrolled already; pass --replace")


def test_enroll_refuses_a_member_named_coordinator(fed: Fed) -> None:
    request = _init(fed.governance, fed.root / "m", party.member("coordinator"))
    _refused(fed, request, "the coordinator's name")


def test_enroll_replace_refuses_a_member_not_enrolled(fed: Fed) -> None:
    request = _init(fed.governance, fed.root / "acme", party.member("acme"))
    _refused(fed, request, "not in the registry", replace=True)


# ---- rotate and enroll --replace ----


def test_rotate_writes_new_keys_beside_the_old_and_a_request_for_them(fed: Fed) -> None:
    folder = fed.join(party.member("acme", "ACME", "acme-holdings"))
    old_tls = _tls_public(folder / "tls.key")
    request = enrolment.decode(party.rotate(folder, "acme").read_bytes())
    assert _mode(folder / "tls.key.next") == _mode(folder / "identity.key.next") == 0o600
    assert _tls_public(folder / "tls.key") == old_tls
    assert request.key == _ed25519_public(folder / "identity.key.next")
    assert (request.display_name, request.group) == ("ACME", "acme-holdings")
    assert b"PRIVATE KEY" not in (folder / "acme.request").read_bytes()


def test_rotate_refuses_while_a_rotation_is_pending(fed: Fed) -> None:
    folder = fed.join(party.member("acme"))
    party.rotate(folder, "acme")
    with pytest.raises(ConfigError, match="rotation is pending already"):
        party.rotate(folder, "acme")


def test_replace_after_rotate_puts_the_new_keys_in_the_registry(fed: Fed) -> None:
    folder = fed.join(party.member("acme"))
    before = _registry(fed.governance)
    done = federation.enroll(fed.governance, party.rotate(folder, "acme"), NOW, replace=True)
    after = _registry(fed.governance)
    old, new = before.member("acme"), after.member("acme")
    assert old is not None
    assert new is not None
    assert after.version == before.version + 1
    assert new.tls_cert_sha256 == pki.fingerprint_pem(done.certificate.read_bytes())
    assert new.tls_cert_sha256 != old.tls_cert_sha256
    assert new.identity_key == _ed25519_public(folder / "identity.key.next")
    assert new.identity_key != old.identity_key


def test_install_after_rotate_puts_the_new_keys_in_place(fed: Fed) -> None:
    who = party.member("acme")
    folder = fed.join(who)
    new_tls, new_identity = folder / "tls.key.next", folder / "identity.key.next"
    done = federation.enroll(fed.governance, party.rotate(folder, "acme"), NOW, replace=True)
    expected = (_tls_public(new_tls), _ed25519_public(new_identity))
    assert _install(folder, who, done.certificate) is True
    assert not new_tls.exists()
    assert not new_identity.exists()
    assert (_tls_public(folder / "tls.key"), _ed25519_public(folder / "identity.key")) == expected
    tls_key = pki.load_private_key_pem(read_private_key_file(folder / "tls.key"))
    assert pki.same_key(_certificate(folder / "tls.pem"), tls_key)
    member = _registry(fed.governance).member("acme")
    assert member is not None
    assert member.identity_key == expected[1]


def test_operator_replace_after_rotate_renews_its_certificate(fed: Fed) -> None:
    who = party.Who(KIND_OPERATOR, "ops")
    folder = fed.join(who)
    done = federation.enroll(fed.governance, party.rotate(folder, "ops"), NOW, replace=True)
    assert _install(folder, who, done.certificate) is True
    operators = _registry(fed.governance).operators
    assert operators == (Operator("ops", pki.fingerprint_pem((folder / "tls.pem").read_bytes())),)


# ---- install: certificates ----


def test_install_refuses_a_certificate_from_another_ca(fed: Fed) -> None:
    who = party.member("acme")
    folder = fed.join(who)
    ca_key = pki.new_tls_key()
    impostor = pki.Issued(ca_key, pki.new_ca(NAME, ca_key, NOW))  # the same name, another key
    key = pki.load_private_key_pem(read_private_key_file(folder / "tls.key"))
    forged = fed.root / "forged.pem"
    forged.write_bytes(
        pki.certificate_pem(pki.issue_client(impostor, NAME, "acme", KIND_MEMBER, key, NOW))
    )
    installed = (folder / "tls.pem").read_bytes()
    with pytest.raises(ConfigError, match="does not verify against CA"):
        _install(folder, who, forged)
    assert (folder / "tls.pem").read_bytes() == installed


def test_install_refuses_a_certificate_for_another_party(fed: Fed) -> None:
    acme = party.member("acme")
    folder = fed.join(acme)
    fed.join(party.member("beta"))
    with pytest.raises(ConfigError, match="not for member acme"):
        _install(folder, acme, fed.governance / "issued" / "beta.pem")


def test_install_refuses_a_coordinator_certificate_in_a_member_folder(fed: Fed) -> None:
    acme = party.member("acme")
    folder = fed.join(acme)
    with pytest.raises(ConfigError, match="not for member acme"):
        _install(folder, acme, fed.governance / "issued" / "coordinator.pem")


def test_install_refuses_a_certificate_for_a_key_the_folder_lacks(fed: Fed) -> None:
    acme = party.member("acme")
    folder = fed.root / "acme"
    _init(fed.governance, folder, acme)
    elsewhere = fed.join(acme, fed.root / "acme-elsewhere")
    with pytest.raises(ConfigError, match="for a key this folder lacks"):
        _install(folder, acme, elsewhere / "tls.pem")
    assert not (folder / "tls.pem").exists()


def test_install_keeps_current_keys_for_their_own_certificate(fed: Fed) -> None:
    who = party.member("acme")
    folder = fed.join(who)
    key = (folder / "tls.key").read_bytes()
    assert _install(folder, who, fed.governance / "issued" / "acme.pem") is False
    assert (folder / "tls.key").read_bytes() == key


# ---- install: the coordinator's registry and policy ----


def _save(path: Path, into: Path) -> Path:
    shutil.copyfile(path, into)
    return into


def _governance_key(fed: Fed) -> bytes:
    return read_governance_key(fed.governance / "public" / "governance.pub")


def _registry_installed(fed: Fed) -> Registry:
    return read_registry_file(fed.coordinator_config().registry, ORIGIN, _governance_key(fed))[0]


def test_install_registry_refuses_an_older_version(fed: Fed) -> None:
    first = _save(fed.registry_file, fed.root / "v1.signed")
    fed.join(party.member("acme"))
    config = fed.coordinator_config()
    assert install.install_registry(config, fed.registry_file) == (2, False)
    with pytest.raises(ConfigError, match="version 1 is older than version 2 installed in"):
        install.install_registry(config, first)
    assert _registry_installed(fed).version == 2


def test_install_registry_accepts_the_installed_version_again(fed: Fed) -> None:
    assert install.install_registry(fed.coordinator_config(), fed.registry_file) == (1, False)


def test_install_registry_refuses_the_same_version_saying_otherwise(fed: Fed) -> None:
    opened = federation.open_governance(fed.governance)
    other = dataclasses.replace(opened.current(), members=(_member("ghost"),))
    forked = fed.root / "forked.signed"
    write_public(forked, seal_registry(other, opened.key).to_bytes())
    with pytest.raises(ConfigError, match="two different registry bodies as one version"):
        install.install_registry(fed.coordinator_config(), forked)


def test_install_registry_refuses_a_log_key_the_folder_lacks(fed: Fed) -> None:
    stranger = fed.root / "another-coordinator"
    request = _init(fed.governance, stranger, _coordinator())
    federation.enroll(fed.governance, request, NOW, replace=True)
    with pytest.raises(ConfigError, match="log key that this folder does not hold"):
        install.install_registry(fed.coordinator_config(), fed.registry_file)
    assert _registry_installed(fed).version == 1


def test_install_registry_refuses_another_governance(fed: Fed) -> None:
    opened = federation.open_governance(fed.governance)
    forged = fed.root / "forged.signed"
    newer = dataclasses.replace(opened.current(), version=9)
    write_public(forged, seal_registry(newer, Ed25519PrivateKey.generate()).to_bytes())
    with pytest.raises(VerificationError):
        install.install_registry(fed.coordinator_config(), forged)


def test_coordinator_rotation_promotes_the_log_key_with_the_registry(fed: Fed) -> None:
    folder = fed.coordinator
    request = party.rotate(folder, "coordinator")
    pending_log = _ed25519_public(folder / "signing.key.next")
    done = federation.enroll(fed.governance, request, NOW, replace=True)
    assert _install(folder, _coordinator(), done.certificate) is True
    assert (folder / "signing.key.next").exists()  # until the registry names it
    assert install.install_registry(fed.coordinator_config(), done.registry) == (2, True)
    assert not (folder / "signing.key.next").exists()
    assert _ed25519_public(folder / "signing.key") == pending_log
    assert _registry_installed(fed).coordinator_key == pending_log


def test_a_new_log_key_waits_until_no_round_is_unfinished(fed: Fed) -> None:
    config = fed.coordinator_config()
    store = Store(config.database)
    announce = Envelope("round.announce", b"body", "coordinator", b"s" * 64)
    store.round_started(b"r" * 16, "test", 1.0, announce)  # then the coordinator stopped
    done = federation.enroll(fed.governance, party.rotate(fed.coordinator, "coordinator"), NOW,
                             replace=True)  # fmt: skip
    with pytest.raises(ConfigError, match="a round is unfinished"):
        install.install_registry(config, done.registry)
    assert (fed.coordinator / "signing.key.next").exists()
    store.round_finished(b"r" * 16, 2.0, announce, None)
    store.close()
    assert install.install_registry(config, done.registry) == (2, True)


def test_install_policy_refuses_an_older_version(fed: Fed) -> None:
    catalogue = fed.root / "catalogue.toml"
    catalogue.write_text('rho_cap = "0.5"\n', encoding="utf-8")
    policy_file = fed.governance / "public" / "policy.signed"
    assert sign_catalogue(fed.governance, catalogue).version == 1
    first = _save(policy_file, fed.root / "policy-v1.signed")
    assert sign_catalogue(fed.governance, catalogue).version == 2
    config = fed.coordinator_config()
    assert install.install_policy(config, policy_file) == 2
    with pytest.raises(ConfigError, match="version 1 is older than version 2 installed in"):
        install.install_policy(config, first)
    assert install.install_policy(config, policy_file) == 2


# ---- scfed federation remove ----


def test_remove_makes_the_next_registry_without_the_member(fed: Fed) -> None:
    fed.join(party.member("acme"))
    fed.join(party.member("beta"))
    done = federation.remove(fed.governance, "acme")
    registry = _registry(fed.governance)
    assert (done.version, registry.version) == (4, 4)
    assert [m.member_id for m in registry.members] == ["beta"]


def test_remove_refuses_an_unknown_name(fed: Fed) -> None:
    fed.join(party.member("acme"))
    with pytest.raises(ConfigError, match="neither a member nor an operator"):
        federation.remove(fed.governance, "beta")
    assert _registry(fed.governance).version == 2


def test_remove_refuses_before_any_registry(governance: Path) -> None:
    with pytest.raises(ConfigError, match="no registry yet"):
        federation.remove(governance, "acme")


# ---- The command line ----


def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


def _enroll_command(governance: Path, request: Path, *more: str) -> int:
    return _run(["federation", "enroll", str(governance), "--request", str(request), *more])


def _install_command(kind: str, config: Path, certificate: Path, *more: str) -> int:
    return _run(
        [kind, "install", "--config", str(config), "--certificate", str(certificate), *more]
    )


def test_commands_enrol_the_coordinator_then_a_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gov, coordinator, node = tmp_path / "gov", tmp_path / "coordinator", tmp_path / "acme"
    assert _run(["federation", "init", str(gov), "--name", NAME]) == 0
    assert "created federation fab" in capsys.readouterr().out
    federation_file = str(_federation_file(gov))
    assert _run(["coordinator", "init", str(coordinator), "--federation", federation_file]) == 0
    request = coordinator / "coordinator.request"
    printed = f"request fingerprint {enrolment.fingerprint(request.read_bytes())}"
    assert printed in capsys.readouterr().out
    assert _enroll_command(gov, request) == 0
    assert printed in capsys.readouterr().out
    registry = ("--registry", str(gov / "public" / "registry.signed"))
    issued = gov / "issued" / "coordinator.pem"
    assert _install_command("coordinator", coordinator / "coordinator.toml", issued, *registry) == 0
    assert "installed registry version 1" in capsys.readouterr().out
    init = ["node", "init", str(node), "--federation", federation_file, "--member", "acme"]
    assert _run([*init, "--display-name", "ACME Foundry", "--group", "acme-holdings"]) == 0
    assert _enroll_command(gov, node / "acme.request") == 0
    assert "signed registry version 2" in capsys.readouterr().out
    assert _install_command("node", node / "node.toml", gov / "issued" / "acme.pem") == 0
    assert (node / "tls.pem").read_bytes() == (gov / "issued" / "acme.pem").read_bytes()
    member = _registry(gov).member("acme")
    assert member is not None
    assert (member.display_name, member.corporate_group) == ("ACME Foundry", "acme-holdings")


def test_commands_rotate_and_replace_a_member(fed: Fed, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fed.join(party.member("acme"))
    assert _run(["node", "rotate", "--config", str(folder / "node.toml")]) == 0
    assert "made new keys beside the old" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="already in the registry"):
        _enroll_command(fed.governance, folder / "acme.request")
    assert _enroll_command(fed.governance, folder / "acme.request", "--replace") == 0
    capsys.readouterr()
    issued = fed.governance / "issued" / "acme.pem"
    assert _install_command("node", folder / "node.toml", issued) == 0
    assert "with the new keys" in capsys.readouterr().out
    assert not (folder / "tls.key.next").exists()


def test_commands_enrol_and_remove_an_operator(
    fed: Fed, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = fed.root / "ops"
    federation_file = str(_federation_file(fed.governance))
    init = ["operator", "init", str(folder), "--federation", federation_file, "--name", "ops"]
    assert _run(init) == 0
    assert _enroll_command(fed.governance, folder / "ops.request") == 0
    issued = fed.governance / "issued" / "ops.pem"
    assert _install_command("operator", folder / "operator.toml", issued) == 0
    assert [o.name for o in _registry(fed.governance).operators] == ["ops"]
    assert _run(["federation", "remove", str(fed.governance), "--operator", "ops"]) == 0
    assert "removed ops: signed registry version 3" in capsys.readouterr().out
    assert _registry(fed.governance).operators == ()


def test_command_init_names_the_bad_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--name: "):
        _run(["federation", "init", str(tmp_path / "gov"), "--name", "Fab"])
    assert not (tmp_path / "gov").exists()


def test_command_coordinator_init_names_a_bad_host(tmp_path: Path, governance: Path) -> None:
    federation_file = str(_federation_file(governance))
    argv = ["coordinator", "init", str(tmp_path / "c"), "--federation", federation_file]
    with pytest.raises(ConfigError, match=r"^--host: "):
        _run([*argv, "--host", "bad host"])
    assert not (tmp_path / "c").exists()


def test_command_install_needs_something_to_install(fed: Fed) -> None:
    config = str(fed.coordinator / "coordinator.toml")
    with pytest.raises(ConfigError, match="--certificate, --registry or --policy"):
        _run(["coordinator", "install", "--config", config])


def test_command_remove_needs_exactly_one_of_member_and_operator(governance: Path) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["federation", "remove", str(governance)])
    both = ["--member", "a", "--operator", "b"]
    with pytest.raises(SystemExit):
        parser.parse_args(["federation", "remove", str(governance), *both])


# ---- governance.local: every party on one machine ----


@pytest.fixture
def one_go(tmp_path: Path) -> Path:
    local.init_federation(tmp_path, NAME, None, "127.0.0.1:0", ["coord.example"], NOW)
    for name in ("acme", "beta"):
        local.enroll_member(tmp_path, name, None, None, NOW)
    local.enroll_operator(tmp_path, "ops", NOW)
    return tmp_path


def test_local_federation_folders_all_load(one_go: Path) -> None:
    config = load_coordinator_config(local.coordinator_config(one_go))
    assert config.listen == "127.0.0.1:0"
    for name in ("acme", "beta"):
        node = load_node_config(one_go / "members" / name / "node.toml")
        assert (node.member_id, node.coordinator) == (name, "127.0.0.1:0")
        assert node.tls.certificate.is_file()
    operator = load_operator_config(one_go / "operators" / "ops" / "operator.toml")
    assert operator.tls.certificate.is_file()
    governance_key = read_governance_key(config.governance_key)
    registry = read_registry_file(config.registry, ORIGIN, governance_key)[0]
    assert registry.version == 4
    assert [m.member_id for m in registry.members] == ["acme", "beta"]
    assert [o.name for o in registry.operators] == ["ops"]


def _public_keys(path: Path) -> set[bytes]:
    """The public halves of every PEM private key in ``path``."""
    data = path.read_bytes()
    keys = set()
    for block in data.split(b"-----END PRIVATE KEY-----")[:-1]:
        pem = block[block.index(b"-----BEGIN PRIVATE KEY-----") :] + b"-----END PRIVATE KEY-----\n"
        key = serialization.load_pem_private_key(pem, password=None)
        keys.add(key.public_key().public_bytes(*SPKI))
    return keys


def test_local_federation_keeps_member_keys_in_member_folders_only(one_go: Path) -> None:
    member_keys: set[bytes] = set()
    for folder in (one_go / "members").iterdir():
        for name in ("tls.key", "identity.key"):
            member_keys |= _public_keys(folder / name)
    assert len(member_keys) == 4
    held: set[bytes] = set()
    private_files = 0
    for top in ("governance", "coordinator", "operators"):
        for root, _, names in os.walk(one_go / top):
            for name in names:
                path = Path(root) / name
                if b"PRIVATE KEY" in path.read_bytes():
                    private_files += 1
                    held |= _public_keys(path)
    assert private_files == 5  # governance's two, the coordinator's two, the operator's one
    assert len(held) == 5
    assert not held & member_keys
