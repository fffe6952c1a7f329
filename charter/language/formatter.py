"""`charter fmt`: the canonical layout of `.agentpolicy` files.

The layout: 2-space indentation inside scopes and tests; one item per line, a rule that does
not fit in 100 columns continuing with its `when`/`unless`/`because` clauses on lines
indented 2 more; one blank line between groups of items (header/use/default,
consts/matchers, tool declarations, rules, tests) and around scopes and tests, at most one
where the author left some; comments kept beside the code they were written next to;
canonical spacing and string escapes; numbers and durations as written.

The formatter never changes meaning: it parses its own output and refuses (FormatError) if
that fails or the syntax tree differs from the input's in anything but positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from charter.language import ast
from charter.language.fmt_comments import Comment, comments, find_code, skip_blank
from charter.language.fmt_compare import same_tree
from charter.language.fmt_doc import Doc, concat, flat
from charter.language.fmt_expr import bracketed, expr, number, quote, record, type_doc
from charter.language.fmt_layout import (
    INDENT,
    WIDTH,
    Entry,
    Layouter,
    Out,
    Piece,
    Row,
    clause_rows,
)
from charter.language.parser import parse
from charter.language.source import Diagnostic, Source

__all__ = ["FormatError", "FormatResult", "format_source", "format_text"]

# Blank-line groups of items.
_GROUPS: dict[type, int] = {
    ast.Header: 0, ast.Use: 0, ast.Default: 0, ast.Option: 0,
    ast.Const: 1, ast.MatcherDecl: 1,
    ast.ToolDecl: 2, ast.ToolsFrom: 2,
    ast.Rule: 3, ast.Scope: 3, ast.Budget: 3, ast.Limit: 3,
    ast.Test: 4, ast.Property: 4, ast.Fixture: 4,
}
_STATEMENT = -1


class FormatError(Exception):
    """The formatter produced text that does not parse back to the same tree (a bug)."""


@dataclass(frozen=True, slots=True)
class FormatResult:
    """`text` is the formatted file, or None when the input has syntax errors (listed in
    `diagnostics`); `changed` tells whether it differs from the input."""

    text: str | None
    diagnostics: list[Diagnostic]
    changed: bool


def format_source(source: Source) -> FormatResult:
    """Format one file. Syntax errors give `text=None`; never returns unverified text."""
    module, diagnostics = parse(source)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        return FormatResult(None, errors, False)
    text = _Formatter(source.text).module(module)
    again, problems = parse(Source(source.name, text))
    if problems:
        raise FormatError(
            f"{source.name}: formatted text does not parse: {problems[0].message}"
        )
    if not same_tree(module, again):
        raise FormatError(f"{source.name}: formatting would change the policy's syntax tree")
    return FormatResult(text, [], text != source.text)


def format_text(text: str, name: str = "<text>") -> str:
    """Format policy text; raises ValueError listing the syntax errors if it has any."""
    result = format_source(Source(name, text))
    if result.text is None:
        raise ValueError("\n".join(d.render(Source(name, text)) for d in result.diagnostics))
    return result.text


class _Formatter:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lay = Layouter(text, comments(text))

    def module(self, module: ast.Module) -> str:
        lines, orphans = self.lay.block(
            [self._item(i) for i in module.items], 0, len(self.text) + 1, 0, keep_blanks=True
        )
        out = [Out(c) for c in orphans] + lines
        rendered = "\n".join(o.render() for o in out)
        return rendered + "\n" if rendered else ""

    # ── items ───────────────────────────────────────────────────────────────

    def _item(self, item: ast.Item) -> Entry:
        group = _GROUPS[type(item)]
        if isinstance(item, ast.Scope):
            return Entry(item.span.start, item.span.end, group, True,
                         lambda ind, cs: self._scope(item, ind, cs))
        if isinstance(item, ast.Test):
            return Entry(item.span.start, item.span.end, group, True,
                         lambda ind, cs: self._test(item, ind, cs))
        if isinstance(item, ast.Property):
            return Entry(item.span.start, item.span.end, group, True,
                         lambda ind, cs: self._property(item, ind, cs))
        return Entry(item.span.start, item.span.end, group, False,
                     lambda ind, cs: self.lay.rows(self._rows(item, ind), ind, cs))

    def _rows(self, item: ast.Item, indent: int) -> list[Row]:
        def whole(doc: Doc) -> list[Row]:
            return [Row((Piece(doc, item.span.start, item.span.end),))]

        if isinstance(item, ast.Header):
            version = "" if item.version is None else f" version {quote(item.version)}"
            return whole(f"policy {quote(item.name)}{version}")
        if isinstance(item, ast.Use):
            return whole("use " + ", ".join(item.modules))
        if isinstance(item, ast.Default):
            return whole(f"default {item.effect}")
        if isinstance(item, ast.Option):
            return whole(item.name)
        if isinstance(item, ast.Const):
            return whole(concat(f"const {item.name} = ", expr(item.value)))
        if isinstance(item, ast.MatcherDecl):
            return whole(f'matcher {item.name} = r"{item.regex.pattern}"')
        if isinstance(item, ast.ToolDecl):
            return whole(self._tool_decl(item))
        if isinstance(item, ast.ToolsFrom):
            return whole(f"tools from {quote(item.path)}")
        if isinstance(item, ast.Fixture):
            return self._fixture(item, indent)
        if isinstance(item, ast.Rule):
            return self._rule(item, indent)
        if isinstance(item, ast.Budget | ast.Limit):
            return self._counter(item, indent)
        raise TypeError(f"cannot format {type(item).__name__}")  # containers go elsewhere

    def _tool_decl(self, item: ast.ToolDecl) -> Doc:
        params: list[Doc] = [
            f"{p.name}{'?' if p.optional else ''}: {type_doc(p.type)}" for p in item.params
        ]
        tags = f" tags {', '.join(item.tags)}" if item.tags else ""
        return concat(f"tool {quote(item.name)} ", bracketed("(", params, ")"), tags)

    def _annotations(self, notes: tuple[ast.Annotation, ...]) -> tuple[list[Row], int | None]:
        """The annotation row, and where the code after the annotations starts."""
        if not notes:
            return [], None
        text = " ".join(
            f"@{a.name}" if a.arg is None else f"@{a.name}({quote(a.arg)})" for a in notes
        )
        start, end = notes[0].span.start, notes[-1].span.end
        return [Row((Piece(text, start, end),))], skip_blank(self.text, end)

    def _rule(self, rule: ast.Rule, indent: int) -> list[Row]:
        rows, start = self._annotations(rule.annotations)
        head_end = (rule.target or rule.effect).span.end
        parts: list[str | Doc] = []
        if rule.stage is not None:
            parts.append(f"on {rule.stage} ")
        parts.append(effect(rule.effect))
        if rule.target is not None:
            parts += [" ", target(rule.target)]
        head = Piece(concat(*parts), rule.span.start if start is None else start, head_end)
        clauses = [
            Piece(concat("unless " if c.negate else "when ", expr(c.expr)), c.span.start,
                  c.span.end)
            for c in rule.conditions
        ]
        last = clauses[-1].end if clauses else head_end
        clauses += self._because(rule.because, last, rule.span.end)
        return rows + clause_rows([head], clauses, indent)

    def _because(self, because: str | None, lo: int, hi: int) -> list[Piece]:
        if because is None:
            return []
        start = find_code(self.text, lo, hi, "because")
        return [Piece(f"because {quote(because)}", start, hi)]

    def _counter(self, item: ast.Budget | ast.Limit, indent: int) -> list[Row]:
        rows, start = self._annotations(item.annotations)
        if isinstance(item, ast.Budget):
            what: Doc = f"budget {item.metric} <= {number(item.limit)}"
        else:
            what = concat("limit calls(", target(item.target), f") <= {item.limit}")
        parts: list[Doc] = [what, f" per {item.window.text}"]
        head_end = item.window.span.end
        if item.key is not None:
            parts += [" per ", expr(item.key)]
            head_end = item.key.span.end
        head = Piece(concat(*parts), item.span.start if start is None else start, head_end)
        clauses: list[Piece] = []
        last = head_end
        if item.then is not None:
            then_at = find_code(self.text, head_end, item.span.end, "then")
            clauses.append(Piece(concat("then ", effect(item.then)), then_at, item.then.span.end))
            last = item.then.span.end
        clauses += self._because(item.because, last, item.span.end)
        return rows + clause_rows([head], clauses, indent)

    # ── containers ──────────────────────────────────────────────────────────

    def _container(
        self, head_rows: list[Row], open_at: int, close_at: int, entries: list[Entry],
        indent: int, interior: list[Comment], keep_blanks: bool,
    ) -> list[Out]:
        """Head rows ending in `{`, the block of entries, `}`; `{}` when nothing is inside."""
        head_comments = [c for c in interior if c.start < open_at]
        body, orphans = self.lay.block(
            entries, open_at + 1, close_at, indent + INDENT, keep_blanks
        )
        last = head_rows[-1]
        brace = "{" if body else "{}"
        brace_piece = Piece(brace, open_at, open_at + 1)
        head_rows = head_rows[:-1] + [Row(last.pieces + (brace_piece,), last.extra)]
        out = self.lay.rows(head_rows, indent, head_comments)
        out[-1].trailing.extend(orphans)
        if body:
            out += body + [Out(" " * indent + "}")]
        return out

    def _scope(self, scope: ast.Scope, indent: int, interior: list[Comment]) -> list[Out]:
        rows, start = self._annotations(scope.annotations)
        parts: list[Doc] = ["scope "]
        if scope.target is not None:
            parts.append(target(scope.target))
            if scope.condition is not None:
                parts += [" when ", expr(scope.condition)]
        elif scope.condition is not None:
            parts.append(expr(scope.condition))
        head_end = (scope.condition or scope.target or scope).span.end
        open_at = find_code(self.text, head_end, scope.span.end, "{")
        head = Piece(concat(*parts), scope.span.start if start is None else start, open_at)
        entries = [self._item(i) for i in scope.items]
        return self._container(
            rows + [Row((head,))], open_at, scope.span.end - 1, entries, indent, interior, True
        )

    def _test(self, test: ast.Test, indent: int, interior: list[Comment]) -> list[Out]:
        open_at = find_code(self.text, test.span.start, test.span.end, "{")
        keyword = "scenario" if test.scenario else "test"
        head = Piece(f"{keyword} {quote(test.name)}", test.span.start, open_at)
        inner = indent + INDENT
        entries: list[Entry] = []
        if test.scenario:
            for step in test.steps:
                entries += self._step(step, inner)
        else:
            entries = self._givens(test.givens, inner)
            if test.call is not None:
                entries.append(self._test_call(test.call))
            entries += [self._statement(e.span.start, e.span.end, expect(e)) for e in test.expects]
            entries += [self._row(r) for r in test.rows]
        return self._container(
            [Row((head,))], open_at, test.span.end - 1, entries, indent, interior, False
        )

    def _step(self, step: ast.Step, indent: int) -> list[Entry]:
        if isinstance(step, ast.GivenLine):
            return self._givens(step.parts, indent)
        if isinstance(step, ast.TestCall):
            return [self._test_call(step)]
        if isinstance(step, ast.Expect):
            return [self._statement(step.span.start, step.span.end, expect(step))]
        by = "" if step.by is None else f" by {quote(step.by)}"
        return [self._statement(step.span.start, step.span.end,
                                f"approve from {quote(step.group)}{by}")]

    def _row(self, row: ast.TableRow) -> Entry:
        """`row {args} [given parts] expect ...`, its expectations continuing if too long."""
        head = [Piece(concat("row ", record(row.args)), row.span.start, row.args.span.end)]
        head += [Piece(given_part(g), g.span.start, g.span.end) for g in row.givens]
        clauses = [Piece(expect(e), e.span.start, e.span.end) for e in row.expects]
        return Entry(row.span.start, row.span.end, _STATEMENT, False,
                     lambda ind, cs: self.lay.rows(clause_rows(head, clauses, ind), ind, cs))

    def _fixture(self, item: ast.Fixture, indent: int) -> list[Row]:
        parts = [Piece(given_part(g), g.span.start, g.span.end) for g in item.givens]
        head = Piece(concat(f"fixture {item.name} = ", parts[0].doc), item.span.start, parts[0].end)
        return clause_rows([head], parts[1:], indent)

    def _givens(self, givens: tuple[ast.Given, ...], indent: int) -> list[Entry]:
        if not givens:
            return []
        pieces = [Piece(given_part(g), g.span.start, g.span.end) for g in givens]
        one = Row((Piece(concat("given ", pieces[0].doc), pieces[0].start, pieces[0].end),
                   *pieces[1:]))
        width = indent + sum(len(flat(p.doc)) + 1 for p in one.pieces) - 1
        if width <= WIDTH:
            start, end = min(g.span.start for g in givens), max(g.span.end for g in givens)
            return [Entry(start, end, _STATEMENT, False,
                          lambda ind, cs: self.lay.rows([one], ind, cs))]
        return [self._statement(p.start, p.end, concat("given ", p.doc)) for p in pieces]

    def _test_call(self, call: ast.TestCall) -> Entry:
        """`call ...`, its `with result` continuing on the next line if it does not fit."""
        parts: list[Doc] = []
        if call.stage is not None:
            parts.append(f"on {call.stage} ")
        if call.field and call.result is not None:  # a model step: `on STAGE with input V`
            doc = concat(*parts, f"with {call.field} ", expr(call.result))
            return self._statement(call.span.start, call.span.end, doc)
        parts += [f"call {quote(call.tool)} ", record(call.args)]
        head = Piece(concat(*parts), call.span.start, call.args.span.end)
        clauses = []
        if call.result is not None:
            with_at = find_code(self.text, call.args.span.end, call.span.end, "with")
            clauses.append(Piece(concat("with result ", expr(call.result)), with_at,
                                 call.span.end))
        return Entry(call.span.start, call.span.end, _STATEMENT, False,
                     lambda ind, cs: self.lay.rows(clause_rows([head], clauses, ind), ind, cs))

    def _statement(self, start: int, end: int, doc: Doc) -> Entry:
        row = Row((Piece(doc, start, end),))
        return Entry(start, end, _STATEMENT, False, lambda ind, cs: self.lay.rows([row], ind, cs))

    def _property(self, prop: ast.Property, indent: int, interior: list[Comment]) -> list[Out]:
        open_at = find_code(self.text, prop.span.start, prop.span.end, "{")
        head = Piece(f"property {quote(prop.name)}", prop.span.start, open_at)
        for_at = find_code(self.text, open_at, prop.span.end, "for")
        parts: list[Doc] = ["for all calls"]
        if prop.target is not None:
            parts += [" to ", target(prop.target)]
        if prop.where is not None:
            parts += [" where ", expr(prop.where)]
        entries = [
            self._statement(for_at, prop.expect.span.start, concat(*parts)),
            self._statement(prop.expect.span.start, prop.expect.span.end, expect(prop.expect)),
        ]
        return self._container(
            [Row((head,))], open_at, prop.span.end - 1, entries, indent, interior, False
        )


# ── small parts ─────────────────────────────────────────────────────────────


def effect(e: ast.Effect) -> Doc:
    """`allow`, `require approval from "g"`, `redact pii.email in result`..."""
    if e.kind == "require_approval":
        return "require approval from " + ", ".join(quote(g) for g in e.groups)
    if e.kind == "redact":
        names = [expr(m) for m in e.matchers]
        path: Doc = expr(e.path) if e.path is not None else ""
        return concat("redact ", *_commas(names), " in ", path)
    if e.kind == "label":
        return f"label session {quote(e.label or '')}"
    return e.kind


def _commas(docs: list[Doc]) -> list[Doc]:
    out: list[Doc] = []
    for i, d in enumerate(docs):
        out += [", ", d] if i else [d]
    return out


def target(t: ast.ToolTarget) -> str:
    """`tool "a", "b"` or `tool tagged T`."""
    if t.tag is not None:
        return f"tool tagged {t.tag}"
    return "tool " + ", ".join(quote(n) for n in t.names)


def given_part(g: ast.Given) -> Doc:
    """One part of a `given` line: `agent {...}`, `approved by "g"`, `labels [...]`."""
    if g.kind == "approved":
        return "approved" if g.group is None else f"approved by {quote(g.group)}"
    if g.kind == "fixture":
        return g.name or ""
    if g.kind == "previously":
        call = f"previously call {quote(g.name or '')}"
        return call if g.value is None else concat(call, " ", expr(g.value))
    if g.kind == "usage" and g.target is not None:
        return concat("usage calls(", target(g.target), ") ", expr(g.value) if g.value else "0")
    if g.kind == "usage":
        amount = g.value.value if isinstance(g.value, ast.Literal_) else 0
        return f"usage {g.name} {number(amount) if isinstance(amount, int | Decimal) else 0}"
    value: Doc = expr(g.value) if g.value is not None else "{}"
    return concat(f"{g.kind} ", value)


def expect(e: ast.Expect) -> str:
    """`expect [not] OUTCOME [from "g"] [because "text"]`."""
    outcome = "require approval" if e.outcome == "require_approval" else e.outcome
    text = "expect " + ("not " if e.negate else "") + outcome
    if e.group is not None:
        text += f" from {quote(e.group)}"
    if e.because is not None:
        text += f" because {quote(e.because)}"
    return text
