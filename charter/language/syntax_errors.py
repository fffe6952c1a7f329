"""Syntax errors described in words: what was found, what was expected, and a hint.

Messages name what was found and what was expected in words ("expected an effect such as
`allow`...; found `alow`") and offer a did-you-mean when the word found is close to a keyword
the parser could have taken. The fast driver only knows that a text does not parse; `describe`
runs Lark's parser on it (`charter.language.reference`, imported only then) to learn where and
what it could have taken there. Where to resume after the error is `charter.language.recovery`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from charter.grammar._tables import LITERALS
from charter.language.diagnostics import (
    UNCLOSED_BRACE,
    UNEXPECTED_CHARACTER,
    UNEXPECTED_EOF,
    UNEXPECTED_TOKEN,
    UNTERMINATED_STRING,
)
from charter.language.lexicon import ITEM_KEYWORDS, Token, first_on_line
from charter.language.recovery import unclosed_braces
from charter.language.source import Diagnostic, Span
from charter.language.suggest import closest

_EFFECT_WORDS = ("allow", "deny", "warn", "require", "redact", "label")
_ITEM_ONLY_WORDS = ("policy", "use", "default", "strict", "trust", "const", "matcher", "tools",
                    "test", "scenario", "property", "fixture")
_OPERATORS = frozenset(
    {
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "=",
        "in",
        "not",
        "like",
        "matches",
        "contains",
        "and",
        "or",
        "+",
        "-",
        "*",
        "/",
        ".",
        "[",
        "(",
    }
)
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "=", "in", "like", "matches"})
_EXPRESSION_STARTS = frozenset(
    {
        "<STRING>",
        "<INT>",
        "<NAME>",
        "<REGEX>",
        "<DECIMAL>",
        "<DURATION>",
        "(",
        "[",
        "{",
        "-",
        "not",
        "true",
        "false",
        "approved",
        "previously",
        "tool",
        "session",
        "result",
    }
)
_REGEX_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "REGEX": 'a raw regex such as r"..."',
    "INT": "an integer",
    "DECIMAL": "a decimal number",
    "DURATION": "a duration such as `30s` or `1h`",
    "TOOL_DECL": "`tool`",
    "$END": "end of file",
}
_CHAR_HELP = {
    "&": "write `and` instead of `&&`",
    "|": "write `or` instead of `||`",
    "!": "write `not` for negation and `!=` for inequality",
    "'": 'strings use double quotes: "..."',
    ";": "items need no `;`; start the next item on a new line",
}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What the error describer needs to know about the grammar's terminals."""

    #: terminal name -> the literal text for keyword/punctuation terminals
    literals: Mapping[str, str]

    def words_for(self, names: Iterable[str]) -> dict[str, str]:
        """Map each expected terminal name to its literal text (or a `<NAME>` placeholder)."""
        return {n: self.literals.get(n, f"<{n}>") for n in names}


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def describe_expected(expected: Iterable[str], vocab: Vocabulary) -> str:
    """Words for a set of expected terminals: "an operator", then keywords, then "a new item"."""
    texts = vocab.words_for(expected)
    literal = set(texts.values())
    remaining = dict(texts)
    first: list[str] = []
    item_part: str | None = None

    def drop(words: Iterable[str]) -> None:
        for name, text in list(remaining.items()):
            if text in words:
                del remaining[name]

    if {"policy", "const", "test"} <= literal:
        examples = [w for w in ("allow", "deny", "tool", "scope", "const") if w in literal]
        item_part = "a new item such as " + ", ".join(f"`{w}`" for w in examples)
        drop(ITEM_KEYWORDS | set(_ITEM_ONLY_WORDS) | {"@", "<TOOL_DECL>", "<$END>"})
    elif {"allow", "deny", "require"} <= literal:
        first.append('an effect such as `allow`, `deny`, `require approval from "g"`')
        drop(_EFFECT_WORDS)
    if {"==", "and", "+"} <= literal:
        first.insert(0, "an operator")
        drop(_OPERATORS)
    if {"<STRING>", "<INT>", "<NAME>"} <= literal and "(" in literal:
        first.append("an expression")
        drop(_EXPRESSION_STARTS)
    words = [
        _REGEX_WORDS.get(t[1:-1], t) if t.startswith("<") else f"`{t}`"
        for t in sorted(remaining.values(), key=_word_order)
    ]
    if len(words) > 8:
        words = [*words[:8], "..."]
    parts = first + words
    if item_part is not None:
        parts.append("a new item" if len(parts) > 2 else item_part)
    return _join(parts) or "something else"


