"""Every party of a federation on one machine, for the demo and the tests. Edge code.

The same three-party steps as the README's "Running a federation", run in one go: each
party's folder is made by its own ``init``, its request enrolled by governance, and what
governance issued installed by the party. Only the folders sit side by side::

    DIR/governance/        governance's folder (``scfed federation init``)
    DIR/coordinator/       the coordinator's own folder
    DIR/members/NAME/      one firm's node folder each
    DIR/operators/NAME/    one operator's folder each
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from edge.config import load_coordinator_config
from governance import catalogue as catalogue_file
from governance import federation, install, party
from scfed.enrolment import KIND_COORDINATOR, KIND_OPERATOR
from scfed.wire.policy import Policy

GOVERNANCE = "governance"
COORDINATOR = "coordinator"


def _public(directory: Path) -> Path:
    return directory / GOVERNANCE / federation.PUBLIC


def coordinator_config(directory: Path) -> Path:
    return directory / COORDINATOR / party.CONFIG_FILES[KIND_COORDINATOR]


def _install_registry(directory: Path) -> None:
    config = load_coordinator_config(coordinator_config(directory))
    install.install_registry(config, _public(directory) / federation.REGISTRY_FILE)


def _join(directory: Path, folder: Path, who: party.Who, now: datetime) -> Path:
    """A party's own init, governance's enrolment, the party's install; the folder."""
    request = party.init_party(folder, _public(directory) / "federation.toml", who)
    issued = federation.enroll(directory / GOVERNANCE, request, now, replace=False)
    install.install_issued(who.kind, folder / party.CONFIG_FILES[who.kind], issued.certificate, now)
    _install_registry(directory)
    return folder


def init_federation(  # noqa: PLR0917 (the documented signature)
    directory: Path,
    name: str,
    origin: str | None,
    address: str,
    hosts: Sequence[str],
    now: datetime,
) -> None:
    """Governance's folder and the coordinator's, enrolled, with the first registry."""
    federation.init_federation(directory / GOVERNANCE, name, origin, address, now)
    who = party.Who(KIND_COORDINATOR, federation.COORDINATOR_NAME, hosts=tuple(hosts))
    _join(directory, directory / COORDINATOR, who, now)


def enroll_member(
    directory: Path, name: str, display_name: str | None, group: str | None, now: datetime
) -> Path:
    """A firm's node folder in ``DIR/members/NAME``, enrolled; the folder."""
    return _join(
        directory, directory / "members" / name, party.member(name, display_name, group), now
    )


def enroll_operator(directory: Path, name: str, now: datetime) -> Path:
    """An operator's folder in ``DIR/operators/NAME``, enrolled; the folder."""
    return _join(directory, directory / "operators" / name, party.Who(KIND_OPERATOR, name), now)


def sign_catalogue(directory: Path, catalogue: Path) -> Policy:
    """Governance signs the catalogue; the operator installs it into the coordinator."""
    policy = catalogue_file.sign_catalogue(directory / GOVERNANCE, catalogue)
    config = load_coordinator_config(coordinator_config(directory))
    install.install_policy(config, _public(directory) / federation.POLICY_FILE)
    return policy
