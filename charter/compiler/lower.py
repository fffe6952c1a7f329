"""Lowering: checked AST → IR. Scopes are flattened, constants folded, budgets and limits
turned into rules over counters."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Literal, TypeVar

import msgspec

from charter.compiler.counter_ids import counter_id, session_total_id
from charter.engine import ir
from charter.language import ast
from charter.language.checked import CheckedPolicy, ConstRef, FlatRule, MatcherRef, PathRef
from charter.language.constfold import NotConstant, fold
from charter.language.exprcheck import path_chain
from charter.language.source import Span
from charter.language.types import ANY, Type, is_any, runtime_tag
from charter.stdlib.digest import sha256

T = TypeVar("T")

CMP_OPS = ("==", "!=", "<", "<=", ">", ">=")
# Model stages whose `estimate` a budget charges, as it charges tool calls'.
MODEL_SPEND_STAGES = ("model_input", "model_output")
ARITH_OPS = ("+", "-", "*", "/")
Metric = Literal["cost_usd", "tokens", "calls"]


def lower(policy: CheckedPolicy) -> ir.Policy:
    """Turn a checked policy (with no errors) into IR."""
    return Lowerer(policy).run()


class Lowerer:
    def __init__(self, policy: CheckedPolicy) -> None:
        self.p = policy
        self.rules: list[ir.Rule] = []
        self.counters: list[ir.CounterSpec] = []
        self.history: dict[str, set[str]] = {}
        self.model_budgets: list[tuple[ir.Rule, ir.CounterSpec]] = []

    def run(self) -> ir.Policy:
        for flat in self.p.rules:
            self._flat(flat)
        self._model_budgets()
        tools = {
            name: ir.ToolInfo(name, sig.tags, tuple(
                (p, runtime_tag(t), opt) for p, (t, opt) in sig.params.items()))
            for name, sig in self.p.tools.items()
        }
        matchers = {
            name: ir.MatcherInfo(name, pattern, f"[{name.upper()}]")
            for name, pattern in self.p.matchers.items()
        }
        strict = self.p.options.get("strict args")
        if strict is not None:
            first = len(self.rules)
            self.rules.extend([_strict_args_rule(first + i, tool, strict)
                               for i, tool in enumerate(tools.values())])
        return ir.Policy(
            trust_request_tags="trust request tags" in self.p.options,
            name=self.p.name, version=self.p.version,
            default="allow" if self.p.default == "allow" else "deny",
            rules=tuple(self.rules), tools=tools, matchers=matchers,
            counters=tuple(self.counters),
            history={k: tuple(sorted(v)) for k, v in self.history.items()},
            digest=self._digest(),
        )

    def _digest(self) -> str:
        # Names relative to the sources' common directory: the same files deployed at another
        # path (a CI build dir, a host's /etc, a bundle) must be the same version.
        h = sha256()
        for name, src in sorted(_relative(self.p.sources).items()):
            h.update(name.encode())
            h.update(b"\0")
            h.update(src.text.encode())
            h.update(b"\0")
        return h.hexdigest()[:16]

    # ── rules ────────────────────────────────────────────────────────────────

    def _flat(self, flat: FlatRule) -> None:
        item = flat.item
        targets = tuple(ir.Target(t.names, t.tag) for t in flat.targets)
        conds = [self._cond(c) for c in flat.conditions]
        index = len(self.rules)
        rid = flat.id or f"{PurePath(item.span.file).name}:{item.span.line}"
        base = dict(index=index, id=rid, file=item.span.file, line=item.span.line,
                    col=item.span.col, shadow=flat.shadow, owner=flat.owner, targets=targets)
        if isinstance(item, ast.Rule):
            cond = _and(conds)
            self.rules.append(ir.Rule(
                stage=item.stage or "tool_call", cond=cond, because=item.because,
                **self._effect(item.effect), **base))  # type: ignore[arg-type]
            return
        check, limit_cond = self._budget_cond(item, index, targets, conds, flat.id)
        effect = self._effect(item.then) if item.then else {"kind": "deny"}
        because = item.because or _default_budget_reason(item)
        rule = ir.Rule(
            stage="tool_call", cond=_and([*conds, limit_cond]), because=because,
            origin="budget" if isinstance(item, ast.Budget) else "limit",
            **effect, **base)  # type: ignore[arg-type]
        self.rules.append(rule)
        self.counters.append(check)
        if isinstance(item, ast.Budget) and not targets:
            self.model_budgets.append((rule, check))

    def _model_budgets(self) -> None:
        """A budget that names no tool also caps model calls, whose spend counts: a copy of
        its rule per model stage, on the same counter, after every other rule (so that rule
        indices and counter ids stay as the source orders them)."""
        for stage in MODEL_SPEND_STAGES:
            for rule, check in self.model_budgets:
                at = len(self.rules)
                self.rules.append(msgspec.structs.replace(rule, stage=stage, index=at))
                # The same id: a model call and a tool call spend from one counter.
                self.counters.append(msgspec.structs.replace(check, stage=stage, rule=at))

    def _budget_cond(self, item: ast.Budget | ast.Limit, index: int,
                     targets: tuple[ir.Target, ...], conds: list[ir.Expr], pinned: str | None
                     ) -> tuple[ir.CounterSpec, ir.Expr]:
        """The counter of a budget or limit, and its rule's limit test (the rule's other
        conditions, `conds`, are the counter's scope)."""
        key: ir.Expr | None = self._key(item.key) if item.key is not None else None
        if item.window.text == "turn":  # one counter per (session, turn), never expiring
            key = _turn_key(key)
        limit = ir.Const(item.limit)
        metric: Metric
        if isinstance(item, ast.Budget):
            metric = item.metric
            # Usage is never negative: a budget must not pass on a claimed refund.
            check = "cost" if metric == "cost_usd" else "count"
            extra: ir.Expr = ir.Estimate(metric, check)
            if item.window.seconds is None and key is None:
                # Per session: the rule tests the session's running total, which the host
                # sends or the Guard keeps under the counter's id.
                used: ir.Expr = ir.Path("session", (metric,), check, f"session.{metric}")
                total = ir.CounterSpec(
                    id=session_total_id(metric), metric=metric, limit=item.limit, window=None,
                    key=None, targets=targets, stage="tool_call", rule=index,
                    scope=_and(conds), session_total=True)
                return total, ir.Cmp(">", ir.Arith("+", used, extra), limit)
        else:
            metric = "calls"
            extra = ir.Const(1)  # the limit's own target is already among `targets`
        cid = counter_id(metric=metric, window=item.window.text,
                         window_seconds=item.window.seconds, key=key, targets=targets,
                         stage="tool_call", scope=tuple(conds), pinned=pinned)
        spec = ir.CounterSpec(
            id=cid, metric=metric, limit=item.limit, window=item.window.seconds, key=key,
            targets=targets, stage="tool_call", rule=index, scope=_and(conds))
        return spec, ir.Cmp(">", ir.Arith("+", ir.Counter(cid, key), extra), limit)

    def _key(self, e: ast.Expr) -> ir.Path:
        chain = path_chain(e)
        assert chain is not None
        root, keys = chain
        return ir.Path(root, tuple(keys), "str", ".".join([root, *keys]))

    def _effect(self, eff: ast.Effect) -> dict[str, object]:
        out: dict[str, object] = {"kind": eff.kind}
        if eff.kind == "require_approval":
            out["groups"] = eff.groups
        elif eff.kind == "label":
            out["label"] = eff.label
        elif eff.kind == "redact":
            names: list[str] = []
            for m in eff.matchers:
                ref = self.p.refs.get(id(m))
                if isinstance(ref, MatcherRef):
                    names.extend(n for n in ref.names if n not in names)
            out["redact"] = tuple(names)
            if eff.path is not None:
                path = self._expr(eff.path)
                if isinstance(path, ir.Path):
                    out["redact_path"] = ir.Path(path.root, path.keys, "any", path.text)
        return out

    def _cond(self, c: ast.Condition) -> ir.Expr:
        e = self._bool(c.expr)
        return ir.Not(e) if c.negate else e

    # ── expressions ──────────────────────────────────────────────────────────

    def _bool(self, e: ast.Expr) -> ir.Expr:
        """An expression in a boolean position: untyped fields must hold a bool."""
        out = self._expr(e)
        if isinstance(out, ir.Path) and out.check == "any":
            return ir.Path(out.root, out.keys, "bool", out.text)
        return out

    def _type(self, e: ast.Expr) -> Type:
        return self.p.types.get(id(e), ANY)

    def _expr(self, e: ast.Expr) -> ir.Expr:  # noqa: C901 - one branch per node kind
        ref = self.p.refs.get(id(e))
        if isinstance(ref, ConstRef):
            return ir.Const(ref.value)
        if isinstance(ref, PathRef) and not isinstance(e, ast.Has):
            return self._path(ref)
        if isinstance(e, ast.Literal_):
            v = e.value
            return ir.Const(timedelta(seconds=v.seconds) if isinstance(v, ast.Duration) else v)
        if isinstance(e, ast.MapLit):
            return ir.Const(fold(e, self.p.consts))  # the checker holds map literals constant
        if isinstance(e, ast.SetLit | ast.ListLit):
            try:
                return ir.Const(fold(e, self.p.consts))
            except NotConstant:
                fn = "__set__" if isinstance(e, ast.SetLit) else "__list__"
                return ir.Fn(fn, tuple(self._expr(i) for i in e.items))
        if isinstance(e, ast.Attr):
            return ir.Index(self._expr(e.obj), ir.Const(e.name), "any", e.name)
        if isinstance(e, ast.Index):
            table = e.obj.id if isinstance(e.obj, ast.Name) else "[...]"  # names the table
            return ir.Index(self._expr(e.obj), self._expr(e.key), "any", table)
        if isinstance(e, ast.Unary):
            if e.op == "not":
                return ir.Not(self._bool(e.operand))
            return ir.Neg(self._expr(e.operand))
        if isinstance(e, ast.Binary):
            return self._binary(e)
        if isinstance(e, ast.Call):
            return ir.Fn(e.func, tuple(self._expr(a) for a in e.args))
        if isinstance(e, ast.Has):
            chain = path_chain(e.path)
            assert chain is not None
            return ir.Has(chain[0], tuple(chain[1]))
        if isinstance(e, ast.Count):
            return ir.CountOf(self._expr(e.value), self._matchers(e.matcher), _field(e.value))
        if isinstance(e, ast.Approved):
            return ir.Approved(e.group, e.count)
        if isinstance(e, ast.Previously):
            fields = tuple((f.name, self._expr(f.value)) for f in (e.with_.fields if e.with_
                                                                     else ()))
            self.history.setdefault(e.tool, set()).update(name for name, _ in fields)
            return ir.Previously(e.tool, fields, e.within.seconds if e.within else None)
        raise AssertionError(f"cannot lower {type(e).__name__}")

    def _path(self, ref: PathRef) -> ir.Expr:
        text = ".".join([ref.root, *ref.keys])
        if ref.root == "session" and ref.keys == ("labels",):
            return ir.Labels()
        if ref.root == "estimate" and len(ref.keys) == 1:
            return ir.Estimate(ref.keys[0], runtime_tag(ref.type))
        return ir.Path(ref.root, ref.keys, runtime_tag(ref.type), text)

    def _binary(self, e: ast.Binary) -> ir.Expr:
        op = e.op
        if op in ("and", "or"):
            items: list[ir.Expr] = []
            for side in (e.left, e.right):
                lowered = self._bool(side)
                if isinstance(lowered, ir.BoolOp) and lowered.op == op:
                    items.extend(lowered.items)
                else:
                    items.append(lowered)
            return ir.BoolOp(op, tuple(items))
        if op == "contains":
            return ir.Contains(self._expr(e.left), self._matchers(e.right), _field(e.left))
        if op == "matches":
            pattern = e.right.pattern if isinstance(e.right, ast.Regex) else str(
                getattr(e.right, "value", ""))
            return ir.Matches(self._expr(e.left), pattern)
        if op == "like":
            return ir.Like(self._expr(e.left), str(getattr(e.right, "value", "")))
        left, right = self._expr(e.left), self._expr(e.right)
        if op in ("in", "not in"):
            return ir.In(left, right, op == "not in")
        if op in CMP_OPS:
            return ir.Cmp(op, left, right)  # type: ignore[arg-type]
        if op in ARITH_OPS:
            return ir.Arith(op, left, right)  # type: ignore[arg-type]
        raise AssertionError(f"cannot lower operator {op}")

    def _matchers(self, e: ast.Expr) -> tuple[str, ...]:
        ref = self.p.refs.get(id(e))
        return ref.names if isinstance(ref, MatcherRef) else ()


