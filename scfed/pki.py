"""X.509 PKI for a federation: CA, coordinator and client certificates, key encoding.

Everything here is pure: no file I/O, no clock and no global randomness.  The current
time is always passed in as a ``datetime`` (naive values are taken to be UTC), and the
only randomness comes from ``cryptography``'s key generation and
``x509.random_serial_number``.  TLS keys are ECDSA P-256 and signatures use SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scfed.errors import ConfigError, VerificationError

ROLE_COORDINATOR = "coordinator"
ROLE_MEMBER = "member"
ROLE_OPERATOR = "operator"

_CLIENT_ROLES = (ROLE_MEMBER, ROLE_OPERATOR)
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ED25519_PREFIX = "ed25519:"
_ED25519_RAW_LEN = 32
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Issued:
    """A private key together with the certificate issued for it."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def new_tls_key() -> ec.EllipticCurvePrivateKey:
    """Generate a fresh ECDSA P-256 private key for TLS."""
    return ec.generate_private_key(ec.SECP256R1())


def _utc(now: datetime) -> datetime:
    """Return ``now`` as an aware UTC datetime (naive values are taken to be UTC)."""
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _validity(now: datetime, days: int) -> tuple[datetime, datetime]:
    """Return the (not_before, not_after) window starting at ``now`` lasting ``days``."""
    if days < 1:
        raise ConfigError(f"certificate lifetime must be at least 1 day, got {days}")
    start = _utc(now)
    return start, start + timedelta(days=days)


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """Build an X.509 name, turning invalid attribute values into ``ConfigError``."""
    try:
        return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    except ValueError as exc:
        values = [value for _, value in attributes]
        raise ConfigError(f"invalid certificate name {values!r}: {exc}") from exc


def _check_federation(federation: str) -> None:
    """Reject an empty or whitespace-only federation name."""
    if not federation.strip():
        raise ConfigError(f"federation name must not be empty, got {federation!r}")


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    """Return a KeyUsage with only the requested bits set."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def new_ca(
    federation: str, key: ec.EllipticCurvePrivateKey, now: datetime, days: int = 3650
) -> x509.Certificate:
    """Create the self-signed federation CA certificate for ``key``."""
    _check_federation(federation)
    name = _name((NameOID.COMMON_NAME, f"scfed federation CA: {federation}"))
    not_before, not_after = _validity(now, days)
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(digital_signature=False, cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _authority_key_id(ca: Issued) -> x509.AuthorityKeyIdentifier:
    """Return the AuthorityKeyIdentifier for certificates signed by ``ca``."""
    ca_public = ca.key.public_key()
    if ca_public.public_bytes(*_SPKI) != ca.certificate.public_key().public_bytes(*_SPKI):
        raise ConfigError("CA private key does not match the CA certificate")
    try:
        ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


TlsKey = ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey


def _public(key: TlsKey) -> ec.EllipticCurvePublicKey:
    return key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key


def _issue_leaf(
    ca: Issued,
    *,
    subject: x509.Name,
    names: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    key: TlsKey,
    now: datetime,
    days: int,
) -> x509.Certificate:
    """Sign an end-entity certificate for ``key`` (its public half) with ``ca``.

    The validity ends no later than the CA's own ``not_valid_after``.
    """
    public = _public(key)
    not_before, not_after = _validity(now, days)
    not_after = min(not_after, ca.certificate.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(_authority_key_id(ca), critical=False)
    )
    return builder.sign(ca.key, hashes.SHA256())


def _host_name(host: str) -> x509.GeneralName:
    """Return an IPAddress SAN entry for IP literals, otherwise a DNSName entry."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or host != host.strip():
        raise ConfigError(f"invalid server host name {host!r}")
    try:
        return x509.DNSName(host)
    except ValueError as exc:
        raise ConfigError(f"invalid server host name {host!r}: {exc}") from exc


def _server_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """Return de-duplicated SAN entries for ``hosts`` plus localhost and 127.0.0.1."""
    if isinstance(hosts, str):
        raise ConfigError(f"hosts must be a sequence of host names, not the string {hosts!r}")
    names: list[x509.GeneralName] = []
    for host in [*hosts, "localhost", "127.0.0.1"]:
        entry = _host_name(host)
        if entry not in names:
            names.append(entry)
    return names


