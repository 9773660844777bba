"""The auditor takes the budget cap and the catalogue from the governance-signed policy."""

from __future__ import annotations

from auditor.verify import audit
from scfed.policy import seal_policy
from scfed.wire.policy import Policy
from tests.unit._audit_support import checkpoint, honest_log


def _with_policy(rho_cap: str) -> list[bytes]:
    log = honest_log()
    policy = Policy(log.origin, 1, "2026.1", rho_cap, "year", ())
    signed = seal_policy(policy, log.fed.governance_key).to_bytes()
    return [log.leaves[0], signed, *log.leaves[1:]]  # registry, policy, then the rounds


def _budget(leaves: list[bytes]) -> tuple[bool, str]:
    log = honest_log()
    report = audit(
        leaves,
        checkpoint=checkpoint(log.fed, leaves),
        governance_key=log.governance_key,
        origin=log.origin,
    )
    (finding,) = [f for f in report.findings if f.check == "budget.cap"]
    return finding.passed, finding.detail


def test_the_signed_policys_cap_is_the_one_audited() -> None:
    passed, detail = _budget(_with_policy("10"))
    assert passed, detail
    assert "cap 10 per year" in detail
    passed, detail = _budget(_with_policy("1/1000000"))
    assert not passed
    assert "over the cap" in detail


def test_a_policy_not_signed_by_governance_is_refused() -> None:
    log = honest_log()
    forged = seal_policy(Policy(log.origin, 1, "2026.1", "10", "year", ()), log.fed.coordinator_key)
    leaves = [log.leaves[0], forged.to_bytes(), *log.leaves[1:]]
    report = audit(
        leaves,
        checkpoint=checkpoint(log.fed, leaves),
        governance_key=log.governance_key,
        origin=log.origin,
    )
    assert not report.ok
    assert any(f.check == "log.signatures" and not f.passed and "policy" in f.detail
               for f in report.findings)  # fmt: skip
