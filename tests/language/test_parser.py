"""The parser: text to AST, exact spans, friendly syntax errors and recovery."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.language import ast
from charter.language.parser import parse, parse_expr
from charter.language.source import Diagnostic, Source

EXAMPLE = """\
policy "support-bot" version "1.4.0"
use pii, secrets

default deny
const eu_regions = {"eu-west-1", "eu-central-1"}
matcher employee_id = r"\\bEMP-[0-9]{6}\\b"

tool "refund.create" (amount: decimal, currency: str, customer_email: str) tags write, money
tool "files.delete" (path: str) tags destructive
tool "crm.export" (region: str, table: str) tags export
tool "web.fetch" (url: str) tags external
tool "kb.read" (query: str, limit?: int) tags read

allow tool "kb.*", "search.*"

scope agent.team == "support" {
  allow tool "refund.create"

  @id("refund-approval") @owner("payments")
  require approval from "finance" tool "refund.create" when args.amount > 100
    because "refunds over $100 need finance sign-off"

  deny tool tagged export when args.region not in eu_regions
    because "customer data stays in the EU"
}

deny tool tagged destructive unless approved because "destructive tools need a human"
deny tool tagged external when args contains pii.card or args contains secrets.any
  because "no card numbers or credentials to external services"

budget cost_usd <= 2.00 per session because "session budget of $2 reached"
limit calls(tool "email.send") <= 10 per 1h per agent.id
require approval from "operator" when session.consecutive_tool_calls > 5

on tool_result redact pii.email, pii.phone, employee_id in result
on tool_result label session "saw_pii" when result contains pii.any
deny tool tagged external when "saw_pii" in session.labels because "no egress after reading PII"

