"""Generated N-rule policies over distinct tools, the same semantics in every engine.

Rule i: ``allow tool "tool_i" when args.amount <= i``; everything else is denied by default.
A charter user would write exactly this; each peer gets the idiomatic equivalent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# 20 is there for the target "10,000 rules within 1.5x of the 20-rule time".
SIZES = (10, 20, 100, 1_000, 10_000)
QUICK_SIZES = (10, 20, 100)


def requests(n: int) -> list[dict[str, Any]]:
    """First, middle and last tool at and just over their limit, plus an unknown tool."""
    cases: list[dict[str, Any]] = []
    for index in sorted({0, n // 2, n - 1}):
        for amount, expect in ((index, "allow"), (index + 1, "deny")):
            cases.append(_case(f"tool_{index}", amount, expect))
    cases.append(_case(f"tool_{n}", 0, "deny"))
    return cases


def _case(tool: str, amount: int, expect: str) -> dict[str, Any]:
    request = {"tool": tool, "agent": {"id": "bot-1"}, "args": {"amount": amount}}
    return {"name": f"{tool} amount={amount}", "expect": expect, "request": request}


def charter_source(n: int) -> str:
    rules = "\n".join(f'allow tool "tool_{i}" when args.amount <= {i}' for i in range(n))
    return f'policy "scale-{n}"\n\ndefault deny\n\n{rules}\n'


def cedar_source(n: int) -> Any:
    from benchmarks.engines.cedar_engine import CedarSource

    rules = "\n".join(
        f'permit (principal, action, resource == Tool::"tool_{i}") '
        f"when {{ context.args.amount <= {i} }};"
        for i in range(n)
    )
    return CedarSource(policies=rules)


def rego_source(n: int) -> Any:
    from benchmarks.engines.rego_engine import RegoSource

    rules = "\n".join(
        f'allowed if {{ input.tool == "tool_{i}"; input.args.amount <= {i} }}' for i in range(n)
    )
    module = (
        "package charter.scale\n\nimport rego.v1\n\n"
        'default decision := "deny"\n\ndecision := "allow" if allowed\n\n'
        f"{rules}\n"
    )
    return RegoSource(module, "data.charter.scale.decision")


def cel_source(n: int) -> Any:
    from benchmarks.engines.cel_common import CelPolicy

    return CelPolicy(allow=tuple(f'tool == "tool_{i}" && args.amount <= {i}' for i in range(n)))


def python_source(n: int) -> Callable[[dict[str, Any]], str]:
    # What a programmer writes by hand for one limit per tool: a dict lookup. It is the
    # baseline, so it is deliberately not a chain of N ifs.
    limits = {f"tool_{i}": i for i in range(n)}

    def decide(request: dict[str, Any]) -> str:
        tool = request["tool"]
        limit = limits.get(tool if isinstance(tool, str) else tool["name"])
        if limit is None or request["args"]["amount"] > limit:
            return "deny"
        return "allow"

    return decide


_GENERATORS: dict[str, Callable[[int], Any]] = {
    "charter": charter_source,
    "python": python_source,
    "cedar": cedar_source,
    "rego": rego_source,
    "cel-cpp": cel_source,
    "cel-rust": cel_source,
}


def source(engine: str, n: int) -> Any:
    return _GENERATORS[engine](n)
