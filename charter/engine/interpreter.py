"""The reference interpreter: a plain recursive walk over the IR.

It is the meaning of the language. The generated code must agree with it on every request
(tests hold them equal), and it is also the slow path the generated code falls back to when
a request has an error, so that error reasons are precise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from charter.engine import ir, operators, support
from charter.engine.decision import RuleError
from charter.engine.operators import ARITH, CMP
from charter.engine.snapshot import Snapshot
from charter.engine.strict import strict_args
from charter.engine.support import approved_by
from charter.stdlib.functions import FUNCTIONS
from charter.stdlib.values import CHECKS, RequestError, describe, type_name


class Ctx:
    """One request as the evaluator sees it."""

    __slots__ = ("req", "st", "stage", "name", "tags", "matchers", "scans", "trace", "now")

    def __init__(self, req: Mapping[str, Any], st: Snapshot | None, stage: str, name: str,
                 tags: tuple[str, ...], matchers: Any) -> None:
        self.req = req
        self.st = st
        self.stage = stage
        self.name = name
        self.tags = tags
        self.matchers = matchers
        self.scans: dict[str, frozenset[str]] = {}
        self.trace: list[tuple[ir.Expr, object]] | None = None
        self.now: datetime | None = None  # read once per decision (see `_now`)


Outcome = bool | RuleError  # True / False, or the rule's request error


def eval_rule(rule: ir.Rule, ctx: Ctx) -> Outcome:
    """True if the rule's condition holds, False if not, or the request error (naming the
    rule and, where one field is at fault, the field)."""
    if rule.cond is None:
        return True
    try:
        return bool(evaluate(rule.cond, ctx))
    except RequestError as err:
        return RuleError(rule.id, err.field, err.message)
    except Exception as err:  # noqa: BLE001 - an error in a condition must never raise
        return RuleError(rule.id, None, f"cannot evaluate rule {rule.id}: {err}")


def holds(cond: ir.Expr, req: Mapping[str, Any], st: Snapshot | None, name: str,
          tags: tuple[str, ...], stage: str, matchers: Any) -> bool:
    """A condition's value, for generated code that does not inline it (too deeply nested).
    A request error raises, as in inline code, so the caller falls back to `eval_rule`."""
    return bool(evaluate(cond, Ctx(req, st, stage, name, tags, matchers)))


def evaluate(e: ir.Expr, ctx: Ctx) -> Any:
    value = _eval(e, ctx)
    if ctx.trace is not None:
        ctx.trace.append((e, value))
    return value


def _eval(e: ir.Expr, ctx: Ctx) -> Any:  # noqa: C901 - one branch per node kind
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Path):
        return read_path(e, ctx)
    if isinstance(e, ir.BoolOp):
        if e.op == "and":
            return all(evaluate(i, ctx) for i in e.items)
        return any(evaluate(i, ctx) for i in e.items)
    if isinstance(e, ir.Not):
        return not evaluate(e.operand, ctx)
    if isinstance(e, ir.Cmp):
        left, right = evaluate(e.left, ctx), evaluate(e.right, ctx)
        try:
            return CMP[e.op](left, right)
        except (TypeError, ArithmeticError):
            raise RequestError(
                f"cannot compare {_describe(e.left, left)} with {_describe(e.right, right)}",
                _field(e.left, e.right)) from None
    if isinstance(e, ir.Arith):
        left, right = evaluate(e.left, ctx), evaluate(e.right, ctx)
        try:
            return ARITH[e.op](left, right)
        except (TypeError, ZeroDivisionError, ArithmeticError) as err:
            raise RequestError(f"cannot compute {_describe(e.left, left)} {e.op} "
                               f"{_describe(e.right, right)}: {err}",
                               _field(e.left, e.right)) from None
    if isinstance(e, ir.Neg):
        v = evaluate(e.operand, ctx)
        try:
            return operators.neg(v)
        except TypeError:
            raise RequestError(f"cannot negate {_describe(e.operand, v)}",
                               _field(e.operand)) from None
    if isinstance(e, ir.In):
        return _in(e, ctx)
    if isinstance(e, ir.Like):
        v = evaluate(e.value, ctx)
        return _guard(lambda: support.like(v, e.pattern), e.value, v, "`like`")
    if isinstance(e, ir.Matches):
        v = evaluate(e.value, ctx)
        return _guard(lambda: support.matches(v, e.pattern), e.value, v, "`matches`")
    if isinstance(e, ir.Contains):
        found = _scan(e.field, e.value, ctx)
        return not found.isdisjoint(e.matchers)
    if isinstance(e, ir.CountOf):
        v = evaluate(e.value, ctx)
        return ctx.matchers.count(v, e.matchers)
    if isinstance(e, ir.Fn):
        return _call(e, ctx)
    if isinstance(e, ir.Has):
        return support.has(ctx.req, e.root, e.keys, ctx.name)
    if isinstance(e, ir.Index):
        obj, key = evaluate(e.obj, ctx), evaluate(e.key, ctx)
        try:
            return support.index(obj, key)
        except (KeyError, IndexError, TypeError):
            # A key the policy wrote is quoted; one read from the request is only described.
            shown = repr(key) if isinstance(e.key, ir.Const) else describe(key)
            if isinstance(e.obj, ir.Const) and isinstance(obj, dict):
                if isinstance(e.key, ir.Path):
                    shown = f"{e.key.text} ({describe(key)})"
                raise RequestError(f"{shown} is not a key of {e.text}", _field(e.key)) from None
            raise RequestError(f"{shown} missing in {_describe(e.obj, obj)}",
                               _field(e.obj, e.key)) from None
    if isinstance(e, ir.Approved):
        if e.count > 1 and e.group is not None:
            return approved_by(ctx.st, e.group, e.count)
        return support.approved(ctx.st, e.group)
    if isinstance(e, ir.Previously):
        fields = tuple((k, evaluate(v, ctx)) for k, v in e.fields)
        now = _now(ctx) if e.within is not None and ctx.st is not None and (
            ctx.st.now is None) else None
        return support.previously(ctx.st, now, e.tool, fields, e.within)
    if isinstance(e, ir.Labels):
        try:
            return support.labels(ctx.req, ctx.st)
        except TypeError as err:
            raise RequestError(str(err), "session.labels") from None
    if isinstance(e, ir.Counter):
        return _counter(e, ctx)
    if isinstance(e, ir.Estimate):
        try:
            return support.estimate(ctx.req, e.field, CHECKS[e.check])
        except TypeError as err:  # the checks' messages name types, never values
            raise RequestError(f"estimate.{e.field}: {err}", f"estimate.{e.field}") from None
        except AttributeError:
            raise RequestError(f"estimate.{e.field}: wrong type", f"estimate.{e.field}") from None
    raise AssertionError(f"unknown IR node {type(e).__name__}")


def read_path(p: ir.Path, ctx: Ctx) -> Any:
    """A request field, checked against its declared type."""
    value = _raw_path(p, ctx)
    try:
        return CHECKS[p.check](value)
    except TypeError as err:
        raise RequestError(f"{p.text}: {err}", p.text) from None


def _raw_path(p: ir.Path, ctx: Ctx) -> Any:
    if p.root == "tool" and p.keys == ("name",):
        return ctx.name
    if p.root == "tool" and p.keys == ("tags",):
        return ctx.tags
    if p.root == "stage" and not p.keys:
        return ctx.stage
    if p.root == "now" and not p.keys:
        return _now(ctx)
    if p.root not in ctx.req:
        raise RequestError(f"{p.text} missing", p.text)
    obj: Any = ctx.req[p.root]
    for key in p.keys:
        if not isinstance(obj, dict):
            raise RequestError(f"{p.text} missing", p.text)
        if key not in obj:
            raise RequestError(f"{p.text} missing", p.text)
        obj = obj[key]
    return obj


def _now(ctx: Ctx) -> datetime:
    """The decision's time: the request's `now`, else the clock, read once per decision so
    that every `now` in it is the same instant."""
    if ctx.now is None:
        try:
            ctx.now = support.now_of(ctx.req)
        except TypeError as err:
            raise RequestError(f"now: {err}", "now") from None
    return ctx.now


def _in(e: ir.In, ctx: Ctx) -> bool:
    item, coll = evaluate(e.item, ctx), evaluate(e.coll, ctx)
    if isinstance(coll, str) and type(item) is not str:
        raise RequestError(f"cannot look for {_describe(e.item, item)} in a string",
                           _field(e.item, e.coll))
    if not isinstance(coll, str | dict | list | tuple | set | frozenset):
        raise RequestError(f"{_describe(e.coll, coll)} is not a collection", _field(e.coll))
    try:
        found = operators.member(item, coll)
    except TypeError:
        raise RequestError(f"cannot look for {_describe(e.item, item)} in "
                           f"{_describe(e.coll, coll)}", _field(e.item, e.coll)) from None
    return not found if e.negate else found


def _scan(field: str, value_expr: ir.Expr, ctx: Ctx) -> frozenset[str]:
    # Read every time, as generated code does: one rule's untyped read of a field must not
    # answer for another's typed read of it, whose check may fail (a StrEnum is no `str`).
    value = evaluate(value_expr, ctx)
    found = ctx.scans.get(field)
    if found is None:
        try:
            found = ctx.matchers.scan(value)
        except Exception as err:  # noqa: BLE001 - a scan failure must never read as "no match"
            raise RequestError(f"cannot scan {field}: {err}", field) from None
        ctx.scans[field] = found
    return found


def _call(e: ir.Fn, ctx: Ctx) -> Any:
    args = [evaluate(a, ctx) for a in e.args]
    if e.name == "__set__":
        return _guard(lambda: support.make_set(*args), e, args, "a set")
    if e.name == "__list__":
        return support.make_list(*args)
    if e.name == ir.STRICT_ARGS:
        return strict_args(ctx.req, *args)
    fn = FUNCTIONS[e.name]
    try:
        return fn.impl(*args)
    except Exception as err:  # noqa: BLE001 - a bad argument is a request error
        shown = ", ".join(_describe(a, v) for a, v in zip(e.args, args, strict=True))
        raise RequestError(f"{e.name}({shown}): {err}", _field(*e.args)) from None


def counter_key(key: ir.Expr, req: Mapping[str, Any]) -> str:
    """The value of a counter's key (a `per KEY` path, or the joined key of `per turn`) for
    `req`; a RequestError naming the field when it is missing or not a string."""
    value = evaluate(key, Ctx(req, None, "tool_call", "", (), None))
    if type(value) is not str:
        text = key.text if isinstance(key, ir.Path) else "counter key"
        raise RequestError(f"{text}: not a string", _field(key))
    return value


def _counter(e: ir.Counter, ctx: Ctx) -> Any:
    if ctx.st is None:
        return 0
    key = evaluate(e.key, ctx) if e.key is not None else _session_id(ctx)
    try:
        return support.counter(ctx.st, e.counter, key)
    except TypeError as err:
        raise RequestError(f"counter key: {err}", _field(e.key) if e.key is not None
                           else "session.id") from None


def _session_id(ctx: Ctx) -> str:
    return str(read_path(ir.Path("session", ("id",), "str", "session.id"), ctx))


def _guard(fn: Callable[[], Any], node: object, value: object, what: str) -> Any:
    try:
        return fn()
    except TypeError as err:
        raise RequestError(f"{what} on {_describe(node, value)}: {err}", _field(node)) from None


def _field(*nodes: object) -> str | None:
    """The request field an error is about: the first of `nodes` that reads one."""
    for node in nodes:
        if isinstance(node, ir.Path):
            return node.text
    return None


def _describe(node: object, value: object) -> str:
    if isinstance(node, ir.Path):
        return f"{node.text} ({type_name(value)})"
    return type_name(value)
