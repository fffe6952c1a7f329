"""Code generation: one Python function per bucket of rules that can apply to a call.

The function evaluates each rule's condition inline on the raw request dict and returns a
bit mask of the rules that matched. Any exception (a missing field, a wrong type) makes the
caller fall back to the reference interpreter, which then reports the precise error; so the
generated code only has to be right on well-formed requests, and it is held equal to the
interpreter by tests.

Only values from the checked IR reach the source: literals are emitted with `repr` (str,
int, bool) or hoisted into the function's namespace; names (checks, functions, operators) are
looked up in fixed tables first; no policy text is ever pasted in. Before the source is
compiled, `charter.engine.emitcheck` parses it back and checks that it holds exactly the
statements, names and attributes the emitter writes, so an emitter bug fails closed (an
`EmitError`) instead of running. A condition nested too deeply for Python's parser is
evaluated by the reference interpreter from the generated function instead of inline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import msgspec

from charter.engine import emitcheck, ir, kinds, operators, ops, support
from charter.engine.emitcheck import EmitError
from charter.engine.kinds import NUM, kind, plain_cmp, plain_in
from charter.engine.ops import (
    ARITH_FN,
    CMP_FN,
    EXACT_CLASS,
    EXACT_FN,
    INDEX_DICT,
    INDEX_SEQ,
    INLINE_CHECK,
    INLINE_OK,
    LEN,
    MEMBER_CONST,
    NUM_OK,
    NUMERIC,
    namespace,
)
from charter.engine.tree import BucketCode, ConstSpec, Held, LikeTest, SearchTest, Value
from charter.stdlib.digest import sha256
from charter.stdlib.files import read_bytes
from charter.stdlib.functions import FUNCTIONS
from charter.stdlib.values import CHECKS, MAX_NUMBER_DIGITS

SIMPLE = (str, int, bool, type(None))
# A pattern, not a compiled one: `re` compiles it (once) when code is emitted, which loading
# a saved policy's code (a hook call's first decision) never does.
_WORD = r"\b[A-Za-z_][A-Za-z_0-9]*\b"
_SMALL = -(2**63)  # larger ints are hoisted: Python limits the digits of an int literal
CMP_OPS = {"==", "!=", "<", "<=", ">", ">="}
ARITH_OPS = {"+", "-", "*"}
BOOL_OPS = {"and", "or"}
KINDS = {"allow", "deny", "warn", "require_approval", "redact", "label"}
#: Conditions whose IR is deeper than this are evaluated by the interpreter: each IR level
#: opens at most 3 brackets in the generated source and Python's parser allows 200.
MAX_INLINE_DEPTH = 60


_SESSION_ID = ir.Path("session", ("id",), "str", "session.id")
_CONVERTS_TO_INT = frozenset({"int", "count"})  # checks that turn an integral decimal into int


def _inline_like(glob: str, value: str, const: Any) -> str | None:
    """`like` with at most one `*` at an end, as a plain string test (same answers)."""
    parts = support.glob_parts(glob)
    if len(parts) == 1:
        return f"({value} == {const(parts[0])})"
    if len(parts) == 2 and not parts[1]:
        return f"{value}.startswith({const(parts[0])})"
    if len(parts) == 2 and not parts[0]:
        return f"{value}.endswith({const(parts[1])})"
    return None


def _pick(value: str, allowed: Any) -> str:
    """`value` if it is one of the names the emitter may write here; an `EmitError` if not."""
    if value.__class__ is not str or value not in allowed:
        raise EmitError(f"unexpected {value!r} in the IR")
    return value


def _check(tag: str) -> str:
    """The generated name of a run-time type check."""
    return f"C_{_pick(tag, CHECKS)}"


def _special(p: ir.Path) -> bool:
    """Paths the generated function gets as arguments or computes, not request lookups."""
    return (p.root == "tool" and p.keys in (("name",), ("tags",))) or (
        p.root in ("stage", "now") and not p.keys)


def always_evaluated(e: ir.Expr) -> list[ir.Path]:
    """The request fields that evaluating `e` always reads, whatever the values."""
    if isinstance(e, ir.Path):
        return [e]
    if isinstance(e, ir.Cmp | ir.Arith):
        return always_evaluated(e.left) + always_evaluated(e.right)
    if isinstance(e, ir.In):
        return always_evaluated(e.item) + always_evaluated(e.coll)
    if isinstance(e, ir.BoolOp):
        return always_evaluated(e.items[0])
    if isinstance(e, ir.Not | ir.Neg):
        return always_evaluated(e.operand)
    if isinstance(e, ir.Like | ir.Matches):
        return always_evaluated(e.value)
    if isinstance(e, ir.Fn):
        return [p for a in e.args for p in always_evaluated(a)]
    return []


class Bucket(msgspec.Struct, frozen=True):
    """Generated code for one set of candidate rules."""

    rules: tuple[ir.Rule, ...]
    base_mask: int  # rules with no condition
    fn: Any  # (req, st, name, tags, stage) -> int, or None when every rule is unconditional
    source: str
    line_map: dict[int, int]  # generated line -> index of the rule it evaluates

    def rule_at(self, line: int) -> ir.Rule | None:
        """The rule a line of `source` evaluates (None for set-up lines)."""
        index = self.line_map.get(line)
        return next((r for r in self.rules if r.index == index), None)


class Emitter:
    """Builds the source of one bucket function."""

    def __init__(self) -> None:
        self.consts: dict[str, ConstSpec] = {}  # K0, K1...: how to rebuild each
        self._const_names: dict[object, str] = {}
        self.uses_scan = False
        self.hoisted: dict[ir.Path, str] = {}
        self.root_vars: dict[str, str] = {}
        self.scans: dict[str, int] = {}  # field -> how many `contains` in the bucket scan it
        self.prelude: list[str] = []
        self.temps = 0  # walrus locals of estimate additions
        self.kinds: dict[ir.Path, str] = {}  # untyped reads bound to a typed twin's value

    def hoist(self, paths: Sequence[ir.Path]) -> None:
        """Read fields that every run evaluates anyway once, up front, checked, into locals.

        Raising earlier than the rule that needs the field changes nothing: any exception
        sends the whole request to the interpreter."""
        roots: dict[str, int] = {}
        for p in paths:
            if not _special(p) and p.keys:
                roots[p.root] = roots.get(p.root, 0) + 1
        for root, uses in roots.items():
            if uses > 1:
                var = f"r_{len(self.root_vars)}"
                self.root_vars[root] = var
                self.prelude.append(f"{var} = req[{self.const(root)}]")
                # As `_exact_dict`, once: a root that is not exactly a dict reads as None.
                self.prelude.append(f"if {var}.__class__ is not dict: {var} = None")
        for p in paths:
            if p.root == "now" and not p.keys and p not in self.hoisted:
                self.prelude.append("v_now = _now(req)")
                self.hoisted[p] = "v_now"
            if p in self.hoisted or _special(p):
                continue
            # A field read untyped where a typed read of it exists: reuse the typed read
            # when it yields the very value the untyped read would; if the typed read
            # fails, the interpreter decides anyway. Not an int read: it makes 1.0 the int
            # 1, which an untyped read keeps a decimal (and `steps[x]` takes only an int).
            twin = next((q for q in self.hoisted if q.root == p.root and q.keys == p.keys
                         and p.check == "any" and q.check not in _CONVERTS_TO_INT and (
                             q.check in EXACT_CLASS or q.check in NUMERIC)), None)
            if twin is not None:
                self.hoisted[p] = self.hoisted[twin]
                twin_kind = kind(twin)
                if twin_kind is not None:
                    self.kinds[p] = twin_kind
                continue
            var = f"v{len(self.hoisted)}"
            raw = self.path(p)
            self.prelude.append(f"{var} = {raw}")
            check = INLINE_CHECK.get(p.check)
            if p.check in NUMERIC:
                self.prelude.extend(_numeric_read(var, p.check))
            elif p.check == "any":
                self.prelude.append(f"if {var}.__class__ not in _PLAIN: "
                                    f"{var} = ({var}.__class__ is float and _F.get({var})) "
                                    f"or C_any({var})")
            elif check is not None:
                self.prelude.append(f"if {check.format(v=var)}: {var} = {_check(p.check)}({var})")
            elif p.check != "any":
                self.prelude.append(f"{var} = {_check(p.check)}({var})")
            self.hoisted[p] = var

    def const(self, value: object) -> str:
        """A value in the source: a literal (through `repr`) or a hoisted constant."""
        if type(value) in SIMPLE and not (type(value) is int and not _SMALL <= value < -_SMALL):
            return repr(value)
        return self._hoisted(("value", id(value)), Value(value))

    def _hoisted(self, key: object, spec: ConstSpec) -> str:
        """The name of a constant of the namespace (the same key: the same name); `key` holds
        ids of objects `spec` keeps alive."""
        name = self._const_names.get(key)
        if name is None:
            name = self._const_names[key] = f"K{len(self.consts)}"
            self.consts[name] = spec
        return name

    def expr(self, e: ir.Expr) -> str:  # noqa: C901 - one branch per node kind
        if isinstance(e, ir.Const):
            return self.const(e.value)
        if isinstance(e, ir.Path):
            if e in self.hoisted:
                return self.hoisted[e]
            raw = self.path(e)
            if _special(e):
                return raw
            ok = INLINE_OK.get(e.check)
            if e.check == "num":
                ok = NUM_OK
            if ok is not None:  # the first use assigns `t`, the rest read it
                first = ok.replace("{v}", f"(t := {raw})", 1).replace("{v}", "t")
                return f"(t if {first} else {_check(e.check)}(t))"
            return f"{_check(e.check)}({raw})"
        if isinstance(e, ir.BoolOp):
            op = _pick(e.op, BOOL_OPS)
            return "(" + f" {op} ".join(self.expr(i) for i in e.items) + ")"
        if isinstance(e, ir.Not):
            return f"(not {self.expr(e.operand)})"
        if isinstance(e, ir.Cmp):
            op = _pick(e.op, CMP_OPS)
            if plain_cmp(e, self.kinds):
                return f"({self.expr(e.left)} {op} {self.expr(e.right)})"
            return f"{CMP_FN[op]}({self.expr(e.left)}, {self.expr(e.right)})"
        if isinstance(e, ir.Arith):
            if isinstance(e.left, ir.Const) and isinstance(e.right, ir.Const):
                try:  # `1 + fee_rate`: the interpreter's operator, once, at generation time
                    return self.const(operators.ARITH[e.op](e.left.value, e.right.value))
                except (TypeError, ArithmeticError):
                    pass  # left to run time, where the interpreter reports it
            both = kind(e.left, self.kinds) == NUM and kind(e.right, self.kinds) == NUM
            fn = (EXACT_FN if both else ARITH_FN)[e.op]
            if e.op == "+" and isinstance(e.right, ir.Estimate):
                # `used + estimate`: most requests carry no estimate; skip the addition.
                # Its own local: `left` may assign `t` between the test and the use.
                left = self.expr(e.left)
                field = self.const(e.right.field)
                te = f"te{self.temps}"
                self.temps += 1
                return (f"({left} if ({te} := req.get('estimate')) is None or "
                        f"({te} := {te}.get({field})) is None else "
                        f"{fn}({left}, {_estimate_read(te, e.right.check)}))")
            return f"{fn}({self.expr(e.left)}, {self.expr(e.right)})"
        if isinstance(e, ir.Neg):
            return f"_neg({self.expr(e.operand)})"
        if isinstance(e, ir.In):
            if plain_in(e, self.kinds):
                op = "not in" if e.negate else "in"
                return f"({self.expr(e.item)} {op} {self.expr(e.coll)})"
            if isinstance(e.coll, ir.Const):
                found = MEMBER_CONST.format(item=self.expr(e.item), k=self.const(e.coll.value))
            else:
                found = f"_member({self.expr(e.item)}, {self.expr(e.coll)})"
            return f"(not {found})" if e.negate else found
        if isinstance(e, ir.Like | ir.Matches):
            value = self.expr(e.value)
            if not (isinstance(e.value, ir.Path) and e.value.check == "str"):
                value = f"C_str({value})"
            if isinstance(e, ir.Like):
                inline = _inline_like(e.pattern, value, self.const)
                if inline is not None:
                    return inline
            if isinstance(e, ir.Like):
                test = self._hoisted(("like", e.pattern), LikeTest(e.pattern))
            else:
                test = self._hoisted(("search", e.pattern), SearchTest(e.pattern))
            return f"{test}({value})"
        if isinstance(e, ir.Contains):
            names = self.const(frozenset(e.matchers))
            if self.scans.get(e.field, 0) > 1:
                # Several rules ask about this field: scan it once per decision.
                self.uses_scan = True
                found = f"_scanf(M, sc, {self.const(e.field)}, {self.expr(e.value)})"
            else:
                found = f"M_scan({self.expr(e.value)})"
            return f"(not {names}.isdisjoint({found}))"
        if isinstance(e, ir.CountOf):
            return f"M.count({self.expr(e.value)}, {self.const(e.matchers)})"
        if isinstance(e, ir.Fn):
            args = ", ".join(self.expr(a) for a in e.args)
            if e.name == "__set__":
                return f"_mkset({args})"
            if e.name == "__list__":
                return f"_mklist({args})"
            if e.name == ir.STRICT_ARGS:
                return f"_strict_args(req, {args})"
            if e.name == "len" and len(e.args) == 1:
                return LEN.format(v=args)
            return f"F_{_pick(e.name, FUNCTIONS)}({args})"
        if isinstance(e, ir.Has):
            return f"_has(req, {self.const(e.root)}, {self.const(e.keys)}, name)"
        if isinstance(e, ir.Index):
            if isinstance(e.key, ir.Const) and type(e.key.value) in (str, int):
                template = INDEX_DICT if type(e.key.value) is str else INDEX_SEQ
                return template.format(obj=self.expr(e.obj), k=self.const(e.key.value))
            return f"_index({self.expr(e.obj)}, {self.expr(e.key)})"
        if isinstance(e, ir.Approved):
            if e.count > 1:
                return f"_approved_by(st, {self.const(e.group)}, {e.count!r})"
            return f"_approved(st, {self.const(e.group)})"
        if isinstance(e, ir.Previously):
            pairs = ", ".join(f"({self.const(k)}, {self.expr(v)})" for k, v in e.fields)
            fields = f"({pairs},)" if e.fields else "()"
            now = "v_now" if e.within is not None else "None"
            return (f"_previously(st, {now}, {self.const(e.tool)}, {fields}, "
                    f"{self.const(e.within)})")
        if isinstance(e, ir.Labels):
            return "_labels(req, st)"
        if isinstance(e, ir.Counter):
            # support.counter, inline: the key is checked to be a string like any str field.
            key = self.expr(e.key if e.key is not None else _SESSION_ID)
            return f"(0 if st is None else st.counters.get(({self.const(e.counter)}, {key}), 0))"
        if isinstance(e, ir.Estimate):
            field = self.const(e.field)
            return (f"(0 if (t := req.get('estimate')) is None or (t := t.get({field})) is None "
                    f"else {_check(e.check)}(t))")
        raise EmitError(f"unknown IR node {type(e).__name__}")

    def condition(self, e: ir.Expr) -> str:
        """A rule's condition: inline, or through the interpreter when too deep to inline."""
        try:
            code = self.expr(e)
        except RecursionError:  # only an IR that did not come from the checker is this deep
            return self._interpreted(e)
        # Each bracket level takes a character: short code cannot nest too deeply.
        if len(code) > MAX_INLINE_DEPTH and ir.depth(e) > MAX_INLINE_DEPTH:
            return self._interpreted(e)
        return code

    def _interpreted(self, e: ir.Expr) -> str:
        return f"_holds({self._hoisted(('held', id(e)), Held(e))}, req, st, name, tags, stage, M)"

    def path(self, p: ir.Path) -> str:
        if p.root == "tool" and p.keys == ("name",):
            return "name"
        if p.root == "tool" and p.keys == ("tags",):
            return "tags"
        if p.root == "stage" and not p.keys:
            return "stage"
        if p.root == "now" and not p.keys:
            return "v_now"  # read once per decision, in the prelude (see `generate`)
        hoisted = self.root_vars.get(p.root)  # checked once, where it is hoisted
        out = hoisted or f"req[{self.const(p.root)}]"
        for i, key in enumerate(p.keys):
            out = f"{out if i == 0 and hoisted else _exact_dict(out)}[{self.const(key)}]"
        return out


