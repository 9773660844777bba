"""The image built and the compose federation run: setup, a coordinator, three nodes and an
operator's catalogue round, each in its own container. Needs a Docker engine and the compose
plugin; without them the test skips, saying which is missing (the files themselves are
checked everywhere by ``tests/unit/test_deploy.py``)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 1800
ROUND_TIMEOUT_S = 600


def _docker() -> str:
    """The docker client, once the engine and the compose plugin answer; else skip."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60, check=False)
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no reason given"])[-1]
        pytest.skip(f"no Docker engine reachable (docker info failed: {reason})")
    compose = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    if compose.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    return docker


def test_the_compose_federation_runs_a_round() -> None:
    docker = _docker()
    project = f"scfed-test-{secrets.token_hex(4)}"
    compose = [docker, "compose", "-f", str(ROOT / "compose.yaml"), "-p", project]
    try:
        built = subprocess.run(
            [*compose, "build"], cwd=ROOT, capture_output=True, text=True,
            timeout=BUILD_TIMEOUT_S, check=False,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr[-3000:]
        user = subprocess.run(
            [docker, "run", "--rm", "--entrypoint", "id", "scfed:local", "-u"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert user.stdout.strip() == "10001", user.stdout + user.stderr
        ran = subprocess.run(
            [*compose, "run", "--rm", "operator"], cwd=ROOT, capture_output=True, text=True,
            timeout=ROUND_TIMEOUT_S, check=False,
        )  # fmt: skip
        logs = subprocess.run(
            [*compose, "logs", "--no-color"], cwd=ROOT, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
    finally:
        subprocess.run(
            [*compose, "down", "--volumes", "--remove-orphans"], cwd=ROOT,
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:] + logs.stdout[-3000:]
    assert re.search(r"^round [0-9a-f]{32}: round\.result$", ran.stdout, re.MULTILINE), ran.stdout
    assert "light:" in ran.stdout, ran.stdout  # scfed coordinator results showed the release
