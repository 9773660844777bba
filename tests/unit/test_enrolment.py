"""Unit tests for scfed.enrolment: the request's text form, its fingerprint and its checks."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scfed import enrolment, pki
from scfed.enrolment import KIND_COORDINATOR, KIND_MEMBER, KIND_OPERATOR, Request
from scfed.errors import ConfigError

ORIGIN = "scfed.example/fab"


def _unsigned(
    kind: str,
    name: str = "acme",
    *,
    display_name: str = "",
    group: str = "",
    hosts: tuple[str, ...] = (),
) -> Request:
    csr = pki.certificate_request(pki.new_tls_key(), name)
    return Request(kind, name, ORIGIN, csr, display_name=display_name, group=group, hosts=hosts)


def _member(display_name: str = "ACME Foundry Ltd.", group: str = "acme-holdings") -> Request:
    request = _unsigned(KIND_MEMBER, display_name=display_name, group=group)
    return enrolment.sign(request, Ed25519PrivateKey.generate())


def _coordinator(hosts: tuple[str, ...] = ("coord.example.net", "10.0.0.5")) -> Request:
    request = _unsigned(KIND_COORDINATOR, "coordinator", hosts=hosts)
    return enrolment.sign(request, Ed25519PrivateKey.generate())


def _operator() -> Request:
    return enrolment.sign(_unsigned(KIND_OPERATOR, "ops"), None)


def _text(request: Request) -> bytes:
    return enrolment.encode(request, "a request")


# ---- The text form ----


@pytest.mark.parametrize(
    "make", [_member, _coordinator, _operator], ids=["member", "coordinator", "operator"]
)
def test_encode_decode_round_trip(make: Callable[[], Request]) -> None:
    request = make()
    assert enrolment.decode(_text(request)) == request


def test_encoded_request_opens_with_its_comment_and_holds_no_private_key() -> None:
    data = enrolment.encode(_member(), "scfed enrolment request of member acme")
    assert data.startswith(b"# scfed enrolment request of member acme\n")
    assert b"PRIVATE KEY" not in data
    assert b"BEGIN CERTIFICATE REQUEST" in data


def test_sign_puts_the_public_key_in_the_request() -> None:
    key = Ed25519PrivateKey.generate()
    request = enrolment.sign(_unsigned(KIND_MEMBER, display_name="a", group="g"), key)
    assert request.key == pki.ed25519_public_raw(key.public_key())
    assert len(request.signature) == 64


def test_operator_request_carries_neither_key_nor_signature() -> None:
    request = _operator()
    assert (request.key, request.signature) == (b"", b"")
    assert b"signature" not in _text(request)


def test_tls_key_is_the_csr_key() -> None:
    tls = pki.new_tls_key()
    request = Request(KIND_OPERATOR, "ops", ORIGIN, pki.certificate_request(tls, "ops"))
    assert request.tls_key.public_numbers() == tls.public_key().public_numbers()


# ---- The fingerprint ----


def test_fingerprint_is_eight_groups_of_four_hex_digits_of_the_sha256() -> None:
    data = _text(_member())
    printed = enrolment.fingerprint(data)
    assert re.fullmatch(r"([0-9a-f]{4} ){7}[0-9a-f]{4}", printed)
    assert printed.replace(" ", "") == hashlib.sha256(data).hexdigest()[:32]


def test_fingerprint_changes_with_one_byte() -> None:
    data = _text(_member())
    assert enrolment.fingerprint(data) != enrolment.fingerprint(data + b"\n")


# ---- check ----


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: enrolment.sign(_unsigned(KIND_OPERATOR, "ops"), Ed25519PrivateKey.generate()),
         "operator's request carries no signing key"),
        (lambda: _unsigned(KIND_MEMBER, display_name="a", group="g"), "must carry"),
        (lambda: _unsigned(KIND_COORDINATOR, "coordinator"), "must carry"),
        (lambda: _unsigned("auditor"), "unknown kind"),
        (lambda: dataclasses.replace(_member(), name="Acme"), "invalid name"),
        (lambda: dataclasses.replace(_member(), origin="has space"), "invalid origin"),
        (lambda: _coordinator(tuple(f"h{i}.example" for i in range(17))), "at most 16 hosts"),
        (lambda: _coordinator(("bad host",)), "invalid server name"),
        (lambda: _member(display_name=""), "display name"),
        (lambda: _member(group="line\nbreak"), "group"),
        (lambda: dataclasses.replace(_member(), csr=b"not a request"), "certificate request"),
    ],
    ids=[
        "operator-with-key",
        "member-without-key",
        "coordinator-without-key",
        "bad-kind",
        "bad-name",
        "bad-origin",
        "too-many-hosts",
        "bad-host",
        "empty-display-name",
        "control-in-group",
        "bad-csr",
    ],
)  # fmt: skip
def test_check_refuses(make: Callable[[], Request], match: str) -> None:
    request = make()
    with pytest.raises(ConfigError, match=match):
        enrolment.check(request)


def test_check_accepts_sixteen_hosts() -> None:
    enrolment.check(_coordinator(tuple(f"h{i}.example" for i in range(16))))


def test_check_refuses_a_field_changed_after_signing() -> None:
    changed = dataclasses.replace(_member(), display_name="Someone Else Ltd.")
    with pytest.raises(ConfigError, match="signature does not verify"):
        enrolment.check(changed)


def test_check_refuses_a_signature_by_another_key() -> None:
    other = pki.ed25519_public_raw(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ConfigError, match="signature does not verify"):
        enrolment.check(dataclasses.replace(_member(), key=other))


# ---- decode ----


def test_decode_refuses_an_unknown_field() -> None:
    with pytest.raises(ConfigError, match="unknown field 'extra'"):
        enrolment.decode(_text(_member()) + b'extra = "x"\n')


def test_decode_refuses_an_oversized_file() -> None:
    padding = b"#" * enrolment.MAX_REQUEST_BYTES + b"\n"
    with pytest.raises(ConfigError, match="at most"):
        enrolment.decode(_text(_member()) + padding)


def test_decode_refuses_text_that_is_not_toml() -> None:
    with pytest.raises(ConfigError, match="not an enrolment request"):
        enrolment.decode(b"kind = \n")


def test_decode_refuses_a_signature_that_is_not_hex() -> None:
    data = re.sub(rb'signature = "[0-9a-f]+"', b'signature = "zz"', _text(_member()))
    with pytest.raises(ConfigError, match="not hexadecimal"):
        enrolment.decode(data)


def test_decode_refuses_hosts_that_are_not_a_list() -> None:
    data = re.sub(rb"hosts = \[.*\]", b'hosts = "h.example"', _text(_coordinator()))
    with pytest.raises(ConfigError, match="list of strings"):
        enrolment.decode(data)


def test_decode_refuses_a_display_name_edited_in_the_text() -> None:
    data = _text(_member()).replace(b"ACME Foundry Ltd.", b"ACME Foundry Inc.")
    with pytest.raises(ConfigError, match="signature does not verify"):
        enrolment.decode(data)
