"""The parser: `.agentpolicy` text to `ast.Module`, with every syntax error as a diagnostic.

`parse` never raises. On a syntax error it records a CH01xx diagnostic, blanks out the broken
item (spaces, newlines kept, so every position stays right) and parses again, so that one run
reports all syntax errors of a file and still yields the good items for the checker.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from copy import copy
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedInput
from lark.grammar import Rule
from lark.parsers.lalr_analysis import Shift
from lark.parsers.lalr_parser import _Parser as _LalrParser

from charter.language import ast, limits
from charter.language.astbuilder import (
    AstBuilder,
    Callback,
    RuleShape,
    rule_callbacks,
    rule_shape,
)
from charter.language.source import Diagnostic, Source, Span
from charter.language.syntax_errors import (
    ITEM_KEYWORDS,
    SyntaxProblem,
    Vocabulary,
    blank,
    first_on_line,
    item_starts,
    recovery_region,
    to_problem,
)

GRAMMAR_PATH = Path(__file__).resolve().parent.parent / "grammar" / "agentpolicy.lark"

#: Recovery rounds per top-level item. Each round blanks at least one non-blank character, so
#: recovery always ends; this only bounds the work on pathological items.
MAX_RECOVERIES = 64

#: Clause words that are never plain names (except after `.` and as record keys).
_RESERVED = frozenset({"when", "unless", "because", "then", "and", "or"})

# The text being parsed, for the post-lexer's look at the raw source (thread- and
# reentrancy-safe, unlike an attribute on the shared Lark instance).
_current_text: ContextVar[str] = ContextVar("_current_text", default="")


#: After a NAME: optional blanks and a `:` make it a record key, never a keyword.
_KEY_AHEAD = re.compile(r"[ \t]*:")


class _AlwaysName:
    """Post-lexer: NAME in every lexer state, with a few keywords kept as keywords anyway.

    With NAME always accepted, a keyword is only a keyword where the parser can take it, so
    `tool.name`, `args.limit` and `{limit: 3}` read naturally. Two exceptions (never after `.`
    nor as a record key): an item keyword at the start of a line always starts an item, and
    clause words (`when`, `because`, `and`...) are never names. Without them an unfinished rule
    would swallow the next word as a name and the error would point past the real mistake.
    (`_FastParser.parse` applies the same rule inline.)
    """

    always_accept = ("NAME",)

    def __init__(self) -> None:
        self.keyword_types: dict[str, str] = {}

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        text = _current_text.get()
        prev: Token | None = None
        for tok in stream:
            if (
                tok.type == "NAME"
                and (prev is None or str(prev) != ".")
                and (
                    str(tok) in _RESERVED
                    or (str(tok) in ITEM_KEYWORDS and first_on_line(text, tok.start_pos or 0))
                )
                and not _KEY_AHEAD.match(text, tok.end_pos or 0)
            ):
                tok = Token.new_borrow_pos(self.keyword_types[str(tok)], str(tok), tok)
            prev = tok
            yield tok


class _Failed(Exception):
    """The fast path met something it does not handle; Lark's own parser takes over."""


#: What Lark's lexer ignores, and the characters that can start it (no token starts so).
_IGNORED = re.compile(r"(?:[ \t\f\r\n]+|#[^\n]*)+")
_IGNORED_FIRST = frozenset(" \t\f\r\n#")
_IGNORED_TERMINALS = {"WS": "(?:[ \t\f\r\n])+", "COMMENT": "#[^\n]*"}


