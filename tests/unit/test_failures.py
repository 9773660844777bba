"""The pure pieces of failing once and clearly: the state folder lock, the start-up check of a
daemon's own TLS files, an unreachable coordinator in words, request bytes that do not parse,
and JSON nested too deeply to read. Files in a temporary folder; no sockets."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from google.protobuf import message_factory

from coordinator._status import Context, served, status_for
from coordinator._wire import Malformed, _handler
from edge.files import write_private, write_public
from edge.lock import lock_path, state_lock
from edge.transport import check_tls_files, unreachable
from node.imports import read_records
from protos.scfed.v1 import service_pb2 as spb
from scfed import pki
from scfed.config import TlsFiles
from scfed.errors import ConfigError, ImportRowError, ScfedError, StorageError, VerificationError

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# ---- The state folder lock ----


def test_a_second_holder_of_a_state_folder_is_refused_naming_the_lock_and_its_holder(
    tmp_path: Path,
) -> None:
    database = tmp_path / "node.sqlite"
    with state_lock(database, "scfed node") as held:
        assert held == lock_path(database) == tmp_path / "node.sqlite.lock"
        with pytest.raises(StorageError) as refused, state_lock(database, "scfed node"):
            pytest.fail("a second holder got the lock")
    assert str(refused.value) == (
        f"scfed node is already running on this state folder "
        f"(lock {held} held by another process, pid {os.getpid()})"
    )
    with state_lock(database, "scfed node"):  # let go when the first holder ended
        assert held.read_text() == f"{os.getpid()}\n"


def test_a_lock_file_that_cannot_be_made_is_a_storage_error(tmp_path: Path) -> None:
    with (
        pytest.raises(StorageError, match="cannot open the lock file"),
        state_lock(tmp_path / "no-such-folder" / "node.sqlite", "scfed node"),
    ):
        pytest.fail("locked a file in a folder that does not exist")


# ---- A daemon's own TLS files ----


def _tls(folder: Path, start: datetime, days: int = 30, *, other_key: bool = False) -> TlsFiles:
    """A CA, a key and a certificate valid ``days`` from ``start``, written to ``folder``."""
    ca_key = pki.new_tls_key()
    ca = pki.Issued(ca_key, pki.new_ca("demo", ca_key, NOW - timedelta(days=400)))
    key, certified = pki.new_tls_key(), pki.new_tls_key()
    subject = certified if other_key else key
    cert = pki.issue_server(ca, "demo", ["127.0.0.1"], subject, start, days)
    tls = TlsFiles(folder / "tls.pem", folder / "tls.key", folder / "ca.pem")
    write_public(tls.ca, pki.certificate_pem(ca.certificate))
    write_private(tls.key, pki.private_key_pem(key))
    write_public(tls.certificate, pki.certificate_pem(cert))
    return tls


def test_tls_files_valid_now_pass(tmp_path: Path) -> None:
    check_tls_files(_tls(tmp_path, NOW - timedelta(days=1)), NOW)


def _refusal(tls: TlsFiles) -> ScfedError:
    with pytest.raises(ScfedError) as refused:
        check_tls_files(tls, NOW)
    return refused.value


def test_an_expired_certificate_is_refused_naming_it(tmp_path: Path) -> None:
    tls = _tls(tmp_path, NOW - timedelta(days=40))
    error = _refusal(tls)
    assert isinstance(error, VerificationError)
    assert str(error).startswith(f"{tls.certificate}: certificate expired at ")


def test_a_certificate_not_yet_valid_is_refused_naming_it(tmp_path: Path) -> None:
    tls = _tls(tmp_path, NOW + timedelta(days=2))
    error = _refusal(tls)
    assert isinstance(error, VerificationError)
    assert str(error).startswith(f"{tls.certificate}: certificate is not valid before ")


def test_a_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    tls = _tls(tmp_path, NOW - timedelta(days=1))
    (tmp_path / "other").mkdir()
    other = _tls(tmp_path / "other", NOW - timedelta(days=1))  # a CA of the same name
    tls.ca.write_bytes(other.ca.read_bytes())
    error = _refusal(tls)
    assert isinstance(error, VerificationError)
    assert "does not verify against CA" in str(error)


BROKEN: dict[str, tuple[Callable[[TlsFiles], object], str]] = {
    "key-readable-by-group": (lambda tls: tls.key.chmod(0o640), "accessible by group or others"),
    "key-not-a-key": (lambda tls: tls.key.write_text("junk"), "cannot parse PEM private key"),
    "certificate-not-a-certificate": (
        lambda tls: tls.certificate.write_text("junk"),
        "cannot parse PEM certificate",
    ),
    "ca-missing": (lambda tls: tls.ca.unlink(), "cannot read"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_tls_files_are_a_config_error_naming_the_file(tmp_path: Path, case: str) -> None:
    tls = _tls(tmp_path, NOW - timedelta(days=1))
    breaks, says = BROKEN[case]
    breaks(tls)
    error = _refusal(tls)
    assert isinstance(error, ConfigError)
    assert str(tmp_path) in str(error)
    assert says in str(error)


def test_a_certificate_for_another_key_is_refused(tmp_path: Path) -> None:
    tls = _tls(tmp_path, NOW - timedelta(days=1), other_key=True)
    error = _refusal(tls)
    assert isinstance(error, ConfigError)
    assert str(error) == f"{tls.certificate}: this certificate is not for the key {tls.key}"


# ---- An unreachable coordinator in words ----


class _Failed(grpc.RpcError, grpc.Call):
    """A failed call as gRPC reports it: a status code and its details."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return ()

    def trailing_metadata(self) -> tuple[()]:  # empty: fits both supertypes
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


