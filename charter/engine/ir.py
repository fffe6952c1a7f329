"""The intermediate representation: flat rules over resolved, typed expressions.

The IR is what the planner, the code generator and the reference interpreter share, and
what a saved policy stores. It must not import the language package (the runtime loads it
without Lark).

Every node is a frozen, tagged `msgspec.Struct`: equal and hashable by value (the emitter
keys dicts on paths), and encodable as it stands: `charter.engine.tree` saves a compiled
policy as msgpack with the class name as each node's tag. `Const.value` and
`CounterSpec.limit` are the fields of open type; the artifact format packs them.

Nodes are `gc=False`: the cyclic collector never tracks them. An IR is an immutable tree
built bottom-up, so no node can be part of a reference cycle; tracking the tens of thousands
of nodes of a large policy made the collector rescan them during and after every load or
compile (half of a saved 1,000-rule policy's load time, issue 11).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import msgspec

# ── expressions ──────────────────────────────────────────────────────────────

STRICT_ARGS = "__strict_args__"  # Fn of the rules `strict args` adds (runtime.strict)


class Const(msgspec.Struct, frozen=True, tag=True, gc=False):
    """A folded constant: str, int, Decimal, bool, timedelta, frozenset, tuple, or a dict with
    str keys (a `const` lookup table; never mutated)."""

    value: object


class Path(msgspec.Struct, frozen=True, tag=True, gc=False):
    """A request field, e.g. root `args`, keys `("amount",)`; `check` is the run-time type check
    (see charter.stdlib.values.CHECKS); `text` names the field in error messages."""

    root: str
    keys: tuple[str, ...]
    check: str
    text: str


class Index(msgspec.Struct, frozen=True, tag=True, gc=False):
    """`obj[key]` with a computed key."""

    obj: Expr
    key: Expr
    check: str
    text: str


class Has(msgspec.Struct, frozen=True, tag=True, gc=False):
    root: str
    keys: tuple[str, ...]


class Not(msgspec.Struct, frozen=True, tag=True, gc=False):
    operand: Expr


class BoolOp(msgspec.Struct, frozen=True, tag=True, gc=False):
    op: Literal["and", "or"]
    items: tuple[Expr, ...]


class Cmp(msgspec.Struct, frozen=True, tag=True, gc=False):
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Expr
    right: Expr


class Arith(msgspec.Struct, frozen=True, tag=True, gc=False):
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr


class Neg(msgspec.Struct, frozen=True, tag=True, gc=False):
    operand: Expr


class In(msgspec.Struct, frozen=True, tag=True, gc=False):
    item: Expr
    coll: Expr
    negate: bool


class Like(msgspec.Struct, frozen=True, tag=True, gc=False):
    value: Expr
    pattern: str  # Cedar-style glob: `*` matches any run of characters


class Matches(msgspec.Struct, frozen=True, tag=True, gc=False):
    value: Expr
    pattern: str  # RE2, search semantics


class Contains(msgspec.Struct, frozen=True, tag=True, gc=False):
    """True when any string inside `value` has a validated match of one of `matchers`."""

    value: Expr
    matchers: tuple[str, ...]  # qualified matcher names, groups expanded
    field: str  # cache key: the same field is scanned once per decision


class CountOf(msgspec.Struct, frozen=True, tag=True, gc=False):
    value: Expr
    matchers: tuple[str, ...]
    field: str


class Fn(msgspec.Struct, frozen=True, tag=True, gc=False):
    name: str
    args: tuple[Expr, ...]


class Approved(msgspec.Struct, frozen=True, tag=True, gc=False):
    group: str | None
    count: int = 1  # `approved by N of "g"`: N different approvers of group g


class Previously(msgspec.Struct, frozen=True, tag=True, gc=False):
    tool: str
    fields: tuple[tuple[str, Expr], ...]
    within: int | None  # seconds


class Labels(msgspec.Struct, frozen=True, tag=True, gc=False):
    """`session.labels`: the request's labels together with those in the runtime state."""


class Counter(msgspec.Struct, frozen=True, tag=True, gc=False):
    """Usage of a windowed counter, read from the runtime state (zero when there is none)."""

    counter: str
    key: Expr | None  # None: keyed by session id


class Estimate(msgspec.Struct, frozen=True, tag=True, gc=False):
    """`estimate.<field>`, zero when absent."""

    field: str
    check: str


Expr = (
    Const | Path | Index | Has | Not | BoolOp | Cmp | Arith | Neg | In | Like | Matches
    | Contains | CountOf | Fn | Approved | Previously | Labels | Counter | Estimate
)


def _node_fields(cls: type) -> tuple[str, ...] | None:
    """Field names of an IR node class (None: not a node, or a constant: a leaf)."""
    try:
        return _FIELDS[cls]
    except KeyError:
        names = (None if cls is Const or not issubclass(cls, msgspec.Struct)
                 else cls.__struct_fields__)
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


class Target(msgspec.Struct, frozen=True, tag=True, gc=False):
    """Tool names/globs, or a tag. A rule's targets must all match."""

    names: tuple[str, ...]
    tag: str | None


class Rule(msgspec.Struct, frozen=True, tag=True, gc=False):
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


class CounterSpec(msgspec.Struct, frozen=True, tag=True, gc=False):
    """An enforced amount: a budget or call limit, kept by the runtime state store.

    `id` names the counter in the store and is derived from its content or the rule's `@id`,
    never from its position or limit (`charter.compiler.counter_ids`); rules with the same
    content share one. `scope` is the enforcing rule's other conditions (scope and `when`,
    without the limit test): a call counts only when they hold. `session_total` marks a
    per-session budget, whose rule tests the request's `session.<metric>` (the host's running
    total, or the one the Guard keeps under `id` when the host sends none) rather than an
    `ir.Counter`."""

    id: str
    metric: Literal["cost_usd", "tokens", "calls"]
    limit: object  # int or Decimal
    window: int | None  # seconds; None = per session
    key: Expr | None  # None = session.id; a Path, or the joined key of `per turn`
    targets: tuple[Target, ...]
    stage: str
    rule: int  # index of the rule that enforces it
    scope: Expr | None = None
    session_total: bool = False


def session_total_id(metric: str) -> str:
    """The id of the counter holding a session's running total of `metric`: every per-session
    budget of that metric (and the Guard's `session.<metric>`, when the host sends none)."""
    return f"session:{metric}"


class ToolInfo(msgspec.Struct, frozen=True, tag=True, gc=False):
    name: str
    tags: tuple[str, ...]
    params: tuple[tuple[str, str, bool], ...]  # (name, check tag, optional)


class MatcherInfo(msgspec.Struct, frozen=True, tag=True, gc=False):
    name: str
    pattern: str
    placeholder: str


class Policy(msgspec.Struct, frozen=True, tag=True, gc=False):
    name: str
    version: str | None
    default: Literal["allow", "deny"]
    rules: tuple[Rule, ...]
    tools: dict[str, ToolInfo] = msgspec.field(default_factory=dict)
    matchers: dict[str, MatcherInfo] = msgspec.field(default_factory=dict)  # user matchers
    counters: tuple[CounterSpec, ...] = ()
    # tool -> the fields of its calls `previously` reads
    history: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    digest: str = ""
    trust_request_tags: bool = False  # `trust request tags`: see Plan.granting_tags
