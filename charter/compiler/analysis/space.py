"""The exact fragment: a finite set of request points that stands for every request.

A rule's condition reads request fields (paths), the session's labels and the approvals
presented. For the atoms of the decidable fragment (comparisons and set membership with
constants, `has`, booleans, `like` globs, labels, `approved`), each field's values fall into
finitely many classes on which every atom is constant: below, at and between the numeric
constants; each string constant, each glob's strings, and "anything else"; absent; of the
wrong type (a request error). One representative per class per field, and the product over
the fields a question reads, is then an exhaustive test: the region of a rule (the points
where it matches) is empty, or contained in another's, exactly when it is on these points.

Rules are evaluated on the points by the reference interpreter itself, so the meaning of
every atom (decimal comparison, type checks, request errors) is the language's, not a model
of it. Atoms outside the fragment (functions, regexes, matchers, arithmetic, counters,
history) still get sample values (their constants and neighbours), which can show a
witness but never prove an absence: a `Space` that holds one is not `exact`, and the atom is
named for the inconclusive finding (I0599).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from charter.engine import ir

PathKey = tuple[str, tuple[str, ...]]

#: Fields fixed by the dispatch cell (the tool's name and tags, the stage): not dimensions.
_CELL_FIELDS = {("tool", ("name",)), ("tool", ("tags",)), ("stage", ())}
#: Most points one question enumerates; beyond it, a seeded sample (and not exact).
MAX_POINTS = 4096
_SUBSETS_UP_TO = 4  # all subsets of up to this many list members, labels or groups
_OTHER = "zz-other"
#: Text the standard detectors recognise, so `contains pii.card` can come true.
_MATCHER_SAMPLES = {
    "email": "jane@customer.org", "phone": "+1 415 555 0100", "card": "4111 1111 1111 1111",
    "ssn": "123-45-6789", "iban": "DE89 3704 0044 0532 0130 00", "ip": "10.1.2.3",
    "aws": "AKIAIOSFODNN7EXAMPLE", "key": "-----BEGIN RSA PRIVATE KEY-----",
}
_DEFAULTS: dict[str, object] = {
    "num": 1, "int": 1, "cost": 0, "count": 1, "str": "a", "bool": True, "coll": [],
    "map": {}, "any": "a", "time": "2026-01-05T12:00:00Z", "dur": 60,
}
_NUMERIC = {"num", "int", "cost", "count", "dur"}


class _Absent:
    """A field the request leaves out."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


@dataclass
class Facts:
    """What one rule's condition says about each field, and whether it stays in the exact
    fragment (`inexact` names the first atom that does not)."""

    checks: dict[PathKey, str] = field(default_factory=dict)
    numbers: dict[PathKey, set[object]] = field(default_factory=dict)
    strings: dict[PathKey, set[str]] = field(default_factory=dict)
    globs: dict[PathKey, set[str]] = field(default_factory=dict)
    members: dict[PathKey, set[object]] = field(default_factory=dict)
    samples: dict[PathKey, list[object]] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    inexact: str | None = None
    reads_cell: bool = False  # reads the tool's name or tags, or the stage

    def merge(self, other: Facts) -> Facts:
        out = Facts(inexact=self.inexact or other.inexact,
                    reads_cell=self.reads_cell or other.reads_cell)
        for name in ("checks", "numbers", "strings", "globs", "members", "samples"):
            mine, theirs, merged = getattr(self, name), getattr(other, name), getattr(out, name)
            for key in (*mine, *theirs):
                if name == "checks":
                    merged[key] = mine.get(key) or theirs[key]
                elif name == "samples":
                    merged[key] = [*mine.get(key, ()), *theirs.get(key, ())]
                else:
                    merged[key] = set(mine.get(key, ())) | set(theirs.get(key, ()))
        out.labels = self.labels | other.labels
        out.groups = self.groups | other.groups
        return out


def facts_of(cond: ir.Expr | None) -> Facts:
    """The facts of a rule condition (None: no condition)."""
    facts = Facts()
    if cond is not None:
        _walk(cond, facts, exact=True)
    return facts


def _key(e: ir.Expr) -> PathKey | None:
    if isinstance(e, ir.Path):
        return (e.root, e.keys)
    if isinstance(e, ir.Estimate):
        return ("estimate", (e.field,))
    return None