@shadow
deny tool "web.fetch" when url_host(args.url) not in {"docs.example.com"}
"""

TESTS = """\
test "big refunds escalate" {
  given agent {id: "bot-1", team: "support"} session {cost_usd: 0.10}
  call "refund.create" {amount: 400, currency: "USD", customer_email: "a@b.co"}
  expect require approval from "finance"
}
property "destructive tools never pass unapproved" {
  for all calls to tool tagged destructive
  expect not allow
}
"""


def ok(text: str, name: str = "p.agentpolicy") -> ast.Module:
    module, diags = parse(Source(name, text))
    assert diags == [], [d.render() for d in diags]
    return module


def errors(text: str) -> tuple[ast.Module, list[Diagnostic]]:
    module, diags = parse(Source("bad.agentpolicy", text))
    assert diags, "expected syntax errors"
    return module, diags


def expr(text: str) -> ast.Expr:
    e, diags = parse_expr(text)
    assert diags == [] and e is not None, [d.render() for d in diags]
    return e


def name_path(e: ast.Expr) -> str:
    """`a.b.c` for a Name/Attr chain (test helper)."""
    if isinstance(e, ast.Name):
        return e.id
    assert isinstance(e, ast.Attr)
    return f"{name_path(e.obj)}.{e.name}"


def shape(e: Any) -> Any:
    """A compact, span-free rendering of an expression for structural assertions."""
    if isinstance(e, ast.Binary):
        return (e.op, shape(e.left), shape(e.right))
    if isinstance(e, ast.Unary):
        return (e.op, shape(e.operand))
    if isinstance(e, ast.Name | ast.Attr):
        return name_path(e)
    if isinstance(e, ast.Literal_):
        return e.value
    if isinstance(e, ast.Index):
        return ("[]", shape(e.obj), shape(e.key))
    if isinstance(e, ast.Call):
        return (e.func, *[shape(a) for a in e.args])
    if isinstance(e, ast.SetLit):
        return ("set", *[shape(i) for i in e.items])
    if isinstance(e, ast.ListLit):
        return ("list", *[shape(i) for i in e.items])
    if isinstance(e, ast.RecordLit):
        return ("record", *[(f.name, shape(f.value)) for f in e.fields])
    if isinstance(e, ast.Regex):
        return ("re", e.pattern)
    return e


# ── the DESIGN example ──────────────────────────────────────────────────────


def test_design_example_items() -> None:
    m = ok(EXAMPLE)
    kinds = [type(i).__name__ for i in m.items]
    assert kinds == [
        "Header",
        "Use",
        "Default",
        "Const",
        "MatcherDecl",
        "ToolDecl",
        "ToolDecl",
        "ToolDecl",
        "ToolDecl",
        "ToolDecl",
        "Rule",
        "Scope",
        "Rule",
        "Rule",
        "Budget",
        "Limit",
        "Rule",
        "Rule",
        "Rule",
        "Rule",
        "Rule",
    ]
    header, use, default = m.items[0], m.items[1], m.items[2]
    assert header == ast.Header("support-bot", "1.4.0", header.span)
    assert isinstance(use, ast.Use) and use.modules == ("pii", "secrets")
    assert [(s.line, s.col, s.end_col) for s in use.spans] == [(2, 5, 8), (2, 10, 17)]
    assert isinstance(default, ast.Default) and default.effect == "deny"
    assert m.file == "p.agentpolicy" and m.span.start == 0 and m.span.end == len(EXAMPLE)


def test_design_example_declarations() -> None:
    m = ok(EXAMPLE)
    const, matcher, refund = m.items[3], m.items[4], m.items[5]
    assert isinstance(const, ast.Const) and const.name == "eu_regions"
    assert shape(const.value) == ("set", "eu-west-1", "eu-central-1")
    assert (const.name_span.line, const.name_span.col, const.name_span.end_col) == (5, 7, 17)
    assert isinstance(matcher, ast.MatcherDecl)
    assert matcher.regex.pattern == r"\bEMP-[0-9]{6}\b"
    assert isinstance(refund, ast.ToolDecl) and refund.name == "refund.create"
    assert [(p.name, p.type.name, p.optional) for p in refund.params] == [
        ("amount", "decimal", False),
        ("currency", "str", False),
        ("customer_email", "str", False),
    ]
    assert refund.tags == ("write", "money")
    assert (refund.name_span.line, refund.name_span.col) == (8, 6)
    kb = m.items[9]
    assert isinstance(kb, ast.ToolDecl)
    assert [(p.name, p.optional) for p in kb.params] == [("query", False), ("limit", True)]


def test_design_example_rules() -> None:
    m = ok(EXAMPLE)
    allow_kb = m.items[10]
    assert isinstance(allow_kb, ast.Rule)
    assert allow_kb.effect.kind == "allow" and allow_kb.target is not None
    assert allow_kb.target.names == ("kb.*", "search.*") and allow_kb.conditions == ()
    assert (allow_kb.span.line, allow_kb.span.col, allow_kb.span.end_col) == (14, 1, 30)

    destructive = m.items[12]
    assert isinstance(destructive, ast.Rule) and destructive.target is not None
    assert destructive.target == ast.ToolTarget((), "destructive", destructive.target.span)
    (cond,) = destructive.conditions
    assert cond.negate is True and isinstance(cond.expr, ast.Approved)
    assert destructive.because == "destructive tools need a human"

    external = m.items[13]
    assert isinstance(external, ast.Rule)
    assert shape(external.conditions[0].expr) == (
        "or",
        ("contains", "args", "pii.card"),
        ("contains", "args", "secrets.any"),
    )
    assert external.span.line == 28 and external.span.end_line == 29

    approval = m.items[16]
    assert isinstance(approval, ast.Rule) and approval.target is None
    assert approval.effect.kind == "require_approval" and approval.effect.groups == ("operator",)

    redact = m.items[17]
    assert isinstance(redact, ast.Rule) and redact.stage == "tool_result"
    assert redact.effect.kind == "redact"
    assert [name_path(x) for x in redact.effect.matchers] == [
        "pii.email",
        "pii.phone",
        "employee_id",
    ]
    assert redact.effect.path == ast.Name("result", redact.effect.path.span)  # type: ignore[union-attr]

    label = m.items[18]
    assert isinstance(label, ast.Rule)
    assert label.effect.kind == "label" and label.effect.label == "saw_pii"
    assert shape(label.conditions[0].expr) == ("contains", "result", "pii.any")

    egress = m.items[19]
    assert isinstance(egress, ast.Rule)
    assert shape(egress.conditions[0].expr) == ("in", "saw_pii", "session.labels")

    shadow = m.items[20]
    assert isinstance(shadow, ast.Rule)
    assert [a.name for a in shadow.annotations] == ["shadow"]
    assert shadow.span.line == 39  # an annotated rule's span starts at its first annotation
    assert shape(shadow.conditions[0].expr) == (
        "not in",
        ("url_host", "args.url"),
        ("set", "docs.example.com"),
    )


def test_design_example_scope() -> None:
    m = ok(EXAMPLE)
    scope = m.items[11]
    assert isinstance(scope, ast.Scope) and scope.target is None
    assert shape(scope.condition) == ("==", "agent.team", "support")
    assert (scope.span.line, scope.span.end_line) == (16, 25)
    allow, approval, deny = scope.items
    assert isinstance(allow, ast.Rule) and allow.effect.kind == "allow"
    assert isinstance(approval, ast.Rule)
    assert [(a.name, a.arg) for a in approval.annotations] == [
        ("id", "refund-approval"),
        ("owner", "payments"),
    ]
    assert approval.effect.groups == ("finance",)
    assert approval.target is not None and approval.target.names == ("refund.create",)
    assert shape(approval.conditions[0].expr) == (">", "args.amount", 100)
    assert approval.because == "refunds over $100 need finance sign-off"
    assert isinstance(deny, ast.Rule)
    assert shape(deny.conditions[0].expr) == ("not in", "args.region", "eu_regions")
    op_span = deny.conditions[0].expr.op_span  # type: ignore[union-attr]
    assert (op_span.line, op_span.col, op_span.end_col) == (23, 44, 50)


def test_design_example_budget_and_limit() -> None:
    m = ok(EXAMPLE)
    budget, limit = m.items[14], m.items[15]
    assert isinstance(budget, ast.Budget)
    assert budget.metric == "cost_usd" and budget.limit == Decimal("2.00")
    assert isinstance(budget.limit, Decimal)
    assert (budget.window.seconds, budget.window.text) == (None, "session")
    assert budget.key is None and budget.then is None
    assert budget.because == "session budget of $2 reached"
    assert isinstance(limit, ast.Limit)
    assert limit.target.names == ("email.send",) and limit.limit == 10
    assert (limit.window.seconds, limit.window.text) == (3600, "1h")
    assert limit.key is not None and name_path(limit.key) == "agent.id"


def test_design_tests_and_properties() -> None:
    m = ok(TESTS)
    test, prop = m.items
    assert isinstance(test, ast.Test) and test.name == "big refunds escalate"
    agent, session = test.givens
    assert agent.kind == "agent" and shape(agent.value) == (
        "record",
        ("id", "bot-1"),
        ("team", "support"),
    )
    assert session.kind == "session" and shape(session.value) == (
        "record",
        ("cost_usd", Decimal("0.10")),
    )
    assert test.call is not None and test.call.tool == "refund.create" and test.call.stage is None
    assert shape(test.call.args) == (
        "record",
        ("amount", 400),
        ("currency", "USD"),
        ("customer_email", "a@b.co"),
    )
    (expect,) = test.expects
    assert expect == ast.Expect(False, "require_approval", "finance", None, expect.span)
    assert isinstance(prop, ast.Property)
    assert prop.target is not None and prop.target.tag == "destructive" and prop.where is None
    assert prop.expect.negate is True and prop.expect.outcome == "allow"
    assert (prop.span.line, prop.span.end_line, prop.span.end_col) == (6, 9, 2)


def test_test_block_all_forms() -> None:
    m = ok("""