def _exact_dict(value: str) -> str:
    """`value` if it is exactly a dict, else None, whose subscript raises: a field is read
    through `[]` only where the interpreter would read the same (it looks a key up with `in`
    in a dict, never through a subclass's `__missing__`, and finds nothing in other
    mappings), and the request is not changed (a `defaultdict` would gain the key)."""
    return f"(t if (t := {value}).__class__ is dict else None)"


def _numeric_read(var: str, check: str) -> list[str]:
    """Prelude lines checking a hoisted numeric read: inline for an int or a finite Decimal
    in range (and not negative, for usage), the memo of converted floats for a float, else
    the check function, which converts or raises."""
    base, unsigned = NUMERIC[check]
    low = "0 <=" if unsigned else "_NIB <"
    fix = f"{var} = C_{check}({var})"
    lines = [f"if {var}.__class__ is int:", f"    if not {low} {var} < _IB: {fix}"]
    if base == "num":
        memo = "_FC" if unsigned else "_F"
        sign = f" and not {var}.is_signed()" if unsigned else ""
        lines += [f"elif {var}.__class__ is float: {var} = {memo}.get({var}) or C_{check}({var})",
                  f"elif not ({var}.__class__ is _Decimal and {var}.is_finite() and "
                  f"{var}.adjusted() < {MAX_NUMBER_DIGITS}{sign}): {fix}"]
    else:
        lines.append(f"else: {fix}")
    return lines