def issue_server(  # noqa: PLR0917
    ca: Issued,
    federation: str,
    hosts: Sequence[str],
    key: TlsKey,
    now: datetime,
    days: int = 825,
) -> x509.Certificate:
    """Issue the coordinator's TLS server certificate for ``hosts`` (names or IPs)."""
    _check_federation(federation)
    subject = _name(
        (NameOID.COMMON_NAME, ROLE_COORDINATOR),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, ROLE_COORDINATOR),
        (NameOID.ORGANIZATION_NAME, federation),
    )
    names = _server_names(hosts)
    usage = ExtendedKeyUsageOID.SERVER_AUTH
    return _issue_leaf(ca, subject=subject, names=names, usage=usage, key=key, now=now, days=days)


def _check_name(name: str) -> None:
    """Raise ``ConfigError`` unless ``name`` is a valid member/operator name."""
    if _NAME_RE.fullmatch(name) is None:
        raise ConfigError(
            f"invalid name {name!r}: must match ^[a-z0-9][a-z0-9-]{{0,62}}$ "
            "(lowercase letters, digits and '-', starting with a letter or digit, 1-63 chars)"
        )


def issue_client(  # noqa: PLR0917
    ca: Issued,
    federation: str,
    name: str,
    role: str,
    key: TlsKey,
    now: datetime,
    days: int = 825,
) -> x509.Certificate:
    """Issue a TLS client certificate for member or operator ``name``."""
    if role not in _CLIENT_ROLES:
        raise ConfigError(f"invalid client role {role!r}: must be one of {list(_CLIENT_ROLES)}")
    _check_name(name)
    _check_federation(federation)
    subject = _name(
        (NameOID.COMMON_NAME, name),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, role),
        (NameOID.ORGANIZATION_NAME, federation),
    )
    names: list[x509.GeneralName] = [x509.DNSName(f"{name}.{role}.scfed")]
    usage = ExtendedKeyUsageOID.CLIENT_AUTH
    return _issue_leaf(ca, subject=subject, names=names, usage=usage, key=key, now=now, days=days)


def certificate_request(key: ec.EllipticCurvePrivateKey, name: str) -> bytes:
    """A PEM PKCS#10 request (RFC 2986) for ``key``, subject CN=name, signed by the key."""
    _check_name(name)
    subject = _name((NameOID.COMMON_NAME, name))
    request = x509.CertificateSigningRequestBuilder().subject_name(subject)
    return request.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def load_certificate_request(data: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 key of a PEM PKCS#10 request whose self-signature verifies; else ConfigError."""
    try:
        request = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise ConfigError(f"cannot parse the certificate request: {exc}") from exc
    if not request.is_signature_valid:
        raise ConfigError("the certificate request's signature does not verify")
    key = request.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError("the certificate request is not for an ECDSA P-256 key")
    return key


def same_key(cert: x509.Certificate, key: TlsKey) -> bool:
    """Whether ``cert`` certifies ``key``."""
    return bool(cert.public_key().public_bytes(*_SPKI) == _public(key).public_bytes(*_SPKI))


def check_subject(cert: x509.Certificate, role: str, name: str) -> None:
    """VerificationError unless ``cert`` is for ``role`` ``name`` (the coordinator: for the
    server name ``name``), as this module issues them."""
    if role == ROLE_COORDINATOR:
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound as exc:
            raise VerificationError("the certificate names no server") from exc
        if name not in names.value.get_values_for_type(x509.DNSName):
            raise VerificationError(f"the certificate is not for the server name {name}")
        return
    common = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    unit = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if common != [name] or unit != [role]:
        raise VerificationError(f"the certificate is not for {role} {name}")


#: Certificates that expire within this many days are warned about everywhere they are used.
WARN_DAYS = 30


def expiry_warning(cert: x509.Certificate, now: datetime, what: str) -> str | None:
    """A warning line if ``cert`` expires within ``WARN_DAYS`` of ``now`` (or has), else None."""
    left = cert.not_valid_after_utc - _utc(now)
    if left > timedelta(days=WARN_DAYS):
        return None
    when = cert.not_valid_after_utc.date().isoformat()
    if left <= timedelta(0):
        return f"{what} expired on {when}"
    return f"{what} expires on {when} (in {left.days} days): rotate it now"


def fingerprint(cert: x509.Certificate) -> bytes:
    """Return the SHA-256 digest (32 bytes) of the certificate's DER encoding."""
    return cert.fingerprint(hashes.SHA256())


def fingerprint_pem(pem: bytes) -> bytes:
    """Return the SHA-256 fingerprint of a PEM certificate; bad PEM is a VerificationError."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise VerificationError(f"cannot parse PEM certificate: {exc}") from exc
    return fingerprint(cert)


def certificate_pem(cert: x509.Certificate) -> bytes:
    """Return the PEM encoding of ``cert``."""
    return cert.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    """Return ``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_private_pem(data: bytes) -> object:
    """Parse an unencrypted PEM private key of any type; failures are ConfigError."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"cannot parse PEM private key: {exc}") from exc


def load_private_key_pem(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Load an unencrypted PEM ECDSA P-256 private key."""
    key = _load_private_pem(data)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"expected an ECDSA P-256 private key, got {type(key).__name__}")
    if not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"expected an ECDSA P-256 private key, got curve {key.curve.name}")
    return key


