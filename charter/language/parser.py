"""The parser: `.agentpolicy` text to `ast.Module`, with every syntax error as a diagnostic.

`parse` never raises. On a syntax error it records a CH01xx diagnostic, blanks out the broken
item (spaces, newlines kept, so every position stays right) and parses again, so that one run
reports all syntax errors of a file and still yields the good items for the checker.

Parsing is one loop over the LALR(1) tables generated from the grammar
(`charter/grammar/_tables.py`, written by `scripts/gen_parser_tables.py`), building the AST as
it reduces. It imports no Lark: only describing a syntax error does
(`charter.language.syntax_errors`, imported with `recovery` on the first error).
"""

from __future__ import annotations

import functools
import gc
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec

from charter.grammar import _tables as tables
from charter.language import ast, limits
from charter.language.astbuilder import (
    AstBuilder,
    Callback,
    RuleShape,
    rule_callbacks,
    rule_shape,
)
from charter.language.diagnostics import INTERNAL_PARSER_ERROR, MALFORMED_TEST, UNEXPECTED_EOF
from charter.language.lexicon import (
    ALWAYS_ACCEPT,
    CLAUSE_WORDS,
    ITEM_KEYWORDS,
    Token,
    keeps_keyword,
)
from charter.language.source import Diagnostic, Source, Span

#: Recovery rounds per top-level item. Each round blanks at least one non-blank character, so
#: recovery always ends; this only bounds the work on pathological items.
MAX_RECOVERIES = 64


class _Failed(Exception):
    """The text does not parse; Lark's parser will say where and why."""


_Match = Callable[[str, int, int], "re.Match[str] | None"]


