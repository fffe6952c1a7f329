"""Reference agent policy as hand-written Python: the baseline every engine is compared to.

Written the way an agent developer would inline the checks: one function, dict in,
effect string out, same decision procedure as Charter.
"""

from __future__ import annotations

from typing import Any

_TAGS: dict[str, frozenset[str]] = {
    "kb.read": frozenset({"read"}),
    "search.web": frozenset({"read"}),
    "calendar.list": frozenset({"read"}),
    "refund.create": frozenset({"write", "money"}),
    "files.delete": frozenset({"destructive"}),
    "db.drop": frozenset({"destructive"}),
    "crm.export": frozenset({"export"}),
    "email.send": frozenset({"external"}),
    "deploy.run": frozenset({"prod"}),
    "admin.reset_user": frozenset({"admin"}),
}
_NO_TAGS: frozenset[str] = frozenset()
_EU_REGIONS = frozenset({"eu-west-1", "eu-central-1"})
_REFUND_CURRENCIES = frozenset({"USD", "EUR", "GBP"})
_SENSITIVE_TABLES = frozenset({"payments", "credentials"})


def _one_segment(name: str, prefix: str) -> bool:
    # Charter's `*` stays within one dot-separated segment.
    return name.startswith(prefix) and "." not in name[len(prefix) :]


def decide(request: dict[str, Any]) -> str:
    tool = request["tool"]
    name: str = tool if isinstance(tool, str) else tool["name"]
    tags = _TAGS.get(name, _NO_TAGS)
    agent = request["agent"]
    user = request["user"]
    session = request["session"]
    args = request.get("args", {})

    estimate = request.get("estimate", {}).get("cost_usd", 0)
    if (
        (agent["env"] == "prod" and agent["team"] == "experimental")
        or agent["tenant"] != user["tenant"]
        or session["cost_usd"] + estimate > 2
    ):
        return "deny"
    if name == "refund.create" and (
        args["amount"] > 5000 or args["currency"] not in _REFUND_CURRENCIES
    ):
        return "deny"
    if "destructive" in tags and "sre" not in user["roles"]:
        return "deny"
    if name == "db.drop" and args["table"].startswith("prod_"):
        return "deny"
    if "export" in tags and args["region"] not in _EU_REGIONS:
        return "deny"
    if name == "crm.export" and args["table"] in _SENSITIVE_TABLES:
        return "deny"
    if name == "email.send" and not args["to"].endswith("@example.com"):
        return "deny"

    allowed = (
        _one_segment(name, "kb.")
        or _one_segment(name, "search.")
        or "read" in tags
        or (name == "refund.create" and agent["team"] == "support")
        or "destructive" in tags
        or name in ("crm.export", "email.send", "deploy.run")
        or (_one_segment(name, "admin.") and "admin" in user["roles"])
    )
    if not allowed:
        return "deny"

    if (
        (name == "refund.create" and args["amount"] > 100)
        or ("prod" in tags and agent["env"] == "prod")
        or session["consecutive_tool_calls"] > 5
    ):
        return "require_approval"
    return "allow"