def load_ed25519_private_pem(data: bytes) -> ed25519.Ed25519PrivateKey:
    """Load an unencrypted PEM Ed25519 private key."""
    key = _load_private_pem(data)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"expected an Ed25519 private key, got {type(key).__name__}")
    return key


def load_certificate_pem(data: bytes) -> x509.Certificate:
    """Load a PEM certificate; unparsable input is a ConfigError."""
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ConfigError(f"cannot parse PEM certificate: {exc}") from exc


def ed25519_public_raw(key: ed25519.Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_public_text(key: ed25519.Ed25519PublicKey) -> str:
    """Return the one-line text form ``ed25519:<base64 of the 32 raw bytes>``."""
    return _ED25519_PREFIX + base64.b64encode(ed25519_public_raw(key)).decode("ascii")


def parse_ed25519_public_text(text: str) -> ed25519.Ed25519PublicKey:
    """Parse exactly the form written by ``ed25519_public_text``; anything else is ConfigError."""
    if not text.startswith(_ED25519_PREFIX):
        raise ConfigError(f"Ed25519 public key must start with {_ED25519_PREFIX!r}: {text!r}")
    encoded = text[len(_ED25519_PREFIX) :]
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"Ed25519 public key is not valid base64: {text!r}") from exc
    if len(raw) != _ED25519_RAW_LEN:
        raise ConfigError(f"Ed25519 public key must be {_ED25519_RAW_LEN} bytes, got {len(raw)}")
    if base64.b64encode(raw).decode("ascii") != encoded:
        raise ConfigError(f"Ed25519 public key is not canonical base64: {text!r}")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def _check_window(cert: x509.Certificate, now: datetime, what: str) -> None:
    """Raise VerificationError unless ``now`` lies within ``cert``'s validity period."""
    when = _utc(now)
    if when < cert.not_valid_before_utc:
        raise VerificationError(f"{what} is not valid before {cert.not_valid_before_utc}")
    if when > cert.not_valid_after_utc:
        raise VerificationError(f"{what} expired at {cert.not_valid_after_utc}")


def _check_is_ca(ca: x509.Certificate) -> None:
    """Raise VerificationError unless ``ca`` carries BasicConstraints with ca=True."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError("issuer certificate has no BasicConstraints") from exc
    if not constraints.ca:
        raise VerificationError("issuer certificate is not a CA")


def verify_issued_by(cert: x509.Certificate, ca: x509.Certificate, now: datetime) -> None:
    """Raise VerificationError unless ``cert`` was signed by ``ca`` and both are valid at now."""
    if cert.issuer != ca.subject:
        raise VerificationError(
            f"certificate issuer {cert.issuer.rfc4514_string()!r} does not match "
            f"CA subject {ca.subject.rfc4514_string()!r}"
        )
    _check_is_ca(ca)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise VerificationError(f"certificate signature does not verify against CA: {exc}") from exc
    _check_window(cert, now, "certificate")
    _check_window(ca, now, "CA certificate")
