"""The abstract syntax tree of `.agentpolicy` files: frozen structs, each with a span.

The parser builds these; the checker reads them; nothing mutates them. The grammar is a little
more permissive than the language (e.g. `=` parses as a comparison) so that the checker can
explain the mistake; such nodes carry the operator as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Literal

import msgspec

from charter.language.source import Span

Stage = Literal["tool_call", "tool_result", "model_input", "model_output"]
STAGES: tuple[Stage, ...] = ("tool_call", "tool_result", "model_input", "model_output")


class Node(msgspec.Struct, frozen=True):
    """The base of every syntax node: frozen, equal and hashable by value, with slots.

    msgspec structs rather than dataclasses: defining ~50 node classes with `dataclass` cost
    ~18 ms of every fresh process's first compile (issue 11's cold-start target); a struct
    class costs microseconds. Walk a node's fields with `fields` and rebuild one with
    `msgspec.structs.replace`."""


def fields(node: Node) -> Iterator[tuple[str, object]]:
    """`(name, value)` for each field of `node`, in declaration order."""
    for name in node.__struct_fields__:
        yield name, getattr(node, name)


# ── expressions ──────────────────────────────────────────────────────────────


class Duration(Node, frozen=True):
    """A duration literal such as `30s`, `5m`, `1h`, `7d`, kept in seconds."""

    seconds: int
    text: str


class Literal_(Node, frozen=True):
    """A scalar literal: str, int, Decimal (numbers with a point), bool or Duration."""

    value: str | int | Decimal | bool | Duration
    span: Span


class Regex(Node, frozen=True):
    """A raw regex literal `r"..."` (RE2 syntax); `pattern` is the text between the quotes."""

    pattern: str
    span: Span


class SetLit(Node, frozen=True):
    items: tuple[Expr, ...]
    span: Span


class ListLit(Node, frozen=True):
    items: tuple[Expr, ...]
    span: Span


class RecordField(Node, frozen=True):
    name: str
    value: Expr
    span: Span


class RecordLit(Node, frozen=True):
    """`{name: expr, ...}`: records in tests and `previously ... with {...}`."""

    fields: tuple[RecordField, ...]
    span: Span


class MapLit(Node, frozen=True):
    """`{"key": expr, ...}`: a map with string keys (a lookup table in a `const`)."""

    entries: tuple[RecordField, ...]
    span: Span


class Name(Node, frozen=True):
    """A bare identifier: a constant, a matcher, a context root (`args`, `agent`...)."""

    id: str
    span: Span


class Attr(Node, frozen=True):
    """`obj.name` (also matcher references such as `pii.email`)."""

    obj: Expr
    name: str
    span: Span
    name_span: Span


class Index(Node, frozen=True):
    """`obj[key]`."""

    obj: Expr
    key: Expr
    span: Span


class Call(Node, frozen=True):
    """`func(args...)` for stdlib functions; `func` is the name as written."""

    func: str
    args: tuple[Expr, ...]
    span: Span
    func_span: Span


class Unary(Node, frozen=True):
    """`not x` or `-x`."""

    op: Literal["not", "-"]
    operand: Expr
    span: Span


BinOp = Literal[
    "and", "or",
    "==", "!=", "<", "<=", ">", ">=", "=",  # "=" is parsed only so the checker can explain it
    "+", "-", "*", "/",
    "in", "not in", "like", "matches", "contains",
]


class Binary(Node, frozen=True):
    """A binary operation; `op_span` points at the operator for diagnostics."""

    op: BinOp
    left: Expr
    right: Expr
    span: Span
    op_span: Span


class Has(Node, frozen=True):
    """`has(a.b.c)`: true when the path is present in the request."""

    path: Expr
    span: Span


class Count(Node, frozen=True):
    """`count(M in X)`: number of matches of matcher M in X."""

    matcher: Expr
    value: Expr
    span: Span


class Approved(Node, frozen=True):
    """`approved`, `approved by "g"`, or `approved by N of "g"` (N different people)."""

    group: str | None
    span: Span
    count: int = 1


class Previously(Node, frozen=True):
    """`previously call "name" [with {field: expr}] [within DURATION]`."""

    tool: str
    with_: RecordLit | None
    within: Duration | None
    span: Span


Expr = (
    Literal_ | Regex | SetLit | ListLit | RecordLit | MapLit | Name | Attr | Index | Call
    | Unary | Binary | Has | Count | Approved | Previously
)


# ── items ────────────────────────────────────────────────────────────────────


class Annotation(Node, frozen=True):
    """`@name` or `@name("arg")`: @id, @owner, @shadow, @doc ..."""

    name: str
    arg: str | None
    span: Span


class TypeExpr(Node, frozen=True):
    """`int`, `set<str>`, `map<str, int>`: `name` plus type arguments."""

    name: str
    args: tuple[TypeExpr, ...]
    span: Span


class Param(Node, frozen=True):
    name: str
    optional: bool
    type: TypeExpr
    span: Span


class ToolTarget(Node, frozen=True):
    """`tool "a", "b.*"` (names and globs) or `tool tagged T` (then `names` is empty)."""

    names: tuple[str, ...]
    tag: str | None
    span: Span


EffectKind = Literal["allow", "deny", "warn", "require_approval", "redact", "label"]


class Effect(Node, frozen=True):
    """What a rule does. `groups` for approvals; `matchers` + `path` for redact; `label`."""

    kind: EffectKind
    span: Span
    groups: tuple[str, ...] = ()
    matchers: tuple[Expr, ...] = ()
    path: Expr | None = None
    label: str | None = None


class Condition(Node, frozen=True):
    """One `when EXPR` (negate=False) or `unless EXPR` (negate=True) clause."""

    negate: bool
    expr: Expr
    span: Span


class Rule(Node, frozen=True):
    annotations: tuple[Annotation, ...]
    stage: Stage | None
    effect: Effect
    target: ToolTarget | None
    conditions: tuple[Condition, ...]
    because: str | None
    span: Span


class Window(Node, frozen=True):
    """`per session` / `per turn` (seconds is None) or `per 1h` (seconds = 3600)."""

    seconds: int | None
    text: str
    span: Span


class Budget(Node, frozen=True):
    """`budget cost_usd|tokens <= N window [per key] [then effect] [because ...]`."""

    annotations: tuple[Annotation, ...]
    metric: Literal["cost_usd", "tokens"]
    limit: Decimal | int
    window: Window
    key: Expr | None
    then: Effect | None
    because: str | None
    span: Span


class Limit(Node, frozen=True):
    """`limit calls(target) <= N window [per key] [then effect] [because ...]`."""

    annotations: tuple[Annotation, ...]
    target: ToolTarget
    limit: int
    window: Window
    key: Expr | None
    then: Effect | None
    because: str | None
    span: Span


class Scope(Node, frozen=True):
    """`scope TARGET [when EXPR] { items }` or `scope EXPR { items }`."""

    annotations: tuple[Annotation, ...]
    target: ToolTarget | None
    condition: Expr | None
    items: tuple[Item, ...]
    span: Span


class Header(Node, frozen=True):
    name: str
    version: str | None
    span: Span


class Use(Node, frozen=True):
    modules: tuple[str, ...]
    spans: tuple[Span, ...]
    span: Span


class Default(Node, frozen=True):
    effect: Literal["allow", "deny"]
    span: Span


class Option(Node, frozen=True):
    """`strict args` or `trust request tags`: a policy-wide switch (`name` is the words)."""

    name: Literal["strict args", "trust request tags"]
    span: Span


class Const(Node, frozen=True):
    name: str
    value: Expr
    span: Span
    name_span: Span


class MatcherDecl(Node, frozen=True):
    name: str
    regex: Regex
    span: Span
    name_span: Span


class ToolDecl(Node, frozen=True):
    name: str
    params: tuple[Param, ...]
    tags: tuple[str, ...]
    span: Span
    name_span: Span


class ToolsFrom(Node, frozen=True):
    """`tools from "file.json"`: an MCP tools/list result turned into declarations."""

    path: str
    span: Span


# ── tests and properties (run by charter.testing) ───────────────────────────


GivenKind = Literal["agent", "user", "session", "estimate", "approved", "labels", "now", "usage",
                    "previously", "fixture"]


class Given(Node, frozen=True):
    """One `given` part: `agent {...}`, `user {...}`, `session {...}`, `estimate {...}`,
    `approved [by "g"]` (kind "approved", group), `labels [...]` (kind "labels"),
    `now "2026-01-05T23:00:00Z"` (value: the string), `usage cost_usd 1.5` (name: the metric,
    value: the amount), `usage calls(tool "t") 3` (name "calls", target, value),
    `previously call "t" {...}` (name: the tool, value: its recorded fields or None), or a
    fixture's name (kind "fixture", name)."""

    kind: GivenKind
    value: Expr | None
    group: str | None
    span: Span
    name: str | None = None
    target: ToolTarget | None = None


