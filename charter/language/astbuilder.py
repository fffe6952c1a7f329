"""Turn the Lark parse tree of an `.agentpolicy` file into `charter.language.ast` nodes.

The grammar (`charter/grammar/agentpolicy.lark`) keeps the tree shallow; this module gives every
node its exact span and reports the few mistakes that are easier to explain here than in the
grammar (unknown stage, bad escape, `has` with two arguments...). Those are CH01xx diagnostics
too, but they never stop the tree from being built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from lark import Token, Transformer, v_args
from lark.tree import Meta

from charter.language import ast
from charter.language.source import Diagnostic, Span
from charter.language.suggest import did_you_mean

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GIVEN_KINDS = ("agent", "user", "estimate", "session")
_METRICS = ("cost_usd", "tokens")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}


# Small wrappers so that optional clauses can be told apart by type in a children list.
@dataclass(frozen=True, slots=True)
class _Stage:
    value: ast.Stage | None


@dataclass(frozen=True, slots=True)
class _Because:
    text: str


@dataclass(frozen=True, slots=True)
class _Tags:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Key:
    expr: ast.Expr


@dataclass(frozen=True, slots=True)
class _Then:
    effect: ast.Effect


@dataclass(frozen=True, slots=True)
class _Op:
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: ast.Outcome
    group: str | None


@dataclass(frozen=True, slots=True)
class _Givens:
    parts: tuple[ast.Given, ...]


_ITEM_TYPES = (
    ast.Header,
    ast.Use,
    ast.Default,
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
)


def _tokens(children: list[Any]) -> list[Token]:
    return [c for c in children if isinstance(c, Token)]


@v_args(meta=True)
class AstBuilder(Transformer[Token, Any]):
    """A Lark transformer producing AST nodes; collects diagnostics in `self.diagnostics`."""

    def __init__(self, file: str, text: str) -> None:
        super().__init__(visit_tokens=False)
        self.file = file
        self.text = text
        self.diagnostics: list[Diagnostic] = []

    # ── spans and small helpers ─────────────────────────────────────────────

    def span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 1, 1, 1, 1, 0, 0)
        return Span(
            self.file,
            meta.line,
            meta.column,
            meta.end_line,
            meta.end_column,
            meta.start_pos,
            meta.end_pos,
        )

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

    def error(self, code: str, span: Span, message: str, help: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, "error", span, message, help))

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
                "CH0105",
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

    def start(self, meta: Meta, c: list[Any]) -> ast.Module:
        return self.module(c)

    def module(self, items: list[Any]) -> ast.Module:
        """A module over the whole text, whatever part of it the items came from."""
        end_line = self.text.count("\n") + 1
        end_col = len(self.text) - (self.text.rfind("\n") + 1) + 1
        span = Span(self.file, 1, 1, end_line, end_col, 0, len(self.text))
        return ast.Module(self.file, tuple(items), span)

    def annotation(self, meta: Meta, c: list[Any]) -> ast.Annotation:
        arg = self.string(c[1]) if len(c) > 1 else None
        return ast.Annotation(str(c[0]), arg, self.span(meta))

    def annotated(self, meta: Meta, c: list[Any]) -> Any:
        notes = tuple(x for x in c if isinstance(x, ast.Annotation))
        node = c[-1]
        return dataclasses.replace(node, annotations=notes, span=self.span(meta))

    def header(self, meta: Meta, c: list[Any]) -> ast.Header:
        version = self.string(c[1]) if len(c) > 1 else None
        return ast.Header(self.string(c[0]), version, self.span(meta))

    def use(self, meta: Meta, c: list[Any]) -> ast.Use:
        names = _tokens(c)
        return ast.Use(
            tuple(str(t) for t in names), tuple(self.tspan(t) for t in names), self.span(meta)
        )

    def default(self, meta: Meta, c: list[Any]) -> ast.Default:
        effect = cast(Any, str(c[-1]))
        return ast.Default(effect, self.span(meta))

    def const(self, meta: Meta, c: list[Any]) -> ast.Const:
        return ast.Const(str(c[0]), c[1], self.span(meta), self.tspan(c[0]))

    def matcher(self, meta: Meta, c: list[Any]) -> ast.MatcherDecl:
        regex = ast.Regex(str(c[1])[2:-1], self.tspan(c[1]))
        return ast.MatcherDecl(str(c[0]), regex, self.span(meta), self.tspan(c[0]))

    def tool_decl(self, meta: Meta, c: list[Any]) -> ast.ToolDecl:
        name_tok = c[1]
        params = tuple(x for x in c if isinstance(x, ast.Param))
        tags = self._opt(c, _Tags)
        return ast.ToolDecl(
            self.string(name_tok),
            params,
            tags.names if tags else (),
            self.span(meta),
            self.tspan(name_tok),
        )

    def param(self, meta: Meta, c: list[Any]) -> ast.Param:
        optional = any(isinstance(x, Token) and x.type == "OPTIONAL" for x in c)
        return ast.Param(str(c[0]), optional, c[-1], self.span(meta))

    def tags(self, meta: Meta, c: list[Any]) -> _Tags:
        return _Tags(tuple(str(t) for t in _tokens(c)))

    def type_expr(self, meta: Meta, c: list[Any]) -> ast.TypeExpr:
        args = tuple(x for x in c if isinstance(x, ast.TypeExpr))
        return ast.TypeExpr(str(c[0]), args, self.span(meta))

    def tools_from(self, meta: Meta, c: list[Any]) -> ast.ToolsFrom:
        return ast.ToolsFrom(self.string(c[0]), self.span(meta))

    # ── rules ───────────────────────────────────────────────────────────────

    def rule(self, meta: Meta, c: list[Any]) -> ast.Rule:
        stage = self._opt(c, _Stage)
        because = self._opt(c, _Because)
        return ast.Rule(
            annotations=(),
            stage=stage.value if stage else None,
            effect=self._opt(c, ast.Effect),
            target=self._opt(c, ast.ToolTarget),
            conditions=tuple(x for x in c if isinstance(x, ast.Condition)),
            because=because.text if because else None,
            span=self.span(meta),
        )

    def stage(self, meta: Meta, c: list[Any]) -> _Stage:
        return _Stage(self._stage_name(c[0]))

    def _stage_name(self, tok: Token) -> ast.Stage | None:
        name = str(tok)
        for stage in ast.STAGES:
            if stage == name:
                return stage
        self.error(
            "CH0106",
            self.tspan(tok),
            f"unknown stage `{name}`; expected one of " + ", ".join(f"`{s}`" for s in ast.STAGES),
            did_you_mean(name, ast.STAGES),
        )
        return None

    def allow_effect(self, meta: Meta, c: list[Any]) -> ast.Effect:
        return ast.Effect("allow", self.span(meta))

    def deny_effect(self, meta: Meta, c: list[Any]) -> ast.Effect:
        return ast.Effect("deny", self.span(meta))

    def warn_effect(self, meta: Meta, c: list[Any]) -> ast.Effect:
        return ast.Effect("warn", self.span(meta))

    def approval_effect(self, meta: Meta, c: list[Any]) -> ast.Effect:
        groups = tuple(self.string(t) for t in _tokens(c))
        return ast.Effect("require_approval", self.span(meta), groups=groups)

    def redact_effect(self, meta: Meta, c: list[Any]) -> ast.Effect:
        return ast.Effect("redact", self.span(meta), matchers=tuple(c[:-1]), path=c[-1])

    def label_effect(self, meta: Meta, c: list[Any]) -> ast.Effect:
        return ast.Effect("label", self.span(meta), label=self.string(_tokens(c)[-1]))

    def matcher_ref(self, meta: Meta, c: list[Any]) -> ast.Expr:
        first = c[0]
        expr: ast.Expr = ast.Name(str(first), self.tspan(first))
        for tok in c[1:]:
            name_span = self.tspan(tok)
            expr = ast.Attr(expr, str(tok), self.join(expr.span, name_span), name_span)
        return expr

    def tool_names(self, meta: Meta, c: list[Any]) -> ast.ToolTarget:
        return ast.ToolTarget(tuple(self.string(t) for t in c), None, self.span(meta))

    def tool_tagged(self, meta: Meta, c: list[Any]) -> ast.ToolTarget:
        return ast.ToolTarget((), str(c[0]), self.span(meta))

    def when(self, meta: Meta, c: list[Any]) -> ast.Condition:
        return ast.Condition(False, c[0], self.span(meta))

    def unless(self, meta: Meta, c: list[Any]) -> ast.Condition:
        return ast.Condition(True, c[0], self.span(meta))

    def because(self, meta: Meta, c: list[Any]) -> _Because:
        return _Because(self.string(c[0]))

    def scope(self, meta: Meta, c: list[Any]) -> ast.Scope:
        target = c[0] if isinstance(c[0], ast.ToolTarget) else None
        rest = c[1:] if target is not None else c
        condition: ast.Expr | None = None
        if rest and not isinstance(rest[0], _ITEM_TYPES):
            condition = rest[0]
            rest = rest[1:]
        return ast.Scope((), target, condition, tuple(rest), self.span(meta))

    def budget(self, meta: Meta, c: list[Any]) -> ast.Budget:
        metric_tok: Token = c[0]
        metric = str(metric_tok)
        if metric not in _METRICS:
            self.error(
                "CH0107",
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
            span=self.span(meta),
        )

    def limit(self, meta: Meta, c: list[Any]) -> ast.Limit:
        key, then, because = self._opt(c, _Key), self._opt(c, _Then), self._opt(c, _Because)
        return ast.Limit(
            annotations=(),
            target=c[0],
            limit=int(c[1]),
            window=c[2],
            key=key.expr if key else None,
            then=then.effect if then else None,
            because=because.text if because else None,
            span=self.span(meta),
        )

    def number(self, meta: Meta, c: list[Any]) -> Decimal | int:
        tok: Token = c[0]
        return Decimal(str(tok)) if tok.type == "DECIMAL" else int(tok)

    def window_session(self, meta: Meta, c: list[Any]) -> ast.Window:
        return ast.Window(None, "session", self.span(meta))

    def window_duration(self, meta: Meta, c: list[Any]) -> ast.Window:
        duration = self._duration(c[0])
        return ast.Window(duration.seconds, duration.text, self.span(meta))

    def key(self, meta: Meta, c: list[Any]) -> _Key:
        return _Key(c[0])

    def then(self, meta: Meta, c: list[Any]) -> _Then:
        return _Then(c[0])

    # ── tests and properties ────────────────────────────────────────────────

    def test_block(self, meta: Meta, c: list[Any]) -> ast.Test:
        givens = tuple(g for x in c if isinstance(x, _Givens) for g in x.parts)
        calls = [x for x in c if isinstance(x, ast.TestCall)]
        expects = tuple(x for x in c if isinstance(x, ast.Expect))
        span = self.span(meta)
        for extra in calls[1:]:
            self.error(
                "CH0108",
                extra.span,
                "a test makes exactly one call",
                "split this into another `test` block",
            )
        if not expects:
            self.error(
                "CH0108",
                span,
                "this test has no `expect`",
                "add a line such as `expect deny` or `expect not allow`",
            )
        return ast.Test(self.string(c[0]), givens, calls[0] if calls else None, expects, span)

    def given(self, meta: Meta, c: list[Any]) -> _Givens:
        return _Givens(tuple(c))

    def given_record(self, meta: Meta, c: list[Any]) -> ast.Given:
        kind_tok: Token = c[0]
        kind = str(kind_tok)
        if kind not in _GIVEN_KINDS:
            self.error(
                "CH0109",
                self.tspan(kind_tok),
                f"unknown `given` part `{kind}`; expected `agent`, `user`, `session`, "
                "`estimate`, `approved` or `labels`",
                did_you_mean(kind, (*_GIVEN_KINDS, "approved", "labels")),
            )
        return ast.Given(cast(Any, kind), c[1], None, self.span(meta))

    def given_session(self, meta: Meta, c: list[Any]) -> ast.Given:
        return ast.Given("session", c[-1], None, self.span(meta))

    def given_approved(self, meta: Meta, c: list[Any]) -> ast.Given:
        group = self.string(c[0]) if c else None
        return ast.Given("approved", None, group, self.span(meta))

    def given_labels(self, meta: Meta, c: list[Any]) -> ast.Given:
        return ast.Given("labels", c[0], None, self.span(meta))

    def plain_call(self, meta: Meta, c: list[Any]) -> ast.TestCall:
        return ast.TestCall(None, self.string(c[0]), c[1], None, self.span(meta))

    def staged_call(self, meta: Meta, c: list[Any]) -> ast.TestCall:
        result = c[3] if len(c) > 3 else None
        return ast.TestCall(
            self._stage_name(c[0]), self.string(c[1]), c[2], result, self.span(meta)
        )

    def _expect(self, meta: Meta, c: list[Any], negate: bool) -> ast.Expect:
        outcome: _Outcome = self._opt(c, _Outcome)
        because = self._opt(c, _Because)
        return ast.Expect(
            negate,
            outcome.kind,
            outcome.group,
            because.text if because else None,
            self.span(meta),
        )

    def expect_pos(self, meta: Meta, c: list[Any]) -> ast.Expect:
        return self._expect(meta, c, False)

    def expect_neg(self, meta: Meta, c: list[Any]) -> ast.Expect:
        return self._expect(meta, c, True)

    def outcome_allow(self, meta: Meta, c: list[Any]) -> _Outcome:
        return _Outcome("allow", None)

    def outcome_deny(self, meta: Meta, c: list[Any]) -> _Outcome:
        return _Outcome("deny", None)

    def outcome_redact(self, meta: Meta, c: list[Any]) -> _Outcome:
        return _Outcome("redact", None)

    def outcome_approval(self, meta: Meta, c: list[Any]) -> _Outcome:
        strings = _tokens(c)
        return _Outcome("require_approval", self.string(strings[0]) if strings else None)

    def property_block(self, meta: Meta, c: list[Any]) -> ast.Property:
        target = self._opt(c, ast.ToolTarget)
        rest = [x for x in c[1:] if not isinstance(x, ast.ToolTarget | ast.Expect)]
        return ast.Property(
            self.string(c[0]),
            target,
            rest[0] if rest else None,
            self._opt(c, ast.Expect),
            self.span(meta),
        )

    # ── expressions ─────────────────────────────────────────────────────────

    def binary(self, meta: Meta, c: list[Any]) -> ast.Binary:
        left, op, right = c
        if isinstance(op, Token):
            op = _Op(str(op), self.tspan(op))
        return ast.Binary(cast(Any, op.text), left, right, self.span(meta), op.span)

    def _op(self, c: list[Any]) -> _Op:
        toks = _tokens(c)
        span = self.join(self.tspan(toks[0]), self.tspan(toks[-1]))
        return _Op(" ".join(str(t) for t in toks), span)

    def comp_op(self, meta: Meta, c: list[Any]) -> _Op:
        return self._op(c)

    def add_op(self, meta: Meta, c: list[Any]) -> _Op:
        return self._op(c)

    def mul_op(self, meta: Meta, c: list[Any]) -> _Op:
        return self._op(c)

    def not_(self, meta: Meta, c: list[Any]) -> ast.Unary:
        return ast.Unary("not", c[-1], self.span(meta))

    def neg(self, meta: Meta, c: list[Any]) -> ast.Unary:
        return ast.Unary("-", c[-1], self.span(meta))

    def attr(self, meta: Meta, c: list[Any]) -> ast.Attr:
        return ast.Attr(c[0], str(c[1]), self.span(meta), self.tspan(c[1]))

    def index(self, meta: Meta, c: list[Any]) -> ast.Index:
        return ast.Index(c[0], c[1], self.span(meta))

    def string_lit(self, meta: Meta, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(self.string(c[0]), self.span(meta))

    def regex_lit(self, meta: Meta, c: list[Any]) -> ast.Regex:
        return ast.Regex(str(c[0])[2:-1], self.span(meta))

    def int_lit(self, meta: Meta, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(int(c[0]), self.span(meta))

    def decimal_lit(self, meta: Meta, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(Decimal(str(c[0])), self.span(meta))

    def _duration(self, tok: Token) -> ast.Duration:
        text = str(tok)
        return ast.Duration(int(text[:-1]) * _DURATION_UNITS[text[-1]], text)

    def duration_lit(self, meta: Meta, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(self._duration(c[0]), self.span(meta))

    def boolean(self, meta: Meta, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(str(c[0]) == "true", self.span(meta))

    def name_ref(self, meta: Meta, c: list[Any]) -> ast.Name:
        return ast.Name(str(c[0]), self.span(meta))

    def root(self, meta: Meta, c: list[Any]) -> ast.Name:
        return ast.Name(str(c[0]), self.span(meta))

    def call_expr(self, meta: Meta, c: list[Any]) -> ast.Expr:
        func_tok: Token = c[0]
        func, args, span = str(func_tok), tuple(c[1:]), self.span(meta)
        if func == "has":
            if len(args) == 1:
                return ast.Has(args[0], span)
            self.error(
                "CH0110",
                span,
                f"`has` takes one field path, found {len(args)} arguments",
                "write `has(args.field)`",
            )
        elif func == "count":
            arg = args[0] if len(args) == 1 else None
            if isinstance(arg, ast.Binary) and arg.op == "in":
                return ast.Count(arg.left, arg.right, span)
            self.error(
                "CH0110",
                span,
                "`count` takes a matcher, `in` and a value",
                "write `count(pii.email in result)`",
            )
        return ast.Call(func, args, span, self.tspan(func_tok))

    def set_lit(self, meta: Meta, c: list[Any]) -> ast.SetLit:
        return ast.SetLit(tuple(c), self.span(meta))

    def list_lit(self, meta: Meta, c: list[Any]) -> ast.ListLit:
        return ast.ListLit(tuple(c), self.span(meta))

    def record_lit(self, meta: Meta, c: list[Any]) -> ast.RecordLit:
        return ast.RecordLit(tuple(c), self.span(meta))

    def field(self, meta: Meta, c: list[Any]) -> ast.RecordField:
        return ast.RecordField(str(c[0]), c[1], self.span(meta))

    def field_key(self, meta: Meta, c: list[Any]) -> Token:
        tok: Token = c[0]
        return tok

    def approved_expr(self, meta: Meta, c: list[Any]) -> ast.Approved:
        return ast.Approved(self.string(c[0]) if c else None, self.span(meta))

    def previously_expr(self, meta: Meta, c: list[Any]) -> ast.Previously:
        record = self._opt(c, ast.RecordLit)
        within_tok = next((t for t in _tokens(c) if t.type == "DURATION"), None)
        return ast.Previously(
            self.string(c[0]),
            record,
            self._duration(within_tok) if within_tok else None,
            self.span(meta),
        )
