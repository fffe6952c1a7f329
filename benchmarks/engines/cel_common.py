"""What both CEL bindings share: the policy shape, request binding and decision procedure.

CEL evaluates expressions, not policies, so a CEL policy here is three lists of boolean
rules (allow / approval / deny) combined with Charter's decision procedure. When the
combined decision fits one expression it is compiled as one program (one call across the
FFI per decision); otherwise each kind is split into chunks under the size limit of
cel-cpp's parser and evaluated in order, the way a large rule list would have to be.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from benchmarks.engines.base import DecimalFields, Request, convert_decimals, tool_name

SECTIONS = ("agent", "user", "session", "args", "estimate")
# cel-cpp rejects sources over 100,000 code points; stay clear of it.
MAX_SOURCE = 90_000

P = TypeVar("P")


@dataclass(frozen=True)
class CelPolicy:
    allow: Sequence[str]
    approval: Sequence[str] = ()
    deny: Sequence[str] = ()
    decimal_fields: DecimalFields = ()


@dataclass(frozen=True)
class CelPlan(Generic[P]):
    single: P | None
    allow: tuple[P, ...]
    approval: tuple[P, ...]
    deny: tuple[P, ...]
    decimal_fields: DecimalFields


def _any(rules: Sequence[str]) -> str:
    return " || ".join(f"({rule})" for rule in rules) if rules else "false"


def decision_expression(policy: CelPolicy) -> str:
    return (
        f'({_any(policy.deny)}) ? "deny" : '
        f'(({_any(policy.allow)}) ? (({_any(policy.approval)}) ? "require_approval" : "allow")'
        ' : "deny")'
    )


def chunks(rules: Sequence[str], limit: int = MAX_SOURCE) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    size = 0
    for rule in rules:
        if current and size + len(rule) + 6 > limit:
            out.append(_any(current))
            current, size = [], 0
        current.append(rule)
        size += len(rule) + 6
    if current:
        out.append(_any(current))
    return out


def plan(policy: CelPolicy, compile_: Callable[[str], P]) -> CelPlan[P]:
    source = decision_expression(policy)
    if len(source) <= MAX_SOURCE:
        return CelPlan(compile_(source), (), (), (), policy.decimal_fields)
    return CelPlan(
        None,
        tuple(compile_(c) for c in chunks(policy.allow)),
        tuple(compile_(c) for c in chunks(policy.approval)),
        tuple(compile_(c) for c in chunks(policy.deny)),
        policy.decimal_fields,
    )


def variables(request: Request, decimal_fields: DecimalFields) -> dict[str, Any]:
    # Absent sections are bound to empty maps so `has(estimate.cost_usd)` works.
    bound: dict[str, Any] = {"tool": tool_name(request)}
    for key in SECTIONS:
        bound[key] = request.get(key, {})
    convert_decimals(bound, decimal_fields, float)
    return bound


def decide_chunked(plan_: CelPlan[P], evaluate: Callable[[P], Any]) -> str:
    # `is True`: an error value (or anything not a bool) never opens the gate.
    if any(evaluate(p) is not False for p in plan_.deny):
        return "deny"
    if not any(evaluate(p) is True for p in plan_.allow):
        return "deny"
    if any(evaluate(p) is not False for p in plan_.approval):
        return "require_approval"
    return "allow"


def effect_or_deny(value: Any) -> str:
    return value if value in ("allow", "require_approval") else "deny"
