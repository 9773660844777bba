"""``scfed coordinator schedule``: the next run of each scheduled entry, and the last outcomes.

Reads the coordinator's config, its signed policy and its store, read-only: a running
coordinator may hold them. Edge code.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

#: Past attempts shown.
LAST = 10


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schedule = commands.add_parser(
        "schedule", help="when each catalogue entry runs next by itself, and the last outcomes"
    )
    schedule.add_argument("--config", type=Path, required=True, help="coordinator.toml")
    schedule.set_defaults(func=_schedule)


def _schedule(args: argparse.Namespace) -> int:
    from coordinator.store import read_attempts
    from edge.config import load_coordinator_config, read_governance_key, read_policy_file
    from scfed.schedule import next_run

    config = load_coordinator_config(args.config)
    rules = config.schedule
    history, now = read_attempts(config.database), datetime.now(UTC)
    state = "on" if rules.enabled else f"off ([schedule] enabled = true in {args.config})"
    print(
        f"schedule: {state}; each entry at {rules.at:%H:%M} UTC on the first Monday of its "
        f"window, tried again {rules.retry.total_seconds() / 60:.0f} min after an abort"
    )
    if not config.policy.exists():  # as the daemon runs without one: ad-hoc rounds only
        print(f"{config.policy}: no signed policy installed: no catalogue entry to run")
        names: tuple[str, ...] = ()
    else:
        policy, _ = read_policy_file(
            config.policy, config.origin, read_governance_key(config.governance_key)
        )
        names = rules.entries or tuple(e.name for e in policy.entries)
        print(f"{'entry':<32} {'cadence':<10} {'next run (UTC)':<17} {'week':<11} why")
    for name in names:
        entry = policy.entry(name)
        if entry is None:
            print(f"{name:<32} not in the signed catalogue (policy version {policy.version})")
            continue
        planned = next_run(entry, now, rules, history)
        print(
            f"{name:<32} {entry.cadence:<10} {planned.when:%Y-%m-%d %H:%M}  "
            f"{planned.week.isoformat():<11} {planned.why}"
        )
    print("last outcomes:" if history else "no scheduled run yet")
    for a in history[-LAST:]:
        reason = f": {a.reason}" if a.reason else ""
        print(f"  {a.at:%Y-%m-%d %H:%M}  {a.entry}  {a.window}  {a.outcome}{reason}")
    return 0
