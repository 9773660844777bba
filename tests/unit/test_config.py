"""Unit tests for scfed.config (parsing) and edge.config and edge.files (loading, reading and
writing): TOML files, key files, the registry file, bounded reads, atomic writes."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import (
    load_coordinator_config,
    load_node_config,
    load_operator_config,
    read_governance_key,
    read_registry_file,
)
from edge.files import read_bounded, read_private_key_file, write_private, write_public
from scfed import config, pki
from scfed.dp.ledger import Budget
from scfed.errors import ConfigError, VerificationError
from scfed.registry import seal_registry
from scfed.wire.messages import Registry

NODE = """\
# node
member_id = "acme"
origin = "scfed.example/fab"
coordinator = "coordinator.fab.scfed:7443"
server_name = "coordinator.fab.scfed"

[keys]
tls_certificate = "tls.pem"
tls_key = "tls.key"
ca_certificate = "../shared/ca.pem"
identity_key = "identity.key"
governance_key = "governance.pub"
"""

COORDINATOR = """\
origin = "scfed.example/fab"
server_name = "coordinator.fab.scfed"

[keys]
tls_certificate = "tls.pem"
tls_key = "tls.key"
ca_certificate = "ca.pem"
signing_key = "signing.key"
governance_key = "governance.pub"
registry = "../registry.signed"

[limits]
max_message_bytes = 2048
"""

OPERATOR = """\
name = "ops"
coordinator = "[::1]:7443"
server_name = "coordinator.fab.scfed"

