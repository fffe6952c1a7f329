"""The abstract syntax tree of `.agentpolicy` files: frozen dataclasses, each with a span.

The parser builds these; the checker reads them; nothing mutates them. The grammar is a little
more permissive than the language (e.g. `=` parses as a comparison) so that the checker can
explain the mistake; such nodes carry the operator as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from charter.language.source import Span

Stage = Literal["tool_call", "tool_result", "model_input", "model_output"]
STAGES: tuple[Stage, ...] = ("tool_call", "tool_result", "model_input", "model_output")


# ── expressions ──────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration literal such as `30s`, `5m`, `1h`, `7d`, kept in seconds."""

    seconds: int
    text: str


@dataclass(frozen=True, slots=True)
class Literal_:
    """A scalar literal: str, int, Decimal (numbers with a point), bool or Duration."""

    value: str | int | Decimal | bool | Duration
    span: Span


@dataclass(frozen=True, slots=True)
class Regex:
    """A raw regex literal `r"..."` (RE2 syntax); `pattern` is the text between the quotes."""

    pattern: str
    span: Span


@dataclass(frozen=True, slots=True)
class SetLit:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class RecordField:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class RecordLit:
    """`{name: expr, ...}`: records in tests and `previously ... with {...}`."""

    fields: tuple[RecordField, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MapLit:
    """`{"key": expr, ...}`: a map with string keys (a lookup table in a `const`)."""

    entries: tuple[RecordField, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A bare identifier: a constant, a matcher, a context root (`args`, `agent`...)."""

    id: str
    span: Span


@dataclass(frozen=True, slots=True)
class Attr:
    """`obj.name` (also matcher references such as `pii.email`)."""

    obj: Expr
    name: str
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Index:
    """`obj[key]`."""

    obj: Expr
    key: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """`func(args...)` for stdlib functions; `func` is the name as written."""

    func: str
    args: tuple[Expr, ...]
    span: Span
    func_span: Span


@dataclass(frozen=True, slots=True)
class Unary:
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


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary operation; `op_span` points at the operator for diagnostics."""

    op: BinOp
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@dataclass(frozen=True, slots=True)
class Has:
    """`has(a.b.c)`: true when the path is present in the request."""

    path: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Count:
    """`count(M in X)`: number of matches of matcher M in X."""

    matcher: Expr
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Approved:
    """`approved`, `approved by "g"`, or `approved by N of "g"` (N different people)."""

    group: str | None
    span: Span
    count: int = 1


@dataclass(frozen=True, slots=True)
class Previously:
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


@dataclass(frozen=True, slots=True)
class Annotation:
    """`@name` or `@name("arg")`: @id, @owner, @shadow, @doc ..."""

    name: str
    arg: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class TypeExpr:
    """`int`, `set<str>`, `map<str, int>`: `name` plus type arguments."""

    name: str
    args: tuple[TypeExpr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    optional: bool
    type: TypeExpr
    span: Span


@dataclass(frozen=True, slots=True)
class ToolTarget:
    """`tool "a", "b.*"` (names and globs) or `tool tagged T` (then `names` is empty)."""

    names: tuple[str, ...]
    tag: str | None
    span: Span


EffectKind = Literal["allow", "deny", "warn", "require_approval", "redact", "label"]


@dataclass(frozen=True, slots=True)
class Effect:
    """What a rule does. `groups` for approvals; `matchers` + `path` for redact; `label`."""

    kind: EffectKind
    span: Span
    groups: tuple[str, ...] = ()
    matchers: tuple[Expr, ...] = ()
    path: Expr | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """One `when EXPR` (negate=False) or `unless EXPR` (negate=True) clause."""

    negate: bool
    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Rule:
    annotations: tuple[Annotation, ...]
    stage: Stage | None
    effect: Effect
    target: ToolTarget | None
    conditions: tuple[Condition, ...]
    because: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Window:
    """`per session` / `per turn` (seconds is None) or `per 1h` (seconds = 3600)."""

    seconds: int | None
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Budget:
    """`budget cost_usd|tokens <= N window [per key] [then effect] [because ...]`."""

    annotations: tuple[Annotation, ...]
    metric: Literal["cost_usd", "tokens"]
    limit: Decimal | int
    window: Window
    key: Expr | None
    then: Effect | None
    because: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Limit:
    """`limit calls(target) <= N window [per key] [then effect] [because ...]`."""

    annotations: tuple[Annotation, ...]
    target: ToolTarget
    limit: int
    window: Window
    key: Expr | None
    then: Effect | None
    because: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Scope:
    """`scope TARGET [when EXPR] { items }` or `scope EXPR { items }`."""

    annotations: tuple[Annotation, ...]
    target: ToolTarget | None
    condition: Expr | None
    items: tuple[Item, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    version: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Use:
    modules: tuple[str, ...]
    spans: tuple[Span, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Default:
    effect: Literal["allow", "deny"]
    span: Span


@dataclass(frozen=True, slots=True)
class Option:
    """`strict args` or `trust request tags`: a policy-wide switch (`name` is the words)."""

    name: Literal["strict args", "trust request tags"]
    span: Span


@dataclass(frozen=True, slots=True)
class Const:
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class MatcherDecl:
    name: str
    regex: Regex
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class ToolDecl:
    name: str
    params: tuple[Param, ...]
    tags: tuple[str, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class ToolsFrom:
    """`tools from "file.json"`: an MCP tools/list result turned into declarations."""

    path: str
    span: Span


# ── tests and properties (run by charter.testing) ───────────────────────────


GivenKind = Literal["agent", "user", "session", "estimate", "approved", "labels", "now", "usage",
                    "previously", "fixture"]


@dataclass(frozen=True, slots=True)
class Given:
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


@dataclass(frozen=True, slots=True)
class GivenLine:
    """One `given` statement of a scenario, kept whole so the steps stay in order."""

    parts: tuple[Given, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class TestCall:
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


@dataclass(frozen=True, slots=True)
class Expect:
    """`expect [not] OUTCOME [from "g"] [because "text"]`."""

    negate: bool
    outcome: Outcome
    group: str | None
    because: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Approve:
    """`approve from "g" [by "who"]` in a scenario: grant the previous call's action."""

    group: str
    by: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class TableRow:
    """`row {args...} [given parts] expect ...`: one case of a table-driven test."""

    args: RecordLit
    givens: tuple[Given, ...]
    expects: tuple[Expect, ...]
    span: Span


Step = GivenLine | TestCall | Expect | Approve


@dataclass(frozen=True, slots=True)
class Test:
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


@dataclass(frozen=True, slots=True)
class Fixture:
    """`fixture NAME = PARTS...`: givens shared by the tests that say `given NAME`."""

    name: str
    givens: tuple[Given, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Property:
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


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed file."""

    file: str
    items: tuple[Item, ...]
    span: Span
