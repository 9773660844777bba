"""Enrolment requests: what a party hands governance to join, holding public parts only. Pure.

A firm, an operator or the coordinator makes its own keys on its own machine and sends
governance a request: its name, a PKCS#10 request for its TLS key (RFC 2986) and, for a
member or the coordinator, the public half of its Ed25519 identity or log key, with a
signature by that key over the whole request as proof that it holds the private half.
Governance turns a request into a certificate and a registry entry; nothing private ever
crosses. The request is a short TOML text that governance can read before signing, and its
SHA-256 fingerprint is what both sides compare over the telephone.
"""

from __future__ import annotations

import hashlib
import struct
import tomllib
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from scfed import pki
from scfed.config import check_name, check_origin, check_server_name
from scfed.errors import ConfigError
from scfed.wire.messages import MAX_NAME

KIND_MEMBER = pki.ROLE_MEMBER
KIND_OPERATOR = pki.ROLE_OPERATOR
KIND_COORDINATOR = pki.ROLE_COORDINATOR
KINDS = (KIND_MEMBER, KIND_OPERATOR, KIND_COORDINATOR)
MAX_REQUEST_BYTES = 16 * 1024
MAX_HOSTS = 16
_DOMAIN = b"scfed enrolment request v1"
_FIELDS = frozenset(
    {"kind", "name", "origin", "display_name", "group", "hosts", "csr", "key", "signature"}
)


@dataclass(frozen=True)
class Request:
    """A party's request to join (or to replace its keys): public parts only."""

    kind: str
    name: str
    origin: str
    csr: bytes  # PEM PKCS#10 request for the TLS key
    key: bytes = b""  # raw Ed25519 identity (member) or log (coordinator) public key
    display_name: str = ""
    group: str = ""
    hosts: tuple[str, ...] = ()  # the coordinator's extra server names
    signature: bytes = b""  # by ``key`` over everything above

    @property
    def tls_key(self) -> ec.EllipticCurvePublicKey:
        return pki.load_certificate_request(self.csr)


def _framed(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


def _signed_part(request: Request) -> bytes:
    hosts = _framed(*(h.encode("utf-8") for h in request.hosts))
    fields = (request.kind, request.name, request.origin, request.display_name, request.group)
    return _framed(_DOMAIN, *(f.encode("utf-8") for f in fields), hosts, request.csr, request.key)


def sign(request: Request, key: Ed25519PrivateKey | None) -> Request:
    """``request`` with ``key``'s public half and its proof of possession (None: operator)."""
    if key is None:
        return request
    public = pki.ed25519_public_raw(key.public_key())
    unsigned = replace(request, key=public, signature=b"")
    return replace(unsigned, signature=key.sign(_signed_part(unsigned)))


def fingerprint(data: bytes) -> str:
    """The SHA-256 of a request file, in groups of four hex digits, to read aloud."""
    digest = hashlib.sha256(data).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


# ---- Text form ----


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode(request: Request, comment: str) -> bytes:
    """The request as TOML text, with a comment line on top."""
    lines = [
        f"# {comment}",
        f"kind = {_quoted(request.kind)}",
        f"name = {_quoted(request.name)}",
        f"origin = {_quoted(request.origin)}",
    ]
    if request.kind == KIND_MEMBER:
        lines += [
            f"display_name = {_quoted(request.display_name)}",
            f"group = {_quoted(request.group)}",
        ]
    if request.kind == KIND_COORDINATOR:
        lines.append("hosts = [" + ", ".join(_quoted(h) for h in request.hosts) + "]")
    if request.key:
        public = Ed25519PublicKey.from_public_bytes(request.key)
        lines += [
            f"key = {_quoted(pki.ed25519_public_text(public))}",
            f"signature = {_quoted(request.signature.hex())}",
        ]
    lines.append(f'csr = """\n{request.csr.decode("ascii").strip()}\n"""')
    return ("\n".join(lines) + "\n").encode("utf-8")


def decode(data: bytes) -> Request:
    """The request in ``data``, every field checked and its proof verified; ConfigError."""
    if len(data) > MAX_REQUEST_BYTES:
        raise ConfigError(f"an enrolment request is at most {MAX_REQUEST_BYTES} bytes")
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"not an enrolment request: {exc}") from None
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown field {unknown[0]!r} in the enrolment request")
    request = Request(
        kind=_text(table, "kind"),
        name=_text(table, "name"),
        origin=_text(table, "origin"),
        csr=(_text(table, "csr").strip() + "\n").encode("ascii", "replace"),
        key=_key(table),
        display_name=_text(table, "display_name", ""),
        group=_text(table, "group", ""),
        hosts=_hosts(table),
        signature=_signature(table),
    )
    check(request)
    return request


def _text(table: dict[str, object], field: str, default: str | None = None) -> str:
    value = table.get(field, default)
    if not isinstance(value, str):
        raise ConfigError(f"the enrolment request's {field!r} must be a string")
    return value


def _key(table: dict[str, object]) -> bytes:
    text = _text(table, "key", "")
    return pki.ed25519_public_raw(pki.parse_ed25519_public_text(text)) if text else b""


def _signature(table: dict[str, object]) -> bytes:
    try:
        return bytes.fromhex(_text(table, "signature", ""))
    except ValueError:
        raise ConfigError("the enrolment request's signature is not hexadecimal") from None


def _hosts(table: dict[str, object]) -> tuple[str, ...]:
    hosts = table.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError("the enrolment request's 'hosts' must be a list of strings")
    return tuple(hosts)


def check_label(value: str, field: str) -> str:
    """``value`` if it is a display name or corporate group a registry may carry."""
    if not value.strip() or len(value) > MAX_NAME or not value.isprintable():
        raise ConfigError(f"{field}: use 1-{MAX_NAME} printable characters, not {value[:70]!r}")
    return value


def check(request: Request) -> None:
    """ConfigError unless ``request`` is well formed and its key's proof verifies."""
    if request.kind not in KINDS:
        raise ConfigError(f"unknown kind {request.kind!r}; expected one of {', '.join(KINDS)}")
    check_name(request.name)
    check_origin(request.origin)
    if len(request.hosts) > MAX_HOSTS:
        raise ConfigError(f"an enrolment request names at most {MAX_HOSTS} hosts")
    for host in request.hosts:
        check_server_name(host)
    pki.load_certificate_request(request.csr)
    if request.kind == KIND_MEMBER:
        check_label(request.display_name, "display name")
        check_label(request.group, "group")
    if request.kind == KIND_OPERATOR:
        if request.key or request.signature:
            raise ConfigError("an operator's request carries no signing key")
        return
    if not request.key:
        raise ConfigError(f"a {request.kind}'s request must carry its Ed25519 public key")
    try:
        Ed25519PublicKey.from_public_bytes(request.key).verify(
            request.signature, _signed_part(request)
        )
    except (InvalidSignature, ValueError):
        raise ConfigError("the request's signature does not verify with its own key") from None