_CLAUSE_ORDER = ("when", "unless", "because", "then", "per", "version", "tags", "with", "within")


def _word_order(text: str) -> tuple[int, int, str]:
    if text.startswith("<"):
        return (3, 0, text)
    if text in _CLAUSE_ORDER:
        return (0, _CLAUSE_ORDER.index(text), text)
    return (1 if text[:1].isalpha() else 2, 0, text)


def describe_token(tok_type: str, value: str) -> str:
    """Words for the token found: `alow`, the string "x", end of file."""
    if tok_type == "$END":
        return "end of file"
    if tok_type == "STRING":
        shown = value if len(value) <= 30 else value[:27] + '..."'
        return f"the string {shown}"
    return f"`{value}`"


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _span(file: str, text: str, start: int, end: int) -> Span:
    line, col = _position(text, start)
    end_line, end_col = _position(text, end)
    return Span(file, line, col, end_line, end_col, start, end)


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """One syntax error: its diagnostic and where it happened (for recovery)."""

    diagnostic: Diagnostic
    offset: int
    #: the error is an unknown word first on its line: that line starts the broken item
    restart_here: bool
    #: `{` left open at the end of the piece: recover by closing them, keeping their items
    closes: int = 0


@dataclass(frozen=True, slots=True)
class Failure:
    """Where Lark's parser stopped on a text the fast driver rejected."""

    #: the offset of a character where no token can be read, if that is what stopped it
    char_at: int | None
    #: else the token it could not take (`$END` at the end of the text)
    token: Token | None
    #: the terminals it could have taken there (`InteractiveParser.accepts`)
    expected: frozenset[str]


_VOCABULARY = Vocabulary(LITERALS)


def describe(
    file: str, text: str, parsed: str, start: str, next_item: int | None = None
) -> SyntaxProblem:
    """The syntax error in `parsed`, a text the fast driver rejected, as a CH01xx diagnostic.

    `text` is the source, `parsed` the text actually parsed from rule `start` (same positions,
    some of it blanked or cut); `next_item` is where the next item starts when `parsed` stops
    before it.
    """
    from charter.language import reference  # Lark: only a syntax error needs it

    failure = reference.failure(parsed, start)
    if failure is None:
        raise RuntimeError("the fast parser rejected a text that Lark's parser accepts")
    return to_problem(failure, file, text, parsed, _VOCABULARY, next_item)


def to_problem(
    failure: Failure,
    file: str,
    text: str,
    parsed: str,
    vocab: Vocabulary,
    next_item: int | None = None,
) -> SyntaxProblem:
    """Turn where the parser stopped into a CH01xx diagnostic (arguments as for `describe`)."""
    expected = set(failure.expected)
    if failure.char_at is not None:
        return _bad_character(failure.char_at, file, text)
    tok = failure.token
    if tok is None or tok.type == "$END":
        return _end_of_file(file, text, parsed, expected, vocab, next_item)
    tok_type, value, start, after = tok.type, str(tok), tok.start_pos, tok.end_pos
    if tok_type == "NAME" and value == "r" and text[after : after + 1] == '"':
        return _bad_character(after, file, text, raw_regex_at=start)
    want = describe_expected(expected, vocab)
    help_text = _help_for(tok_type, value, expected, vocab, text, start)
    diag = UNEXPECTED_TOKEN.at(
        _span(file, text, start, after),
        f"expected {want}; found {describe_token(tok_type, value)}",
        help_text,
    )
    restart = tok_type == "NAME" and first_on_line(text, start)
    return SyntaxProblem(diag, start, restart)


