"""An audit report as text for people and as JSON for programs. Pure.

The text has one block per round (its id, a catalogue round's cadence window, its query and
parameters, how many candidates, survivors and dropped, whether the result recomputed, the
charge, then every failed check with its reason), the log-level findings, and a last line
that says whether the audit passed.
The JSON holds every finding, passed or failed, under stable, sorted keys.
"""

from __future__ import annotations

import dataclasses
import json

from auditor.model import AuditReport, Finding, RoundAudit

PASS, FAIL = "\u2713", "\u2717"


def text(report: AuditReport) -> str:
    """The report as readable lines."""
    lines: list[str] = []
    for entry in report.rounds:
        lines += _round_block(entry)
    lines.append("log")
    lines += [f"  {_mark(f)} {f.check}: {f.detail}" for f in report.findings]
    if report.spent:
        spent = ", ".join(f"{period}: rho {rho}" for period, rho in report.spent)
        lines.append(f"budget spent: {spent}")
    lines.append(_verdict(report))
    return "\n".join(lines)


def _mark(finding: Finding) -> str:
    return PASS if finding.passed else FAIL


def _verdict(report: AuditReport) -> str:
    if report.ok:
        return f"audit passed: {len(report.rounds)} rounds, {report.leaves} leaves"
    return f"AUDIT FAILED: {len(report.problems)} problems"


def _round_block(entry: RoundAudit) -> list[str]:
    lines = [f"round {entry.round_id}"]
    if entry.window:
        lines.append(f"  catalogue release in its {entry.cadence} window {entry.window}")
    p = entry.parameters
    if p is not None:
        lines.append(
            f"  query {entry.query}: {p.dim} cells, t {p.threshold}, n_min {p.n_min}, "
            f"registry version {p.registry_version}"
        )
        lines.append(
            f"  noise: sigma {p.sigma}, t_collude {p.t_collude}, {p.unit} bound {p.bound}, "
            f"grid {p.grid}"
        )
    lines.append(
        f"  candidates {len(entry.candidates)}, survivors {len(entry.survivors)}, "
        f"dropped {len(entry.dropped)}"
    )
    lines.append(f"  outcome: {entry.outcome}{_recomputed(entry)}")
    if entry.charge is not None:
        c = entry.charge
        lines.append(f"  charge: rho {c.logged} in period {c.period} (rule: {c.rule or 'none'})")
    passed = sum(f.passed for f in entry.findings)
    lines.append(f"  checks: {passed} passed, {len(entry.failures)} failed")
    lines += [f"  {FAIL} {f.check}: {f.detail}" for f in entry.failures]
    return lines


def _recomputed(entry: RoundAudit) -> str:
    if entry.recomputed is None:
        return ""
    return f"; result recomputed {PASS if entry.recomputed else FAIL}"


def to_json(report: AuditReport) -> str:
    """The whole report, every finding included, as JSON with sorted keys."""
    document = dataclasses.asdict(report)
    document["ok"] = report.ok
    document["problems"] = report.problems
    document["spent"] = dict(report.spent)
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False)