test "t" {
  given agent {id: "a"} user {roles: ["admin"]} estimate {cost_usd: 1.5, tokens: 10}
  given approved by "finance" labels ["saw_pii"]
  given approved
  on tool_result call "web.fetch" {url: "x"} with result {body: "hi", limit: 3}
  expect redact because "pii"
  expect not deny
  expect require approval
}
property "p" {
  for all calls to tool "refund.*" where args.amount > 10
  expect not allow
}
""")
    test, prop = m.items
    assert isinstance(test, ast.Test)
    assert [g.kind for g in test.givens] == [
        "agent",
        "user",
        "estimate",
        "approved",
        "labels",
        "approved",
    ]
    assert test.givens[3].group == "finance" and test.givens[5].group is None
    assert shape(test.givens[4].value) == ("list", "saw_pii")
    call = test.call
    assert call is not None and call.stage == "tool_result" and call.tool == "web.fetch"
    assert shape(call.result) == ("record", ("body", "hi"), ("limit", 3))
    assert [(e.negate, e.outcome, e.group, e.because) for e in test.expects] == [
        (False, "redact", None, "pii"),
        (True, "deny", None, None),
        (False, "require_approval", None, None),
    ]
    assert isinstance(prop, ast.Property) and shape(prop.where) == (">", "args.amount", 10)


# ── expressions ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a or b and c", ("or", "a", ("and", "b", "c"))),
        ("not a and b", ("and", ("not", "a"), "b")),
        ("not a == b", ("not", ("==", "a", "b"))),
        ("a + b * c == d", ("==", ("+", "a", ("*", "b", "c")), "d")),
        ("a - b - c", ("-", ("-", "a", "b"), "c")),
        ("a / b * c", ("*", ("/", "a", "b"), "c")),
        ("-a.b * 2", ("*", ("-", "a.b"), 2)),
        ("(a or b) and c", ("and", ("or", "a", "b"), "c")),
        ("a != 1", ("!=", "a", 1)),
        ("a <= 1", ("<=", "a", 1)),
        ("a >= 1", (">=", "a", 1)),
        ("a < 1", ("<", "a", 1)),
        ("a > 1", (">", "a", 1)),
        ("a = 1", ("=", "a", 1)),
        ('a in ["x"]', ("in", "a", ("list", "x"))),
        ("a not in {1, 2,}", ("not in", "a", ("set", 1, 2))),
        ('a like "*.com"', ("like", "a", "*.com")),
        ('a matches r"\\d+"', ("matches", "a", ("re", "\\d+"))),
        ("a contains pii.email", ("contains", "a", "pii.email")),
        ('a["k"].b[0]', ("[]", ("[]", "a", "k"), 0) if False else ("[]", "a[k].b", 0)),
        ("lower(a, b)", ("lower", "a", "b")),
        ("f()", ("f",)),
        ("{}", ("set",)),
        ("[]", ("list",)),
        ("{a: 1, b: [2]}", ("record", ("a", 1), ("b", ("list", 2)))),
        ("true and false", ("and", True, False)),
    ],
)
def test_expression_forms(text: str, expected: Any) -> None:
    e = expr(text)
    if text.startswith('a["k"]'):
        assert isinstance(e, ast.Index) and isinstance(e.obj, ast.Attr)
        assert isinstance(e.obj.obj, ast.Index) and shape(e.obj.obj) == ("[]", "a", "k")
        return
    assert shape(e) == expected


def test_special_expression_forms() -> None:
    has = expr("has(args.limit)")
    assert isinstance(has, ast.Has) and name_path(has.path) == "args.limit"
    count = expr("count(pii.email in result)")
    assert isinstance(count, ast.Count)
    assert name_path(count.matcher) == "pii.email" and name_path(count.value) == "result"
    assert expr("approved") == ast.Approved(None, expr("approved").span)
    by = expr('approved by "finance"')
    assert isinstance(by, ast.Approved) and by.group == "finance"
    prev = expr('previously call "refund.create" with {customer_email: args.to} within 7d')
    assert isinstance(prev, ast.Previously) and prev.tool == "refund.create"
    assert shape(prev.with_) == ("record", ("customer_email", "args.to"))
    assert prev.within == ast.Duration(7 * 86400, "7d")
    bare = expr('previously call "x"')
    assert isinstance(bare, ast.Previously) and bare.with_ is None and bare.within is None


def test_literals() -> None:
    dec = expr("2.50")
    assert isinstance(dec, ast.Literal_) and dec.value == Decimal("2.50")
    assert isinstance(dec.value, Decimal)
    whole = expr("42")
    assert isinstance(whole, ast.Literal_) and whole.value == 42 and type(whole.value) is int
    durations = {"30s": 30, "5m": 300, "1h": 3600, "7d": 604800}
    for text, seconds in durations.items():
        lit = expr(text)
        assert isinstance(lit, ast.Literal_) and lit.value == ast.Duration(seconds, text)
    s = expr(r'"a\"b\\c\nd\te\u00e9"')
    assert isinstance(s, ast.Literal_) and s.value == 'a"b\\c\nd\te\u00e9'
    raw = expr(r'r"\bEMP-\d+\"x"')
    assert isinstance(raw, ast.Regex) and raw.pattern == r"\bEMP-\d+\"x"


def test_expression_spans() -> None:
    e = expr("args.amount > 100")
    assert isinstance(e, ast.Binary)
    assert (e.span.col, e.span.end_col, e.span.start, e.span.end) == (1, 18, 0, 17)
    assert (e.op_span.col, e.op_span.end_col) == (13, 14)
    assert isinstance(e.left, ast.Attr)
    assert (e.left.name_span.col, e.left.name_span.end_col) == (6, 12)
    call = expr("url_host(args.url)")
    assert isinstance(call, ast.Call) and (call.func_span.col, call.func_span.end_col) == (1, 9)
    not_in = expr("x not  in y")
    assert isinstance(not_in, ast.Binary) and not_in.op == "not in"
    assert (not_in.op_span.col, not_in.op_span.end_col) == (3, 10)


def test_keywords_as_field_names_and_record_keys() -> None:
    assert name_path(expr("tool.name")) == "tool.name"
    assert name_path(expr("session.labels")) == "session.labels"
    assert name_path(expr("args.limit")) == "args.limit"
    assert name_path(expr("args.default.tool.session.when.in.not")) == (
        "args.default.tool.session.when.in.not"
    )
    assert shape(expr("result contains pii.any")) == ("contains", "result", "pii.any")
    assert shape(expr("input contains x and output contains y")) == (
        "and",
        ("contains", "input", "x"),
        ("contains", "output", "y"),
    )
    assert shape(expr("{limit: 3, tool: 1, session: 2, approved: true, when: 0}")) == (
        "record",
        ("limit", 3),
        ("tool", 1),
        ("session", 2),
        ("approved", True),
        ("when", 0),
    )
    m = ok("""
