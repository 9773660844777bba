"""Unit tests for scfed.pki."""

from __future__ import annotations

import base64
import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scfed import pki
from scfed.errors import ConfigError, VerificationError

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FED = "fab-alliance"


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = [a.value for a in cert.subject.get_attributes_for_oid(oid)]
    assert len(values) == 1
    value = values[0]
    assert isinstance(value, str)
    return value


def _new_ca(federation: str = FED) -> pki.Issued:
    key = pki.new_tls_key()
    return pki.Issued(key=key, certificate=pki.new_ca(federation, key, NOW))


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return _new_ca()


@pytest.fixture(scope="module")
def server(ca: pki.Issued) -> pki.Issued:
    key = pki.new_tls_key()
    hosts = ["coord.example.org", "10.1.2.3", "::1"]
    return pki.Issued(key=key, certificate=pki.issue_server(ca, FED, hosts, key, NOW))


def test_new_tls_key_is_p256() -> None:
    key = pki.new_tls_key()
    assert isinstance(key.curve, ec.SECP256R1)


def test_ca_is_self_signed_ca(ca: pki.Issued) -> None:
    cert = ca.certificate
    assert cert.subject == cert.issuer
    assert _attr(cert, NameOID.COMMON_NAME) == f"scfed federation CA: {FED}"
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(ca.key.public_key())
    cert.verify_directly_issued_by(cert)
    pki.verify_issued_by(cert, cert, NOW)
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == NOW + timedelta(days=3650)


def test_ca_serials_differ() -> None:
    assert _new_ca().certificate.serial_number != _new_ca().certificate.serial_number