def _check(e: ir.Expr) -> str:
    return e.check if isinstance(e, ir.Path | ir.Estimate) else "any"


def _walk(e: ir.Expr, f: Facts, exact: bool) -> None:  # noqa: C901 - one branch per node kind
    def inexact(what: str) -> None:
        if f.inexact is None:
            f.inexact = what

    key = _key(e)
    if key is not None:
        if key in _CELL_FIELDS:
            f.reads_cell = True
            return
        f.checks.setdefault(key, _check(e))
        if key == ("now", ()) and exact:
            inexact("now")
        return
    if isinstance(e, ir.Const):
        return
    if isinstance(e, ir.Has):
        hk = (e.root, e.keys)
        if hk in _CELL_FIELDS or e.root == "tool":
            f.reads_cell = True
            return
        f.checks.setdefault(hk, "any")
        return
    if isinstance(e, ir.Not):
        _walk(e.operand, f, exact)
        return
    if isinstance(e, ir.BoolOp):
        for item in e.items:
            _walk(item, f, exact)
        return
    if isinstance(e, ir.Cmp):
        lk, rk = _key(e.left), _key(e.right)
        if lk is not None and isinstance(e.right, ir.Const):
            _const_cmp(lk, e.op, e.right.value, e.left, f, exact)
        elif rk is not None and isinstance(e.left, ir.Const):
            _const_cmp(rk, e.op, e.left.value, e.right, f, exact)
        else:
            _opaque(e, f, exact)
            if exact:
                inexact(_atom_text(e))
            return
        _walk(e.left, f, exact)
        _walk(e.right, f, exact)
        return
    if isinstance(e, ir.In):
        ik, ck = _key(e.item), _key(e.coll)
        if ik is not None and isinstance(e.coll, ir.Const):
            values = e.coll.value
            if isinstance(values, frozenset | tuple | list):
                for v in values:
                    _const_cmp(ik, "==", v, e.item, f, exact)
            else:
                _opaque(e, f, exact)
                if exact:
                    inexact(_atom_text(e))
            _walk(e.item, f, exact)
            return
        if ck is not None and isinstance(e.item, ir.Const):
            _walk(e.coll, f, exact)
            if ck in _CELL_FIELDS:
                return
            f.members.setdefault(ck, set()).add(_hashable(e.item.value))
            if f.checks.get(ck) not in ("coll", "any") and exact:
                inexact(_atom_text(e))
            return
        if isinstance(e.coll, ir.Labels) and isinstance(e.item, ir.Const) \
                and isinstance(e.item.value, str):
            f.labels.add(e.item.value)
            return
        _opaque(e, f, exact)
        if exact:
            inexact(_atom_text(e))
        return
    if isinstance(e, ir.Like):
        vk = _key(e.value)
        if vk is not None:
            _walk(e.value, f, exact)
            if vk not in _CELL_FIELDS:
                f.globs.setdefault(vk, set()).add(e.pattern)
            return
        _opaque(e, f, exact)
        if exact:
            inexact(_atom_text(e))
        return
    if isinstance(e, ir.Approved):
        if e.group is not None and e.count == 1:
            f.groups.add(e.group)
            return
        if exact:
            inexact(_atom_text(e))
        if e.group is not None:
            f.groups.add(e.group)
        return
    if isinstance(e, ir.Labels):
        if exact:
            inexact("session.labels")
        return
    _opaque(e, f, exact)
    if exact:
        inexact(_atom_text(e))


def nodes(e: object) -> Iterator[object]:
    """Every node inside `e`, constants included (`ir.walk` leaves nested constants out)."""
    yield e
    if isinstance(e, ir.Const) or not hasattr(e, "__struct_fields__"):
        return
    for name in e.__struct_fields__:
        value = getattr(e, name)
        for item in value if isinstance(value, tuple) else (value,):
            if hasattr(item, "__struct_fields__"):
                yield from nodes(item)


