"""IR → IR passes, run in order after lowering (the `passes` stage of the pipeline).

A pass must not change any decision or any error a request can get: the interpreter and the
generated code read the IR it returns, and tests hold both to the unpassed meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from charter.engine import ir, operators


class Pass(msgspec.Struct, frozen=True):
    name: str
    doc: str
    run: Callable[[ir.Policy], ir.Policy]


def fold_constants(policy: ir.Policy) -> ir.Policy:
    """Arithmetic, negation and `not` over constants, computed once (`1 + fee_rate`, with
    `const fee_rate = 0.02`, becomes `1.02`). The operators are the interpreter's; a constant
    expression they refuse (`1 / 0`, `"a" - 1`) is left for run time, which reports it."""
    rules = tuple(_fold_rule(rule) for rule in policy.rules)
    counters = tuple(_fold_counter(spec) for spec in policy.counters)
    if all(a is b for a, b in zip(rules, policy.rules, strict=True)) and all(
            a is b for a, b in zip(counters, policy.counters, strict=True)):
        return policy
    return msgspec.structs.replace(policy, rules=rules, counters=counters)


PASSES: tuple[Pass, ...] = (
    Pass("fold-constants", "constant arithmetic, negation and `not` computed once",
         fold_constants),
)


def _fold_rule(rule: ir.Rule) -> ir.Rule:
    if rule.cond is None:
        return rule
    cond = _fold(rule.cond)
    return rule if cond is rule.cond else msgspec.structs.replace(rule, cond=cond)


def _fold_counter(spec: ir.CounterSpec) -> ir.CounterSpec:
    # The scope is folded as the rule's condition it repeats is (the id was fixed before).
    key, scope = _fold(spec.key), _fold(spec.scope)
    if key is spec.key and scope is spec.scope:
        return spec
    return msgspec.structs.replace(spec, key=key, scope=scope)


def _fold(e: Any) -> Any:
    """`e` with its constant sub-expressions folded (the same object when nothing was)."""
    if isinstance(e, tuple):
        items = tuple(_fold(item) for item in e)
        return e if all(a is b for a, b in zip(items, e, strict=True)) else items
    if isinstance(e, ir.Const) or not isinstance(e, msgspec.Struct):
        return e
    changes = {}
    for name in e.__struct_fields__:
        value = getattr(e, name)
        folded = _fold(value)
        if folded is not value:
            changes[name] = folded
    node = msgspec.structs.replace(e, **changes) if changes else e
    return _constant(node)


def _constant(e: Any) -> Any:
    """The constant `e` computes, or `e` itself."""
    try:
        if isinstance(e, ir.Arith) and isinstance(e.left, ir.Const) and isinstance(
                e.right, ir.Const):
            return ir.Const(operators.ARITH[e.op](e.left.value, e.right.value))
        if isinstance(e, ir.Neg) and isinstance(e.operand, ir.Const):
            return ir.Const(operators.neg(e.operand.value))
    except (TypeError, ArithmeticError):
        return e
    if isinstance(e, ir.Not) and isinstance(e.operand, ir.Const) and type(
            e.operand.value) is bool:
        return ir.Const(not e.operand.value)
    return e
