"""Reference agent policy as CEL rules: the same decisions as policy.agentpolicy.

CEL has no notion of a policy, so the rules are grouped by effect and the adapter
(benchmarks/engines/cel_common.py) combines them with Charter's decision procedure.
Variables: ``tool`` (the tool name) and the request sections ``agent user session args
estimate`` (absent sections are bound to empty maps). Money fields are doubles.
Tags are spelled out as the declared tools carrying them, as a CEL author would.
"""

from __future__ import annotations

from benchmarks.engines.cel_common import CelPolicy
from benchmarks.reference import DECIMAL_FIELDS

_DESTRUCTIVE = '["files.delete", "db.drop"]'
_READ = '["kb.read", "search.web", "calendar.list"]'

ALLOW = (
    r'tool.matches("^(kb|search)\\.[^.]*$")',
    f"tool in {_READ}",
    'tool == "refund.create" && agent.team == "support"',
    f"tool in {_DESTRUCTIVE}",
    'tool == "crm.export"',
    'tool == "email.send"',
    'tool == "deploy.run"',
    r'tool.matches("^admin\\.[^.]*$") && "admin" in user.roles',
)

APPROVAL = (
    'tool == "refund.create" && args.amount > 100.0',
    'tool == "deploy.run" && agent.env == "prod"',
    "session.consecutive_tool_calls > 5",
)

DENY = (
    'tool == "refund.create" && args.amount > 5000.0',
    'tool == "refund.create" && !(args.currency in ["USD", "EUR", "GBP"])',
    f'tool in {_DESTRUCTIVE} && !("sre" in user.roles)',
    'tool == "db.drop" && args.table.startsWith("prod_")',
    'tool == "crm.export" && !(args.region in ["eu-west-1", "eu-central-1"])',
    'tool == "crm.export" && args.table in ["payments", "credentials"]',
    'tool == "email.send" && !args.to.endsWith("@example.com")',
    'agent.env == "prod" && agent.team == "experimental"',
    "agent.tenant != user.tenant",
    "session.cost_usd + (has(estimate.cost_usd) ? estimate.cost_usd : 0.0) > 2.0",
)


POLICY = CelPolicy(allow=ALLOW, approval=APPROVAL, deny=DENY, decimal_fields=DECIMAL_FIELDS)
