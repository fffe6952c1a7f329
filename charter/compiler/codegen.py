"""Code generation: one Python function per bucket of rules that can apply to a call.

The function evaluates each rule's condition inline on the raw request dict and returns a
bit mask of the rules that matched. Any exception (a missing field, a wrong type) makes the
caller fall back to the reference interpreter, which then reports the precise error; so the
generated code only has to be right on well-formed requests, and it is held equal to the
interpreter by tests.

Only values from the checked IR reach the source: literals are emitted with `repr` (str,
int, bool) or hoisted into the function's namespace; no policy text is ever pasted in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from charter.compiler import ir
from charter.runtime import support
from charter.runtime.values import CHECKS
from charter.stdlib.functions import FUNCTIONS

SIMPLE = (str, int, bool, type(None))
CMP_OPS = {"==", "!=", "<", "<=", ">", ">="}


def base_namespace(matchers: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {f"C_{k}": v for k, v in CHECKS.items()}
    ns.update({f"F_{k}": f.impl for k, f in FUNCTIONS.items()})
    ns.update(
        _div=support.div, _index=support.index, _now=support.now_of, _has=support.has,
        _labels=support.labels, _counter=support.counter, _sid=support.session_id,
        _estimate=support.estimate, _approved=support.approved,
        _previously=support.previously, _like=support.like, _matches=support.matches,
        _mkset=support.make_set, _mklist=support.make_list, M=matchers,
        _scanf=_scan_cached,
    )
    return ns


def _scan_cached(matchers: Any, cache: dict[str, frozenset[str]], field: str,
                 value: object) -> frozenset[str]:
    found = cache.get(field)
    if found is None:
        found = cache[field] = matchers.scan(value)
    return found


@dataclass(frozen=True)
class Bucket:
    """Generated code for one set of candidate rules."""

    rules: tuple[ir.Rule, ...]
    base_mask: int  # rules with no condition
    fn: Any  # (req, st, name, tags, stage) -> int, or None when every rule is unconditional
    source: str
    line_map: dict[int, tuple[str, int]]  # generated line -> (policy file, line)


class Emitter:
    """Builds the source of one bucket function."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self.ns = ns
        self.consts: dict[str, Any] = {}
        self.uses_scan = False

    def const(self, value: object) -> str:
        if type(value) in SIMPLE:
            return repr(value)
        for name, existing in self.consts.items():
            if existing is value:
                return name
        name = f"K{len(self.consts)}"
        self.consts[name] = value
        return name

    def expr(self, e: ir.Expr) -> str:  # noqa: C901 - one branch per node kind
        if isinstance(e, ir.Const):
            return self.const(e.value)
        if isinstance(e, ir.Path):
            raw = self.path(e)
            return raw if e.check == "any" else f"C_{e.check}({raw})"
        if isinstance(e, ir.BoolOp):
            return "(" + f" {e.op} ".join(self.expr(i) for i in e.items) + ")"
        if isinstance(e, ir.Not):
            return f"(not {self.expr(e.operand)})"
        if isinstance(e, ir.Cmp):
            assert e.op in CMP_OPS
            return f"({self.expr(e.left)} {e.op} {self.expr(e.right)})"
        if isinstance(e, ir.Arith):
            if e.op == "/":
                return f"_div({self.expr(e.left)}, {self.expr(e.right)})"
            assert e.op in ("+", "-", "*")
            return f"({self.expr(e.left)} {e.op} {self.expr(e.right)})"
        if isinstance(e, ir.Neg):
            return f"(-{self.expr(e.operand)})"
        if isinstance(e, ir.In):
            op = "not in" if e.negate else "in"
            return f"({self.expr(e.item)} {op} {self.expr(e.coll)})"
        if isinstance(e, ir.Like):
            return f"_like({self.expr(e.value)}, {self.const(e.pattern)})"
        if isinstance(e, ir.Matches):
            return f"_matches({self.expr(e.value)}, {self.const(e.pattern)})"
        if isinstance(e, ir.Contains):
            self.uses_scan = True
            names = self.const(frozenset(e.matchers))
            found = f"_scanf(M, sc, {self.const(e.field)}, {self.expr(e.value)})"
            return f"(not {names}.isdisjoint({found}))"
        if isinstance(e, ir.CountOf):
            return f"M.count({self.expr(e.value)}, {self.const(e.matchers)})"
        if isinstance(e, ir.Fn):
            args = ", ".join(self.expr(a) for a in e.args)
            if e.name == "__set__":
                return f"_mkset({args})"
            if e.name == "__list__":
                return f"_mklist({args})"
            assert e.name in FUNCTIONS
            return f"F_{e.name}({args})"
        if isinstance(e, ir.Has):
            return f"_has(req, {self.const(e.root)}, {self.const(e.keys)}, name)"
        if isinstance(e, ir.Index):
            return f"_index({self.expr(e.obj)}, {self.expr(e.key)})"
        if isinstance(e, ir.Approved):
            return f"_approved(st, {self.const(e.group)})"
        if isinstance(e, ir.Previously):
            pairs = ", ".join(f"({self.const(k)}, {self.expr(v)})" for k, v in e.fields)
            fields = f"({pairs},)" if e.fields else "()"
            return (f"_previously(st, req, {self.const(e.tool)}, {fields}, "
                    f"{self.const(e.within)})")
        if isinstance(e, ir.Labels):
            return "_labels(req, st)"
        if isinstance(e, ir.Counter):
            key = self.expr(e.key) if e.key is not None else "_sid(req)"
            return f"(0 if st is None else _counter(st, {self.const(e.counter)}, {key}))"
        if isinstance(e, ir.Estimate):
            return f"_estimate(req, {self.const(e.field)}, C_{e.check})"
        raise AssertionError(f"unknown IR node {type(e).__name__}")

    def path(self, p: ir.Path) -> str:
        if p.root == "tool" and p.keys == ("name",):
            return "name"
        if p.root == "tool" and p.keys == ("tags",):
            return "tags"
        if p.root == "stage" and not p.keys:
            return "stage"
        if p.root == "now" and not p.keys:
            return "_now(req)"
        out = f"req[{self.const(p.root)}]"
        for key in p.keys:
            out += f"[{self.const(key)}]"
        return out


def generate(rules: Sequence[ir.Rule], matchers: Any, name: str = "bucket") -> Bucket:
    """Generate and compile the bucket function for these candidate rules."""
    ns = base_namespace(matchers)
    em = Emitter(ns)
    base_mask = 0
    body: list[str] = []
    line_map: dict[int, tuple[str, int]] = {}
    for bit, rule in enumerate(rules):
        if rule.cond is None:
            base_mask |= 1 << bit
            continue
        body.append(f"    # {rule.id} ({rule.kind}) {rule.file}:{rule.line}")
        line_map[len(body) + 3] = (rule.file, rule.line)
        body.append(f"    if {em.expr(rule.cond)}:")
        line_map[len(body) + 3] = (rule.file, rule.line)
        body.append(f"        m |= {1 << bit}")
    if not body:
        return Bucket(tuple(rules), base_mask, None, "", {})
    head = [f"def {name}(req, st, name, tags, stage):"]
    head.append("    sc = {}" if em.uses_scan else "    pass")
    head.append(f"    m = {base_mask}")
    source = "\n".join([*head, *body, "    return m", ""])
    ns.update(em.consts)
    code = compile(source, f"<charter:{name}>", "exec")
    exec(code, ns)  # noqa: S102 - source built from the checked IR only, literals via repr
    return Bucket(tuple(rules), base_mask, ns[name], source, line_map)