deny when tool.name == "x" and session.cost_usd > 1.5
test "t" {
  call "kb.read" {
    limit: 3,
    default: 1
  }
  expect deny
}
""")
    test = m.items[1]
    assert isinstance(test, ast.Test) and test.call is not None
    assert [f.name for f in test.call.args.fields] == ["limit", "default"]


# ── items ───────────────────────────────────────────────────────────────────


def test_multiple_conditions() -> None:
    (rule,) = ok('deny tool "a" when x > 1 unless y when z because "r"').items
    assert isinstance(rule, ast.Rule)
    assert [(c.negate, shape(c.expr)) for c in rule.conditions] == [
        (False, (">", "x", 1)),
        (True, "y"),
        (False, "z"),
    ]
    assert rule.conditions[1].span.col == 26


def test_nested_scopes() -> None:
    (outer,) = ok("""
scope tool "refund.*" when agent.env == "prod" {
  scope agent.team == "support" {
    @id("big") deny when args.amount > 1000
    limit calls(tool "refund.create") <= 3 per 1h
  }
  allow
}
""").items
    assert isinstance(outer, ast.Scope)
    assert outer.target is not None and outer.target.names == ("refund.*",)
    assert shape(outer.condition) == ("==", "agent.env", "prod")
    inner, allow = outer.items
    assert isinstance(inner, ast.Scope) and inner.target is None
    assert shape(inner.condition) == ("==", "agent.team", "support")
    rule, limit = inner.items
    assert isinstance(rule, ast.Rule) and rule.annotations[0].arg == "big"
    assert isinstance(limit, ast.Limit) and isinstance(allow, ast.Rule)


def test_budgets_and_limits() -> None:
    m = ok("""
