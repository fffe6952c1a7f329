"""The optional solver back end: rule regions as z3 formulas (`pip install z3-solver`).

The exact fragment needs no solver; z3 gives meaning to what it only samples: arithmetic
(`session.cost_usd + estimate.cost_usd > 5`), `startswith`, `endswith`, `len`, and it answers
the same questions as `regions` with the same semantics, so the two can be held equal on the
fragment (tests/compiler/test_analysis.py). Each field is a presence flag, a well-typed flag
and a value of its type; every expression is a pair (value, error), with `and`/`or` erring the
way the interpreter's short-circuit walk does. A rule matches as the combining rule says (an
allow where it holds without error; a restricting rule where it holds or errs). Anything the
translation does not cover raises `Unsupported`, naming the atom; a query over its timeout
answers `unknown`. Both become I0599, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from charter.compiler.analysis.space import ABSENT, PathKey, Point, nodes
from charter.engine import ir

Answer = Literal["sat", "unsat", "unknown"]
_NUMERIC = {"num": "real", "cost": "real", "int": "int", "count": "int"}


class Unsupported(Exception):
    """An atom the translation does not cover (its text names it)."""


def available() -> bool:
    try:
        import z3  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class _Field:
    present: Any
    ok: Any  # present and of the field's type
    value: Any
    kind: str  # "real" | "int" | "str" | "bool"
    err: Any  # reading it is a request error


@dataclass
class Encoder:
    """z3 terms for the fields, labels and approvals of one question."""

    z3: Any
    fields: dict[PathKey, _Field] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, Any] = field(default_factory=dict)

    def field_of(self, key: PathKey, check: str) -> _Field:
        found = self.fields.get(key)
        if found is not None:
            return found
        z3 = self.z3
        name = ".".join((key[0], *key[1]))
        kind = _NUMERIC.get(check) or {"str": "str", "bool": "bool"}.get(check)
        if kind is None:
            raise Unsupported(f"a field of type {check} ({name})")
        make = {"real": z3.Real, "int": z3.Int, "str": z3.String, "bool": z3.Bool}[kind]
        present, ok = z3.Bool(f"has:{name}"), z3.Bool(f"ok:{name}")
        err = z3.Not(ok)
        if key[0] == "estimate":  # zero when absent: only a value of the wrong type errs
            err = z3.And(present, z3.Not(ok))
        found = self.fields[key] = _Field(present, ok, make(f"v:{name}"), kind, err)
        return found

    def prepare(self, rules: list[ir.Rule]) -> None:
        """Make the fields of `rules` with their declared types (a field only `has` reads
        gets any type: its value is never read)."""
        typed: dict[PathKey, str] = {}
        tested: set[PathKey] = set()
        for rule in rules:
            for node in nodes(rule.cond) if rule.cond is not None else ():
                if isinstance(node, ir.Path) and node.root not in ("tool", "stage", "now"):
                    if node.check != "any" or (node.root, node.keys) not in typed:
                        typed[(node.root, node.keys)] = node.check
                elif isinstance(node, ir.Estimate):
                    typed[("estimate", (node.field,))] = node.check
                elif isinstance(node, ir.Has) and node.root not in ("tool", "stage"):
                    tested.add((node.root, node.keys))
        for key, check in typed.items():
            self.field_of(key, check)
        for key in tested - set(typed):
            self.field_of(key, "str")

    def background(self) -> Any:
        """Well-typed implies present; `cost` amounts are not negative."""
        z3 = self.z3
        facts = [z3.Implies(f.ok, f.present) for f in self.fields.values()]
        return z3.And(*facts) if facts else z3.BoolVal(True)

    # ── expressions: (value, error) ──────────────────────────────────────────

    def cond(self, e: ir.Expr) -> tuple[Any, Any]:  # noqa: C901 - one branch per node kind
        z3 = self.z3
        false = z3.BoolVal(False)
        if isinstance(e, ir.Const) and isinstance(e.value, bool):
            return z3.BoolVal(e.value), false
        if isinstance(e, ir.Not):
            v, err = self.cond(e.operand)
            return z3.Not(v), err
        if isinstance(e, ir.BoolOp):
            v, err = self.cond(e.items[0])
            for item in e.items[1:]:
                iv, ierr = self.cond(item)
                if e.op == "and":
                    err = z3.Or(err, z3.And(z3.Not(err), v, ierr))
                    v = z3.And(v, iv)
                else:
                    err = z3.Or(err, z3.And(z3.Not(err), z3.Not(v), ierr))
                    v = z3.Or(v, iv)
            return v, err
        if isinstance(e, ir.Has):
            if e.root in ("tool", "stage"):
                raise Unsupported("has(tool...)")
            f = self.field_of((e.root, e.keys), "str")
            return f.present, false
        if isinstance(e, ir.Path) and e.check == "bool":
            f = self.field_of((e.root, e.keys), "bool")
            return f.value, f.err
        if isinstance(e, ir.Cmp):
            (lv, lerr, lk), (rv, rerr, rk) = self.term(e.left), self.term(e.right)
            if (lk == "str") != (rk == "str"):
                raise Unsupported("a comparison of a string with a number")
            if lk == "str" and e.op not in ("==", "!="):
                raise Unsupported("string ordering")
            ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b,
                   "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
                   ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
            return ops[e.op](lv, rv), z3.Or(lerr, z3.And(z3.Not(lerr), rerr))
        if isinstance(e, ir.In) and isinstance(e.coll, ir.Const):
            v, err, kind = self.term(e.item)
            values = e.coll.value
            if not isinstance(values, frozenset | tuple | list):
                raise Unsupported("`in` a map")
            options = [self._const(c, kind) for c in values]
            found = z3.Or(*[v == c for c in options if c is not None]) if options else false
            return (z3.Not(found) if e.negate else found), err
        if isinstance(e, ir.In) and isinstance(e.coll, ir.Labels) and isinstance(
                e.item, ir.Const) and isinstance(e.item.value, str):
            lab = self.labels.setdefault(e.item.value, z3.Bool(f"label:{e.item.value}"))
            return (z3.Not(lab) if e.negate else lab), false
        if isinstance(e, ir.Like):
            v, err, kind = self.term(e.value)
            if kind != "str":
                raise Unsupported("`like` on a number")
            return z3.InRe(v, _glob(z3, e.pattern)), err
        if isinstance(e, ir.Approved) and e.group is not None and e.count == 1:
            g = self.groups.setdefault(e.group, z3.Bool(f"approved:{e.group}"))
            return g, false
        if isinstance(e, ir.Fn) and e.name in ("startswith", "endswith") and len(e.args) == 2:
            (sv, serr, sk), (pv, perr, pk) = self.term(e.args[0]), self.term(e.args[1])
            if sk != "str" or pk != "str":
                raise Unsupported(f"{e.name} on a number")
            test = z3.PrefixOf(pv, sv) if e.name == "startswith" else z3.SuffixOf(pv, sv)
            return test, z3.Or(serr, z3.And(z3.Not(serr), perr))
        raise Unsupported(_name(e))

    def term(self, e: ir.Expr) -> tuple[Any, Any, str]:
        """(value, error, kind) of a value expression."""
        z3 = self.z3
        false = z3.BoolVal(False)
        if isinstance(e, ir.Const):
            v = e.value
            if isinstance(v, str):
                return z3.StringVal(v), false, "str"
            if isinstance(v, int | Decimal | Fraction) and not isinstance(v, bool):
                return z3.RealVal(str(Fraction(v))), false, "real"
            raise Unsupported(f"a {type(v).__name__} constant")
        if isinstance(e, ir.Path | ir.Estimate):
            key = (e.root, e.keys) if isinstance(e, ir.Path) else ("estimate", (e.field,))
            if key[0] in ("tool", "stage", "now"):
                raise Unsupported(f"{key[0]} in a comparison")
            f = self.field_of(key, e.check)
            value = z3.ToReal(f.value) if f.kind == "int" else f.value
            if key[0] == "estimate":
                value = z3.If(f.ok, value, z3.RealVal(0))
            return value, f.err, "str" if f.kind == "str" else "real"
        if isinstance(e, ir.Arith) and e.op in ("+", "-", "*"):
            (lv, lerr, lk), (rv, rerr, rk) = self.term(e.left), self.term(e.right)
            if lk != "real" or rk != "real":
                raise Unsupported("arithmetic on strings")
            value = lv + rv if e.op == "+" else lv - rv if e.op == "-" else lv * rv
            return value, z3.Or(lerr, z3.And(z3.Not(lerr), rerr)), "real"
        if isinstance(e, ir.Fn) and e.name == "len" and len(e.args) == 1:
            sv, serr, sk = self.term(e.args[0])
            if sk != "str":
                raise Unsupported("len of a list")
            return z3.ToReal(z3.Length(sv)), serr, "real"
        raise Unsupported(_name(e))

    def _const(self, c: object, kind: str) -> Any:
        z3 = self.z3
        if kind == "str":
            return z3.StringVal(c) if isinstance(c, str) else None
        if isinstance(c, int | Decimal | Fraction) and not isinstance(c, bool):
            return z3.RealVal(str(Fraction(c)))
        return None

    def matched(self, rule: ir.Rule) -> Any:
        """Where the rule matches under the combining rule."""
        z3 = self.z3
        if rule.cond is None:
            v, err = z3.BoolVal(True), z3.BoolVal(False)
        else:
            v, err = self.cond(rule.cond)
        if rule.kind == "allow":
            return z3.And(v, z3.Not(err))
        hit = z3.Or(err, v)
        if rule.kind == "require_approval" and rule.groups:
            granted = [self.groups.setdefault(g, z3.Bool(f"approved:{g}")) for g in rule.groups]
            hit = z3.Or(err, z3.And(v, z3.Not(z3.Or(*granted))))
        return hit

    def point(self, model: Any) -> Point:
        """The request of a model, as a point (fields the model leaves free: absent)."""
        z3 = self.z3
        fields: dict[PathKey, object] = {}
        for key, f in self.fields.items():
            present = z3.is_true(model.eval(f.present, model_completion=True))
            ok = z3.is_true(model.eval(f.ok, model_completion=True))
            if not present:
                fields[key] = ABSENT
            elif not ok:
                fields[key] = [] if f.kind != "str" else 0
            else:
                fields[key] = _value(model.eval(f.value, model_completion=True), f.kind)
        labels = frozenset(n for n, v in self.labels.items()
                           if z3.is_true(model.eval(v, model_completion=True)))
        groups = frozenset(n for n, v in self.groups.items()
                           if z3.is_true(model.eval(v, model_completion=True)))
        return Point(fields, labels, groups)


def _value(v: Any, kind: str) -> object:
    import z3

    if kind == "str":
        return str(v.as_string())
    if kind == "bool":
        return z3.is_true(v)
    if kind == "int":
        return int(v.as_long())
    frac = v.as_fraction()
    if frac.denominator == 1:
        return int(frac.numerator)
    return Decimal(frac.numerator) / Decimal(frac.denominator)


def _glob(z3: Any, pattern: str) -> Any:
    parts = pattern.split("*")
    pieces: list[Any] = []
    for n, lit in enumerate(parts):
        if lit:
            pieces.append(z3.Re(lit))
        if n < len(parts) - 1:
            pieces.append(z3.Star(z3.AllChar(z3.ReSort(z3.StringSort()))))
    if not pieces:
        return z3.Re("")
    return pieces[0] if len(pieces) == 1 else z3.Concat(*pieces)


def _name(e: ir.Expr) -> str:
    if isinstance(e, ir.Fn):
        return f"{e.name}(...)"
    if isinstance(e, ir.Matches):
        return "matches"
    if isinstance(e, ir.Contains | ir.CountOf):
        return "a matcher scan"
    return type(e).__name__


class Solver:
    """Questions about rule regions, each under `timeout_ms`."""

    def __init__(self, policy: ir.Policy, timeout_ms: int = 2000) -> None:
        import z3

        self.z3 = z3
        self.policy = policy
        self.timeout_ms = timeout_ms
        self.queries = 0
        self.slowest_ms = 0.0

    def check(self, *terms: Any, enc: Encoder) -> tuple[Answer, Point | None]:
        import time

        z3 = self.z3
        s = z3.Solver()
        s.set("timeout", self.timeout_ms)
        s.add(enc.background(), *terms)
        t0 = time.perf_counter()
        answer = s.check()
        self.slowest_ms = max(self.slowest_ms, (time.perf_counter() - t0) * 1000)
        self.queries += 1
        if answer == z3.sat:
            return "sat", enc.point(s.model())
        return ("unsat", None) if answer == z3.unsat else ("unknown", None)

    def _encoder(self, *rules: int) -> Encoder:
        enc = Encoder(self.z3)
        enc.prepare([self.policy.rules[i] for i in rules])
        return enc

    def sat(self, a: int) -> tuple[Answer, Point | None]:
        """Can rule a match? (raises Unsupported)"""
        enc = self._encoder(a)
        return self.check(enc.matched(self.policy.rules[a]), enc=enc)

    def a_not_b(self, a: int, b: int) -> tuple[Answer, Point | None]:
        """A point where a matches and b does not: `unsat` means a ⊆ b."""
        enc = self._encoder(a, b)
        ma, mb = enc.matched(self.policy.rules[a]), enc.matched(self.policy.rules[b])
        return self.check(ma, self.z3.Not(mb), enc=enc)

    def both(self, a: int, b: int) -> tuple[Answer, Point | None]:
        """A point where both match: `unsat` means disjoint."""
        enc = self._encoder(a, b)
        ma, mb = enc.matched(self.policy.rules[a]), enc.matched(self.policy.rules[b])
        return self.check(ma, mb, enc=enc)
