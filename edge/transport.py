"""The mutual-TLS gRPC transport: client channels for the node daemon and the operator's
commands, the check of a daemon's own TLS files before it starts, and failed calls in words.
Edge code: reads key files and opens channels; nothing here decides protocol behaviour. The
certificate checks themselves are the core's (``scfed.pki``), given the time as ``now``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge.files import read_private_key_file, read_public_file
from scfed import pki
from scfed.config import TlsFiles
from scfed.errors import ConfigError, RemoteProtocolError, VerificationError

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
#: How gRPC words a connection that never came up; the text after it is the last reason.
_UNREACHABLE = re.compile(r"failed to connect to all addresses; last error: (?:[A-Z_]+: )?")
_ADDRESS = re.compile(r"(?:ipv4|ipv6|unix):\S+?: ")


def secure_channel(
    tls: TlsFiles,
    address: str,
    server_name: str,
    options: Sequence[tuple[str, int | str]] = (),
) -> grpc.Channel:
    """A channel presenting our client certificate and trusting only the federation's CA.

    ``server_name`` is the name in the coordinator's certificate, so the address may be an IP.
    """
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_public_file(tls.ca),
        private_key=read_private_key_file(tls.key),
        certificate_chain=read_public_file(tls.certificate),
    )
    arguments = [("grpc.ssl_target_name_override", server_name), *options]
    return grpc.secure_channel(address, credentials, arguments)


def check_tls_files(tls: TlsFiles, now: datetime) -> list[str]:
    """Refuse to start on TLS files that cannot work: a key others may read or that does not
    parse, a certificate that does not parse, is not the key's, is not issued by the CA, or is
    not valid at ``now`` (expired or not yet valid). Errors name the file. The warnings for
    a certificate or CA that expires soon (``expiry_warnings``)."""
    data = read_private_key_file(tls.key)
    try:
        key = pki.load_private_key_pem(data)
    except ConfigError as exc:
        raise ConfigError(f"{tls.key}: {exc}") from exc
    certificate = _certificate(tls.certificate)
    if key.public_key().public_bytes(*_SPKI) != certificate.public_key().public_bytes(*_SPKI):
        raise ConfigError(f"{tls.certificate}: this certificate is not for the key {tls.key}")
    try:
        pki.verify_issued_by(certificate, _certificate(tls.ca), now)
    except VerificationError as exc:
        raise VerificationError(f"{tls.certificate}: {exc} (CA {tls.ca})") from exc
    return expiry_warnings(tls, now)


def expiry_warnings(tls: TlsFiles, now: datetime) -> list[str]:
    """A line for the certificate and for the CA if either expires within
    ``pki.WARN_DAYS`` of ``now`` (or has)."""
    found = (
        pki.expiry_warning(_certificate(tls.certificate), now, f"certificate {tls.certificate}"),
        pki.expiry_warning(_certificate(tls.ca), now, f"CA certificate {tls.ca}"),
    )
    return [warning for warning in found if warning is not None]


def _certificate(path: Path) -> x509.Certificate:
    data = read_public_file(path)
    try:
        return pki.load_certificate_pem(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def unreachable(error: grpc.RpcError) -> str | None:
    """Why a call could not reach its server at all (``Connection refused``, a failed TLS
    handshake), or None when the server was reached and answered."""
    if not isinstance(error, grpc.Call) or error.code() != grpc.StatusCode.UNAVAILABLE:
        return None
    details = error.details() or ""
    found = _UNREACHABLE.search(details)
    if found is None:
        return None
    return _ADDRESS.sub("", details[found.end() :], count=1) or details


def call_failed(error: grpc.RpcError, target: str) -> RemoteProtocolError:
    """A failed call in one line: the coordinator at ``target`` could not be reached, or
    it refused, and why."""
    reason = unreachable(error)
    if reason is not None:
        return RemoteProtocolError(f"cannot reach the coordinator at {target}: {reason}")
    return RemoteProtocolError(f"the coordinator refused: {describe(error)}")


def describe(error: grpc.RpcError) -> str:
    """``CODE: details`` of a failed call, for logs and one-line errors."""
    if isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return str(error)
