"""The auditor: verifies a federation's protocol log and reports what it found.

``audit`` (pure) checks a log's leaves and checkpoints against the governance key alone;
``text`` and ``to_json`` render the report; ``fetch_log`` reads a log from the coordinator's
read-only log service (network I/O, imported from ``auditor.fetch`` only when needed).
"""

from __future__ import annotations

from auditor.model import AuditReport, ChargeAudit, Finding, Parameters, RoundAudit
from auditor.report import text, to_json
from auditor.verify import audit

__all__ = [
    "AuditReport",
    "ChargeAudit",
    "Finding",
    "Parameters",
    "RoundAudit",
    "audit",
    "text",
    "to_json",
]