def _estimate_read(var: str, check: str) -> str:
    """An estimate value, checked; a float cost from the memo of accepted ones."""
    if check == "cost":
        return f"({var}.__class__ is float and _FC.get({var}) or C_cost({var}))"
    return f"C_{check}({var})"


def _uses_now(rule: ir.Rule) -> bool:
    return rule.cond is not None and any(
        (isinstance(n, ir.Path) and n.root == "now" and not n.keys)
        or (isinstance(n, ir.Previously) and n.within is not None) for n in ir.walk(rule.cond))


def generate(rules: Sequence[ir.Rule], matchers: Any, name: str = "bucket") -> Bucket:
    """Generate and compile the bucket function for these candidate rules.

    Raises `EmitError` if the source fails its check (a bug in the emitter, or an IR that
    did not come from the checker, such as a tampered saved policy)."""
    return load(emit_code(rules, name), rules, matchers, name)


def emit_code(rules: Sequence[ir.Rule], name: str = "bucket") -> BucketCode:
    """The generated function `name` of a bucket, as text (not checked, not compiled: `load`
    does both)."""
    out = _emit(rules, name)
    if out is None:
        return BucketCode(tuple(r.index for r in rules), "", {}, {}, (), ())
    return BucketCode(tuple(r.index for r in rules), out.source, out.line_map, out.consts,
                      out.bound, out.locals)