def _opaque(e: ir.Expr, f: Facts, exact: bool) -> None:
    """An atom outside the fragment: its fields get sample values from its constants."""
    consts = [n.value for n in nodes(e) if isinstance(n, ir.Const)]
    for node in nodes(e):
        if isinstance(node, ir.Labels):
            for c in consts:
                if isinstance(c, str):
                    f.labels.add(c)
        if isinstance(node, ir.Approved) and node.group is not None:
            f.groups.add(node.group)
        key = _key(node) if isinstance(node, ir.Path | ir.Estimate) else None
        if key is None or key in _CELL_FIELDS:
            if key is not None:
                f.reads_cell = True
            continue
        check = _check(node)  # type: ignore[arg-type]
        f.checks.setdefault(key, check)
        out = f.samples.setdefault(key, [])
        for c in consts:
            out.extend(v for v in _sample_values(c) if _fits(check, v))
        if isinstance(e, ir.Contains | ir.CountOf):
            out.extend(_MATCHER_SAMPLES.get(m.split(".")[-1], "x") for m in e.matchers)
            out.append("plain text")
        if any(isinstance(n, ir.Fn) for n in nodes(e)):
            for fn in (n for n in nodes(e) if isinstance(n, ir.Fn)):
                for c in consts:
                    if isinstance(c, str):
                        out.extend(_fn_samples(fn.name, c))
                    elif fn.name == "len" and isinstance(c, int) and not isinstance(c, bool):
                        out.extend("a" * k for k in (c - 1, c, c + 1) if 0 <= k <= 64)
            out.extend(v for v in ("", "a", 0, 1) if _fits(f.checks[key], v))


def _fits(check: str, v: object) -> bool:
    """Is `v` a value of the field's type (samples of another type only make errors)?"""
    if check in ("str",):
        return isinstance(v, str)
    if check in _NUMERIC or check == "cost":
        return isinstance(v, int | Decimal) and not isinstance(v, bool)
    if check == "bool":
        return isinstance(v, bool)
    return True


def _fn_samples(name: str, c: str) -> list[object]:
    if name == "domain_of":
        return [f"user@{c}", "user@other.org"]
    if name == "url_host":
        return [f"https://{c}/page", "https://other.org/page"]
    if name in ("startswith", "endswith", "contains_text"):
        return [c + "x", "x" + c, "x"]
    if name in ("lower", "upper"):
        return [c.upper(), c.lower()]
    return []


def _sample_values(c: object) -> list[object]:
    if isinstance(c, bool):
        return [c, not c]
    if isinstance(c, int | Decimal):
        return [0, c - 1, c, c + 1]
    if isinstance(c, str):
        return [c, c + "x"]
    if isinstance(c, frozenset | tuple):
        return [v for item in c for v in _sample_values(item)][:8]
    return []


def _hashable(v: object) -> object:
    return v if not isinstance(v, list | dict) else repr(v)


def _atom_text(e: ir.Expr) -> str:
    texts = [n.text for n in ir.walk(e) if isinstance(n, ir.Path)]
    kind = type(e).__name__
    if isinstance(e, ir.Fn):
        kind = f"{e.name}(...)"
    elif isinstance(e, ir.Matches):
        kind = "matches"
    elif isinstance(e, ir.Contains):
        kind = "contains " + ", ".join(e.matchers)
    elif isinstance(e, ir.Previously):
        kind = "previously"
    elif isinstance(e, ir.Counter):
        kind = "counter usage"
    elif isinstance(e, ir.Arith):
        kind = "arithmetic"
    elif isinstance(e, ir.Cmp):
        fns = [n for n in ir.walk(e) if isinstance(n, ir.Fn | ir.Arith | ir.Counter)]
        if fns:
            return _atom_text(fns[0])
        kind = "comparison of two fields"
    return f"{kind} on {', '.join(dict.fromkeys(texts))}" if texts else kind


def _const_cmp(key: PathKey, op: str, value: object, side: ir.Expr, f: Facts,
               exact: bool) -> None:
    if key in _CELL_FIELDS:
        f.reads_cell = True
        return
    check = _check(side)
    f.checks.setdefault(key, check)
    if isinstance(value, bool):
        return  # booleans: both values are always representatives
    if isinstance(value, int | Decimal | Fraction):
        if isinstance(value, Fraction) and exact and f.inexact is None:
            f.inexact = f"an exact fraction compared with {'.'.join((key[0], *key[1]))}"
        f.numbers.setdefault(key, set()).add(value)
        return
    if isinstance(value, timedelta):
        f.numbers.setdefault(key, set()).add(Decimal(str(value.total_seconds())))
        return
    if isinstance(value, str):
        if op not in ("==", "!=") and exact and f.inexact is None:
            f.inexact = f"string ordering on {'.'.join((key[0], *key[1]))}"
        f.strings.setdefault(key, set()).add(value)
        return
    if exact and f.inexact is None:
        f.inexact = f"a {type(value).__name__} constant compared with {'.'.join((key[0], *key[1]))}"
    f.samples.setdefault(key, []).append(value)