class _Driver:
    """The generated LALR(1) tables and contextual lexer, driven by one tight loop.

    The loop does what Lark's LALR parser does with the same tables (`tests/language/
    test_parser_fast.py` holds the two equal): the same tokens in the same lexer states,
    `lexicon.keeps_keyword` applied, one callback per reduction, except that unit rules
    (`?expr: or_expr`) only change the top state. It handles only input that parses: at the
    first problem it raises `_Failed`.

    Each token is read with the root regex (every terminal, in Lark's order). A state's own
    lexer is the root one restricted to the terminals it accepts (the generator checks this),
    so that match stands whenever the state accepts its terminal; otherwise the state's own
    regex, compiled on first use, reads the token.
    """

    def __init__(self, shapes: Sequence[RuleShape]) -> None:
        self.actions = tables.ACTIONS
        self.start_states = tables.START_STATES
        self.end_states = tables.END_STATES
        #: rule -> (size, origin, identity: one nonterminal standing for the rule)
        self.reductions = tuple(
            (shape.size, rule[0], shape.identity)
            for rule, shape in zip(tables.RULES, shapes, strict=True)
        )
        self.root: _Match = re.compile(tables.ROOT_LEXER).match
        self.unless = tables.UNLESS
        self.newline_types = frozenset(tables.NEWLINE_TERMINALS)
        self.ignored: _Match = re.compile(tables.IGNORED).match
        self.ignored_first = frozenset(tables.IGNORED_FIRST)
        self.keyword_types = {
            text: name
            for name, text in tables.LITERALS.items()
            if text in ITEM_KEYWORDS | CLAUSE_WORDS
        }
        #: lexer -> its compiled regex, once a state needed it
        self.own: dict[int, _Match] = {}
        #: (state below, top state, lookahead) -> top state after the unit rules reduced there
        self.chains: dict[tuple[int, int, str], int] = {}

    def _own(self, state: int) -> _Match:
        lexer = tables.STATE_LEXER[state]
        match = self.own.get(lexer)
        if match is None:
            match = self.own[lexer] = re.compile(tables.LEXERS[lexer]).match
        return match

    def parse(
        self,
        text: str,
        start: str,
        builder: AstBuilder,
        callbacks: Sequence[Callback],
        begin: int = 0,
        end: int | None = None,
        newlines: int | None = None,
    ) -> Any:
        """Parse `text[begin:end]` as if everything before `begin` were blank (kept newlines).

        `newlines` is the number of newlines before `begin`, if the caller knows it."""
        end = len(text) if end is None else end
        actions, reductions, chains = self.actions, self.reductions, self.chains
        root, unless, keyword_types = self.root, self.unless, self.keyword_types
        newline_types, ignored_first, skip = self.newline_types, self.ignored_first, self.ignored
        name = ALWAYS_ACCEPT
        end_state = self.end_states[start]
        state = self.start_states[start]
        states: list[int] = [state]
        values: list[Any] = []
        line = (text.count("\n", 0, begin) if newlines is None else newlines) + 1
        line_start = begin if line > 1 else 0
        pos = begin
        prev = ""
        while True:
            if pos < end and text[pos] in ignored_first:
                skipped = skip(text, pos, end)
                if skipped is not None:
                    after = skipped.end()
                    newlines = text.count("\n", pos, after)
                    if newlines:
                        line += newlines
                        line_start = text.rfind("\n", pos, after) + 1
                    pos = after
            row = actions[state]
            if pos >= end:
                tok: Token | None = None
                ttype = "$END"
            else:
                m = root(text, pos, end)
                if m is None:
                    raise _Failed
                ttype = m.lastgroup or ""
                if ttype not in row and ttype != name:
                    m = self._own(state)(text, pos, end)
                    if m is None:
                        raise _Failed
                    ttype = m.lastgroup or ""
                value = m.group()
                tok_end = pos + len(value)
                words = unless.get(ttype)
                if words is not None:
                    keyword = words.get(value)
                    if keyword is not None and keyword in row:
                        ttype = keyword
                if ttype == name and keeps_keyword(text, value, pos, tok_end, prev, begin, end):
                    ttype = keyword_types[value]
                column = pos - line_start + 1
                if ttype in newline_types and "\n" in value:
                    end_line = line + value.count("\n")
                    line_start = pos + value.rindex("\n") + 1
                    tok = Token(
                        ttype, value, pos, line, column, end_line, tok_end - line_start + 1, tok_end
                    )
                    line = end_line
                else:
                    tok = Token(ttype, value, pos, line, column, line, column + len(value), tok_end)
                pos = tok_end
                prev = value
            while True:
                act = row.get(ttype)
                if act is None:
                    raise _Failed
                if act >= 0:
                    if tok is None:
                        raise _Failed
                    states.append(act)
                    values.append(tok)
                    state = act
                    break
                rule = ~act
                size, origin, identity = reductions[rule]
                if identity:
                    # A chain of unit rules (`?expr: or_expr`...) only changes the top state.
                    below = states[-2]
                    key = (below, state, ttype)
                    top = chains.get(key)
                    if top is None:
                        top = chains[key] = self._unit_chain(below, state, ttype, end_state)
                    states[-1] = state = top
                    row = actions[state]
                    if tok is None and state == end_state:
                        return values[-1]
                    continue
                if size:
                    children = values[-size:]
                    del states[-size:]
                    del values[-size:]
                    values.append(callbacks[rule](builder, children))
                else:
                    values.append(callbacks[rule](builder, []))
                state = actions[states[-1]][origin]
                states.append(state)
                row = actions[state]
                if tok is None and state == end_state:
                    return values[-1]

    def _unit_chain(self, below: int, top: int, ttype: str, end_state: int) -> int:
        while top != end_state:
            act = self.actions[top].get(ttype)
            if act is None or act >= 0 or not self.reductions[~act][2]:
                break
            top = self.actions[below][self.reductions[~act][1]]
        return top


class _Grammar(msgspec.Struct, frozen=True):
    driver: _Driver
    callbacks: tuple[Callback, ...]


@functools.cache
def _grammar() -> _Grammar:
    shapes = tuple(rule_shape(rule) for rule in tables.RULES)
    return _Grammar(_Driver(shapes), tuple(rule_callbacks(shapes)))


class _Session:
    """Parsing one file: the AST builder and the callbacks that drive it."""

    def __init__(self, file: str, text: str) -> None:
        grammar = _grammar()
        self.driver = grammar.driver
        self.builder = AstBuilder(file, text)
        self.callbacks = grammar.callbacks

    def parse(
        self,
        text: str,
        start: str,
        begin: int = 0,
        end: int | None = None,
        newlines: int | None = None,
    ) -> Any:
        """The value built for `text[begin:end]` (the rest taken as blank), or None if it does
        not parse (`syntax_errors.describe` says why)."""
        self.builder.diagnostics = []
        try:
            driver, builder = self.driver, self.builder
            return driver.parse(text, start, builder, self.callbacks, begin, end, newlines)[0]
        except _Failed:
            return None