REFUSED = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:7443: "
    "Failed to connect to remote host: Connection refused"
)
HANDSHAKE = (
    "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:7443: "
    "Ssl handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED"
)


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        (REFUSED, "Failed to connect to remote host: Connection refused"),
        (HANDSHAKE, "Ssl handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: "
                    "CERTIFICATE_VERIFY_FAILED"),
    ],
)  # fmt: skip
def test_a_connection_that_never_came_up_reads_as_its_reason(details: str, reason: str) -> None:
    assert unreachable(_Failed(grpc.StatusCode.UNAVAILABLE, details)) == reason


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.UNAVAILABLE, "Socket closed"),  # the server was there, then went
        (grpc.StatusCode.PERMISSION_DENIED, REFUSED),  # an answer, whatever it says
    ],
)
def test_an_answer_from_the_server_is_not_unreachable(code: grpc.StatusCode, details: str) -> None:
    assert unreachable(_Failed(code, details)) is None


# ---- Request bytes that do not parse ----


def _anyone(servicer: object, context: Context) -> None:
    """Admits every caller."""


@served(_anyone)
async def _unused(servicer: object, request: object, context: Context, caller: None) -> None:
    raise AssertionError("the handler is built, never called, here")


METHODS = [
    (service.name, method.name)
    for service in spb.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


@pytest.mark.parametrize(("service", "name"), METHODS)
def test_every_method_parses_good_bytes_and_marks_bad_ones(service: str, name: str) -> None:
    method = spb.DESCRIPTOR.services_by_name[service].methods_by_name[name]
    handler = _handler(method, SimpleNamespace(**{name: _unused}))
    assert handler.response_streaming == method.server_streaming
    parse = handler.request_deserializer
    assert parse is not None
    request_type = message_factory.GetMessageClass(method.input_type)
    assert isinstance(parse(request_type().SerializeToString()), request_type)
    marked = parse(b"\xff\xff\xff")
    assert marked == Malformed(method.input_type.full_name, "Wire format was corrupt")


def test_a_malformed_request_is_the_peers_fault_answered_invalid_argument() -> None:
    error = Malformed("scfed.v1.Envelope", "Wire format was corrupt").error("/s/M")
    assert str(error) == (
        "malformed request to /s/M: not a valid scfed.v1.Envelope (Wire format was corrupt)"
    )
    assert status_for(error) is grpc.StatusCode.INVALID_ARGUMENT


# ---- JSON nested too deeply to read ----


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' * 100_000, "[" * 100_000 + "]" * 100_000])
def test_json_nested_too_deeply_is_one_import_error_naming_the_file(text: str) -> None:
    path = Path("deep.json")
    with pytest.raises(ImportRowError) as refused:
        read_records(path, text.encode(), kind=None, mapping={})
    assert str(refused.value) == "deep.json: not valid JSON: nested too deeply to read"
