"""Daemons started as child processes, for the demo and the integration tests. Edge code.

Every process is stopped (SIGTERM, then SIGKILL) when the context ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from scfed.errors import ScfedError

START_TIMEOUT_S = 30.0


@dataclass
class Processes:
    """The daemons the demo started, stopped for sure on exit."""

    logs: Path
    running: dict[str, subprocess.Popen[bytes]]

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "scfed", *args], stdout=log, stderr=subprocess.STDOUT
            )
        self.running[name] = process
        return process

    def kill(self, name: str) -> None:
        self.running[name].kill()

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self.running.values():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_text(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def processes(logs: Path) -> Iterator[Processes]:
    logs.mkdir(parents=True, exist_ok=True)
    started = Processes(logs, {})
    try:
        yield started
    finally:
        started.stop_all()


def wait_for(what: str, check: Callable[[], bool], procs: Processes, name: str) -> None:
    """Poll ``check`` until it holds; fail if process ``name`` dies or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        if procs.running[name].poll() is not None:
            raise ScfedError(f"{name} exited early:\n{procs.log_text(name)[-2000:]}")
        time.sleep(0.05)
    raise ScfedError(f"timed out waiting for {what}")


def start_coordinator(directory: Path, procs: Processes) -> int:
    """Start the federation's coordinator on a free loopback port; the port."""
    port_file = directory / "coordinator" / "port"
    config = directory / "coordinator" / "coordinator.toml"
    procs.start(
        "coordinator", "coordinator", "serve", "--config", str(config),
        "--listen", "127.0.0.1:0", "--port-file", str(port_file),
    )  # fmt: skip
    wait_for("the coordinator to listen", port_file.exists, procs, "coordinator")
    return int(port_file.read_text().strip())