class _FastParser:
    """Lark's LALR(1) tables and contextual lexer, driven by one tight loop.

    Lark's own driver spends most of its time in generic plumbing (lexer thread, post-lexer
    generator, per-token callback lookups, a reduction per unit rule). This loop does the same
    work with the same tables and compiled token regexes: the same tokens in the same lexer
    states, `_AlwaysName` applied inline, unit rules (`?expr: or_expr`) reduced without a call.
    It only handles input that parses: at the first problem it raises `_Failed` and the caller
    parses again with Lark, which raises the exception the error reporting is built on.
    """

    def __init__(self, lark: Lark, keyword_types: dict[str, str], shapes: dict[Rule, RuleShape]):
        frontend: Any = lark.parser
        contextual: Any = frontend.lexer.lexer
        conf = frontend.lexer_conf
        table = frontend.parser._parse_table
        ignored = {name: lark.get_terminal(name).pattern.to_regexp() for name in conf.ignore}
        if ignored != _IGNORED_TERMINALS or conf.callbacks or conf.g_regex_flags:
            raise NotImplementedError(f"fast path needs {_IGNORED_TERMINALS}, found {ignored}")
        self.keyword_types = {word: str(name) for word, name in keyword_types.items()}
        self.start_states: dict[str, int] = dict(table.start_states)
        self.end_states: dict[str, int] = dict(table.end_states)
        #: state -> symbol -> next state (shift/goto) or (size, origin, rule, identity)
        self.actions: dict[int, dict[str, Any]] = {}
        for state, row in table.states.items():
            self.actions[state] = {
                str(sym): arg
                if action is Shift
                else (len(arg.expansion), str(arg.origin.name), arg, shapes[arg].identity)
                for sym, (action, arg) in row.items()
            }
        #: (state below, top state, lookahead) -> top state after the unit rules reduced there
        self.chains: dict[tuple[int, int, str], int] = {}
        #: state -> (match, {regex terminal: {keyword: terminal}}, newline terminals)
        self.lexers: dict[int, tuple[Any, dict[str, dict[str, str]], frozenset[str]]] = {}
        for state, basic in contextual.lexers.items():
            scanner = basic.scanner
            if len(scanner._mres) != 1:
                raise NotImplementedError("fast path needs one regex per lexer state")
            unless: dict[str, dict[str, str]] = {}
            for name, callback in basic.callback.items():
                words = callback.scanner.terminals
                if not all(t.pattern.type == "str" and not t.pattern.flags for t in words):
                    raise NotImplementedError(f"fast path: unexpected lexer callback on {name}")
                unless[str(name)] = {t.pattern.value: str(t.name) for t in words}
            newline_types = frozenset(str(t) for t in basic.newline_types)
            self.lexers[state] = (scanner._mres[0].match, unless, newline_types)

    def parse(
        self,
        text: str,
        start: str,
        callbacks: dict[Rule, Callback],
        begin: int = 0,
        end: int | None = None,
        newlines: int | None = None,
    ) -> Any:
        """Parse `text[begin:end]` as if everything before `begin` were blank (kept newlines).

        `newlines` is the number of newlines before `begin`, if the caller knows it."""
        end = len(text) if end is None else end
        actions, lexers, keyword_types = self.actions, self.lexers, self.keyword_types
        chains = self.chains
        end_state = self.end_states[start]
        state = self.start_states[start]
        states: list[int] = [state]
        values: list[Any] = []
        line = (text.count("\n", 0, begin) if newlines is None else newlines) + 1
        line_start = begin if line > 1 else 0
        pos = begin
        prev = ""
        ignored_first, skip, key_ahead = _IGNORED_FIRST, _IGNORED.match, _KEY_AHEAD.match
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
            if pos >= end:
                tok: Token | None = None
                ttype = "$END"
            else:
                match, unless, newline_types = lexers[state]
                m = match(text, pos, end)
                if m is None:
                    raise _Failed
                ttype = m.lastgroup
                value = m.group()
                tok_end = pos + len(value)
                if ttype in unless:
                    ttype = unless[ttype].get(value, ttype)
                if (
                    ttype == "NAME"
                    and prev != "."
                    and (
                        value in _RESERVED
                        or (value in ITEM_KEYWORDS and _first_on_line(text, pos, begin))
                    )
                    and not key_ahead(text, tok_end, end)
                ):
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
                act = actions[state].get(ttype)
                if act is None:
                    raise _Failed
                if act.__class__ is int:
                    if tok is None:
                        raise _Failed
                    states.append(act)
                    values.append(tok)
                    state = act
                    break
                size, origin, rule, identity = act
                if identity:
                    # A chain of unit rules (`?expr: or_expr`...) only changes the top state.
                    below = states[-2]
                    key = (below, state, ttype)
                    top = chains.get(key)
                    if top is None:
                        top = chains[key] = self._unit_chain(below, state, ttype, end_state)
                    states[-1] = state = top
                    if tok is None and state == end_state:
                        return values[-1]
                    continue
                if size:
                    children = values[-size:]
                    del states[-size:]
                    del values[-size:]
                    values.append(callbacks[rule](children))
                else:
                    values.append(callbacks[rule]([]))
                state = actions[states[-1]][origin]
                states.append(state)
                if tok is None and state == end_state:
                    return values[-1]

    def _unit_chain(self, below: int, top: int, ttype: str, end_state: int) -> int:
        while top != end_state:
            act = self.actions[top].get(ttype)
            if act is None or act.__class__ is int or not act[3]:
                break
            top = self.actions[below][act[1]]
        return top