# ── representatives ──────────────────────────────────────────────────────────


@dataclass
class Space:
    """The fields (and state) a question reads, each with its representative values."""

    dims: list[tuple[PathKey, list[object]]]
    labels: list[frozenset[str]]
    groups: list[frozenset[str]]
    exact: bool
    inexact: str | None

    @property
    def size(self) -> int:
        n = len(self.labels) * len(self.groups)
        for _, reps in self.dims:
            n *= len(reps)
        return n

    def points(self, seed: int = 0) -> Iterator[Point]:
        """Every point (or, beyond MAX_POINTS, a seeded sample with the corners first)."""
        axes: list[list[object]] = [reps for _, reps in self.dims]
        axes.append(list(self.labels))
        axes.append(list(self.groups))
        keys = [k for k, _ in self.dims]
        if self.size <= MAX_POINTS:
            for combo in itertools.product(*axes):
                yield _point(keys, list(combo))
            return
        # Too many to try them all: the point of every axis's first value, then each axis
        # varied alone from it (most questions turn on one or two fields), then random.
        base = [axis[0] for axis in axes]
        yield _point(keys, base)
        sweep = 1
        for n, axis in enumerate(axes):
            for value in axis[1:]:
                sweep += 1
                yield _point(keys, [*base[:n], value, *base[n + 1:]])
        rng = random.Random(seed)
        for _ in range(max(0, MAX_POINTS - sweep)):
            yield _point(keys, [rng.choice(axis) for axis in axes])


def _point(keys: list[PathKey], combo: list[object]) -> Point:
    labels, groups = combo[-2], combo[-1]
    assert isinstance(labels, frozenset) and isinstance(groups, frozenset)
    return Point(dict(zip(keys, combo[:-2], strict=True)), labels, groups)


@dataclass(frozen=True)
class Point:
    """One request (its fields by path; ABSENT: left out) and the state beside it."""

    fields: dict[PathKey, object]
    labels: frozenset[str]
    groups: frozenset[str]


def space_of(facts: Facts) -> Space:
    """The representatives of the fields in `facts`."""
    inexact = facts.inexact
    # The tool's name and tags and the stage are the cell's, never a point's.
    keys = sorted(k for k in facts.checks if k not in _CELL_FIELDS)
    for a in keys:
        for b in keys:
            if a != b and a[0] == b[0] and b[1][: len(a[1])] == a[1]:
                inexact = inexact or f"{'.'.join((a[0], *a[1]))} and a field inside it"
    dims: list[tuple[PathKey, list[object]]] = []
    for key in keys:
        reps, exact_field = _reps(key, facts)
        if not exact_field:
            inexact = inexact or f"several globs on {'.'.join((key[0], *key[1]))}"
        dims.append((key, reps))
    labels = _subsets(facts.labels)
    groups = [frozenset(), *(frozenset({g}) for g in sorted(facts.groups))]
    if len(facts.labels) > _SUBSETS_UP_TO:
        inexact = inexact or "many session labels"
    space = Space(dims, labels, groups, exact=inexact is None, inexact=inexact)
    if space.size > MAX_POINTS:
        space.exact = False
        space.inexact = space.inexact or f"more than {MAX_POINTS} points"
    return space


def _subsets(items: set[str]) -> list[frozenset[str]]:
    ordered = sorted(items)
    if len(ordered) <= _SUBSETS_UP_TO:
        return [frozenset(c) for n in range(len(ordered) + 1)
                for c in itertools.combinations(ordered, n)]
    return [frozenset(), *(frozenset({x}) for x in ordered), frozenset(ordered)]


