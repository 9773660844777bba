"""Client side of the mutual-TLS gRPC transport, shared by the node daemon and the operator's
commands. Reads key files (I/O); nothing here decides protocol behaviour."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from scfed.config import TlsFiles, read_private_key_file


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
        root_certificates=tls.ca.read_bytes(),
        private_key=read_private_key_file(tls.key),
        certificate_chain=tls.certificate.read_bytes(),
    )
    arguments = [("grpc.ssl_target_name_override", server_name), *options]
    return grpc.secure_channel(address, credentials, arguments)


def describe(error: grpc.RpcError) -> str:
    """``CODE: details`` of a failed call, for logs and one-line errors."""
    if isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return str(error)
