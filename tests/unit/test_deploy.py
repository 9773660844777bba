"""The deployment files: the image, the compose federation and the systemd units.

Everywhere: ``compose.yaml``'s structure and every scfed command line in it, the
``Dockerfile``'s user, entry point and what it copies, and each systemd unit's hardening and
command line, parsed against the real ``scfed`` parser. Where the tools are installed, also
``docker compose config`` and ``systemd-analyze verify``. Running the compose federation needs
a Docker engine: ``tests/integration/test_container.py``.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from scfed.cli import build_parser
from tools import demo_data

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
UNITS = ROOT / "deploy" / "systemd"
#: What ``scfed demo --setup-only --nodes 3`` makes, and compose.yaml runs.
MEMBERS = sorted(f.name for f in demo_data.FIRMS[:3])
SECRETS = re.compile(r"\.(pem|key|request|signed|next|sqlite|lock)$|\.toml$|before-restore")


def _parses(argv: list[str]) -> None:
    """The scfed command line ``argv`` (without ``scfed``) parses to a command."""
    args = build_parser().parse_args(argv)
    assert callable(args.func), argv


def _scfed_commands(script: str) -> list[list[str]]:
    """The argument lists of every ``scfed`` command in a shell script, redirections off."""
    commands = []
    for part in re.split(r"&&|\|\||;|\|", script):
        words = shlex.split(part)
        if "scfed" in words:
            words = words[words.index("scfed") + 1 :]
            commands.append([w for w in words if not re.match(r"^\d*>", w)])
    return commands


# ---- compose.yaml ----


def _services() -> dict[str, dict[str, object]]:
    """Service -> its ``command``, ``entrypoint`` (None: the image's) and ``depends_on``.

    With PyYAML installed, compose.yaml is parsed as YAML (anchors merged); without it, the
    file's own plain layout is read line by line: services at two spaces, their keys at four,
    exec-form commands written as JSON arrays (valid YAML flow sequences).
    """
    text = COMPOSE.read_text(encoding="utf-8")
    if importlib.util.find_spec("yaml") is not None:
        import yaml  # type: ignore[import-untyped]

        loaded = yaml.safe_load(text)["services"]
        return {
            name: {
                "command": body["command"],
                "entrypoint": body.get("entrypoint"),
                "depends_on": set(body.get("depends_on", {})),
            }
            for name, body in loaded.items()
        }
    return _services_by_lines(text)


def _services_by_lines(text: str) -> dict[str, dict[str, object]]:
    block = text.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    services: dict[str, dict[str, object]] = {}
    current: dict[str, object] = {}
    in_depends = False
    for line in block.splitlines():
        if m := re.match(r"^  ([a-z][\w-]*):$", line):
            current = services[m.group(1)] = {"entrypoint": None, "depends_on": set()}
        elif m := re.match(r"^    (command|entrypoint): (\[.*\])$", line):
            current[m.group(1)] = json.loads(m.group(2))
        elif m := re.match(r"^    ([\w-]+):", line):
            in_depends = m.group(1) == "depends_on"
        elif in_depends and (m := re.match(r"^      ([\w-]+):$", line)):
            depends = current["depends_on"]
            assert isinstance(depends, set)
            depends.add(m.group(1))
    return services


def _commands(service: dict[str, object]) -> list[list[str]]:
    command = service["command"]
    assert isinstance(command, list), service
    if service["entrypoint"] is None:
        return [[str(word) for word in command]]  # the image's entry point: scfed
    assert service["entrypoint"] == ["sh", "-c"], service
    return _scfed_commands(str(command[0]).replace("$$", "$"))


def test_compose_runs_a_coordinator_three_nodes_setup_and_an_operator() -> None:
    services = _services()
    nodes = {f"node-{name}" for name in MEMBERS}
    assert set(services) == {"setup", "coordinator", "operator"} | nodes
    assert services["coordinator"]["depends_on"] == {"setup"}
    assert services["operator"]["depends_on"] == nodes
    (setup,) = _commands(services["setup"])
    assert setup == ["demo", "--setup-only", "--nodes", "3", "--dir", "/fed"]
    (serve,) = _commands(services["coordinator"])
    assert serve[:2] == ["coordinator", "serve"]
    assert serve[-2:] == ["--listen", "0.0.0.0:7443"]
    for name in MEMBERS:
        (node,) = _commands(services[f"node-{name}"])
        assert services[f"node-{name}"]["depends_on"] == {"coordinator"}
        assert node == [
            "node", "serve", "--config", f"/fed/members/{name}/node.toml",
            "--coordinator", "coordinator:7443",
        ]  # fmt: skip
    operator = _commands(services["operator"])
    assert [c[:3] for c in operator] == [
        ["coordinator", "status", "--config"],
        ["coordinator", "round", "start"],
        ["coordinator", "results", "--config"],
    ]
    assert f"--entry {demo_data.ENTRY}" in " ".join(operator[1])


def test_every_scfed_command_in_compose_parses() -> None:
    commands = [c for service in _services().values() for c in _commands(service)]
    assert len(commands) == 8
    for command in commands:
        _parses(command)


def test_compose_runs_unprivileged_from_the_local_build() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "  build: .\n" in text
    assert "  image: scfed:local\n" in text
    assert "  read_only: true\n" in text
    assert "  cap_drop: [ALL]\n" in text
    assert '"no-new-privileges:true"' in text
    assert "privileged" not in text.replace("no-new-privileges", "")
    assert not re.search(r"^\s*user:", text, flags=re.MULTILINE)  # the image's: scfed
    assert "\nvolumes:\n  federation:\n" in text


def _compose_plugin() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return docker if version.returncode == 0 else None


def test_docker_compose_accepts_the_file() -> None:
    docker = _compose_plugin()
    if docker is None:
        pytest.skip("the docker compose plugin is not installed; the structure checks ran")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# ---- Dockerfile and .dockerignore ----


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_runs_as_its_own_user_with_scfed_as_entry_point() -> None:
    steps = _instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    kinds = [kind for kind, _ in steps]
    users = [value for kind, value in steps if kind == "USER"]
    assert users == ["scfed"]
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k in {"RUN", "COPY"})
    runs = " ".join(value for kind, value in steps if kind == "RUN")
    assert "useradd --system --uid 10001" in runs
    assert "pip install --no-cache-dir ." in runs
    assert ("ENTRYPOINT", '["scfed"]') in steps
    assert any(kind == "VOLUME" for kind in kinds)
    for kind, value in steps:
        if kind in {"ENV", "ARG"}:
            assert not re.search(r"PASSWORD|SECRET|TOKEN|_KEY", value, flags=re.IGNORECASE)


def test_the_image_copies_the_packages_and_no_secret() -> None:
    copied = [value.split()[0] for kind, value in _instructions() if kind == "COPY"]
    sources = set(copied[1:])
    assert _instructions()[[k for k, _ in _instructions()].index("COPY")][1] == (
        "pyproject.toml README.md ./"
    )
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert sources == packages  # every package the wheel needs, and nothing else
    for package in sorted(sources):
        for path in (ROOT / package).rglob("*"):
            if "__pycache__" not in path.parts:
                assert not SECRETS.search(path.name), f"{path} would go into the image"


def test_dockerignore_keeps_state_keys_and_tools_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines())
    for pattern in (".git", ".venv", "tests", "**/*.pem", "**/*.key", "**/*.sqlite", "**/*.toml"):
        assert pattern in ignored
    assert "!pyproject.toml" in ignored


# ---- systemd units ----


def _unit(path: Path, instance: str = "") -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8").replace("%i", instance))
    return parser


HARDENING = {
    "User": "scfed",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "SystemCallFilter": "@system-service",
    "UMask": "0077",
}


@pytest.mark.parametrize(
    ("unit", "role"),
    [("scfed-node.service", "node"), ("scfed-coordinator.service", "coordinator")],
)
def test_a_daemon_unit_is_hardened_and_runs_a_real_command(unit: str, role: str) -> None:
    service = _unit(UNITS / unit)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, key
    assert service["Restart"] == "on-failure"
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == "/opt/scfed/venv/bin/scfed"
    assert argv[1:3] == [role, "serve"]
    _parses(argv[1:])
    config = Path(argv[argv.index("--config") + 1])
    assert service["ReadWritePaths"] == str(config.parent) == f"/var/lib/scfed/{role}"
    assert service["StateDirectory"] == f"scfed/{role}"


@pytest.mark.parametrize("role", ["node", "coordinator"])
def test_the_backup_unit_backs_up_either_daemon(role: str) -> None:
    service = _unit(UNITS / "scfed-backup@.service", role)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, key
    argv = shlex.split(service["ExecStart"])
    _parses(argv[1:])
    assert argv[1:3] == [role, "backup"]
    assert argv[argv.index("--config") + 1] == f"/var/lib/scfed/{role}/{role}.toml"
    target = Path(argv[argv.index("--to") + 1])
    assert service["ReadWritePaths"].split() == [f"/var/lib/scfed/{role}", str(target.parent)]
    assert _unit(UNITS / "scfed-backup@.timer", role)["Timer"]["OnCalendar"] == "daily"


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the units were parsed instead")
    # verify wants ExecStart's program to exist: the scfed of this environment stands in.
    scfed = Path(sys.executable).parent / "scfed"
    names = {
        "scfed-node.service": "scfed-node.service",
        "scfed-coordinator.service": "scfed-coordinator.service",
        "scfed-backup@.service": "scfed-backup@node.service",
        "scfed-backup@.timer": "scfed-backup@node.timer",
    }
    for source, name in names.items():
        text = (UNITS / source).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/opt/scfed/venv/bin/scfed", str(scfed)))
    done = subprocess.run(
        [analyze, "verify", *sorted(str(tmp_path / name) for name in names.values())],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "scfed" not in done.stderr, done.stderr
