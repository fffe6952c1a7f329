"""Type inference for expressions, recording types and resolved references as it goes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal

import msgspec

from charter.language import ast
from charter.language.checked import CheckedPolicy, ConstRef, MatcherRef, PathRef
from charter.language.constfold import NotConstant, fold
from charter.language.context import ALL_ROOTS, ROOTS, STAGE_ONLY
from charter.language.diagnostics import (
    BAD_ARGUMENTS,
    CONDITION_NOT_BOOL,
    CONTAINS_NEEDS_MATCHER,
    DECLARED_TWICE,
    INVALID_REGEX,
    NOT_A_FIELD,
    NOT_CONSTANT,
    SINGLE_EQUALS,
    TYPE_MISMATCH,
    UNDECLARED_TOOL,
    UNKNOWN_FIELD,
    UNKNOWN_FUNCTION,
    UNKNOWN_MATCHER,
    UNKNOWN_NAME,
    WRONG_STAGE,
    Code,
)
from charter.language.source import Diagnostic, Span
from charter.language.suggest import did_you_mean
from charter.language.types import (
    ANY,
    BOOL,
    DECIMAL,
    DURATION,
    INT,
    MATCHER,
    REGEX,
    STR,
    TIME,
    ListT,
    MapT,
    Prim,
    RecordT,
    SetT,
    Type,
    compatible,
    element_of,
    is_any,
    is_numeric,
    join,
    parse_type_string,
)
from charter.stdlib.functions import FUNCTIONS
from charter.stdlib.regex import PatternError, compile_user_pattern

Report = Callable[[Diagnostic], None]
NUMERIC_OPS = ("+", "-", "*", "/")
ORDER_OPS = ("<", "<=", ">", ">=")


class Env(msgspec.Struct):
    """What names mean inside one rule: the type of `args`, the stage, constants and
    matchers in scope."""

    args: Type
    stage: str | None
    args_owner: str | None = None  # whose declarations type `args`: 'tool "x"', 'tools ...'
    in_const: bool = False


class ExprChecker:
    """Infers types, reports diagnostics and fills `policy.types` / `policy.refs`."""

    def __init__(self, policy: CheckedPolicy, report: Report) -> None:
        self.p = policy
        self.report = report

    def error(self, code: Code, span: Span, message: str, help: str | None = None) -> None:
        self.report(code.at(span, message, help))

    # ── entry points ─────────────────────────────────────────────────────────

    def condition(self, expr: ast.Expr, env: Env) -> None:
        t = self.infer(expr, env)
        if t not in (BOOL, ANY):
            self.error(CONDITION_NOT_BOOL, _span(expr), f"a condition must be bool, found {t}",
                       _bool_help(expr))

    def infer(self, expr: ast.Expr, env: Env) -> Type:
        t = self._infer(expr, env)
        self.p.types[id(expr)] = t
        return t

    # ── dispatch ─────────────────────────────────────────────────────────────

    def _infer(self, e: ast.Expr, env: Env) -> Type:  # noqa: C901 - one branch per node kind
        if isinstance(e, ast.Literal_):
            return _literal_type(e.value)
        if isinstance(e, ast.Regex):
            self.error(TYPE_MISMATCH, e.span, "a regex literal can only follow `matches`",
                       'write `X matches r"..."`, or declare `matcher NAME = r"..."`')
            return ANY  # reported once here; `any` keeps it from cascading
        if isinstance(e, ast.SetLit | ast.ListLit):
            elem: Type | None = None
            for item in e.items:
                t = self.infer(item, env)
                elem = t if elem is None else join(elem, t)
            inner = elem or ANY
            return SetT(inner) if isinstance(e, ast.SetLit) else ListT(inner)
        if isinstance(e, ast.MapLit):
            return self._map_lit(e, env)
        if isinstance(e, ast.RecordLit):
            fields = {f.name: self.infer(f.value, env) for f in e.fields}
            from charter.language.types import FieldT
            return RecordT("record", {k: FieldT(v) for k, v in fields.items()})
        if isinstance(e, ast.Name | ast.Attr | ast.Index):
            return self._reference(e, env)
        if isinstance(e, ast.Unary):
            return self._unary(e, env)
        if isinstance(e, ast.Binary):
            return self._binary(e, env)
        if isinstance(e, ast.Call):
            return self._call(e, env)
        if isinstance(e, ast.Has):
            self._has(e, env)
            return BOOL
        if isinstance(e, ast.Count):
            self.matcher_operand(e.matcher, env)
            self.infer(e.value, env)
            return INT
        if isinstance(e, ast.Approved):
            if env.in_const:
                self._not_const(e.span)
            if e.count < 1:
                self.error(TYPE_MISMATCH, e.span, "`approved by N of` needs N of at least 1",
                           f'write `approved by "{e.group}"` for one approver')
            return BOOL
        if isinstance(e, ast.Previously):
            self._previously(e, env)
            return BOOL
        return ANY

    # ── names, fields, paths ─────────────────────────────────────────────────

    def _reference(self, e: ast.Name | ast.Attr | ast.Index, env: Env) -> Type:
        chain = _path_chain(e)
        if chain is not None:
            root, keys, spans = chain
            resolved = self._resolve_path(e, root, keys, spans, env)
            if resolved is not None:
                return resolved
            return ANY
        # An Index with a computed key, or an Attr on a non-path.
        if isinstance(e, ast.Index):
            obj_t = self.infer(e.obj, env)
            key_t = self.infer(e.key, env)
            return self._index_type(obj_t, key_t, e)
        assert isinstance(e, ast.Attr)
        obj_t = self.infer(e.obj, env)
        return self._field_type(obj_t, e.name, e.name_span, env)

    def _resolve_path(
        self, e: ast.Expr, root: str, keys: list[str], spans: list[Span], env: Env,
    ) -> Type | None:
        span0 = spans[0]
        if root in self.p.consts and (not keys or isinstance(self.p.consts[root], dict)):
            return self._const_path(e, root, keys, spans)
        if root in self.p.matchers and not keys:
            self.p.refs[id(e)] = MatcherRef((root,))
            return MATCHER
        if root in ("pii", "secrets") and len(keys) == 1:
            return self._stdlib_matcher(e, root, keys[0], spans[1])
        if root in ("pii", "secrets") and not keys:
            self.error(UNKNOWN_MATCHER, span0, f"`{root}` is a matcher module, not a value",
                       f"name one of its matchers, e.g. `{root}.any`")
            return MATCHER
        if root not in ALL_ROOTS:
            if root in self.p.consts:
                self.error(UNKNOWN_FIELD, spans[1], f"constant `{root}` has no fields")
                return ANY
            names = [*ALL_ROOTS, *self.p.consts, *self.p.matchers]
            self.error(UNKNOWN_NAME, span0, f"unknown name `{root}`", did_you_mean(root, names))
            return None
        if env.in_const:
            self._not_const(span0)
            return ANY
        need = STAGE_ONLY.get(root)
        if need and env.stage is not None and env.stage != need:
            self.error(WRONG_STAGE, span0, f"`{root}` is only available at the {need} stage",
                       f"put the rule under `on {need}`")
        t: Type = env.args if root == "args" else ROOTS[root]
        for key, span in zip(keys, spans[1:], strict=True):
            t = self._field_type(t, key, span, env, owner=env.args_owner if root == "args"
                                 and t is env.args else None)
        self.p.refs[id(e)] = PathRef(root, tuple(keys), t)
        return t

    def _const_path(self, e: ast.Expr, root: str, keys: list[str], spans: list[Span]) -> Type:
        """A constant, or a literal key of a lookup table: `region_of["acme-eu"]`."""
        value = self.p.consts[root]
        for key, span in zip(keys, spans[1:], strict=True):
            if not isinstance(value, dict):
                self.error(UNKNOWN_FIELD, span, f"`{root}` has no field `{key}` here")
                return ANY
            if key not in value:
                self.error(UNKNOWN_FIELD, span, f"`{root}` has no key {_quoted(key)}",
                           did_you_mean(key, list(value), '"'))
                return ANY
            value = value[key]
        self.p.refs[id(e)] = ConstRef(value)
        return _value_type(value)

    def _map_lit(self, e: ast.MapLit, env: Env) -> Type:
        """`{"k": v, ...}`: string keys, each once; the values must fold to constants."""
        value: Type | None = None
        seen: set[str] = set()
        for entry in e.entries:
            if entry.name in seen:
                self.error(DECLARED_TWICE, entry.span,
                           f"key {_quoted(entry.name)} appears twice in this map")
            seen.add(entry.name)
            t = self.infer(entry.value, env)
            value = t if value is None else join(value, t)
        try:
            fold(e, self.p.consts)
        except NotConstant:
            if not env.in_const:  # in a `const`, the checker reports CH0219 itself
                self.error(NOT_CONSTANT, e.span, "a map literal must be constant",
                           'write the table as `const NAME = {"key": value, ...}`')
        return MapT(value or ANY)

    def _stdlib_matcher(self, e: ast.Expr, module: str, name: str, span: Span) -> Type:
        from charter.stdlib.matchers import MODULES, resolve

        qualified = f"{module}.{name}"
        if module not in self.p.uses:
            self.error(UNKNOWN_MATCHER, _span(e), f"`{qualified}` needs `use {module}`",
                       f"add `use {module}` near the top of the file")
        specs = resolve(qualified)
        if specs is None:
            names = [*MODULES.get(module, {}), "any"]
            self.error(UNKNOWN_MATCHER, span, f"`{module}` has no matcher `{name}`",
                       did_you_mean(name, names))
            return MATCHER
        self.p.refs[id(e)] = MatcherRef(tuple(s.name for s in specs))
        return MATCHER

    def _field_type(
        self, t: Type, key: str, span: Span, env: Env, owner: str | None = None,
    ) -> Type:
        if isinstance(t, RecordT):
            f = t.fields.get(key)
            if f is None:
                what = owner or f"`{t.name}`"
                has = "have no parameter" if what.startswith("tools ") else (
                    "has no parameter" if owner else "has no field")
                self.error(UNKNOWN_FIELD, span, f"{what} {has} `{key}`",
                           did_you_mean(key, t.fields))
                return ANY
            return f.type
        if isinstance(t, MapT):
            return t.value
        if is_any(t):
            return ANY
        self.error(UNKNOWN_FIELD, span, f"a value of type {t} has no field `{key}`")
        return ANY

    def _index_type(self, obj: Type, key: Type, e: ast.Index) -> Type:
        if isinstance(obj, MapT | RecordT):
            if key not in (STR, ANY):
                self.error(TYPE_MISMATCH, _span(e.key), f"a map key must be str, found {key}")
            return obj.value if isinstance(obj, MapT) else ANY
        if isinstance(obj, ListT):
            if key not in (INT, ANY):
                self.error(TYPE_MISMATCH, _span(e.key), f"a list index must be int, found {key}")
            return obj.elem
        if is_any(obj):
            return ANY
        self.error(TYPE_MISMATCH, e.span, f"a value of type {obj} cannot be indexed")
        return ANY

    def matcher_operand(self, e: ast.Expr, env: Env) -> None:
        t = self.infer(e, env)
        if t is not MATCHER and t != MATCHER:
            hint = None
            if isinstance(e, ast.Literal_) and isinstance(e.value, str):
                hint = f'for a substring test write `"{e.value}" in X`'
            self.error(CONTAINS_NEEDS_MATCHER, _span(e),
                       f"expected a matcher (e.g. `pii.email`), found {t}", hint)

    # ── operators ────────────────────────────────────────────────────────────

    def _unary(self, e: ast.Unary, env: Env) -> Type:
        t = self.infer(e.operand, env)
        if e.op == "not":
            if t not in (BOOL, ANY):
                self.error(TYPE_MISMATCH, e.span, f"`not` needs a bool, found {t}")
            return BOOL
        if not is_numeric(t) and t != DURATION:
            self.error(TYPE_MISMATCH, e.span, f"unary `-` needs a number, found {t}")
        return t

    def _binary(self, e: ast.Binary, env: Env) -> Type:
        if e.op == "=":
            self.infer(e.left, env)
            self.infer(e.right, env)
            self.error(SINGLE_EQUALS, e.op_span, "`=` is not an operator", "did you mean `==`?")
            return BOOL
        if e.op in ("and", "or"):
            for side in (e.left, e.right):
                t = self.infer(side, env)
                if t not in (BOOL, ANY):
                    self.error(TYPE_MISMATCH, _span(side),
                               f"`{e.op}` needs bool operands, found {t}", _bool_help(side))
            return BOOL
        if e.op == "contains":
            self.infer(e.left, env)
            self.matcher_operand(e.right, env)
            return BOOL
        if e.op == "matches":
            return self._matches(e, env)
        lt = self.infer(e.left, env)
        rt = self.infer(e.right, env)
        if e.op in ("==", "!="):
            if not compatible(lt, rt):
                self._mismatch(e, lt, rt)
            return BOOL
        if e.op in ORDER_OPS:
            ok = (is_numeric(lt) and is_numeric(rt)) or (
                compatible(lt, rt) and (lt in (TIME, DURATION, STR, ANY)))
            if not ok:
                self._mismatch(e, lt, rt)
            return BOOL
        if e.op in NUMERIC_OPS:
            return self._arith(e, lt, rt)
        if e.op in ("in", "not in"):
            self._membership(e, lt, rt)
            return BOOL
        if e.op == "like":
            if lt not in (STR, ANY):
                self.error(TYPE_MISMATCH, _span(e.left), f"`like` needs a string, found {lt}")
            if not (isinstance(e.right, ast.Literal_) and isinstance(e.right.value, str)):
                self.error(TYPE_MISMATCH, _span(e.right), "`like` takes a string pattern literal",
                           'e.g. `args.path like "/tmp/*"`')
            return BOOL
        return ANY

    def _arith(self, e: ast.Binary, lt: Type, rt: Type) -> Type:
        if is_numeric(lt) and is_numeric(rt):
            if is_any(lt) or is_any(rt):
                return ANY
            return DECIMAL if DECIMAL in (lt, rt) or e.op == "/" else INT
        if e.op == "+" and lt == STR and rt == STR:
            return STR
        if e.op in ("+", "-") and lt == TIME and rt == DURATION:
            return TIME
        if e.op == "-" and lt == TIME and rt == TIME:
            return DURATION
        if e.op in ("+", "-") and lt == DURATION and rt == DURATION:
            return DURATION
        if is_any(lt) or is_any(rt):
            return ANY
        self._mismatch(e, lt, rt)
        return ANY

    def _membership(self, e: ast.Binary, lt: Type, rt: Type) -> None:
        if rt == STR:
            if lt not in (STR, ANY):
                self.error(TYPE_MISMATCH, _span(e.left),
                           f"`{e.op}` a string tests for a substring; found {lt} on the left")
            return
        elem = element_of(rt)
        if elem is None:
            self.error(TYPE_MISMATCH, _span(e.right),
                       f"`{e.op}` needs a set, list, map or string on the right, found {rt}")
            return
        if not compatible(lt, elem):
            self.error(TYPE_MISMATCH, e.op_span, f"cannot look for a {lt} in a {rt}",
                       _quote_help(e.left, lt, elem))

    def _matches(self, e: ast.Binary, env: Env) -> Type:
        lt = self.infer(e.left, env)
        if lt not in (STR, ANY):
            self.error(TYPE_MISMATCH, _span(e.left), f"`matches` needs a string, found {lt}")
        pattern: str | None = None
        if isinstance(e.right, ast.Regex):
            pattern = e.right.pattern
            self.p.types[id(e.right)] = REGEX
        elif isinstance(e.right, ast.Literal_) and isinstance(e.right.value, str):
            pattern = e.right.value
        else:
            self.error(INVALID_REGEX, _span(e.right), "`matches` takes a regex literal",
                       'e.g. `args.id matches r"^[a-z]+$"`')
        if pattern is not None:
            self.check_pattern(pattern, _span(e.right))
        return BOOL

    def check_pattern(self, pattern: str, span: Span) -> None:
        try:
            compile_user_pattern(pattern)
        except PatternError as err:
            at = span
            if err.offset is not None and span.line == span.end_line:
                col = span.col + 2 + err.offset  # skip r"
                at = Span(span.file, span.line, col, span.line, col + 1, span.start, span.end)
            self.error(INVALID_REGEX, at, f"invalid regex: {err.message}",
                       "Charter regexes use RE2 syntax (no look-around or backreferences)")

    def _mismatch(self, e: ast.Binary, lt: Type, rt: Type) -> None:
        self.error(TYPE_MISMATCH, e.op_span, f"cannot apply `{e.op}` to {lt} and {rt}",
                   _quote_help(e.right, rt, lt) or _quote_help(e.left, lt, rt))

    # ── calls and special forms ──────────────────────────────────────────────

    def _call(self, e: ast.Call, env: Env) -> Type:
        fn = FUNCTIONS.get(e.func)
        arg_types = [self.infer(a, env) for a in e.args]
        if fn is None and e.func in ("has", "count"):
            return ANY  # a malformed has()/count(): the parser has already said why
        if fn is None:
            self.error(UNKNOWN_FUNCTION, e.func_span, f"unknown function `{e.func}`",
                       did_you_mean(e.func, FUNCTIONS))
            return ANY
        if len(arg_types) != len(fn.params):
            self.error(BAD_ARGUMENTS, e.span,
                       f"`{fn.name}` takes {len(fn.params)} argument(s), given {len(arg_types)}")
            return parse_type_string(fn.returns)
        for arg, t, want in zip(e.args, arg_types, fn.params, strict=True):
            if want == "coll":
                ok = isinstance(t, SetT | ListT | MapT) or t in (STR, ANY)
            else:
                ok = compatible(t, parse_type_string(want))
            if not ok:
                self.error(BAD_ARGUMENTS, _span(arg), f"`{fn.name}` expects {want}, found {t}")
        return parse_type_string(fn.returns)

    def _has(self, e: ast.Has, env: Env) -> None:
        chain = _path_chain(e.path)
        if chain is None or chain[0] not in ALL_ROOTS:
            self.error(NOT_A_FIELD, _span(e.path), "`has` takes a request field such as `args.x`")
            return
        root, keys, _ = chain
        # Optional fields are exactly what `has` is for, so unknown fields of open types pass.
        self.infer(e.path, env)
        self.p.refs[id(e)] = PathRef(root, tuple(keys), BOOL)

    def _previously(self, e: ast.Previously, env: Env) -> None:
        sig = self.p.tools.get(e.tool)
        if sig is None and self.p.tools and "*" not in e.tool:
            self.error(UNDECLARED_TOOL, e.span, f'tool "{e.tool}" is not declared',
                       did_you_mean(e.tool, self.p.tools, '"'))
        if e.with_ is None:
            return
        for f in e.with_.fields:
            vt = self.infer(f.value, env)
            if sig is not None:
                param = sig.params.get(f.name)
                if param is None:
                    self.error(UNKNOWN_FIELD, f.span,
                               f'tool "{e.tool}" has no parameter `{f.name}`',
                               did_you_mean(f.name, sig.params))
                elif not compatible(param[0], vt):
                    self.error(TYPE_MISMATCH, _span(f.value),
                               f"`{f.name}` is {param[0]}, the value is {vt}")

    def _not_const(self, span: Span) -> None:
        self.error(NOT_CONSTANT, span, "a constant cannot depend on the request",
                   "constants are folded when the policy compiles")


# ── helpers ──────────────────────────────────────────────────────────────────


def _quoted(text: str) -> str:
    """A string as a policy writes it (double quotes, escaped), for messages."""
    return json.dumps(text, ensure_ascii=False)


def _span(e: ast.Expr) -> Span:
    return e.span


def _path_chain(e: ast.Expr) -> tuple[str, list[str], list[Span]] | None:
    """`a.b["c"].d` as ("a", ["b", "c", "d"], spans), or None if not a plain path."""
    keys: list[str] = []
    spans: list[Span] = []
    node = e
    while True:
        if isinstance(node, ast.Attr):
            keys.append(node.name)
            spans.append(node.name_span)
            node = node.obj
        elif isinstance(node, ast.Index) and isinstance(node.key, ast.Literal_) and isinstance(
                node.key.value, str):
            keys.append(node.key.value)
            spans.append(node.key.span)
            node = node.obj
        elif isinstance(node, ast.Name):
            spans.append(node.span)
            return node.id, keys[::-1], spans[::-1]
        else:
            return None


def path_chain(e: ast.Expr) -> tuple[str, list[str]] | None:
    chain = _path_chain(e)
    return None if chain is None else (chain[0], chain[1])


def _literal_type(v: object) -> Type:
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, int):
        return INT
    if isinstance(v, Decimal):
        return DECIMAL
    if isinstance(v, str):
        return STR
    if isinstance(v, ast.Duration):
        return DURATION
    return ANY


def _value_type(v: object) -> Type:
    if isinstance(v, dict):
        return MapT(_elem_type(v.values()))
    if isinstance(v, frozenset | tuple):
        elem = _elem_type(v)
        return SetT(elem) if isinstance(v, frozenset) else ListT(elem)
    if isinstance(v, timedelta):
        return DURATION
    return _literal_type(v)


def _elem_type(values: Iterable[object]) -> Type:
    elem: Type | None = None
    for x in values:
        t = _value_type(x)
        elem = t if elem is None else join(elem, t)
    return elem or ANY


def _bool_help(e: ast.Expr) -> str | None:
    if isinstance(e, ast.Binary) and e.op == "=":
        return "did you mean `==`?"
    return None


def _quote_help(e: ast.Expr, actual: Type, wanted: Type) -> str | None:
    if isinstance(e, ast.Literal_) and isinstance(e.value, str) and is_numeric(wanted):
        return f"remove the quotes: `{e.value}`"
    if isinstance(e, ast.Literal_) and isinstance(e.value, int | Decimal) and wanted == STR:
        return f'quote the value: `"{e.value}"`'
    if isinstance(actual, Prim) and isinstance(wanted, Prim):
        return None
    return None
