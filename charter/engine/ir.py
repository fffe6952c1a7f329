"""The intermediate representation: flat rules over resolved, typed expressions.

The IR is what the planner, the code generator and the reference interpreter share, and
what a saved policy stores. It must not import the language package (the runtime loads it
without Lark).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

# ── expressions ──────────────────────────────────────────────────────────────

STRICT_ARGS = "__strict_args__"  # Fn of the rules `strict args` adds (runtime.strict)


@dataclass(frozen=True, slots=True)
class Const:
    """A folded constant: str, int, Decimal, bool, timedelta, frozenset, tuple, or a dict with
    str keys (a `const` lookup table; never mutated)."""

    value: object


@dataclass(frozen=True, slots=True)
class Path:
    """A request field, e.g. root `args`, keys `("amount",)`; `check` is the run-time type check
    (see charter.stdlib.values.CHECKS); `text` names the field in error messages."""

    root: str
    keys: tuple[str, ...]
    check: str
    text: str


@dataclass(frozen=True, slots=True)
class Index:
    """`obj[key]` with a computed key."""

    obj: Expr
    key: Expr
    check: str
    text: str


@dataclass(frozen=True, slots=True)
class Has:
    root: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["and", "or"]
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Cmp:
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Arith:
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr


@dataclass(frozen=True, slots=True)
class In:
    item: Expr
    coll: Expr
    negate: bool


@dataclass(frozen=True, slots=True)
class Like:
    value: Expr
    pattern: str  # Cedar-style glob: `*` matches any run of characters


@dataclass(frozen=True, slots=True)
class Matches:
    value: Expr
    pattern: str  # RE2, search semantics


@dataclass(frozen=True, slots=True)
class Contains:
    """True when any string inside `value` has a validated match of one of `matchers`."""

    value: Expr
    matchers: tuple[str, ...]  # qualified matcher names, groups expanded
    field: str  # cache key: the same field is scanned once per decision


@dataclass(frozen=True, slots=True)
class CountOf:
    value: Expr
    matchers: tuple[str, ...]
    field: str


@dataclass(frozen=True, slots=True)
class Fn:
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Approved:
    group: str | None
    count: int = 1  # `approved by N of "g"`: N different approvers of group g


@dataclass(frozen=True, slots=True)
class Previously:
    tool: str
    fields: tuple[tuple[str, Expr], ...]
    within: int | None  # seconds


@dataclass(frozen=True, slots=True)
class Labels:
    """`session.labels`: the request's labels together with those in the runtime state."""


@dataclass(frozen=True, slots=True)
class Counter:
    """Usage of a windowed counter, read from the runtime state (zero when there is none)."""

    counter: str
    key: Expr | None  # None: keyed by session id


@dataclass(frozen=True, slots=True)
class Estimate:
    """`estimate.<field>`, zero when absent."""

    field: str
    check: str


Expr = (
    Const | Path | Index | Has | Not | BoolOp | Cmp | Arith | Neg | In | Like | Matches
    | Contains | CountOf | Fn | Approved | Previously | Labels | Counter | Estimate
)



def _node_fields(cls: type) -> tuple[str, ...] | None:
    """Field names of an IR node class (None: not a node); computed once per class, since
    `dataclasses.fields` per visit made walking a 10,000-rule policy take seconds."""
    try:
        return _FIELDS[cls]
    except KeyError:
        names = (None if cls is Const or not dataclasses.is_dataclass(cls)
                 else tuple(f.name for f in dataclasses.fields(cls)))
        _FIELDS[cls] = names
        return names


_FIELDS: dict[type, tuple[str, ...] | None] = {}


def walk(node: object) -> Iterator[object]:
    """Every IR node inside `node`, itself included (constants are leaves)."""
    yield node
    names = _node_fields(type(node))
    if names is None:
        return
    for name in names:
        yield from _walk_value(getattr(node, name))


def depth(node: object) -> int:
    """How deeply expressions nest in `node` (a leaf is 1); iterative, any depth is fine."""
    deepest = 0
    stack: list[tuple[object, int]] = [(node, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, tuple):
            stack.extend((item, level) for item in value)
            continue
        names = _node_fields(type(value))
        if names is None:
            continue
        deepest = max(deepest, level)
        stack.extend((getattr(value, name), level + 1) for name in names)
    return deepest


def _walk_value(value: object) -> Iterator[object]:
    if isinstance(value, tuple):
        for item in value:
            yield from _walk_value(item)
    elif _node_fields(type(value)) is not None:
        yield from walk(value)


# ── rules and policy ─────────────────────────────────────────────────────────

Kind = Literal["allow", "deny", "warn", "require_approval", "redact", "label"]


@dataclass(frozen=True, slots=True)
class Target:
    """Tool names/globs, or a tag. A rule's targets must all match."""

    names: tuple[str, ...]
    tag: str | None


@dataclass(frozen=True, slots=True)
class Rule:
    index: int
    id: str
    kind: Kind
    stage: str
    targets: tuple[Target, ...]
    cond: Expr | None
    because: str | None
    file: str
    line: int
    col: int
    groups: tuple[str, ...] = ()
    label: str | None = None
    redact: tuple[str, ...] = ()
    redact_path: Path | None = None
    shadow: bool = False
    owner: str | None = None
    origin: Literal["rule", "budget", "limit", "strict args"] = "rule"


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """A windowed budget or call limit kept by the runtime state store."""

    id: str
    metric: Literal["cost_usd", "tokens", "calls"]
    limit: object  # int or Decimal
    window: int | None  # seconds; None = per session
    key: Expr | None  # None = session.id; a Path, or the joined key of `per turn`
    targets: tuple[Target, ...]
    stage: str
    rule: int  # index of the rule that enforces it


@dataclass(frozen=True, slots=True)
class ToolInfo:
    name: str
    tags: tuple[str, ...]
    params: tuple[tuple[str, str, bool], ...]  # (name, check tag, optional)


@dataclass(frozen=True, slots=True)
class MatcherInfo:
    name: str
    pattern: str
    placeholder: str


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    version: str | None
    default: Literal["allow", "deny"]
    rules: tuple[Rule, ...]
    tools: dict[str, ToolInfo] = field(default_factory=dict)
    matchers: dict[str, MatcherInfo] = field(default_factory=dict)  # user matchers
    counters: tuple[CounterSpec, ...] = ()
    history: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tool -> fields to keep
    digest: str = ""
    trust_request_tags: bool = False  # `trust request tags`: see Plan.granting_tags