def _internal(file: str, exc: Exception) -> Diagnostic:
    # A bug in the parser must still come out as a diagnostic, never as a crash of the host.
    return INTERNAL_PARSER_ERROR.at(
        Span(file, 1, 1, 1, 1),
        f"internal parser error: {exc!r}",
        "please report this with the policy file that caused it",
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while parsing.

    Parsing allocates many small objects that all stay alive (tokens, nodes, spans), which
    makes the collector run again and again over a growing heap for nothing to free: about a
    third of the time on a large file. The AST has no cycles, so nothing is missed.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse(source: Source) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse one file. Returns the module (good items only) and every syntax diagnostic;
    items nested deeper than `limits.MAX_DEPTH` are left out with a CH0112."""
    try:
        with _gc_paused():
            session = _Session(source.name, source.text)
            module: ast.Module | None = session.parse(source.text, "start")
            if module is not None:
                diagnostics = list(session.builder.diagnostics)
            else:
                module, diagnostics = _parse_with_recovery(source, session)
            module, deep = limits.enforce(module)
            return module, _sorted(diagnostics + deep)
    except Exception as exc:  # a bug, or Lark missing: a diagnostic all the same
        return _empty(source), [_internal(source.name, exc)]


def _parse_with_recovery(source: Source, session: _Session) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse item by item (top-level items split at column-1 keywords), recovering in each.

    Splitting keeps recovery linear in the file size: a broken item is reparsed on its own, not
    with the whole file. A piece is parsed in place when it has no error; otherwise behind
    whitespace padding, so that Lark reports the original lines, columns and offsets.
    """
    from charter.language.recovery import item_starts  # only syntax errors need recovery

    text = source.text
    starts = item_starts(text)
    items: list[ast.Item] = []
    diagnostics: list[Diagnostic] = []
    newlines, counted = 0, 0
    for i, begin in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        next_item = end if end < len(text) else None
        newlines += text.count("\n", counted, begin)
        counted = begin
        piece_items, piece_diags = _parse_piece(source, session, begin, end, newlines, next_item)
        items.extend(piece_items)
        diagnostics.extend(piece_diags)
    whole = session.builder.module(items)
    return whole, _sorted(diagnostics)


def _parse_piece(
    source: Source,
    session: _Session,
    begin: int,
    end: int,
    newlines: int,
    next_item: int | None,
) -> tuple[list[ast.Item], list[Diagnostic]]:
    # Most items are fine: parse them in place, without building the padded text.
    module: ast.Module | None = session.parse(source.text, "start", begin, end, newlines)
    if module is not None:
        return list(module.items), list(session.builder.diagnostics)
    from charter.language.recovery import blank, recovery_region
    from charter.language.syntax_errors import describe

    pad = " " * (begin - newlines) + "\n" * newlines
    local = source.text[begin:end]
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[str, int]] = set()
    for _ in range(MAX_RECOVERIES):
        parsed = pad + local
        module = session.parse(parsed, "start")
        if module is None:
            problem = describe(source.name, source.text, parsed, "start", next_item)
            # End of file moves up as recovery blanks the tail: report it once per item.
            code = problem.diagnostic.code
            key = (code, -1 if code == UNEXPECTED_EOF.code else problem.diagnostic.span.start)
            if key not in seen:
                seen.add(key)
                diagnostics.append(problem.diagnostic)
            if problem.closes:  # close the open blocks at the end, keeping their items
                local += "\n" + "}" * problem.closes
                continue
            region = recovery_region(local, max(0, problem.offset - begin), problem.restart_here)
            if region is None:
                break
            local = blank(local, region)
            continue
        dropped = _consequences_dropped(session.builder, diagnostics)
        return list(module.items), diagnostics + dropped
    return [], diagnostics


def parse_expr(text: str, file: str = "<expr>") -> tuple[ast.Expr | None, list[Diagnostic]]:
    """Parse a single expression (for the REPL, the CLI and tests). No recovery."""
    try:
        session = _Session(file, text)
        expr: ast.Expr | None = session.parse(text, "expr")
        if expr is None:
            from charter.language.syntax_errors import describe

            return None, [describe(file, text, text, "expr").diagnostic]
        deep = limits.too_deep(expr)
        if deep is not None:
            return None, [limits.diagnostic(deep)]
        return expr, _sorted(session.builder.diagnostics)
    except Exception as exc:  # as in `parse`
        return None, [_internal(file, exc)]


def _consequences_dropped(builder: AstBuilder, syntax: list[Diagnostic]) -> list[Diagnostic]:
    """Builder diagnostics, minus "test has no expect" where recovery blanked the expect."""
    out = []
    for diag in builder.diagnostics:
        inside = any(diag.span.start <= s.span.start < diag.span.end for s in syntax)
        if not (diag.code == MALFORMED_TEST.code and inside):
            out.append(diag)
    return out


def _empty(source: Source) -> ast.Module:
    return ast.Module(source.name, (), Span(source.name, 1, 1, 1, 1, 0, 0))


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.span.start, d.span.line, d.span.col, d.code))
