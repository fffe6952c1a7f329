"""A property's `where` clause turned into generators, so that it steers rather than filters.

Filtering alone cannot reach `where args.command == "rm -rf /"`: random text never equals it.
So the conjuncts of the clause that pin a field down become that field's strategy:

- `F == C`, `F in {C1, C2}`: the literal values;
- `F < C`, `F >= C`...: numbers within the bounds;
- `F like "glob*"`: text filled into the glob's stars;
- `F matches r"re"`: text drawn from the regex, when the pattern is plain enough that
  Hypothesis's reading of it (Python's) and RE2's agree (see `simple_regex`); otherwise the
  clause only filters;
- `"x" in F`: text or lists that hold `x`;
- `has(F)` and every field above: the field is always generated.

The whole clause still filters each request afterwards (with RE2, as at run time), so a
steer that is too generous (a disjunction, a pattern read differently) costs examples, never
correctness. Conjuncts under `or`/`not` are not used for steering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import re2
from hypothesis import strategies as st

from charter.engine import ir
from charter.engine.support import glob_parts

Number = int | Decimal
_TEXT = st.text(st.characters(codec="ascii", categories=("L", "N", "P", "Zs")), max_size=6)
_REGEX_ALPHABET = st.characters(codec="ascii", categories=("L", "N", "P", "S", "Zs"))
# RE2 syntax that Python's `re` (which Hypothesis reads patterns with) reads differently or
# not at all: POSIX classes, Unicode classes, \z \Q \C, named groups, flags groups, lookaround.
_UNSAFE = ("[:", "\\p", "\\P", "\\z", "\\Q", "\\E", "\\C", "(?P", "(?<", "(?=", "(?!", "(?s",
           "(?m", "(?U", "\\x{", "\\A", "\\Z", "\\pN")
_MAX_PATTERN = 200
_CMP_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass
class Steer:
    """What the `where` clause says about one field."""

    values: list[object] = field(default_factory=list)
    low: tuple[Number, bool] | None = None  # (bound, strict)
    high: tuple[Number, bool] | None = None
    globs: list[str] = field(default_factory=list)
    regexes: list[str] = field(default_factory=list)
    members: list[object] = field(default_factory=list)  # `"x" in F`

    def strategy(self, kind: str, fits: Callable[[object], bool]) -> st.SearchStrategy[Any] | None:
        """Values for a field of primitive type `kind` (or a collection of strings when
        `kind` is "list"), or None when this steer says nothing usable about it. `fits`
        tells which literal values the field's type can hold."""
        values = [v for v in self.values if fits(v)]
        if values:
            return st.sampled_from(values)
        if kind in ("int", "decimal") and (self.low or self.high):
            return self._numbers(kind == "int")
        if kind in ("str", "any"):
            return self._text()
        if kind == "list" and self.members:
            return st.lists(_TEXT, max_size=2).map(lambda xs: [*self.members, *xs])
        return None

    def _numbers(self, integral: bool) -> st.SearchStrategy[Any]:
        step: Number = 1 if integral else Decimal("0.01")
        lo = None if self.low is None else self.low[0] + (step if self.low[1] else 0)
        hi = None if self.high is None else self.high[0] - (step if self.high[1] else 0)
        if lo is not None and hi is not None and lo > hi:
            return st.nothing()
        if integral:
            return st.integers(min_value=_int_bound(lo, up=True), max_value=_int_bound(hi, False))
        return st.decimals(min_value=lo, max_value=hi, places=2, allow_nan=False,
                           allow_infinity=False)

    def _text(self) -> st.SearchStrategy[Any] | None:
        if self.globs:
            return _from_glob(self.globs[0])
        for pattern in self.regexes:
            if simple_regex(pattern):
                return _from_regex(pattern)
        if self.members and all(isinstance(m, str) for m in self.members):
            joined = "".join(str(m) for m in self.members)
            return st.tuples(_TEXT, _TEXT).map(lambda ab: ab[0] + joined + ab[1])
        return None


@dataclass
class Steering:
    """The steers of one `where` clause by field path (`args.command`, `agent.team`)."""

    fields: dict[str, Steer] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)

    def at(self, path: str) -> Steer:
        self.required.add(path)
        return self.fields.setdefault(path, Steer())

    def requires(self, path: str) -> bool:
        return path in self.required

    def below(self, prefix: str) -> list[str]:
        """The field names directly below `prefix` that the clause needs (`agent` → team)."""
        dotted = prefix + "."
        return sorted({p[len(dotted):].split(".")[0] for p in self.required
                       if p.startswith(dotted)})