def _reps(key: PathKey, f: Facts) -> tuple[list[object], bool]:
    check = f.checks.get(key, "any")
    out: list[object] = []
    exact = True
    numbers = f.numbers.get(key, set())
    strings = f.strings.get(key, set())
    globs = f.globs.get(key, set())
    members = f.members.get(key, set())
    if numbers:
        out.extend(_number_reps(numbers, integral=check in ("int", "count")))
    if strings or globs:
        out.extend(sorted(strings))
        for g in sorted(globs):
            out.extend([g.replace("*", ""), g.replace("*", "q")])
        if len(globs) > 1:
            exact = False
            out.extend(_glob_mixes(sorted(globs)))
        out.append(_OTHER)
    if members and check == "str":  # `"x" in args.s`: a substring
        for m in sorted(members, key=repr):
            out.extend([m, f"a{m}a"] if isinstance(m, str) else [])
        out.append(_OTHER)
    elif members:
        items = sorted(members, key=repr)
        if len(items) <= _SUBSETS_UP_TO:
            out.extend([list(c) for n in range(len(items) + 1)
                        for c in itertools.combinations(items, n)])
        else:
            exact = False
            out.extend([[], *([x] for x in items), items])
    if check == "bool" or (not out and check == "any"):
        out.extend([True, False])
    samples = f.samples.get(key, ())
    if check == "map":  # a scanned object: the samples inside one
        out.append({})
        out.extend([{"v": v} for v in samples if isinstance(v, str)])
    elif check == "coll":
        out.extend([[v] for v in samples if not isinstance(v, list)])
    else:
        out.extend(samples)
    if not out or (check in _NUMERIC and not numbers and not f.samples.get(key)):
        out.append(_DEFAULTS.get(check, "a"))
    if check == "any":
        out.extend(["a", 1, []])
    out.append(ABSENT)
    out.append(_wrong(check))
    unique: list[object] = []
    seen: set[str] = set()
    for v in out:
        tag = repr((type(v).__name__, v))
        if tag not in seen:
            seen.add(tag)
            unique.append(v)
    return unique, exact


def _glob_mixes(globs: list[str]) -> list[str]:
    """Strings that may match two globs at once: one's literal text put into the other."""
    out = []
    for a, b in itertools.permutations(globs, 2):
        out.append(a.replace("*", b.replace("*", ""), 1).replace("*", ""))
    return out


def _number_reps(numbers: set[object], integral: bool) -> list[object]:
    values = sorted(Fraction(v) for v in numbers if isinstance(v, int | Decimal | Fraction))
    cands: list[Fraction] = [values[0] - 1]
    for a, b in itertools.pairwise(values):
        cands.append(a)
        cands.append((a + b) / 2)
    cands.extend([values[-1], values[-1] + 1])
    out: list[object] = []
    for c in cands:
        if integral:
            for n in {c.numerator // c.denominator, -((-c.numerator) // c.denominator)}:
                out.append(n)
        elif c.denominator == 1:
            out.append(c.numerator)
        else:
            out.append(_decimal(c))
    return out


def _decimal(c: Fraction) -> Decimal:
    exact = Decimal(c.numerator) / Decimal(c.denominator)
    return exact.normalize() if exact == exact.to_integral_value() else exact


def default_value(check: str) -> object:
    """A plain value of the field's type (`args.x` of a `str` parameter: "a")."""
    if check.startswith("list") or check == "coll":
        return []
    return _DEFAULTS.get(check, "a")


def _wrong(check: str) -> object:
    """A value of the wrong type for the field's check (a request error when read)."""
    if check in ("str",):
        return 0
    if check in ("coll", "map"):
        return 0
    if check == "any":
        return [[]]
    return [] if check == "bool" else "x"


def build(point: Point, stage: str, name: str, tags: tuple[str, ...]) -> dict[str, Any]:
    """The request of a point: a JSON-ready dict."""
    req: dict[str, Any] = {"stage": stage}
    if name:
        req["tool"] = {"name": name, "tags": list(tags)} if tags else name
    ordered = sorted(point.fields.items(), key=lambda kv: (kv[0][0], len(kv[0][1])))
    for (root, keys), value in ordered:
        if value is ABSENT:
            continue
        if root == "tool" and isinstance(req.get("tool"), str):
            req["tool"] = {"name": req["tool"]}
        if not keys:
            req[root] = value
            continue
        obj = req.setdefault(root, {})
        if not isinstance(obj, dict):
            continue
        for k in keys[:-1]:
            nxt = obj.setdefault(k, {})
            if not isinstance(nxt, dict):
                break
            obj = nxt
        else:
            obj[keys[-1]] = value
    return req