def _first_on_line(text: str, offset: int, begin: int) -> bool:
    """`first_on_line` with everything before `begin` blank."""
    return text[max(begin, text.rfind("\n", 0, offset) + 1) : offset].strip() == ""


@dataclasses.dataclass(frozen=True)
class _Grammar:
    lark: Lark
    vocab: Vocabulary
    shapes: tuple[tuple[Rule, RuleShape], ...]
    fast: _FastParser | None


@functools.cache
def _grammar() -> _Grammar:
    postlex = _AlwaysName()
    lark = Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=False,
        maybe_placeholders=False,
        postlex=postlex,
        start=["start", "expr"],
    )
    literals = {t.name: t.pattern.value for t in lark.terminals if t.pattern.type == "str"}
    postlex.keyword_types = {v: k for k, v in literals.items() if v in ITEM_KEYWORDS | _RESERVED}
    shapes = {rule: rule_shape(rule) for rule in lark.rules}
    try:
        fast: _FastParser | None = _FastParser(lark, postlex.keyword_types, shapes)
    except NotImplementedError:  # pragma: no cover - a Lark upgrade changed its internals
        fast = None
    return _Grammar(lark, Vocabulary(literals), tuple(shapes.items()), fast)


def _parser() -> tuple[Lark, Vocabulary]:
    g = _grammar()
    return g.lark, g.vocab


def _expected(err: UnexpectedInput, lark: Lark) -> set[str]:
    """The terminals the parser could really have taken where it stopped.

    The LALR table alone over-approximates (states merged across contexts carry each other's
    lookaheads), so each candidate is fed to a copy of the parser state, as Lark's
    `InteractiveParser.accepts` does, and kept only if it goes through.
    """
    state: Any = getattr(err, "state", None)
    if state is None or not hasattr(state, "parse_conf"):
        return set(getattr(err, "expected", None) or getattr(err, "allowed", None) or ())
    terminals = {t.name for t in lark.terminals} | {"$END"}
    conf = copy(state.parse_conf)
    conf.callbacks = {}
    accepted: set[str] = set()
    for name in state.parse_conf.states[state.position]:
        if name not in terminals:
            continue
        # Without callbacks the trial builds nothing from the values: a shallow copy will do.
        trial = state.copy(deepcopy_values=False)
        trial.parse_conf = conf
        try:
            trial.feed_token(Token(name, ""), is_end=name == "$END")
        except UnexpectedInput:
            continue
        except (LarkError, KeyError, IndexError, TypeError, AttributeError):
            # Feeding $END may try to build the tree's top node: reaching that means accepted.
            pass
        accepted.add(name)
    return accepted


class _Session:
    """Parsing one file: the AST builder and the callbacks that drive it."""

    def __init__(self, file: str, text: str) -> None:
        self.grammar = _grammar()
        self.builder = AstBuilder(file, text)
        self.callbacks = rule_callbacks(self.grammar.shapes, self.builder)

    def parse(self, text: str, start: str) -> Any:
        """The value built for `text`, or raise Lark's `UnexpectedInput`."""
        value = self.parse_fast(text, start)
        return value if value is not None else self.parse_lark(text, start)

    def parse_lark(self, text: str, start: str) -> Any:
        """The same with Lark's own LALR driver and lexer, slower but with full error details."""
        self.builder.diagnostics = []
        frontend: Any = self.grammar.lark.parser
        token = _current_text.set(text)
        try:
            callbacks: Any = self.callbacks
            parser = _LalrParser(frontend.parser._parse_table, callbacks)
            return parser.parse(frontend._make_lexer_thread(text), start)[0]
        finally:
            _current_text.reset(token)

    def parse_fast(
        self,
        text: str,
        start: str,
        begin: int = 0,
        end: int | None = None,
        newlines: int | None = None,
    ) -> Any:
        """The value built for `text[begin:end]` (the rest taken as blank), or None if the fast
        parser cannot do it (a syntax error: only Lark's parser describes those)."""
        fast = self.grammar.fast
        if fast is None:
            return None
        self.builder.diagnostics = []
        try:
            return fast.parse(text, start, self.callbacks, begin, end, newlines)[0]
        except _Failed:
            return None


