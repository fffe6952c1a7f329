"""Values written in test blocks: evaluated to request values and checked against their types.

Test records are data, not conditions: every value must be a literal (or a `const`). Records
become dicts, sets and lists become lists (the wire format has no sets), durations become text
such as `"30s"` (what the runtime reads back), decimals stay `Decimal`. Problems become
`CH04xx` diagnostics at the offending value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from charter.language import ast
from charter.language.diagnostics import TEST_NOT_LITERAL, TEST_TYPE_ERROR, TEST_UNKNOWN_FIELD, Code
from charter.language.source import Diagnostic, Span
from charter.language.suggest import did_you_mean
from charter.language.types import ANY, ListT, MapT, Prim, RecordT, SetT, Type

Report = Callable[[Diagnostic], None]


class LiteralReader:
    """Evaluates test-block values against expected types, reporting through `report`."""

    def __init__(self, consts: dict[str, object], report: Report) -> None:
        self.consts = consts
        self.report = report

    def error(self, code: Code, span: Span, message: str, help: str | None = None) -> None:
        self.report(code.at(span, message, help))

    def read(self, e: ast.Expr, expected: Type, what: str) -> Any:
        """The request value of `e`, after checking it is a `expected` (`what` names it)."""
        if isinstance(e, ast.RecordLit):
            return self._record(e, expected, what)
        if isinstance(e, ast.MapLit):  # `{"key-with-dash": v}`: the same, with quoted keys
            return self._record(ast.RecordLit(e.entries, e.span), expected, what)
        if isinstance(e, ast.SetLit) and not e.items and isinstance(expected, MapT | RecordT):
            return {}  # `{}` in a value position parses as an empty set
        if isinstance(e, ast.SetLit | ast.ListLit):
            return self._collection(e, expected, what)
        value = self._scalar(e, what)
        if value is not None:
            self._conform(value, expected, e.span, what)
        return _wire(value)

    def record(self, e: ast.RecordLit, expected: RecordT, what: str) -> dict[str, Any]:
        out = self._record(e, expected, what)
        return out if isinstance(out, dict) else {}

    # ── structures ───────────────────────────────────────────────────────────

    def _record(self, e: ast.RecordLit, expected: Type, what: str) -> Any:
        out: dict[str, Any] = {}
        if isinstance(expected, RecordT):
            for f in e.fields:
                ftype = expected.fields.get(f.name)
                if ftype is None:
                    self.error(TEST_UNKNOWN_FIELD, f.span, f"{what} has no field `{f.name}`",
                               did_you_mean(f.name, expected.fields)
                               or f"its fields: {', '.join(expected.fields) or '(none)'}")
                    continue
                out[f.name] = self.read(f.value, ftype.type, f"{what}.{f.name}")
            return out
        if isinstance(expected, MapT) or _is_any(expected):
            value_type = expected.value if isinstance(expected, MapT) else ANY
            for f in e.fields:
                out[f.name] = self.read(f.value, value_type, f"{what}.{f.name}")
            return out
        self.error(TEST_TYPE_ERROR, e.span, f"{what} is a {expected}; found a record")
        return out

    def _collection(self, e: ast.SetLit | ast.ListLit, expected: Type, what: str) -> Any:
        if isinstance(expected, SetT | ListT):
            elem = expected.elem
        elif _is_any(expected):
            elem = ANY
        else:
            kind = "set" if isinstance(e, ast.SetLit) else "list"
            self.error(TEST_TYPE_ERROR, e.span, f"{what} is a {expected}; found a {kind}")
            return []
        return [self.read(item, elem, f"{what}[{i}]") for i, item in enumerate(e.items)]

    # ── scalars ──────────────────────────────────────────────────────────────

    def _scalar(self, e: ast.Expr, what: str) -> object:
        if isinstance(e, ast.Literal_):
            return e.value
        if isinstance(e, ast.Unary) and e.op == "-":
            inner = self._scalar(e.operand, what)
            if isinstance(inner, int | Decimal) and not isinstance(inner, bool):
                return -inner
        if isinstance(e, ast.Name) and e.id in self.consts:
            return self.consts[e.id]
        help_text = None
        if isinstance(e, ast.Name):
            help_text = did_you_mean(e.id, self.consts) or "quote it to write a string"
        self.error(TEST_NOT_LITERAL, e.span,
                   f"{what} must be a literal value or a const; tests describe data", help_text)
        return None

    def _conform(self, value: object, expected: Type, span: Span, what: str) -> None:
        if _fits(value, expected):
            return
        self.error(TEST_TYPE_ERROR, span, f"{what} is a {expected}; found {_kind(value)}",
                   _hint(value, expected))


def _is_any(t: Type) -> bool:
    return isinstance(t, Prim) and t.name == "any"


def _fits(value: object, t: Type) -> bool:  # noqa: C901 - one branch per type
    if _is_any(t):
        return True
    if isinstance(value, frozenset | tuple):  # a const set or list
        if isinstance(t, SetT | ListT):
            return all(_fits(v, t.elem) for v in value)
        return False
    if not isinstance(t, Prim):
        return False
    if t.name == "str":
        return isinstance(value, str)
    if t.name == "bool":
        return isinstance(value, bool)
    if t.name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t.name == "decimal":
        return isinstance(value, int | Decimal) and not isinstance(value, bool)
    if t.name == "duration":
        return isinstance(value, ast.Duration | timedelta)
    if t.name == "time":
        return isinstance(value, str) and is_time(value) or (
            isinstance(value, int) and not isinstance(value, bool))
    return False


def is_time(text: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"the bool `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"the int `{value}`"
    if isinstance(value, Decimal):
        return f"the decimal `{value}`"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, ast.Duration | timedelta):
        return "a duration"
    if isinstance(value, frozenset):
        return "a set"
    if isinstance(value, tuple):
        return "a list"
    return type(value).__name__


def _hint(value: object, expected: Type) -> str | None:
    name = expected.name if isinstance(expected, Prim) else ""
    if name in ("int", "decimal") and isinstance(value, str):
        return "write the number without quotes"
    if name == "int" and isinstance(value, Decimal):
        return "an int has no decimal point"
    if name == "str" and not isinstance(value, str):
        return "strings are written in double quotes"
    if name == "time":
        return 'write an ISO-8601 time such as "2026-11-21T10:00:00Z"'
    return None


def _wire(value: object) -> Any:
    """A checked scalar (or const) as the request's wire format carries it."""
    if isinstance(value, ast.Duration):
        return f"{value.seconds}s"
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())}s"
    if isinstance(value, frozenset):
        return sorted((_wire(v) for v in value), key=repr)
    if isinstance(value, tuple):
        return [_wire(v) for v in value]
    return value