def _and(conds: list[ir.Expr]) -> ir.Expr | None:
    if not conds:
        return None
    if len(conds) == 1:
        return conds[0]
    items: list[ir.Expr] = []
    for c in conds:
        items.extend(c.items if isinstance(c, ir.BoolOp) and c.op == "and" else (c,))
    return ir.BoolOp("and", tuple(items))


def _field(e: ast.Expr) -> str:
    chain = path_chain(e)
    return ".".join([chain[0], *chain[1]]) if chain else f"@{e.span.start}"


def _default_budget_reason(item: ast.Budget | ast.Limit) -> str:
    per = f"per {item.window.text}" if item.window.seconds is None else f"per {item.window.text}"
    if isinstance(item, ast.Budget):
        return f"budget {item.metric} <= {item.limit} {per} reached"
    return f"call limit of {item.limit} {per} reached"


__all__ = ["lower", "Decimal", "is_any"]


def _strict_args_rule(index: int, tool: ir.ToolInfo, span: Span) -> ir.Rule:
    """`strict args`: a deny rule per declared tool whose condition errs, naming the field,
    when the call's args do not fit the declaration (see runtime.strict)."""
    cond = ir.Fn(ir.STRICT_ARGS, (ir.Const(tool.name), ir.Const(tool.params)))
    return ir.Rule(index=index, id=f"strict-args:{tool.name}", kind="deny", stage="tool_call",
                   targets=(ir.Target((tool.name,), None),), cond=cond, because=None,
                   file=span.file, line=span.line, col=span.col, origin="strict args")


_SESSION_ID = ir.Path("session", ("id",), "str", "session.id")
_TURN = ir.Path("session", ("turn",), "str", "session.turn")


def _turn_key(key: ir.Expr | None) -> ir.Expr:
    """`per turn [per KEY]`: the counter key joins the session id, the turn id (sent by the
    host or kept by the Guard) and the key, so that turn ids need only be unique within a
    session."""
    turn = ir.Arith("+", ir.Arith("+", _SESSION_ID, ir.Const("/")), _TURN)
    return turn if key is None else ir.Arith("+", ir.Arith("+", turn, ir.Const("/")), key)


def _relative(sources: Mapping[str, T]) -> dict[str, T]:
    """`sources` keyed by their path below the directory they share (a lone file: its name)."""
    paths = {name: PurePath(name) for name in sources}
    parents = [str(p.parent) for p in paths.values()]
    try:
        root = PurePath(os.path.commonpath(parents)) if parents else None
    except ValueError:  # absolute and relative names mixed: nothing to strip safely
        return dict(sources)
    if root is None:
        return dict(sources)
    return {paths[name].relative_to(root).as_posix(): src for name, src in sources.items()}