[keys]
tls_certificate = "tls.pem"
tls_key = "tls.key"
ca_certificate = "ca.pem"
"""

Loader = Callable[[Path], object]


def _write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(loader: Loader, path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        loader(path)
    return str(caught.value)


# ---- Valid files ----


def test_node_config_resolves_paths_and_fills_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, NODE)
    node = load_node_config(path)
    folder = tmp_path / "conf"
    assert node.path == path
    assert node.member_id == "acme"
    assert node.coordinator == "coordinator.fab.scfed:7443"
    assert node.tls.key == folder / "tls.key"
    assert node.tls.ca == tmp_path / "shared" / "ca.pem"
    assert node.identity_key.is_absolute()
    assert (node.min_n_min, node.max_cells) == (3, 1_000_000)
    assert node.figures == folder / "figures.csv"
    assert node.database == folder / "node.sqlite"
    assert node.privacy == config.Privacy(Budget(Fraction(1, 2), "year"), 1, Fraction(2), 1e-9)


def test_node_privacy_policy_is_read_exactly(tmp_path: Path) -> None:
    text = (
        NODE + '[privacy]\nrho_cap = "1/3"\nperiod = "quarter"\nt_collude = 2\n'
        'noise_floor = 2.5\ndelta = "1e-6"\n'
    )
    privacy = load_node_config(_write(tmp_path, text)).privacy
    assert privacy == config.Privacy(Budget(Fraction(1, 3), "quarter"), 2, Fraction(5, 2), 1e-6)


def test_node_config_relative_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, NODE + '\n[policy]\nmin_n_min = 5\n[state]\ndatabase = "db/n.sqlite"\n')
    monkeypatch.chdir(tmp_path)
    node = load_node_config(Path("conf/config.toml"))
    assert node.path == tmp_path / "conf" / "config.toml"
    assert node.min_n_min == 5
    assert node.database == tmp_path / "conf" / "db" / "n.sqlite"


def test_parsing_needs_no_file(tmp_path: Path) -> None:
    path = _write(tmp_path, NODE, "node.toml")
    assert config.parse_node_config(path, NODE.encode()) == load_node_config(path)
    where = tmp_path / "nowhere" / "node.toml"  # never created: the parser reads no file
    node = config.parse_node_config(where, NODE.encode())
    assert (node.path, node.tls.ca) == (where, tmp_path / "shared" / "ca.pem")
    with pytest.raises(ConfigError, match=r"node\.toml: not UTF-8 text"):
        config.parse_node_config(where, b"\xff")


def test_coordinator_config_defaults(tmp_path: Path) -> None:
    coordinator = load_coordinator_config(_write(tmp_path, COORDINATOR))
    assert coordinator.listen == "127.0.0.1:7443"
    assert coordinator.registry == tmp_path / "registry.signed"
    assert coordinator.max_message_bytes == 2048
    assert coordinator.max_cells == 1_000_000
    assert coordinator.phase_timeout_ms == 30_000
    assert coordinator.database == tmp_path / "conf" / "coordinator.sqlite"
    assert coordinator.privacy.budget == Budget(Fraction(1, 2), "year")


def test_coordinator_may_listen_on_port_zero(tmp_path: Path) -> None:
    text = 'listen = "127.0.0.1:0"\n' + COORDINATOR
    assert load_coordinator_config(_write(tmp_path, text)).listen == "127.0.0.1:0"


def test_operator_config_accepts_bracketed_ipv6(tmp_path: Path) -> None:
    operator = load_operator_config(_write(tmp_path, OPERATOR))
    assert operator.name == "ops"
    assert operator.coordinator == "[::1]:7443"
    assert operator.tls.certificate == tmp_path / "conf" / "tls.pem"


# ---- Every error names the file and the key ----

NODE_ERRORS = [
    ("missing-member-id", NODE.replace('member_id = "acme"\n', ""), "member_id"),
    ("bad-member-id", NODE.replace('"acme"', '"Acme_Corp"'), "member_id"),
    ("member-id-integer", NODE.replace('"acme"', "7"), "member_id"),
    ("origin-with-space", NODE.replace("scfed.example/fab", "scfed example"), "origin"),
    ("origin-empty", NODE.replace('"scfed.example/fab"', '""'), "origin"),
    ("address-without-port", NODE.replace(":7443", ""), "coordinator"),
    ("address-port-too-big", NODE.replace(":7443", ":70000"), "coordinator"),
    ("address-port-negative", NODE.replace(":7443", ":-1"), "coordinator"),
    ("address-port-letters", NODE.replace(":7443", ":https"), "coordinator"),
    ("address-without-host", NODE.replace("coordinator.fab.scfed:7443", ":7443"), "coordinator"),
    ("missing-keys-table", NODE.split("[keys]", maxsplit=1)[0], "keys.tls_certificate"),
    ("missing-identity-key", NODE.replace('identity_key = "identity.key"\n', ""), "identity_key"),
    ("empty-path", NODE.replace('"tls.key"', '""'), "keys.tls_key"),
    ("keys-not-a-table", NODE.split("[keys]", maxsplit=1)[0] + 'keys = "x"\n', "keys"),
    ("unknown-top-level-key", "colour = 1\n" + NODE, "colour"),
    ("unknown-key-in-table", NODE + 'identity_keys = "typo.key"\n', "keys.identity_keys"),
    ("unknown-table", NODE + "[extras]\nx = 1\n", "extras"),
    ("n-min-too-small", NODE + "[policy]\nmin_n_min = 1\n", "policy.min_n_min"),
    ("n-min-too-big", NODE + "[policy]\nmin_n_min = 1001\n", "policy.min_n_min"),
    ("n-min-string", NODE + '[policy]\nmin_n_min = "3"\n', "policy.min_n_min"),
    ("n-min-boolean", NODE + "[policy]\nmin_n_min = true\n", "policy.min_n_min"),
    ("n-min-float", NODE + "[policy]\nmin_n_min = 3.0\n", "policy.min_n_min"),
    ("max-cells-zero", NODE + "[policy]\nmax_cells = 0\n", "policy.max_cells"),
    ("max-cells-too-big", NODE + "[policy]\nmax_cells = 1000001\n", "policy.max_cells"),
    ("figures-list", NODE + '[data]\nfigures = ["a.csv"]\n', "data.figures"),
    ("database-table", NODE + "[state.database]\npath = 'x'\n", "state.database"),
    ("rho-cap-zero", NODE + "[privacy]\nrho_cap = 0\n", "privacy.rho_cap"),
    ("rho-cap-too-big", NODE + '[privacy]\nrho_cap = "11"\n', "privacy.rho_cap"),
    ("rho-cap-words", NODE + '[privacy]\nrho_cap = "half"\n', "privacy.rho_cap"),
    ("rho-cap-boolean", NODE + "[privacy]\nrho_cap = true\n", "privacy.rho_cap"),
    ("period-unknown", NODE + '[privacy]\nperiod = "week"\n', "privacy.period"),
    ("t-collude-negative", NODE + "[privacy]\nt_collude = -1\n", "privacy.t_collude"),
    ("noise-floor-zero", NODE + "[privacy]\nnoise_floor = 0\n", "privacy.noise_floor"),
    ("delta-too-big", NODE + "[privacy]\ndelta = 0.01\n", "privacy.delta"),
    ("delta-nan", NODE + "[privacy]\ndelta = nan\n", "privacy.delta"),
    ("delta-words", NODE + '[privacy]\ndelta = "tiny"\n', "privacy.delta"),
]

COORDINATOR_ERRORS = [
    ("missing-origin", COORDINATOR.replace('origin = "scfed.example/fab"\n', ""), "origin"),
    ("missing-registry", COORDINATOR.replace('registry = "../registry.signed"\n', ""), "registry"),
    ("listen-malformed", 'listen = "localhost"\n' + COORDINATOR, "listen"),
    ("message-bytes-small", COORDINATOR.replace("2048", "1023"), "limits.max_message_bytes"),
    ("message-bytes-big", COORDINATOR.replace("2048", "268435457"), "limits.max_message_bytes"),
    ("timeout-small", COORDINATOR + "[rounds]\nphase_timeout_ms = 99\n", "rounds.phase_timeout_ms"),
    (
        "timeout-big",
        COORDINATOR + "[rounds]\nphase_timeout_ms = 3600001\n",
        "rounds.phase_timeout_ms",
    ),
    ("unknown-limit", COORDINATOR + "max_rounds = 3\n", "limits.max_rounds"),
    ("rho-cap-negative", COORDINATOR + '[privacy]\nrho_cap = "-1"\n', "privacy.rho_cap"),
    ("node-only-privacy-key", COORDINATOR + "[privacy]\nt_collude = 1\n", "privacy.t_collude"),
    (
        "node-key-in-coordinator",
        COORDINATOR.replace("[keys]\n", '[keys]\nidentity_key = "i.key"\n'),
        "keys.identity_key",
    ),
]

OPERATOR_ERRORS = [
    ("bad-name", OPERATOR.replace('"ops"', '"-ops"'), "name"),
    ("missing-ca", OPERATOR.replace('ca_certificate = "ca.pem"\n', ""), "keys.ca_certificate"),
    ("server-name-space", OPERATOR.replace('"coordinator.fab.scfed"', '"a b"'), "server_name"),
    ("identity-key-not-allowed", OPERATOR + 'identity_key = "i.key"\n', "keys.identity_key"),
]


def _check_names_file_and_key(loader: Loader, tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    message = _error(loader, path)
    assert str(path) in message
    assert key in message


@pytest.mark.parametrize(
    ("text", "key"), [c[1:] for c in NODE_ERRORS], ids=[c[0] for c in NODE_ERRORS]
)
def test_node_config_error_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    _check_names_file_and_key(load_node_config, tmp_path, text, key)


@pytest.mark.parametrize(
    ("text", "key"), [c[1:] for c in COORDINATOR_ERRORS], ids=[c[0] for c in COORDINATOR_ERRORS]
)
def test_coordinator_config_error_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    _check_names_file_and_key(load_coordinator_config, tmp_path, text, key)


@pytest.mark.parametrize(
    ("text", "key"), [c[1:] for c in OPERATOR_ERRORS], ids=[c[0] for c in OPERATOR_ERRORS]
)
def test_operator_config_error_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    _check_names_file_and_key(load_operator_config, tmp_path, text, key)


def test_bool_is_not_an_integer_message(tmp_path: Path) -> None:
    message = _error(load_node_config, _write(tmp_path, NODE + "[policy]\nmax_cells = false\n"))
    assert "must be an integer, not a boolean" in message


def test_unknown_key_lists_the_allowed_keys(tmp_path: Path) -> None:
    message = _error(load_operator_config, _write(tmp_path, OPERATOR + "colour = 1\n"))
    assert "unknown key" in message
    assert "ca_certificate, tls_certificate, tls_key" in message


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    message = _error(load_node_config, path)
    assert str(path) in message
    assert "cannot read" in message


def test_invalid_toml_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, NODE.replace('member_id = "acme"', "member_id = "))
    message = _error(load_node_config, path)
    assert str(path) in message
    assert "invalid TOML" in message
    assert "line 2" in message


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(NODE.replace("acme", "acm\xe9").encode("latin-1"))
    message = _error(load_node_config, path)
    assert str(path) in message
    assert "UTF-8" in message


# ---- Private key files ----


def test_read_private_key_file_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_private(path, b"secret")
    assert read_private_key_file(path) == b"secret"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620, 0o602])
def test_read_private_key_file_refuses_group_or_world_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"secret")
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600") as caught:
        read_private_key_file(path)
    assert str(path) in str(caught.value)
    assert f"{mode:04o}" in str(caught.value)


def test_read_private_key_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(ConfigError, match="cannot read private key") as caught:
        read_private_key_file(path)
    assert str(path) in str(caught.value)


# ---- Governance key and registry files ----


def test_read_governance_key(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    path = tmp_path / "governance.pub"
    path.write_text(pki.ed25519_public_text(key) + "\n", encoding="ascii")
    assert read_governance_key(path) == pki.ed25519_public_raw(key)


@pytest.mark.parametrize(
    "content",
    [b"", b"ed25519:", b"ssh-ed25519 AAAA", b"ed25519:" + b"A" * 40, b"\xff\xfe"],
    ids=["empty", "no-key", "wrong-prefix", "short", "not-ascii"],
)
def test_read_governance_key_rejects_bad_content(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "governance.pub"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read_governance_key(path)
    assert str(path) in str(caught.value)


def _registry_file(tmp_path: Path, origin: str = "scfed.example/fab") -> tuple[Path, bytes]:
    governance = Ed25519PrivateKey.generate()
    registry = Registry(origin, 4, bytes(32), (), ())
    path = tmp_path / "registry.signed"
    path.write_bytes(seal_registry(registry, governance).to_bytes())
    return path, pki.ed25519_public_raw(governance.public_key())


def test_read_registry_file(tmp_path: Path) -> None:
    path, key = _registry_file(tmp_path)
    registry, envelope = read_registry_file(path, "scfed.example/fab", key)
    assert registry.version == 4
    assert envelope.signer == "governance"
    assert path.read_bytes() == envelope.to_bytes()


def test_read_registry_file_wrong_key_names_file(tmp_path: Path) -> None:
    path, _ = _registry_file(tmp_path)
    other = pki.ed25519_public_raw(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(VerificationError) as caught:
        read_registry_file(path, "scfed.example/fab", other)
    assert str(path) in str(caught.value)


def test_read_registry_file_garbage_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.signed"
    path.write_bytes(b"\x0a\xff\xff")
    with pytest.raises(ConfigError, match="not a valid signed registry") as caught:
        read_registry_file(path, "scfed.example/fab", bytes(32))
    assert str(path) in str(caught.value)


# ---- Atomic writes ----


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_bounded_read_takes_the_limit_and_refuses_one_byte_more(tmp_path: Path) -> None:
    path = tmp_path / "note"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10) == b"x" * 10
    assert read_bounded(path, 9) is None
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "absent", 10)


def test_write_private_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    previous = os.umask(0)
    try:
        write_private(path, b"new")
    finally:
        os.umask(previous)
    assert path.read_bytes() == b"new"
    assert _mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


def test_write_public_is_world_readable_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    previous = os.umask(0o077)
    try:
        write_public(path, b"cert")
    finally:
        os.umask(previous)
    assert path.read_bytes() == b"cert"
    assert _mode(path) == 0o644


def test_write_into_missing_folder_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "x.pem"
    with pytest.raises(ConfigError, match="cannot write") as caught:
        write_public(path, b"x")
    assert str(path) in str(caught.value)


def test_failed_replace_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "keep").write_bytes(b"")
    with pytest.raises(ConfigError):
        write_private(target, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]


# ---- Single-value checks reused by the command line ----


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (config.check_name, "UPPER"),
        (config.check_name, ""),
        (config.check_origin, "a" * 201),
        (config.check_origin, "caf\xe9"),
        (config.check_address, "host:"),
        (config.check_address, "host:65536"),
        (config.check_address, "host:-1"),
        (config.check_address, "host:+1"),
        (config.check_address, "host:\u0661"),
    ],
)
def test_value_checks_reject(check: Callable[[str], str], value: str) -> None:
    with pytest.raises(ConfigError):
        check(value)


def test_value_checks_accept() -> None:
    assert config.check_origin("a" * 200) == "a" * 200
    assert config.check_address("10.0.0.1:1") == "10.0.0.1:1"
    assert config.check_address("0.0.0.0:0") == "0.0.0.0:0"
    assert config.check_address("[::1]:65535") == "[::1]:65535"
    assert config.check_name("a-1") == "a-1"