def load(code: BucketCode, rules: Sequence[ir.Rule], matchers: Any,
         name: str = "bucket") -> Bucket:
    """Compile the generated code of a bucket of `rules` (in the code's order) into its
    function `name`, trusting nothing in `code`: it may come from a saved file. The source
    is parsed back and held to the emitter's shape (`emitcheck.verify`), its constants are
    rebuilt from their recipes, and what was checked is what is compiled. Raises
    `EmitError`."""
    if tuple(r.index for r in rules) != code.rules:
        raise EmitError("generated code is for other rules")
    base_mask = _base_mask(rules)
    if not code.source:
        if any(r.cond is not None for r in rules):
            raise EmitError("generated code is missing")
        return Bucket(tuple(rules), base_mask, None, "", {})
    ns = namespace(matchers)
    for const, spec in code.consts.items():
        if not _numbered(const, _CONST_PREFIXES):
            raise EmitError(f"bad constant name {const!r}")
        ns[const] = _rebuild(spec)
    if "M_scan" in code.bound:
        ns["M_scan"] = matchers.scanner.scan  # the RE2 Set's scan itself, no wrapper
    for bound in code.bound:
        if bound not in ns or bound.startswith("__"):
            raise EmitError(f"generated code binds unknown name {bound!r}")
    for local in code.locals:
        if local != "v_now" and not _numbered(local, _LOCAL_PREFIXES):
            raise EmitError(f"generated code assigns {local!r}")
    conditional = sum(rule.cond is not None for rule in rules)
    tree = emitcheck.verify(code.source, name, code.bound, code.locals, conditional)
    compiled = compile(tree, f"<charter:{name}>", "exec", dont_inherit=True)
    exec(compiled, ns)  # noqa: S102 - verified source over constants rebuilt from data
    return Bucket(tuple(rules), base_mask, ns[name], code.source, dict(code.line_map))


