"""Build `charter.language.ast` nodes while the LALR parser reduces (no parse tree).

The grammar (`charter/grammar/agentpolicy.lark`) keeps the tree shallow; this module gives every
node its exact span and reports the few mistakes that are easier to explain here than in the
grammar (unknown stage, bad escape, `has` with two arguments...). Those are CH01xx diagnostics
too, but they never stop the tree from being built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple, cast

import msgspec

from charter.language import ast
from charter.language.diagnostics import (
    CONTROL_CHARACTER,
    MALFORMED_HAS_COUNT,
    MALFORMED_TEST,
    UNKNOWN_ESCAPE,
    UNKNOWN_GIVEN_PART,
    UNKNOWN_METRIC,
    UNKNOWN_STAGE,
    Code,
)
from charter.language.lexicon import Token
from charter.language.source import Diagnostic, Span
from charter.language.suggest import did_you_mean

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GIVEN_KINDS = ("agent", "user", "estimate", "session")
_METRICS = ("cost_usd", "tokens")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}


# Small wrappers so that optional clauses can be told apart by type in a children list. Named
# tuples, not dataclasses: a class costs a tenth as much to create, at every start-up.
class _Stage(NamedTuple):
    value: ast.Stage | None


class _Because(NamedTuple):
    text: str


class _Tags(NamedTuple):
    names: tuple[str, ...]


class _Key(NamedTuple):
    expr: ast.Expr


class _Then(NamedTuple):
    effect: ast.Effect


class _Op(NamedTuple):
    text: str
    span: Span


class _Outcome(NamedTuple):
    kind: ast.Outcome
    group: str | None


class _Givens(NamedTuple):
    parts: tuple[ast.Given, ...]
    span: Span


_ITEM_TYPES = (
    ast.Header,
    ast.Use,
    ast.Default,
    ast.Option,
    ast.Const,
    ast.MatcherDecl,
    ast.ToolDecl,
    ast.ToolsFrom,
    ast.Rule,
    ast.Scope,
    ast.Budget,
    ast.Limit,
    ast.Test,
    ast.Property,
    ast.Fixture,
)


def _tokens(children: list[Any]) -> list[Token]:
    return [c for c in children if isinstance(c, Token)]


class AstBuilder:
    """Builds AST nodes while the parser reduces; collects diagnostics in `self.diagnostics`.

    Each grammar rule (or alias) with a method here is built by calling that method with the
    rule's span and its children as Lark would pass them to a transformer: tokens filtered out,
    `_rules` inlined, `?rules` with one child collapsed (see `rule_callbacks`).
    """

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.diagnostics: list[Diagnostic] = []
        self._module_span: Span | None = None

    # ── spans and small helpers ─────────────────────────────────────────────

    def tspan(self, tok: Token) -> Span:
        return Span(
            self.file,
            tok.line or 0,
            tok.column or 0,
            tok.end_line or 0,
            tok.end_column or 0,
            tok.start_pos or 0,
            tok.end_pos or 0,
        )

    def join(self, first: Span, last: Span) -> Span:
        return Span(
            self.file, first.line, first.col, last.end_line, last.end_col, first.start, last.end
        )

    def error(self, code: Code, span: Span, message: str, help: str | None = None) -> None:
        self.diagnostics.append(code.at(span, message, help))

    def string(self, tok: Token) -> str:
        """Decode a STRING token: `\\"`, `\\\\`, `\\n`, `\\t`, `\\r`, `\\/`, `\\uXXXX`."""
        raw = str(tok)[1:-1]
        if "\\" not in raw:
            return raw
        out: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            hexdigits = raw[i + 2 : i + 6]
            if (
                nxt == "u"
                and len(hexdigits) == 4
                and all(c in "0123456789abcdefABCDEF" for c in hexdigits)
            ):
                out.append(chr(int(hexdigits, 16)))
                i += 6
                continue
            width = 6 if nxt == "u" else 2
            start = (tok.start_pos or 0) + 1 + i
            col = (tok.column or 0) + 1 + i
            line = tok.line or 0
            bad = raw[i : i + width]
            self.error(
                UNKNOWN_ESCAPE,
                Span(self.file, line, col, line, col + len(bad), start, start + len(bad)),
                f"unknown escape `{bad}` in a string",
                'escapes are \\" \\\\ \\n \\t \\r \\/ and \\uXXXX; for a regex write r"..."',
            )
            out.append(bad)
            i += len(bad)
        return "".join(out)

    def _opt(self, children: list[Any], kind: type[Any]) -> Any:
        for c in children:
            if isinstance(c, kind):
                return c
        return None

    # ── module and items ────────────────────────────────────────────────────

    def start(self, span: Span, c: list[Any]) -> ast.Module:
        return self.module(c)

    def module(self, items: list[Any]) -> ast.Module:
        """A module over the whole text, whatever part of it the items came from."""
        if self._module_span is None:  # once: recovery builds a module per item
            end_line = self.text.count("\n") + 1
            end_col = len(self.text) - (self.text.rfind("\n") + 1) + 1
            self._module_span = Span(self.file, 1, 1, end_line, end_col, 0, len(self.text))
        return ast.Module(self.file, tuple(items), self._module_span)

    def annotation(self, span: Span, c: list[Any]) -> ast.Annotation:
        arg = self.string(c[1]) if len(c) > 1 else None
        if arg is not None and not arg.isprintable():
            # Ids and metadata name rules in reasons, logs and generated code comments: a
            # line break or other control character there could forge or hide a line.
            bad = next(ch for ch in arg if not ch.isprintable())
            self.error(
                CONTROL_CHARACTER,
                self.tspan(c[1]),
                f"control character `{repr(bad)[1:-1]}` in the `@{c[0]}` string",
                "annotation strings are one line of printable text; remove the escape",
            )
            arg = "".join(ch if ch.isprintable() else "?" for ch in arg)
        return ast.Annotation(str(c[0]), arg, span)

    def annotated(self, span: Span, c: list[Any]) -> Any:
        notes = tuple(x for x in c if isinstance(x, ast.Annotation))
        node = c[-1]
        return msgspec.structs.replace(node, annotations=notes, span=span)

    def header(self, span: Span, c: list[Any]) -> ast.Header:
        version = self.string(c[1]) if len(c) > 1 else None
        return ast.Header(self.string(c[0]), version, span)

    def use(self, span: Span, c: list[Any]) -> ast.Use:
        names = _tokens(c)
        return ast.Use(tuple(str(t) for t in names), tuple(self.tspan(t) for t in names), span)

    def default(self, span: Span, c: list[Any]) -> ast.Default:
        effect = cast(Any, str(c[-1]))
        return ast.Default(effect, span)

    def option(self, span: Span, c: list[Any]) -> ast.Option:
        return ast.Option(cast(Any, " ".join(str(t) for t in c)), span)

    def const(self, span: Span, c: list[Any]) -> ast.Const:
        return ast.Const(str(c[0]), c[1], span, self.tspan(c[0]))

    def matcher(self, span: Span, c: list[Any]) -> ast.MatcherDecl:
        regex = ast.Regex(str(c[1])[2:-1], self.tspan(c[1]))
        return ast.MatcherDecl(str(c[0]), regex, span, self.tspan(c[0]))

    def tool_decl(self, span: Span, c: list[Any]) -> ast.ToolDecl:
        name_tok = c[1]
        params = tuple(x for x in c if isinstance(x, ast.Param))
        tags = self._opt(c, _Tags)
        return ast.ToolDecl(
            self.string(name_tok),
            params,
            tags.names if tags else (),
            span,
            self.tspan(name_tok),
        )

    def param(self, span: Span, c: list[Any]) -> ast.Param:
        optional = any(isinstance(x, Token) and x.type == "OPTIONAL" for x in c)
        return ast.Param(str(c[0]), optional, c[-1], span)

    def tags(self, span: Span, c: list[Any]) -> _Tags:
        return _Tags(tuple(str(t) for t in _tokens(c)))

    def type_expr(self, span: Span, c: list[Any]) -> ast.TypeExpr:
        args = tuple(x for x in c if isinstance(x, ast.TypeExpr))
        return ast.TypeExpr(str(c[0]), args, span)

    def tools_from(self, span: Span, c: list[Any]) -> ast.ToolsFrom:
        return ast.ToolsFrom(self.string(c[0]), span)

    # ── rules ───────────────────────────────────────────────────────────────

    def rule(self, span: Span, c: list[Any]) -> ast.Rule:
        stage = self._opt(c, _Stage)
        because = self._opt(c, _Because)
        return ast.Rule(
            annotations=(),
            stage=stage.value if stage else None,
            effect=self._opt(c, ast.Effect),
            target=self._opt(c, ast.ToolTarget),
            conditions=tuple(x for x in c if isinstance(x, ast.Condition)),
            because=because.text if because else None,
            span=span,
        )

    def stage(self, span: Span, c: list[Any]) -> _Stage:
        return _Stage(self._stage_name(c[0]))

    def _stage_name(self, tok: Token) -> ast.Stage | None:
        name = str(tok)
        for stage in ast.STAGES:
            if stage == name:
                return stage
        self.error(
            UNKNOWN_STAGE,
            self.tspan(tok),
            f"unknown stage `{name}`; expected one of " + ", ".join(f"`{s}`" for s in ast.STAGES),
            did_you_mean(name, ast.STAGES),
        )
        return None

    def allow_effect(self, span: Span, c: list[Any]) -> ast.Effect:
        return ast.Effect("allow", span)

    def deny_effect(self, span: Span, c: list[Any]) -> ast.Effect:
        return ast.Effect("deny", span)

    def warn_effect(self, span: Span, c: list[Any]) -> ast.Effect:
        return ast.Effect("warn", span)

    def approval_effect(self, span: Span, c: list[Any]) -> ast.Effect:
        groups = tuple(self.string(t) for t in _tokens(c))
        return ast.Effect("require_approval", span, groups=groups)

    def redact_effect(self, span: Span, c: list[Any]) -> ast.Effect:
        return ast.Effect("redact", span, matchers=tuple(c[:-1]), path=c[-1])

    def label_effect(self, span: Span, c: list[Any]) -> ast.Effect:
        return ast.Effect("label", span, label=self.string(_tokens(c)[-1]))

    def matcher_ref(self, span: Span, c: list[Any]) -> ast.Expr:
        first = c[0]
        expr: ast.Expr = ast.Name(str(first), self.tspan(first))
        for tok in c[1:]:
            name_span = self.tspan(tok)
            expr = ast.Attr(expr, str(tok), self.join(expr.span, name_span), name_span)
        return expr

    def tool_names(self, span: Span, c: list[Any]) -> ast.ToolTarget:
        return ast.ToolTarget(tuple(self.string(t) for t in c), None, span)

    def tool_tagged(self, span: Span, c: list[Any]) -> ast.ToolTarget:
        return ast.ToolTarget((), str(c[0]), span)

    def when(self, span: Span, c: list[Any]) -> ast.Condition:
        return ast.Condition(False, c[0], span)

    def unless(self, span: Span, c: list[Any]) -> ast.Condition:
        return ast.Condition(True, c[0], span)

    def because(self, span: Span, c: list[Any]) -> _Because:
        return _Because(self.string(c[0]))

    def scope(self, span: Span, c: list[Any]) -> ast.Scope:
        target = c[0] if isinstance(c[0], ast.ToolTarget) else None
        rest = c[1:] if target is not None else c
        condition: ast.Expr | None = None
        if rest and not isinstance(rest[0], _ITEM_TYPES):
            condition = rest[0]
            rest = rest[1:]
        return ast.Scope((), target, condition, tuple(rest), span)

    def budget(self, span: Span, c: list[Any]) -> ast.Budget:
        metric_tok: Token = c[0]
        metric = str(metric_tok)
        if metric not in _METRICS:
            self.error(
                UNKNOWN_METRIC,
                self.tspan(metric_tok),
                f"unknown budget metric `{metric}`; expected `cost_usd` or `tokens`",
                did_you_mean(metric, _METRICS),
            )
        key, then, because = self._opt(c, _Key), self._opt(c, _Then), self._opt(c, _Because)
        return ast.Budget(
            annotations=(),
            metric=cast(Any, metric),
            limit=c[1],
            window=c[2],
            key=key.expr if key else None,
            then=then.effect if then else None,
            because=because.text if because else None,
            span=span,
        )

    def limit(self, span: Span, c: list[Any]) -> ast.Limit:
        key, then, because = self._opt(c, _Key), self._opt(c, _Then), self._opt(c, _Because)
        return ast.Limit(
            annotations=(),
            target=c[0],
            limit=int(c[1]),
            window=c[2],
            key=key.expr if key else None,
            then=then.effect if then else None,
            because=because.text if because else None,
            span=span,
        )

    def number(self, span: Span, c: list[Any]) -> Decimal | int:
        tok: Token = c[0]
        return Decimal(str(tok)) if tok.type == "DECIMAL" else int(tok)

    def window_session(self, span: Span, c: list[Any]) -> ast.Window:
        return ast.Window(None, "session", span)

    def window_turn(self, span: Span, c: list[Any]) -> ast.Window:
        return ast.Window(None, "turn", span)

    def window_duration(self, span: Span, c: list[Any]) -> ast.Window:
        duration = self._duration(c[0])
        return ast.Window(duration.seconds, duration.text, span)

    def key(self, span: Span, c: list[Any]) -> _Key:
        return _Key(c[0])

    def then(self, span: Span, c: list[Any]) -> _Then:
        return _Then(c[0])

    # ── tests and properties ────────────────────────────────────────────────

    def test_block(self, span: Span, c: list[Any]) -> ast.Test:
        givens = tuple(g for x in c if isinstance(x, _Givens) for g in x.parts)
        calls = [x for x in c if isinstance(x, ast.TestCall)]
        expects = tuple(x for x in c if isinstance(x, ast.Expect))
        rows = tuple(x for x in c if isinstance(x, ast.TableRow))
        for extra in calls[1:]:
            self.error(MALFORMED_TEST, extra.span, "a test makes exactly one call",
                       "split this into another `test` block, or make this block a "
                       "`scenario` to run the calls in order")
        for approve in (x for x in c if isinstance(x, ast.Approve)):
            self.error(MALFORMED_TEST, approve.span, "`approve` belongs in a scenario",
                       "write `scenario` instead of `test` to run calls in order")
        if rows and not calls:
            self.error(MALFORMED_TEST, rows[0].span, "a table's rows need a `call` to complete",
                       'add a line such as `call "tool.name" {}` before the rows')
        if not expects and not rows:
            self.error(
                MALFORMED_TEST,
                span,
                "this test has no `expect`",
                "add a line such as `expect deny` or `expect not allow`",
            )
        return ast.Test(self.string(c[0]), givens, calls[0] if calls else None, expects, span,
                        rows)

    def scenario_block(self, span: Span, c: list[Any]) -> ast.Test:
        steps: list[ast.Step] = []
        seen_call = False
        for x in c[1:]:
            if isinstance(x, ast.TableRow):
                self.error(MALFORMED_TEST, x.span, "a scenario has no rows",
                           "write each call of the scenario with its own `expect` lines")
            elif isinstance(x, _Givens):
                steps.append(ast.GivenLine(x.parts, x.span))
            else:
                if isinstance(x, ast.Expect | ast.Approve) and not seen_call:
                    self.error(MALFORMED_TEST, x.span, "this line needs a `call` before it",
                               "in a scenario each `expect` and `approve` is about the call "
                               "above it")
                seen_call = seen_call or isinstance(x, ast.TestCall)
                steps.append(x)
        if not seen_call:
            self.error(MALFORMED_TEST, span, "this scenario makes no call",
                       'add a line such as `call "tool.name" {arg: "value"}`')
        givens = tuple(g for x in steps if isinstance(x, ast.GivenLine) for g in x.parts)
        calls = [x for x in steps if isinstance(x, ast.TestCall)]
        expects = tuple(x for x in steps if isinstance(x, ast.Expect))
        return ast.Test(self.string(c[0]), givens, calls[0] if calls else None, expects, span,
                        steps=tuple(steps), scenario=True)

    def given(self, span: Span, c: list[Any]) -> _Givens:
        return _Givens(tuple(c), span)

    def given_record(self, span: Span, c: list[Any]) -> ast.Given:
        kind_tok: Token = c[0]
        kind = str(kind_tok)
        if kind not in _GIVEN_KINDS:
            self.error(
                UNKNOWN_GIVEN_PART,
                self.tspan(kind_tok),
                f"unknown `given` part `{kind}`; expected `agent`, `user`, `session`, "
                "`estimate`, `approved`, `labels`, `now`, `usage` or `previously`",
                did_you_mean(kind, (*_GIVEN_KINDS, "approved", "labels")),
            )
        return ast.Given(cast(Any, kind), c[1], None, span)

    def given_session(self, span: Span, c: list[Any]) -> ast.Given:
        return ast.Given("session", c[-1], None, span)

    def given_approved(self, span: Span, c: list[Any]) -> ast.Given:
        group = self.string(c[0]) if c else None
        return ast.Given("approved", None, group, span)

    def given_labels(self, span: Span, c: list[Any]) -> ast.Given:
        return ast.Given("labels", c[0], None, span)

    def given_now(self, span: Span, c: list[Any]) -> ast.Given:
        word, text = c
        if str(word) != "now":
            self.error(UNKNOWN_GIVEN_PART, self.tspan(word),
                       f"unknown `given` part `{word}`; only `now` takes a string",
                       'write `given now "2026-01-05T10:00:00Z"`')
        return ast.Given("now", ast.Literal_(self.string(text), self.tspan(text)), None, span)

    def given_usage(self, span: Span, c: list[Any]) -> ast.Given:
        metric: Token = c[0]
        if str(metric) not in _METRICS:
            self.error(UNKNOWN_GIVEN_PART, self.tspan(metric),
                       f"unknown usage `{metric}`; expected `cost_usd`, `tokens` or "
                       "`calls(tool ...)`", did_you_mean(str(metric), _METRICS))
        return ast.Given("usage", ast.Literal_(c[1], span), None, span, name=str(metric))

    def given_calls(self, span: Span, c: list[Any]) -> ast.Given:
        target, count = c
        return ast.Given("usage", ast.Literal_(int(count), self.tspan(count)), None, span,
                         name="calls", target=target)

    def given_history(self, span: Span, c: list[Any]) -> ast.Given:
        fields = c[1] if len(c) > 1 else None
        return ast.Given("previously", fields, None, span, name=self.string(c[0]))

    def given_fixture(self, span: Span, c: list[Any]) -> ast.Given:
        return ast.Given("fixture", None, None, span, name=str(c[0]))

    def fixture(self, span: Span, c: list[Any]) -> ast.Fixture:
        return ast.Fixture(str(c[0]), tuple(c[1:]), span)

    def approve(self, span: Span, c: list[Any]) -> ast.Approve:
        return ast.Approve(self.string(c[0]), self.string(c[1]) if len(c) > 1 else None, span)

    def row(self, span: Span, c: list[Any]) -> ast.TableRow:
        givens = tuple(x for x in c[1:] if isinstance(x, ast.Given))
        expects = tuple(x for x in c[1:] if isinstance(x, ast.Expect))
        return ast.TableRow(c[0], givens, expects, span)

    def model_call(self, span: Span, c: list[Any]) -> ast.TestCall:
        stage_tok, field_tok, value = c
        stage = self._stage_name(stage_tok)
        wanted = {"model_input": "input", "model_output": "output"}.get(str(stage_tok))
        if stage is not None and str(field_tok) != wanted:
            self.error(UNKNOWN_GIVEN_PART, self.tspan(field_tok),
                       f"`on {stage}` takes `with {wanted or 'result'} ...`, not "
                       f"`with {field_tok}`", "a tool call is written `on STAGE call ...`"
                       if wanted is None else None)
        empty = ast.RecordLit((), self.tspan(field_tok))
        return ast.TestCall(stage, "", empty, value, span, field=str(field_tok))

    def plain_call(self, span: Span, c: list[Any]) -> ast.TestCall:
        return ast.TestCall(None, self.string(c[0]), c[1], None, span)

    def staged_call(self, span: Span, c: list[Any]) -> ast.TestCall:
        result = c[3] if len(c) > 3 else None
        return ast.TestCall(self._stage_name(c[0]), self.string(c[1]), c[2], result, span)

    def _expect(self, span: Span, c: list[Any], negate: bool) -> ast.Expect:
        outcome: _Outcome = self._opt(c, _Outcome)
        because = self._opt(c, _Because)
        return ast.Expect(
            negate,
            outcome.kind,
            outcome.group,
            because.text if because else None,
            span,
        )

    def expect_pos(self, span: Span, c: list[Any]) -> ast.Expect:
        return self._expect(span, c, False)

    def expect_neg(self, span: Span, c: list[Any]) -> ast.Expect:
        return self._expect(span, c, True)

    def outcome_allow(self, span: Span, c: list[Any]) -> _Outcome:
        return _Outcome("allow", None)

    def outcome_deny(self, span: Span, c: list[Any]) -> _Outcome:
        return _Outcome("deny", None)

    def outcome_redact(self, span: Span, c: list[Any]) -> _Outcome:
        return _Outcome("redact", None)

    def outcome_approval(self, span: Span, c: list[Any]) -> _Outcome:
        strings = _tokens(c)
        return _Outcome("require_approval", self.string(strings[0]) if strings else None)

    def property_block(self, span: Span, c: list[Any]) -> ast.Property:
        target = self._opt(c, ast.ToolTarget)
        rest = [x for x in c[1:] if not isinstance(x, ast.ToolTarget | ast.Expect)]
        return ast.Property(
            self.string(c[0]),
            target,
            rest[0] if rest else None,
            self._opt(c, ast.Expect),
            span,
        )

    # ── expressions ─────────────────────────────────────────────────────────

    def binary(self, span: Span, c: list[Any]) -> ast.Binary:
        left, op, right = c
        if isinstance(op, Token):
            op = _Op(str(op), self.tspan(op))
        return ast.Binary(cast(Any, op.text), left, right, span, op.span)

    # An operator rule keeps all its tokens, so its span runs from the first to the last.
    def comp_op(self, span: Span, c: list[Any]) -> _Op:
        return _Op(" ".join(c) if len(c) > 1 else str(c[0]), span)

    def add_op(self, span: Span, c: list[Any]) -> _Op:
        return _Op(str(c[0]), span)

    def mul_op(self, span: Span, c: list[Any]) -> _Op:
        return _Op(str(c[0]), span)

    def not_(self, span: Span, c: list[Any]) -> ast.Unary:
        return ast.Unary("not", c[-1], span)

    def neg(self, span: Span, c: list[Any]) -> ast.Unary:
        return ast.Unary("-", c[-1], span)

    def attr(self, span: Span, c: list[Any]) -> ast.Attr:
        return ast.Attr(c[0], str(c[1]), span, self.tspan(c[1]))

    def index(self, span: Span, c: list[Any]) -> ast.Index:
        return ast.Index(c[0], c[1], span)

    def string_lit(self, span: Span, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(self.string(c[0]), span)

    def regex_lit(self, span: Span, c: list[Any]) -> ast.Regex:
        return ast.Regex(str(c[0])[2:-1], span)

    def int_lit(self, span: Span, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(int(c[0]), span)

    def decimal_lit(self, span: Span, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(Decimal(str(c[0])), span)

    def _duration(self, tok: Token) -> ast.Duration:
        text = str(tok)
        return ast.Duration(int(text[:-1]) * _DURATION_UNITS[text[-1]], text)

    def duration_lit(self, span: Span, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(self._duration(c[0]), span)

    def boolean(self, span: Span, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(str(c[0]) == "true", span)

    def name_ref(self, span: Span, c: list[Any]) -> ast.Name:
        return ast.Name(str(c[0]), span)

    def root(self, span: Span, c: list[Any]) -> ast.Name:
        return ast.Name(str(c[0]), span)

    def call_expr(self, span: Span, c: list[Any]) -> ast.Expr:
        func_tok: Token = c[0]
        func, args = str(func_tok), tuple(c[1:])
        if func == "has":
            if len(args) == 1:
                return ast.Has(args[0], span)
            self.error(
                MALFORMED_HAS_COUNT,
                span,
                f"`has` takes one field path, found {len(args)} arguments",
                "write `has(args.field)`",
            )
        elif func == "count":
            arg = args[0] if len(args) == 1 else None
            if isinstance(arg, ast.Binary) and arg.op == "in":
                return ast.Count(arg.left, arg.right, span)
            self.error(
                MALFORMED_HAS_COUNT,
                span,
                "`count` takes a matcher, `in` and a value",
                "write `count(pii.email in result)`",
            )
        return ast.Call(func, args, span, self.tspan(func_tok))

    def set_lit(self, span: Span, c: list[Any]) -> ast.SetLit:
        return ast.SetLit(tuple(c), span)

    def list_lit(self, span: Span, c: list[Any]) -> ast.ListLit:
        return ast.ListLit(tuple(c), span)

    def record_lit(self, span: Span, c: list[Any]) -> ast.RecordLit:
        return ast.RecordLit(tuple(c), span)

    def map_lit(self, span: Span, c: list[Any]) -> ast.MapLit:
        return ast.MapLit(tuple(c), span)

    def entry(self, span: Span, c: list[Any]) -> ast.RecordField:
        return ast.RecordField(self.string(c[0]), c[1], span)

    def field(self, span: Span, c: list[Any]) -> ast.RecordField:
        return ast.RecordField(str(c[0]), c[1], span)

    def field_key(self, span: Span, c: list[Any]) -> Token:
        tok: Token = c[0]
        return tok

    def approved_expr(self, span: Span, c: list[Any]) -> ast.Approved:
        if len(c) == 2:  # `approved by N of "g"`
            return ast.Approved(self.string(c[1]), span, int(c[0]))
        return ast.Approved(self.string(c[0]) if c else None, span)

    def previously_expr(self, span: Span, c: list[Any]) -> ast.Previously:
        record = self._opt(c, ast.RecordLit)
        within_tok = next((t for t in _tokens(c) if t.type == "DURATION"), None)
        return ast.Previously(
            self.string(c[0]),
            record,
            self._duration(within_tok) if within_tok else None,
            span,
        )


# ── building during parsing ─────────────────────────────────────────────────
#
# The parser calls one callback per reduction with the builder and the values of the rule's
# symbols: a Token for a terminal, an *entry* for a nonterminal. An entry is the tuple
# `(value, line, col, start, end_line, end_col, end)`: the built value and the extent of all
# the rule's text, tokens not kept included (Lark's "container" positions). A node spans from
# the start of its first symbol to the end of its last one, exactly as Lark's
# `propagate_positions` would give it, so spans are the same as from Lark's parse tree
# (tests/language/test_parser_fast.py builds the AST from that tree and compares).

Callback = Callable[["AstBuilder", list[Any]], Any]

_TOKEN, _NODE, _INLINED = 0, 1, 2
_NO_SPAN = (1, 1, 0, 1, 1, 0)


class RuleShape(NamedTuple):
    """What a callback must do for one grammar rule (computed once per grammar)."""

    #: the AstBuilder method: the rule's alias or name
    name: str
    size: int
    first_is_token: bool
    last_is_token: bool
    #: the kept symbols, in order: (index, _TOKEN | _NODE | _INLINED)
    include: tuple[tuple[int, int], ...]
    #: a `_rule`: its value is its children, spliced into the parent's
    inlined: bool
    #: a `?rule` left with one child: that child stands for the rule
    collapse: bool

    @property
    def identity(self) -> bool:
        """One nonterminal symbol standing for the rule: its entry passes through unchanged."""
        return self.collapse and self.size == 1 and self.include[0][1] == _NODE


#: A grammar rule as `charter/grammar/_tables.py` lists it: origin, alias, symbols as
#: (name, is terminal, filtered out), keep all tokens (`!rule`), expand one child (`?rule`).
GrammarRule = tuple[str, str | None, Sequence[tuple[str, bool, bool]], bool, bool]


def rule_shape(rule: GrammarRule) -> RuleShape:
    origin, alias, expansion, keep, expand1 = rule
    include = []
    for i, (sym, is_term, filter_out) in enumerate(expansion):
        if is_term:
            if keep or not filter_out:
                include.append((i, _TOKEN))
        else:
            include.append((i, _INLINED if sym.startswith("_") else _NODE))
    name = alias or origin
    inlined = origin.startswith("_")
    collapse = expand1 and not alias and len(include) == 1
    if not inlined and not hasattr(AstBuilder, name) and not collapse:
        raise NotImplementedError(f"no AstBuilder method for grammar rule `{name}`")
    if collapse and include[0][1] == _INLINED:
        raise NotImplementedError(f"`?{name}` would collapse to an inlined rule")
    return RuleShape(
        name,
        len(expansion),
        bool(expansion) and expansion[0][1],
        bool(expansion) and expansion[-1][1],
        tuple(include),
        inlined,
        collapse,
    )


def rule_callbacks(shapes: Iterable[RuleShape]) -> list[Callback]:
    """The parser callbacks that build the AST, one per grammar rule (in order). They take the
    builder as an argument, so one list serves every parse."""
    return [_callback(shape) for shape in shapes]


def _identity(b: AstBuilder, s: list[Any]) -> Any:
    return s[0]


_TOKEN_START = attrgetter("line", "column", "start_pos")
_TOKEN_END = attrgetter("end_line", "end_column", "end_pos")
_ENTRY_START = itemgetter(1, 2, 3)
_ENTRY_END = itemgetter(4, 5, 6)


def _callback(shape: RuleShape) -> Callback:
    if shape.identity:
        return _identity
    include = shape.include
    if not shape.size:  # only `start` may be empty
        method = getattr(AstBuilder, shape.name)
        return lambda b, s: (method(b, Span(b.file, 1, 1, 1, 1, 0, 0), []), *_NO_SPAN)
    first = _TOKEN_START if shape.first_is_token else _ENTRY_START
    last = _TOKEN_END if shape.last_is_token else _ENTRY_END
    end = shape.size - 1
    if shape.collapse:
        ((only, kind),) = include
        if kind == _TOKEN:
            return lambda b, s: s[only]
        return lambda b, s: (s[only][0], *first(s[0]), *last(s[end]))

    if any(kind == _INLINED for _, kind in include):

        def children(s: list[Any]) -> list[Any]:
            c: list[Any] = []
            for i, kind in include:
                v = s[i]
                if kind == _TOKEN:
                    c.append(v)
                elif kind == _NODE:
                    c.append(v[0])
                elif c:
                    c.extend(v[0])
                else:
                    c = v[0]  # reuse the list: left-recursive `_rule*` stays linear
            return c

    else:
        tokens = tuple(kind == _TOKEN for _, kind in include)
        indexes = tuple(i for i, _ in include)
        if all(tokens):
            pick = itemgetter(*indexes) if indexes else None

            def children(s: list[Any]) -> list[Any]:
                if pick is None:
                    return []
                return list(pick(s)) if len(indexes) > 1 else [pick(s)]

        else:
            pairs = tuple(zip(indexes, tokens, strict=True))

            def children(s: list[Any]) -> list[Any]:
                return [s[i] if tok else s[i][0] for i, tok in pairs]

    if shape.inlined:
        return lambda b, s: (children(s), *first(s[0]), *last(s[end]))

    method = getattr(AstBuilder, shape.name)

    def build(b: AstBuilder, s: list[Any]) -> Any:
        sl, sc, sp = first(s[0])
        el, ec, ep = last(s[end])
        span = Span(b.file, sl, sc, el, ec, sp, ep)
        return (method(b, span, children(s)), sl, sc, sp, el, ec, ep)

    return build
