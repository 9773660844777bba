"""``scfed demo`` as a newcomer runs it: honest noisy figures from a catalogue round, the
disclosure rules applied, the audit passed, and no process left behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_with_a_dropout_prints_honest_noisy_figures(tmp_path: Path) -> None:
    folder = tmp_path / "fed"
    done = subprocess.run(
        [sys.executable, "-m", "scfed", "demo", "--dropouts", "1",
         "--dir", str(folder)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # The victim dies right after its key shares are accepted; whether it managed to send
    # its masked input first (a survivor that vanishes before unmasking) is a race, and
    # either way the intervals must cover the plaintext sums of those the round counted.
    covered = re.search(r"(\d+) of (\d+) published intervals cover", done.stdout)
    assert covered is not None, done.stdout
    missed = int(covered.group(2)) - int(covered.group(1))
    assert int(covered.group(2)) > 0, done.stdout
    assert missed <= 1 + 0.25 * int(covered.group(2)), done.stdout
    assert re.search(r"rho 0\.\d+ \(epsilon \d", done.stdout), done.stdout
    # The Kyushu legacy-node squeeze shows from the noisy cells alone, and small cells are
    # suppressed with their reason.
    assert re.search(r"JP-Kyushu .* light: red", done.stdout), done.stdout
    assert "estimated contributors below 3" in done.stdout, done.stdout
    assert "audit passed" in done.stdout, done.stdout
    assert re.search(r"killed \S+ after it shared its keys", done.stdout), done.stdout
    # A member's node received the release, and the demo says where it all is kept.
    member = re.search(r"open the dashboard as (\S+): scfed dashboard --config (\S+)", done.stdout)
    assert member is not None, done.stdout
    assert Path(member.group(2)) == folder / "members" / member.group(1) / "node.toml"
    assert f"(the release as {member.group(1)} received it)" in done.stdout
    assert (folder / "results.json").exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(folder)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == "", f"processes left behind: {leftovers.stdout}"


def test_demo_refuses_to_unmask_when_too_few_remain(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scfed", "demo", "--nodes", "4", "--dropouts", "2",
         "--dir", str(tmp_path / "fed")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "aborted without unmasking anything" in done.stdout, done.stdout