class GivenLine(Node, frozen=True):
    """One `given` statement of a scenario, kept whole so the steps stay in order."""

    parts: tuple[Given, ...]
    span: Span


class TestCall(Node, frozen=True):
    """`call NAME RECORD`, `on STAGE call NAME RECORD with result VALUE`, or a model step
    `on model_input with input VALUE` (tool "", `field` the word after `with`, "input" or
    "output"; `result` the VALUE). `field` is empty for tool calls."""

    stage: Stage | None
    tool: str
    args: RecordLit
    result: Expr | None
    span: Span
    field: str = ""


Outcome = Literal["allow", "deny", "require_approval", "redact"]


class Expect(Node, frozen=True):
    """`expect [not] OUTCOME [from "g"] [because "text"]`."""

    negate: bool
    outcome: Outcome
    group: str | None
    because: str | None
    span: Span


class Approve(Node, frozen=True):
    """`approve from "g" [by "who"]` in a scenario: grant the previous call's action."""

    group: str
    by: str | None
    span: Span


class TableRow(Node, frozen=True):
    """`row {args...} [given parts] expect ...`: one case of a table-driven test."""

    args: RecordLit
    givens: tuple[Given, ...]
    expects: tuple[Expect, ...]
    span: Span


Step = GivenLine | TestCall | Expect | Approve


class Test(Node, frozen=True):
    """A `test` (one call; with `rows`, one call per row) or a `scenario` (`steps` in order,
    run through a Guard). `givens`/`call`/`expects` are the statements by kind."""

    name: str
    givens: tuple[Given, ...]
    call: TestCall | None
    expects: tuple[Expect, ...]
    span: Span
    rows: tuple[TableRow, ...] = ()
    steps: tuple[Step, ...] = ()
    scenario: bool = False


class Fixture(Node, frozen=True):
    """`fixture NAME = PARTS...`: givens shared by the tests that say `given NAME`."""

    name: str
    givens: tuple[Given, ...]
    span: Span


class Property(Node, frozen=True):
    """`property "name" { for all calls [to TARGET] [where EXPR] expect [not] OUTCOME }`."""

    name: str
    target: ToolTarget | None
    where: Expr | None
    expect: Expect
    span: Span


Item = (
    Header | Use | Default | Option | Const | MatcherDecl | ToolDecl | ToolsFrom | Rule | Scope
    | Budget | Limit | Test | Property | Fixture
)


class Module(Node, frozen=True):
    """One parsed file."""

    file: str
    items: tuple[Item, ...]
    span: Span