def _problem(
    err: UnexpectedInput, file: str, text: str, parsed: str, next_item: int | None = None
) -> SyntaxProblem:
    lark, vocab = _parser()
    return to_problem(err, file, text, parsed, _expected(err, lark), vocab, next_item)


def _internal(file: str, exc: Exception) -> Diagnostic:
    # A bug in the parser must still come out as a diagnostic, never as a crash of the host.
    return Diagnostic(
        "CH0100",
        "error",
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
            try:
                module: ast.Module = session.parse(source.text, "start")
                diagnostics = list(session.builder.diagnostics)
            except UnexpectedInput:
                module, diagnostics = _parse_with_recovery(source, session)
            module, deep = limits.enforce(module)
            return module, _sorted(diagnostics + deep)
    except (LarkError, RecursionError, ValueError, KeyError, IndexError, TypeError) as exc:
        return _empty(source), [_internal(source.name, exc)]


def _parse_with_recovery(source: Source, session: _Session) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse item by item (top-level items split at column-1 keywords), recovering in each.

    Splitting keeps recovery linear in the file size: a broken item is reparsed on its own, not
    with the whole file. A piece is parsed in place when it has no error; otherwise behind
    whitespace padding, so that Lark reports the original lines, columns and offsets.
    """
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
    module: ast.Module | None = session.parse_fast(source.text, "start", begin, end, newlines)
    if module is not None:
        return list(module.items), list(session.builder.diagnostics)
    pad = " " * (begin - newlines) + "\n" * newlines
    local = source.text[begin:end]
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[str, int]] = set()
    for _ in range(MAX_RECOVERIES):
        parsed = pad + local
        try:
            module = session.parse(parsed, "start")
        except UnexpectedInput as err:
            problem = _problem(err, source.name, source.text, parsed, next_item)
            # End of file moves up as recovery blanks the tail: report it once per item.
            code = problem.diagnostic.code
            key = (code, -1 if code == "CH0104" else problem.diagnostic.span.start)
            if key not in seen:
                seen.add(key)
                diagnostics.append(problem.diagnostic)
            if problem.closes:  # close the open blocks at the end, keeping their items
                local += "\n" + "}" * problem.closes
                continue
            here = dataclasses.replace(problem, offset=max(0, problem.offset - begin))
            region = recovery_region(local, here)
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
        expr: ast.Expr = session.parse(text, "expr")
        deep = limits.too_deep(expr)
        if deep is not None:
            return None, [limits.diagnostic(deep)]
        return expr, _sorted(session.builder.diagnostics)
    except UnexpectedInput as err:
        return None, [_problem(err, file, text, text).diagnostic]
    except (LarkError, RecursionError, ValueError, KeyError, IndexError, TypeError) as exc:
        return None, [_internal(file, exc)]


def _consequences_dropped(builder: AstBuilder, syntax: list[Diagnostic]) -> list[Diagnostic]:
    """Builder diagnostics, minus "test has no expect" where recovery blanked the expect."""
    out = []
    for diag in builder.diagnostics:
        inside = any(diag.span.start <= s.span.start < diag.span.end for s in syntax)
        if not (diag.code == "CH0108" and inside):
            out.append(diag)
    return out


def _empty(source: Source) -> ast.Module:
    return ast.Module(source.name, (), Span(source.name, 1, 1, 1, 1, 0, 0))


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.span.start, d.span.line, d.span.col, d.code))
