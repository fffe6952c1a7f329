"""Folding constant expressions (`const` values, literal sets) to Python values."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from charter.language import ast


class NotConstant(Exception):
    """The expression depends on something known only at run time."""


def fold(e: ast.Expr, consts: dict[str, object]) -> object:
    """The value of a constant expression, or `NotConstant`."""
    if isinstance(e, ast.Literal_):
        lit = e.value
        return timedelta(seconds=lit.seconds) if isinstance(lit, ast.Duration) else lit
    if isinstance(e, ast.SetLit):
        return frozenset(fold(i, consts) for i in e.items)
    if isinstance(e, ast.ListLit):
        return tuple(fold(i, consts) for i in e.items)
    if isinstance(e, ast.MapLit):
        return {f.name: fold(f.value, consts) for f in e.entries}
    if isinstance(e, ast.Name) and e.id in consts:
        return consts[e.id]
    if isinstance(e, ast.Unary) and e.op == "-":
        v = fold(e.operand, consts)
        if isinstance(v, int | Decimal | timedelta) and not isinstance(v, bool):
            return -v
    if isinstance(e, ast.Unary) and e.op == "not":
        v = fold(e.operand, consts)
        if isinstance(v, bool):
            return not v
    if isinstance(e, ast.Binary) and e.op in ("+", "-", "*", "/"):
        return _arith(e.op, fold(e.left, consts), fold(e.right, consts))
    raise NotConstant


def _arith(op: str, a: object, b: object) -> object:
    nums = (int, Decimal)
    if isinstance(a, nums) and isinstance(b, nums) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise NotConstant
        return Decimal(a) / Decimal(b)
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if op == "+" and isinstance(a, frozenset) and isinstance(b, frozenset):
        return a | b
    raise NotConstant
