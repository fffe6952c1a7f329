"""Generated N-rule policies for ``benchmarks/decide.py``, each with its hand-written Python twin.

Policy of size N: N tools ``tool_i (amount: decimal, region: str)`` and one targeted rule per
tool (``allow tool "tool_i" when args.amount <= LIMIT_i and args.region in regions``), plus a
few untargeted or tag-targeted rules that apply to every call, so the evaluator cannot
short-cut the whole decision:

- ``deny when agent.tenant != user.tenant`` (cross-tenant calls);
- ``budget cost_usd <= 2.00 per session`` (session spend cap, with the request's estimate);
- ``deny tool tagged destructive unless "sre" in user.roles`` (every 10th tool is destructive);
- ``require approval from "finance" tool tagged money when args.amount > 1000``
  (every 4th tool is tagged money).

The Python twin is what a developer would write for the same decisions: a dict from tool
name to its limit and flags, the same checks in one function, dict in, effect out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

Request = dict[str, Any]
Decider = Callable[[Request], str]

REGIONS = ("eu", "us")
APPROVAL_OVER = 1000
BUDGET_USD = 2


def limit(i: int) -> int:
    """Tool i's amount limit: spread over 600..4999 so some money tools can need approval."""
    return 600 + (i * 2741) % 4400


def is_destructive(i: int) -> bool:
    return i % 10 == 7


def is_money(i: int) -> bool:
    return i % 4 == 0


def tags(i: int) -> list[str]:
    out = ["destructive" if is_destructive(i) else "write"]
    if is_money(i):
        out.append("money")
    return out


def charter_source(n: int) -> str:
    """The policy text a Charter user would write for N tools."""
    lines = [
        f'policy "decide-{n}" version "1.0.0"',
        "",
        "default deny",
        "",
        "const regions = {" + ", ".join(f'"{r}"' for r in REGIONS) + "}",
        "",
    ]
    lines += [
        f'tool "tool_{i}" (amount: decimal, region: str) tags {", ".join(tags(i))}'
        for i in range(n)
    ]
    lines.append("")
    lines += [
        f'allow tool "tool_{i}" when args.amount <= {limit(i)} and args.region in regions'
        for i in range(n)
    ]
    lines += [
        "",
        'deny when agent.tenant != user.tenant because "cross-tenant call"',
        f'budget cost_usd <= {BUDGET_USD}.00 per session because "session budget reached"',
        'deny tool tagged destructive unless "sre" in user.roles',
        '  because "destructive tools need an SRE"',
        f'require approval from "finance" tool tagged money when args.amount > {APPROVAL_OVER}',
        '  because "large amounts need finance sign-off"',
        "",
    ]
    return "\n".join(lines)


def python_twin(n: int) -> Decider:
    """The same decisions hand-written: one dict lookup, then the same checks in order."""
    # name -> (limit, destructive, money)
    tools: dict[str, tuple[int, bool, bool]] = {
        f"tool_{i}": (limit(i), is_destructive(i), is_money(i)) for i in range(n)
    }
    regions = frozenset(REGIONS)

    def decide(request: Request) -> str:
        tool = request["tool"]
        spec = tools.get(tool if isinstance(tool, str) else tool["name"])
        user = request["user"]
        estimate = request.get("estimate", {}).get("cost_usd", 0)
        if (
            request["agent"]["tenant"] != user["tenant"]
            or request["session"]["cost_usd"] + estimate > BUDGET_USD
        ):
            return "deny"
        if spec is None:
            return "deny"
        max_amount, destructive, money = spec
        args = request["args"]
        amount = args["amount"]
        if destructive and "sre" not in user["roles"]:
            return "deny"
        if amount > max_amount or args["region"] not in regions:
            return "deny"
        if money and amount > APPROVAL_OVER:
            return "require_approval"
        return "allow"

    return decide


def _request(
    tool: str | dict[str, str],
    amount: float,
    region: str = "eu",
    *,
    roles: tuple[str, ...] = ("agent",),
    user_tenant: str = "acme",
    cost_usd: float = 0.5,
    estimate: float | None = None,
) -> Request:
    request: Request = {
        "stage": "tool_call",
        "agent": {"id": "bot-1", "team": "ops", "tenant": "acme", "env": "prod"},
        "user": {"id": "u-1", "roles": list(roles), "tenant": user_tenant},
        "session": {"id": "s-1", "cost_usd": cost_usd, "tool_calls": 3},
        "tool": tool,
        "args": {"amount": amount, "region": region},
    }
    if estimate is not None:
        request["estimate"] = {"cost_usd": estimate}
    return request


def _find(n: int, want: Callable[[int], bool], start: int) -> int | None:
    for offset in range(n):
        i = (start + offset) % n
        if want(i):
            return i
    return None


def requests(n: int) -> list[Request]:
    """A fixed-size mix (same count at every size) hitting every rule and every effect.

    Plain tools are picked across the whole range (first, last, seeded random), so a large
    policy is not only exercised through its first few rules.
    """
    rng = random.Random(n)
    picks = [0, n - 1, *(rng.randrange(n) for _ in range(4))]
    out: list[Request] = []
    for i in picks:
        name = f"tool_{i}"
        out.append(_request(name, limit(i) // 2, "eu", roles=("sre",)))
        out.append(_request(name, limit(i), "us", roles=("sre",)))  # exactly at the limit
        out.append(_request(name, limit(i) + 1, "eu", roles=("sre",)))
        out.append(_request(name, 10, "apac", roles=("sre",)))
    destructive = _find(n, lambda i: is_destructive(i) and not is_money(i), n // 2)
    if destructive is not None:
        name = f"tool_{destructive}"
        out.append(_request(name, 10))  # no sre role
        out.append(_request(name, 10, roles=("agent", "sre")))
    money = _find(n, lambda i: is_money(i) and not is_destructive(i) and limit(i) > 1500, n // 3)
    if money is not None:
        name = f"tool_{money}"
        out.append(_request(name, APPROVAL_OVER + 1.5, roles=("sre",)))
        out.append(_request(name, APPROVAL_OVER, roles=("sre",)))
    out.append(_request(f"tool_{n}", 1, roles=("sre",)))  # undeclared tool: default deny
    out.append(_request("tool_0", 1, roles=("sre",), user_tenant="globex"))
    out.append(_request("tool_0", 1, roles=("sre",), cost_usd=1.75, estimate=0.5))
    out.append(_request("tool_0", 1, roles=("sre",), cost_usd=1.5, estimate=0.5))  # at budget
    out.append(_request({"name": "tool_0"}, 1, roles=("sre",)))  # tool as an object
    return out
