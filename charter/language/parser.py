"""The parser: `.agentpolicy` text to `ast.Module`, with every syntax error as a diagnostic.

`parse` never raises. On a syntax error it records a CH01xx diagnostic, blanks out the broken
item (spaces, newlines kept, so every position stays right) and parses again, so that one run
reports all syntax errors of a file and still yields the good items for the checker.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from copy import copy
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedInput

from charter.language import ast
from charter.language.astbuilder import AstBuilder
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


class _AlwaysName:
    """Post-lexer: NAME in every lexer state, with a few keywords kept as keywords anyway.

    With NAME always accepted, a keyword is only a keyword where the parser can take it, so
    `tool.name`, `args.limit` and `{limit: 3}` read naturally. Two exceptions (never after `.`
    nor as a record key): an item keyword at the start of a line always starts an item, and
    clause words (`when`, `because`, `and`...) are never names. Without them an unfinished rule
    would swallow the next word as a name and the error would point past the real mistake.
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
                and not text[tok.end_pos or 0 :].lstrip(" \t").startswith(":")
            ):
                tok = Token.new_borrow_pos(self.keyword_types[str(tok)], str(tok), tok)
            prev = tok
            yield tok


@functools.cache
def _parser() -> tuple[Lark, Vocabulary]:
    postlex = _AlwaysName()
    lark = Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        postlex=postlex,
        start=["start", "expr"],
    )
    literals = {t.name: t.pattern.value for t in lark.terminals if t.pattern.type == "str"}
    postlex.keyword_types = {v: k for k, v in literals.items() if v in ITEM_KEYWORDS | _RESERVED}
    return lark, Vocabulary(literals)


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
        trial = copy(state)
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


def _parse_tree(text: str, start: str) -> Any:
    lark, _ = _parser()
    token = _current_text.set(text)
    try:
        return lark.parse(text, start=start)
    finally:
        _current_text.reset(token)


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


def parse(source: Source) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse one file. Returns the module (good items only) and every syntax diagnostic."""
    try:
        try:
            tree = _parse_tree(source.text, "start")
        except UnexpectedInput:
            return _parse_with_recovery(source)
        builder = AstBuilder(source.name, source.text)
        module: ast.Module = builder.transform(tree)
        return module, _sorted(builder.diagnostics)
    except (LarkError, RecursionError, ValueError, KeyError, IndexError, TypeError) as exc:
        return _empty(source), [_internal(source.name, exc)]


def _parse_with_recovery(source: Source) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse item by item (top-level items split at column-1 keywords), recovering in each.

    Splitting keeps recovery linear in the file size: a broken item is reparsed on its own, not
    with the whole file. Each piece is parsed behind whitespace padding so that Lark reports
    the original lines, columns and offsets.
    """
    text = source.text
    starts = item_starts(text)
    items: list[ast.Item] = []
    diagnostics: list[Diagnostic] = []
    for i, begin in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        next_item = end if end < len(text) else None
        piece_items, piece_diags = _parse_piece(source, begin, end, next_item)
        items.extend(piece_items)
        diagnostics.extend(piece_diags)
    whole = AstBuilder(source.name, text).module(items)
    return whole, _sorted(diagnostics)


def _parse_piece(
    source: Source, begin: int, end: int, next_item: int | None
) -> tuple[list[ast.Item], list[Diagnostic]]:
    newlines = source.text.count("\n", 0, begin)
    pad = " " * (begin - newlines) + "\n" * newlines
    local = source.text[begin:end]
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[str, int]] = set()
    for _ in range(MAX_RECOVERIES):
        parsed = pad + local
        try:
            tree = _parse_tree(parsed, "start")
        except UnexpectedInput as err:
            problem = _problem(err, source.name, source.text, parsed, next_item)
            # End of file moves up as recovery blanks the tail: report it once per item.
            code = problem.diagnostic.code
            key = (code, -1 if code == "CH0104" else problem.diagnostic.span.start)
            if key not in seen:
                seen.add(key)
                diagnostics.append(problem.diagnostic)
            here = dataclasses.replace(problem, offset=max(0, problem.offset - begin))
            region = recovery_region(local, here)
            if region is None:
                break
            local = blank(local, region)
            continue
        builder = AstBuilder(source.name, source.text)
        module: ast.Module = builder.transform(tree)
        return list(module.items), diagnostics + _consequences_dropped(builder, diagnostics)
    return [], diagnostics


def parse_expr(text: str, file: str = "<expr>") -> tuple[ast.Expr | None, list[Diagnostic]]:
    """Parse a single expression (for the REPL, the CLI and tests). No recovery."""
    try:
        tree = _parse_tree(text, "expr")
        builder = AstBuilder(file, text)
        expr: ast.Expr = builder.transform(tree)
        return expr, _sorted(builder.diagnostics)
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