def steer(cond: ir.Expr | None) -> Steering:
    """The steering of a `where` clause's lowered condition."""
    out = Steering()
    for part in _conjuncts(cond):
        _one(part, out)
    return out


def simple_regex(pattern: str) -> bool:
    """Whether `pattern` is plain enough to generate from: RE2 accepts it and it uses only
    syntax that Python's `re` reads the same way."""
    if len(pattern) > _MAX_PATTERN or any(u in pattern for u in _UNSAFE):
        return False
    if "(?" in pattern.replace("(?:", "").replace("(?i)", ""):
        return False
    try:
        re2.compile(pattern)
    except Exception:  # noqa: BLE001 - any RE2 rejection means "do not steer"
        return False
    return True


def _conjuncts(e: ir.Expr | None) -> list[ir.Expr]:
    if e is None:
        return []
    if isinstance(e, ir.BoolOp) and e.op == "and":
        return [c for item in e.items for c in _conjuncts(item)]
    return [e]


def _path(e: ir.Expr) -> str | None:
    if isinstance(e, ir.Path):
        return e.text
    if isinstance(e, ir.Estimate):
        return f"estimate.{e.field}"
    return None


def _one(e: ir.Expr, out: Steering) -> None:  # noqa: C901 - one branch per clause form
    if isinstance(e, ir.Has):
        out.required.add(".".join((e.root, *e.keys)))
    elif isinstance(e, ir.Cmp):
        left, right, op = e.left, e.right, str(e.op)
        if isinstance(left, ir.Const):
            left, right, op = right, left, _CMP_FLIP[op]
        path = _path(left)
        if path is None or not isinstance(right, ir.Const):
            return
        _compare(out.at(path), op, right.value)
    elif isinstance(e, ir.In) and not e.negate:
        item_path, coll_path = _path(e.item), _path(e.coll)
        if item_path and isinstance(e.coll, ir.Const) and isinstance(
                e.coll.value, frozenset | tuple):
            out.at(item_path).values.extend(sorted(e.coll.value, key=repr))
        elif coll_path and isinstance(e.item, ir.Const):
            out.at(coll_path).members.append(e.item.value)
    elif isinstance(e, ir.Like):
        path = _path(e.value)
        if path:
            out.at(path).globs.append(e.pattern)
    elif isinstance(e, ir.Matches):
        path = _path(e.value)
        if path:
            out.at(path).regexes.append(e.pattern)


def _compare(s: Steer, op: str, value: object) -> None:
    if op == "==":
        s.values.append(value)
        return
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return
    if op in (">", ">="):
        s.low = _tighter(s.low, (value, op == ">"), max)
    elif op in ("<", "<="):
        s.high = _tighter(s.high, (value, op == "<"), min)


def _tighter(old: tuple[Number, bool] | None, new: tuple[Number, bool],
             pick: Any) -> tuple[Number, bool]:
    if old is None or old[0] == new[0]:
        return new if old is None or new[1] else old
    return old if pick(old[0], new[0]) == old[0] else new


def _int_bound(bound: Number | None, up: bool) -> int | None:
    if bound is None:
        return None
    whole = int(bound)
    if isinstance(bound, Decimal) and bound != whole and up and bound > 0:
        return whole + 1
    if isinstance(bound, Decimal) and bound != whole and not up and bound < 0:
        return whole - 1
    return whole


def _from_regex(pattern: str) -> st.SearchStrategy[str]:
    # Python's `$` also matches before a final newline, and Hypothesis writes one there; RE2's
    # does not. An anchored pattern is therefore generated as a full match of its body.
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"):
        return st.from_regex(f"(?:{pattern[1:-1]})", fullmatch=True, alphabet=_REGEX_ALPHABET)
    return st.from_regex(pattern, alphabet=_REGEX_ALPHABET)


def _from_glob(glob: str) -> st.SearchStrategy[str]:
    parts = glob_parts(glob)
    gaps = st.tuples(*[_TEXT for _ in parts[1:]])
    return gaps.map(lambda fill: parts[0] + "".join(g + p for g, p in zip(fill, parts[1:],
                                                                           strict=True)))