def _help_for(
    tok_type: str, value: str, expected: set[str], vocab: Vocabulary, text: str, start: int
) -> str | None:
    words = [w for w in vocab.words_for(expected).values() if w.isidentifier()]
    if {"policy", "const"} <= set(words):
        words.extend(_EFFECT_WORDS)
    if value.isidentifier():
        best = closest(value, words) if value not in words else None
        if best is not None:
            return f"did you mean `{best}`?"
    if value in ITEM_KEYWORDS and first_on_line(text, start):
        return f"`{value}` starts a new item here; the item before it looks unfinished"
    if value == "=" and "==" in vocab.words_for(expected).values():
        return "to compare, write `==`"
    if value in _COMPARISONS and "and" in vocab.words_for(expected).values():
        return "comparisons do not chain; write `a < b and b < c`"
    return None


def _end_of_file(
    file: str,
    text: str,
    parsed: str,
    expected: set[str],
    vocab: Vocabulary,
    next_item: int | None,
) -> SyntaxProblem:
    end = len(parsed.rstrip())
    want = describe_expected(expected - {"$END"}, vocab)
    opened = unclosed_braces(parsed)
    if opened and "}" in vocab.words_for(expected).values():
        return _unclosed(file, text, opened, next_item)
    if next_item is not None:
        match = re.match(r"[A-Za-z_][A-Za-z0-9_]*|\S", text[next_item : next_item + 80])
        word = match.group(0) if match else text[next_item : next_item + 1]
        diag = UNEXPECTED_TOKEN.at(
            _span(file, text, next_item, next_item + len(word)),
            f"expected {want}; found `{word}`",
            f"`{word}` starts a new item here; the item before it looks unfinished",
        )
        return SyntaxProblem(diag, end, False)
    help_text = "a `{` is still open" if "}" in vocab.words_for(expected).values() else None
    diag = UNEXPECTED_EOF.at(
        _span(file, text, end, end + 1 if end < len(text) else end),
        f"unexpected end of file; expected {want}",
        help_text,
    )
    return SyntaxProblem(diag, end, False)


def _unclosed(file: str, text: str, opened: list[int], next_item: int | None) -> SyntaxProblem:
    """CH0111 at the innermost `{` never closed (not at the end of the file, where the
    missing `}` is not)."""
    at = opened[-1]
    if next_item is not None:
        line, _ = _position(text, next_item)
        where = f"before line {line}, where the next item starts"
    else:
        where = "where its block ends (the end of the file, at the latest)"
    diag = UNCLOSED_BRACE.at(
        _span(file, text, at, at + 1),
        "this `{` is never closed",
        f"add `}}` {where}",
    )
    return SyntaxProblem(diag, at, False, closes=len(opened))


def _bad_character(
    pos: int, file: str, text: str, raw_regex_at: int | None = None
) -> SyntaxProblem:
    char = text[pos : pos + 1]
    if char == '"':
        begin = raw_regex_at if raw_regex_at is not None else pos
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        what = "raw regex" if raw_regex_at is not None else "string"
        diag = UNTERMINATED_STRING.at(
            _span(file, text, begin, max(line_end, begin + 1)),
            f"unterminated {what}",
            'close it with `"` on the same line; write a quote inside it as \\"',
        )
        return SyntaxProblem(diag, begin, False)
    shown = repr(char)[1:-1] if char.isprintable() is False else char
    diag = UNEXPECTED_CHARACTER.at(
        _span(file, text, pos, pos + 1),
        f"unexpected character `{shown}`",
        _CHAR_HELP.get(char),
    )
    return SyntaxProblem(diag, pos, False)