budget tokens <= 5000 per 1d per agent.tenant then require approval from "ops" because "b"
@id("cap") budget cost_usd <= 10 per session then warn
limit calls(tool tagged external) <= 100 per 30m per session.id then deny because "slow"
""")
    b1, b2, lim = m.items
    assert isinstance(b1, ast.Budget) and b1.metric == "tokens" and b1.limit == 5000
    assert type(b1.limit) is int
    assert (b1.window.seconds, b1.window.text) == (86400, "1d")
    assert b1.key is not None and name_path(b1.key) == "agent.tenant"
    assert b1.then is not None and b1.then.groups == ("ops",) and b1.because == "b"
    assert isinstance(b2, ast.Budget) and b2.annotations[0].arg == "cap"
    assert b2.then is not None and b2.then.kind == "warn" and b2.window.seconds is None
    assert isinstance(lim, ast.Limit) and lim.target.tag == "external"
    assert (lim.window.seconds, lim.window.text) == (1800, "30m")
    assert lim.key is not None and name_path(lim.key) == "session.id"
    assert lim.then is not None and lim.then.kind == "deny"


def test_types_tools_from_and_tool_declared_after_a_bare_rule() -> None:
    m = ok("""
tools from "mcp-tools.json"
allow
tool "x" (a: set<str>, b?: list<int>, c: map<str, list<decimal>>)
""")
    tools_from, rule, decl = m.items
    assert isinstance(tools_from, ast.ToolsFrom) and tools_from.path == "mcp-tools.json"
    assert isinstance(rule, ast.Rule) and rule.target is None
    assert isinstance(decl, ast.ToolDecl)

    def render(t: ast.TypeExpr) -> str:
        return t.name + (f"<{', '.join(render(a) for a in t.args)}>" if t.args else "")

    assert [render(p.type) for p in decl.params] == [
        "set<str>",
        "list<int>",
        "map<str, list<decimal>>",
    ]


def test_header_is_optional_and_comments_are_ignored() -> None:
    m = ok("# just a comment\ndefault allow  # trailing\n")
    (default,) = m.items
    assert isinstance(default, ast.Default) and default.effect == "allow"
    assert default.span.line == 2
    assert ok("").items == ()


def test_all_stages() -> None:
    m = ok("\n".join(f"on {s} warn" for s in ast.STAGES))
    assert [r.stage for r in m.items if isinstance(r, ast.Rule)] == list(ast.STAGES)


# ── syntax errors ───────────────────────────────────────────────────────────


def where(d: Diagnostic) -> tuple[str, int, int]:
    return (d.code, d.span.line, d.span.col)


def test_unexpected_token_with_did_you_mean() -> None:
    _, (d,) = errors('on tool_call alow tool "x"\n')
    assert where(d) == ("CH0101", 1, 14)
    assert d.message == (
        'expected an effect such as `allow`, `deny`, `require approval from "g"`; found `alow`'
    )
    assert d.help == "did you mean `allow`?"
    assert (d.span.end_col, d.span.start, d.span.end) == (18, 13, 17)


@pytest.mark.parametrize(
    ("text", "pos", "suggestion"),
    [
        ('requre approval from "a"\n', (1, 1), "require"),
        ('deny tool "x" unles approved\n', (1, 15), "unless"),
        ('deny tool "x" wehn approved\n', (1, 15), "when"),
        ('deny tool "x" when a becuase "r"\n', (1, 22), "because"),
        ("budget cost_usd <= 1 pr session\n", (1, 22), "per"),
    ],
)
def test_keyword_typos(text: str, pos: tuple[int, int], suggestion: str) -> None:
    _, diags = errors(text)
    assert [where(d) for d in diags] == [("CH0101", *pos)]
    assert diags[0].help == f"did you mean `{suggestion}`?"


def test_expected_words_for_a_rule_continuation() -> None:
    _, (d,) = errors('deny tool "x" unles approved\n')
    assert d.message == "expected `when`, `unless`, `because`, `,` or a new item; found `unles`"


def test_unexpected_character() -> None:
    _, (d,) = errors("deny when a && b\n")
    assert where(d) == ("CH0102", 1, 13)
    assert d.message == "unexpected character `&`" and d.help == "write `and` instead of `&&`"


def test_unterminated_string_and_regex() -> None:
    _, diags = errors('const a = "abc\nmatcher m = r"x\ndeny\n')
    assert [where(d) for d in diags] == [("CH0103", 1, 11), ("CH0103", 2, 13)]
    assert diags[0].message == "unterminated string"
    assert diags[1].message == "unterminated raw regex"
    assert (diags[0].span.end_line, diags[0].span.end_col) == (1, 15)


def test_unexpected_end_of_file() -> None:
    _, (d,) = errors('deny tool "x" when\n')
    assert where(d) == ("CH0104", 1, 19)
    assert d.message == "unexpected end of file; expected an expression"
    _, (brace,) = errors("scope x {\n  deny\n")
    assert where(brace) == ("CH0111", 1, 9)  # at the `{` left open, not at the end
    assert brace.message == "this `{` is never closed"


def test_a_missing_brace_hides_no_later_error() -> None:
    text = ('tool "pay" (amount: decimal)\nscope agent.team == "x" {\n'
            '  allow tool "pay" when args.amout > 1\n\n'
            'allow tool "pay" when args.amount > "1"\ndeny tool "pay" when agent.tem == "x"\n')
    m, (d,) = errors(text)
    assert where(d) == ("CH0111", 2, 25)
    assert d.help == "add `}` before line 5, where the next item starts"
    assert len(m.items) == 4  # the scope (closed for recovery, its rule kept) and the rest
    scope = m.items[1]
    assert isinstance(scope, ast.Scope) and len(scope.items) == 1


def test_unfinished_item_is_reported_where_the_next_item_starts() -> None:
    m, (d,) = errors('deny tool "x" when\nallow tool "y"\n')
    assert where(d) == ("CH0101", 2, 1)
    assert d.message == "expected an expression; found `allow`"
    assert d.help is not None and "unfinished" in d.help
    (rule,) = m.items
    assert isinstance(rule, ast.Rule) and rule.effect.kind == "allow"


def test_bad_escape() -> None:
    _, (d,) = errors('deny because "a\\qb"\n')
    assert where(d) == ("CH0105", 1, 16)
    assert d.span.end_col == 18


def test_unknown_stage_metric_given_and_count() -> None:
    m, diags = parse(
        Source(
            "x",
            """on tool_reslt deny