# The names generated code may give its constants (`K` + a number) and assign (`v`, `r_` or
# `te` + a number, and `v_now`): `re.fullmatch(r"K[0-9]{1,6}")` and
# `(?:v|r_|te)[0-9]{1,6}|v_now`, checked without compiling either pattern in every process
# that loads saved code (a hook call: ~0.4 ms). The prefixes start with distinct letters, so
# at most one of them begins a name.
_CONST_PREFIXES = ("K",)
_LOCAL_PREFIXES = ("v", "r_", "te")


def _numbered(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether `name` is one of `prefixes` then 1 to 6 ASCII digits, and nothing else."""
    for prefix in prefixes:
        if name.startswith(prefix):
            number = name[len(prefix):]
            return 0 < len(number) <= 6 and number.isascii() and number.isdigit()
    return False


def _rebuild(spec: ConstSpec) -> object:
    try:
        if isinstance(spec, Value):
            return spec.value
        if isinstance(spec, LikeTest):
            return support.like_test(spec.pattern)
        if isinstance(spec, SearchTest):
            return support.search_test(spec.pattern)
        if isinstance(spec, Held):
            return spec.expr
    except Exception as err:  # noqa: BLE001 - a bad pattern in a saved file
        raise EmitError(f"bad constant in generated code: {err!r}") from None
    raise EmitError(f"unknown constant {type(spec).__name__}")


def check_rules(rules: Sequence[ir.Rule]) -> None:
    """Emit and compile (not run) the code of these rules, as `generate` would.

    The compiler calls this on every rule so that a policy whose generated code would fail
    is rejected when it is compiled, not denied at every decision. Raises `EmitError`,
    `SyntaxError`, `ValueError` or `RecursionError` on failure."""
    out = _emit(rules, "bucket")
    if out is not None:
        compile(out.source, "<charter:check>", "exec", dont_inherit=True)


@cache
def emitter_id() -> str:
    """Names the code generator: a digest of the modules that decide what it writes.
    Generated code saved with a policy is reused only by the same emitter ("": unknown,
    never reused).

    The digest guards against a stale emitter, not an adversary (saved code is checked by
    `emitcheck.verify` whoever wrote it). SHA-256 without OpenSSL (`stdlib.digest`, which a
    hook call has loaded already), cut to 16 hex digits: importing hashlib cost ~2 ms of
    every fresh process (issue 11 cold start), and zlib, which two checksums used before,
    ~0.3 ms."""
    try:
        text = b"".join(read_bytes(str(m.__file__)) for m in (emitcheck, kinds, ops))
        text += read_bytes(__file__)
    except OSError:
        return ""
    return sha256(text).hexdigest()[:16]


class _Emitted(msgspec.Struct, frozen=True):
    source: str
    base_mask: int
    line_map: dict[int, int]
    consts: dict[str, ConstSpec]
    bound: tuple[str, ...]
    locals: tuple[str, ...]


def _base_mask(rules: Sequence[ir.Rule]) -> int:
    return sum(1 << bit for bit, rule in enumerate(rules) if rule.cond is None)


#: Names of the namespace every bucket function is generated against (`ops.namespace`).
_NAMESPACE = frozenset(namespace(None))


def _emit(rules: Sequence[ir.Rule], name: str) -> _Emitted | None:
    """The source of the bucket function and the recipe of its constants; None when every
    rule is unconditional."""
    if not name.isidentifier():
        raise EmitError(f"bad function name {name!r}")
    em = Emitter()
    always: dict[ir.Path, None] = {}
    for rule in rules:
        if rule.cond is not None:
            always.update(dict.fromkeys(always_evaluated(rule.cond)))
    em.hoist(sorted(always, key=lambda p: p.check == "any"))
    if "v_now = _now(req)" not in em.prelude and any(_uses_now(r) for r in rules):
        em.prelude.insert(0, "v_now = _now(req)")  # one clock read per decision
    for rule in rules:
        for node in ir.walk(rule.cond) if rule.cond is not None else ():
            if isinstance(node, ir.Contains):
                em.scans[node.field] = em.scans.get(node.field, 0) + 1
    body: list[str] = []
    line_map: dict[int, int] = {}
    for bit, rule in enumerate(rules):
        if rule.cond is None:
            continue
        # Policy text reaches a comment only through `repr`: no line break can end it.
        kind = _pick(rule.kind, KINDS)
        body.append(f"    # rule {rule.id!r} ({kind}) {rule.file!r}:{int(rule.line)}")
        line_map[len(body) + 3] = rule.index
        body.append(f"    if {em.condition(rule.cond)}:")
        line_map[len(body) + 3] = rule.index
        body.append(f"        m |= {em.const(1 << bit)}")
    if not body:
        return None
    base_mask = _base_mask(rules)
    start = f"    m = {em.const(base_mask)}"
    names = _NAMESPACE | em.consts.keys()
    if em.scans:
        names |= {"M_scan"}
    text = "\n".join([*em.prelude, *body, start])
    # Helpers and constants become default arguments: locals are faster than globals.
    used = set(re.findall(_WORD, text))
    bound = tuple(k for k in (*_ORDER, *em.consts, "M_scan") if k in names and k in used)
    params = "".join(f", {k}={k}" for k in bound)
    head = [f"def {name}(req, st, name, tags, stage{params}):"]
    if em.uses_scan:
        head.append("    sc = {}")
    head.extend(f"    {line}" for line in em.prelude)
    head.append(start)
    offset = len(head) - 3
    line_map = {line + offset: where for line, where in line_map.items()}
    source = "\n".join([*head, *body, "    return m", ""])
    locals_ = tuple(dict.fromkeys((*em.hoisted.values(), *em.root_vars.values(),
                                   *(f"te{i}" for i in range(em.temps)))))
    return _Emitted(source, base_mask, line_map, dict(em.consts), bound, locals_)


#: The order bound helpers are passed in (the namespace's own order).
_ORDER = tuple(k for k in namespace(None) if not k.startswith("__"))