def test_server_cert_sans_and_extensions(ca: pki.Issued, server: pki.Issued) -> None:
    cert = server.certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"coord.example.org", "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("127.0.0.1"),
    }
    assert _attr(cert, NameOID.COMMON_NAME) == "coordinator"
    assert _attr(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == pki.ROLE_COORDINATOR
    assert _attr(cert, NameOID.ORGANIZATION_NAME) == FED
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert not basic.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert cert.issuer == ca.certificate.subject
    assert cert.not_valid_after_utc == NOW + timedelta(days=825)
    pki.verify_issued_by(cert, ca.certificate, NOW)


def test_server_cert_defaults_and_dedup(ca: pki.Issued) -> None:
    key = pki.new_tls_key()
    cert = pki.issue_server(ca, FED, ["localhost", "127.0.0.1"], key, NOW)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


@pytest.mark.parametrize("hosts", ["coord.example.org", [""], [" coord "]])
def test_server_rejects_bad_hosts(ca: pki.Issued, hosts: list[str] | str) -> None:
    with pytest.raises(ConfigError):
        pki.issue_server(ca, FED, hosts, pki.new_tls_key(), NOW)


def test_issue_rejects_mismatched_ca_key(ca: pki.Issued) -> None:
    wrong = pki.Issued(key=pki.new_tls_key(), certificate=ca.certificate)
    with pytest.raises(ConfigError, match="does not match"):
        pki.issue_client(wrong, FED, "alice", pki.ROLE_MEMBER, pki.new_tls_key(), NOW)


@pytest.mark.parametrize(
    ("role", "eku"),
    [
        (pki.ROLE_MEMBER, ExtendedKeyUsageOID.CLIENT_AUTH),
        (pki.ROLE_OPERATOR, ExtendedKeyUsageOID.CLIENT_AUTH),
    ],
)
def test_client_cert_role_ou_eku(ca: pki.Issued, role: str, eku: x509.ObjectIdentifier) -> None:
    key = pki.new_tls_key()
    cert = pki.issue_client(ca, FED, "fab-7", role, key, NOW)
    assert _attr(cert, NameOID.COMMON_NAME) == "fab-7"
    assert _attr(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == role
    assert _attr(cert, NameOID.ORGANIZATION_NAME) == FED
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [f"fab-7.{role}.scfed"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert cert.public_key() == key.public_key()
    pki.verify_issued_by(cert, ca.certificate, NOW)


@pytest.mark.parametrize("role", [pki.ROLE_COORDINATOR, "admin", "", "Member"])
def test_client_rejects_bad_role(ca: pki.Issued, role: str) -> None:
    with pytest.raises(ConfigError, match="role"):
        pki.issue_client(ca, FED, "alice", role, pki.new_tls_key(), NOW)


@pytest.mark.parametrize(
    "name",
    ["", "Alice", "-alice", "al_ice", "al.ice", "alice\n", " alice", "a" * 64, "ålice"],
)
def test_client_rejects_bad_name(ca: pki.Issued, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        pki.issue_client(ca, FED, name, pki.ROLE_MEMBER, pki.new_tls_key(), NOW)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["a", "0", "fab-7", "a" * 63, "x-"])
def test_client_accepts_good_names(ca: pki.Issued, name: str) -> None:
    cert = pki.issue_client(ca, FED, name, pki.ROLE_OPERATOR, pki.new_tls_key(), NOW)
    assert _attr(cert, NameOID.COMMON_NAME) == name


def test_fingerprint_is_stable_over_pem_round_trip(server: pki.Issued) -> None:
    digest = pki.fingerprint(server.certificate)
    assert len(digest) == 32
    pem = pki.certificate_pem(server.certificate)
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert pki.fingerprint_pem(pem) == digest
    assert pki.fingerprint(pki.load_certificate_pem(pem)) == digest
    assert pki.load_certificate_pem(pem) == server.certificate


def test_fingerprints_differ_between_certs(ca: pki.Issued, server: pki.Issued) -> None:
    assert pki.fingerprint(ca.certificate) != pki.fingerprint(server.certificate)


def test_fingerprint_pem_rejects_garbage() -> None:
    with pytest.raises(VerificationError):
        pki.fingerprint_pem(b"not a certificate")


def test_load_certificate_pem_rejects_garbage() -> None:
    with pytest.raises(ConfigError):
        pki.load_certificate_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_verify_rejects_cert_from_other_ca(server: pki.Issued) -> None:
    other = _new_ca("other-federation")
    with pytest.raises(VerificationError, match="issuer"):
        pki.verify_issued_by(server.certificate, other.certificate, NOW)


def test_verify_rejects_same_subject_different_key(server: pki.Issued) -> None:
    impostor = _new_ca(FED)
    with pytest.raises(VerificationError, match="signature"):
        pki.verify_issued_by(server.certificate, impostor.certificate, NOW)


def test_verify_rejects_expired_cert(ca: pki.Issued) -> None:
    key = pki.new_tls_key()
    cert = pki.issue_client(ca, FED, "bob", pki.ROLE_MEMBER, key, NOW, days=1)
    pki.verify_issued_by(cert, ca.certificate, NOW + timedelta(hours=23))
    with pytest.raises(VerificationError, match="expired"):
        pki.verify_issued_by(cert, ca.certificate, cert.not_valid_after_utc + timedelta(seconds=1))


def test_verify_rejects_not_yet_valid_cert(ca: pki.Issued, server: pki.Issued) -> None:
    with pytest.raises(VerificationError, match="not valid before"):
        pki.verify_issued_by(server.certificate, ca.certificate, NOW - timedelta(seconds=1))


def test_verify_rejects_leaf_as_issuer(ca: pki.Issued, server: pki.Issued) -> None:
    with pytest.raises(VerificationError):
        pki.verify_issued_by(server.certificate, server.certificate, NOW)


def test_naive_now_is_utc(ca: pki.Issued, server: pki.Issued) -> None:
    naive = NOW.replace(tzinfo=None)
    pki.verify_issued_by(server.certificate, ca.certificate, naive)
    key = pki.new_tls_key()
    cert = pki.issue_client(ca, FED, "carol", pki.ROLE_MEMBER, key, naive)
    assert cert.not_valid_before_utc == NOW


def test_leaf_validity_capped_by_ca() -> None:
    key = pki.new_tls_key()
    short = pki.Issued(key=key, certificate=pki.new_ca(FED, key, NOW, days=10))
    cert = pki.issue_server(short, FED, [], pki.new_tls_key(), NOW)
    assert cert.not_valid_after_utc == short.certificate.not_valid_after_utc


@pytest.mark.parametrize("days", [0, -1])
def test_rejects_non_positive_lifetime(days: int) -> None:
    with pytest.raises(ConfigError, match="lifetime"):
        pki.new_ca(FED, pki.new_tls_key(), NOW, days=days)


def test_rejects_empty_federation() -> None:
    with pytest.raises(ConfigError, match="federation"):
        pki.new_ca("  ", pki.new_tls_key(), NOW)


def test_rejects_overlong_federation_in_ca_name() -> None:
    with pytest.raises(ConfigError):
        pki.new_ca("f" * 60, pki.new_tls_key(), NOW)


def test_ec_key_pem_round_trip() -> None:
    key = pki.new_tls_key()
    pem = pki.private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = pki.load_private_key_pem(pem)
    assert loaded.private_numbers() == key.private_numbers()


def test_ed25519_key_pem_round_trip() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = pki.private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = pki.load_ed25519_private_pem(pem)
    assert pki.ed25519_public_raw(loaded.public_key()) == pki.ed25519_public_raw(key.public_key())


def test_load_private_key_rejects_wrong_type_and_garbage() -> None:
    ed_pem = pki.private_key_pem(ed25519.Ed25519PrivateKey.generate())
    ec_pem = pki.private_key_pem(pki.new_tls_key())
    p384_pem = pki.private_key_pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigError, match="P-256"):
        pki.load_private_key_pem(ed_pem)
    with pytest.raises(ConfigError, match="P-256"):
        pki.load_private_key_pem(p384_pem)
    with pytest.raises(ConfigError, match="Ed25519"):
        pki.load_ed25519_private_pem(ec_pem)
    for loader in (pki.load_private_key_pem, pki.load_ed25519_private_pem):
        with pytest.raises(ConfigError):
            loader(b"garbage")


def test_ed25519_public_text_round_trip() -> None:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = pki.ed25519_public_raw(public)
    assert len(raw) == 32
    text = pki.ed25519_public_text(public)
    assert text.startswith("ed25519:")
    assert "\n" not in text
    parsed = pki.parse_ed25519_public_text(text)
    assert pki.ed25519_public_raw(parsed) == raw


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize(
    "text",
    [
        "ed448:" + _b64(bytes(32)),
        "ED25519:" + _b64(bytes(32)),
        _b64(bytes(32)),
        "ed25519:" + _b64(bytes(31)),
        "ed25519:" + _b64(bytes(33)),
        "ed25519:",
        "ed25519:not*base64!",
        "ed25519:" + _b64(bytes(32)).rstrip("="),
        "ed25519:" + _b64(bytes(32)) + "\n",
        " ed25519:" + _b64(bytes(32)),
        "ed25519:" + _b64(bytes(32))[:-2] + "B=",
    ],
)
def test_parse_ed25519_public_text_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        pki.parse_ed25519_public_text(text)


# ---- Certificate requests and the checks on what was issued ----


def test_issue_client_accepts_the_public_key_alone(ca: pki.Issued) -> None:
    key = pki.new_tls_key()
    cert = pki.issue_client(ca, FED, "dave", pki.ROLE_MEMBER, key.public_key(), NOW)
    assert cert.public_key() == key.public_key()
    pki.verify_issued_by(cert, ca.certificate, NOW)


def test_issue_server_accepts_the_public_key_alone(ca: pki.Issued) -> None:
    key = pki.new_tls_key()
    cert = pki.issue_server(ca, FED, ["coord.example.org"], key.public_key(), NOW)
    assert cert.public_key() == key.public_key()


def test_certificate_request_names_and_carries_its_key() -> None:
    key = pki.new_tls_key()
    pem = pki.certificate_request(key, "fab-7")
    assert pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    assert b"PRIVATE" not in pem
    request = x509.load_pem_x509_csr(pem)
    assert [a.value for a in request.subject] == ["fab-7"]
    assert pki.load_certificate_request(pem) == key.public_key()


def test_certificate_request_refuses_a_bad_name() -> None:
    with pytest.raises(ConfigError, match="invalid name"):
        pki.certificate_request(pki.new_tls_key(), "Not Valid")


def _pem_request(request: x509.CertificateSigningRequest) -> bytes:
    return request.public_bytes(serialization.Encoding.PEM)


def test_load_certificate_request_refuses_a_tampered_subject() -> None:
    pem = pki.certificate_request(pki.new_tls_key(), "alice")
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    assert der.count(b"alice") == 1
    tampered = x509.load_der_x509_csr(der.replace(b"alice", b"mallo"))
    with pytest.raises(ConfigError, match="does not verify"):
        pki.load_certificate_request(_pem_request(tampered))


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP384R1()), ed25519.Ed25519PrivateKey.generate()],
    ids=["p384", "ed25519"],
)
def test_load_certificate_request_refuses_a_key_that_is_not_p256(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> None:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    request = builder.sign(key, algorithm)
    with pytest.raises(ConfigError, match="P-256"):
        pki.load_certificate_request(_pem_request(request))


def test_load_certificate_request_refuses_garbage() -> None:
    with pytest.raises(ConfigError, match="cannot parse"):
        pki.load_certificate_request(b"not a request")


def test_same_key_compares_public_halves(server: pki.Issued) -> None:
    assert pki.same_key(server.certificate, server.key)
    assert pki.same_key(server.certificate, server.key.public_key())
    assert not pki.same_key(server.certificate, pki.new_tls_key())


def test_check_subject_accepts_the_party_a_certificate_was_issued_to(
    ca: pki.Issued, server: pki.Issued
) -> None:
    member = pki.issue_client(ca, FED, "alice", pki.ROLE_MEMBER, pki.new_tls_key(), NOW)
    pki.check_subject(member, pki.ROLE_MEMBER, "alice")
    pki.check_subject(server.certificate, pki.ROLE_COORDINATOR, "coord.example.org")


@pytest.mark.parametrize(
    ("role", "name"),
    [(pki.ROLE_MEMBER, "bob"), (pki.ROLE_OPERATOR, "alice"), (pki.ROLE_COORDINATOR, "alice")],
    ids=["another-name", "another-role", "not-a-server"],
)
def test_check_subject_refuses_another_party(ca: pki.Issued, role: str, name: str) -> None:
    member = pki.issue_client(ca, FED, "alice", pki.ROLE_MEMBER, pki.new_tls_key(), NOW)
    with pytest.raises(VerificationError):
        pki.check_subject(member, role, name)


def test_check_subject_refuses_a_server_for_another_name(server: pki.Issued) -> None:
    with pytest.raises(VerificationError, match=r"server name other\.example"):
        pki.check_subject(server.certificate, pki.ROLE_COORDINATOR, "other.example")