budget dollars <= 1 per session
test "t" {
  given agnet {id: "a"}
  call "a" {}
  call "b" {}
  expect deny
}
test "u" { call "a" {} }
const c = count(x)
const h = has(a, b)
""",
        )
    )
    assert [where(d) for d in diags] == [
        ("CH0106", 1, 4),
        ("CH0107", 2, 8),
        ("CH0109", 4, 9),
        ("CH0108", 6, 3),
        ("CH0108", 9, 1),
        ("CH0110", 10, 11),
        ("CH0110", 11, 11),
    ]
    assert diags[0].help == "did you mean `tool_result`?"
    assert diags[1].help == "did you mean `tokens`?" or diags[1].help is None
    assert diags[2].help == "did you mean `agent`?"
    assert len(m.items) == 6  # these never stop the tree from being built


def test_assignment_is_a_comparison_for_the_checker() -> None:
    (rule,) = ok("deny when args.a = 3").items
    assert isinstance(rule, ast.Rule)
    cond = rule.conditions[0].expr
    assert isinstance(cond, ast.Binary) and cond.op == "=" and cond.op_span.col == 18


def test_chained_comparison_help() -> None:
    _, (d,) = errors("deny when a < b < c\n")
    assert d.code == "CH0101" and d.help is not None and "do not chain" in d.help


# ── recovery ────────────────────────────────────────────────────────────────


def test_recovery_reports_every_error_and_keeps_good_items() -> None:
    m, diags = errors("""policy "p"
