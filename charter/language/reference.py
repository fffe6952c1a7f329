"""Lark's own LALR parser over the grammar: the reference the fast driver is held to.

The fast driver (`charter.language.parser`) runs tables generated from the same grammar and only
knows whether a text parses. When it does not, `failure` runs this parser, through Lark's public
API only, to learn where it stopped and which terminals it could have taken there
(`InteractiveParser.accepts`); `charter.language.syntax_errors` puts that into words. Tests
also compare the fast driver's AST with one built from this parser's tree.

Importing this module imports Lark and the first call builds its tables (a few hundred
milliseconds), so only syntax errors pay for it: nothing imports this module at load time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex

from charter.language import lexicon
from charter.language.syntax_errors import Failure

GRAMMAR_PATH = Path(__file__).resolve().parent.parent / "grammar" / "agentpolicy.lark"

# The text being parsed, for the post-lexer's look at the raw source (thread- and
# reentrancy-safe, unlike an attribute on the shared Lark instance).
_current_text: ContextVar[str] = ContextVar("_current_text", default="")


class _AlwaysName(PostLex):
    """NAME in every lexer state, and `lexicon.keeps_keyword` applied, as the fast driver does."""

    always_accept = (lexicon.ALWAYS_ACCEPT,)

    def __init__(self) -> None:
        self.keyword_types: dict[str, str] = {}

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        text = _current_text.get()
        prev = ""
        for tok in stream:
            if (
                tok.type == lexicon.ALWAYS_ACCEPT
                and lexicon.keeps_keyword(
                    text, tok.value, tok.start_pos or 0, tok.end_pos or 0, prev
                )
            ):
                tok = Token.new_borrow_pos(self.keyword_types[tok.value], tok.value, tok)
            prev = tok.value
            yield tok


@functools.cache
def lark_parser() -> Lark:
    """Lark's LALR parser and contextual lexer for the grammar, with spans on tree nodes."""
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
    postlex.keyword_types = {
        t.pattern.value: t.name
        for t in lark.terminals
        if t.pattern.type == "str"
        and t.pattern.value in lexicon.ITEM_KEYWORDS | lexicon.CLAUSE_WORDS
    }
    return lark


def parse_tree(text: str, start: str) -> Tree[Token]:
    """Lark's parse tree of `text` from rule `start`; raises Lark's `UnexpectedInput`."""
    reset = _current_text.set(text)
    try:
        return lark_parser().parse(text, start)
    finally:
        _current_text.reset(reset)


def failure(text: str, start: str) -> Failure | None:
    """Where Lark's parser stops on `text` (from rule `start`), or None if it parses."""
    try:
        parse_tree(text, start)
    except UnexpectedCharacters as err:
        return Failure(err.pos_in_stream or 0, None, frozenset())
    except UnexpectedToken as err:
        # `accepts`: `InteractiveParser.accepts()` where the parser stopped, which feeds each
        # candidate terminal to a copy of its state and keeps those that go through.
        return Failure(None, _token(err.token, len(text)), frozenset(err.accepts))
    except UnexpectedInput as err:  # UnexpectedEOF: not raised by LALR parsers
        return Failure(None, None, frozenset(getattr(err, "expected", None) or ()))
    return None


def _token(tok: Token, end_of_text: int) -> lexicon.Token:
    start = tok.start_pos if tok.start_pos is not None else end_of_text
    return lexicon.Token(
        tok.type,
        tok.value,
        start,
        tok.line or 0,
        tok.column or 0,
        tok.end_line or 0,
        tok.end_column or 0,
        tok.end_pos if tok.end_pos is not None else start + len(tok.value),
    )