default deny
alow tool "a"
allow tool "kb.*"
deny tool "b" when args.x > because "oops"
deny tool "c" when args.x == 1
""")
    assert [where(d) for d in diags] == [("CH0101", 3, 1), ("CH0101", 5, 29)]
    kinds = [type(i).__name__ for i in m.items]
    assert kinds == ["Header", "Default", "Rule", "Rule"]
    good = m.items[3]
    assert isinstance(good, ast.Rule) and good.target is not None
    assert good.target.names == ("c",) and good.span.line == 6


def test_recovery_inside_scope_keeps_sibling_rules() -> None:
    m, diags = errors("""scope agent.team == "s" {
  deny when
  allow tool "k"
  @id("x")
  deny tool "q" when args.x >
  warn
}
deny tool "after"
""")
    assert [where(d) for d in diags] == [("CH0101", 3, 3), ("CH0101", 6, 3)]
    scope, after = m.items
    assert isinstance(scope, ast.Scope)
    assert [r.effect.kind for r in scope.items if isinstance(r, ast.Rule)] == ["allow", "warn"]
    assert isinstance(after, ast.Rule) and after.span.line == 8


def test_recovery_inside_test_block() -> None:
    m, diags = errors("""test "t" {
  call "a" {amount: = 1}
  expect deny
}
allow
""")
    assert [where(d) for d in diags] == [("CH0101", 2, 21)]
    test, allow = m.items
    assert isinstance(test, ast.Test) and test.call is None and len(test.expects) == 1
    assert isinstance(allow, ast.Rule)


def test_broken_continuation_line_drops_its_whole_item() -> None:
    m, diags = errors('on tool_result\n  alow\ndeny tool "c"\n')
    assert [where(d) for d in diags] == [("CH0101", 2, 3)]
    (rule,) = m.items
    assert isinstance(rule, ast.Rule) and rule.stage is None


def test_unclosed_brace_reports_once() -> None:
    m, diags = errors('allow tool "a"\nscope x {\n  deny\ndeny tool "b"\n')
    assert [where(d) for d in diags] == [("CH0111", 2, 9)]
    assert [type(i).__name__ for i in m.items] == ["Rule", "Scope", "Rule"]


def test_parse_expr_errors() -> None:
    e, (d,) = parse_expr("a +", file="<repl>")
    assert e is None and d.code == "CH0104" and d.span.file == "<repl>"
    e, (d,) = parse_expr("a ) b")
    assert e is None and where(d) == ("CH0101", 1, 3)


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list('allow deny tool when {}()[]",.:=<>#@\n\\r1s')), max_size=60
    )
)
def test_parse_never_raises(text: str) -> None:
    module, diags = parse(Source("fuzz", text))
    assert isinstance(module, ast.Module)
    assert all(d.code.startswith("CH01") and d.code != "CH0100" for d in diags)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_parse_never_raises_on_any_text(text: str) -> None:
    module, diags = parse(Source("fuzz", EXAMPLE[:200] + text))
    assert isinstance(module, ast.Module)
    assert all(d.code != "CH0100" for d in diags)


def test_recovery_scales_to_many_broken_items() -> None:
    good = 'allow tool "a"\n@shadow\ndeny tool "b" when x\n'
    m, diags = errors((good + 'alow tool "c"\n') * 40)
    assert len(diags) == 40 and all(d.code == "CH0101" for d in diags)
    assert [d.span.line for d in diags[:2]] == [4, 8]
    rules = [i for i in m.items if isinstance(i, ast.Rule)]
    assert len(rules) == 80
    assert [a.name for a in rules[1].annotations] == ["shadow"]
