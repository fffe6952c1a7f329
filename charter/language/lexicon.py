"""The parser's lexical rules: the token type, the words that start items, and the keyword rule.

The grammar's lexer accepts NAME in every state (`ALWAYS_ACCEPT`), so a keyword is a keyword
only where the parser can take it; elsewhere it is an ordinary name, and `tool.name`,
`args.limit` and `{limit: 3}` read naturally. `keeps_keyword` is the one exception to that, used
by the fast driver (`charter.language.parser`) and by Lark's parser when it describes a syntax
error (`charter.language.reference`), so both read every word the same way.

Editor vocabularies (what highlighters colour) live in `charter.language.keywords`. This module
imports nothing from Lark, so that valid files parse without it.
"""

from __future__ import annotations

import re
from typing import Final

#: The terminal accepted by the lexer in every parser state.
ALWAYS_ACCEPT: Final = "NAME"

#: Words that start a top-level item; such a word first on a line always starts a new item.
ITEM_KEYWORDS: Final = frozenset(
    {
        "policy",
        "use",
        "default",
        "strict",
        "trust",
        "const",
        "matcher",
        "tool",
        "tools",
        "allow",
        "deny",
        "warn",
        "require",
        "redact",
        "label",
        "on",
        "scope",
        "budget",
        "limit",
        "test",
        "scenario",
        "property",
        "fixture",
    }
)

#: Words that start a statement inside a test or property block.
STATEMENT_KEYWORDS: Final = frozenset({"given", "call", "expect", "for", "approve", "row"})

#: Clause words that are never plain names (except after `.` and as record keys).
CLAUSE_WORDS: Final = frozenset({"when", "unless", "because", "then", "and", "or"})

#: After a NAME: optional blanks and a `:` make it a record key, never a keyword.
_KEY_AHEAD = re.compile(r"[ \t]*:")


class Token(str):
    """A token: its text (the string itself), its terminal and where it is.

    The same fields as Lark's `Token`, so that error descriptions read either alike: offsets
    `start_pos`/`end_pos` into the text, 1-based `line`/`column`, and the line and column just
    past the token's end.
    """

    type: str
    start_pos: int
    line: int
    column: int
    end_line: int
    end_column: int
    end_pos: int

    def __new__(
        cls,
        type: str,
        value: str,
        start_pos: int,
        line: int,
        column: int,
        end_line: int,
        end_column: int,
        end_pos: int,
    ) -> Token:
        self = super().__new__(cls, value)
        self.type = type
        self.start_pos = start_pos
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column
        self.end_pos = end_pos
        return self

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {str(self)!r})"


def first_on_line(text: str, offset: int, begin: int = 0) -> bool:
    """True when only whitespace precedes `offset` on its line (text before `begin` is blank)."""
    return text[max(begin, text.rfind("\n", 0, offset) + 1) : offset].strip() == ""


def keeps_keyword(
    text: str, value: str, start: int, end: int, prev: str, begin: int = 0, stop: int = -1
) -> bool:
    """Whether the NAME `value` at `text[start:end]` is read as its keyword anyway.

    Two exceptions to "a keyword only where the parser takes it", never after `.` nor as a
    record key: an item keyword first on its line always starts an item, and clause words
    (`when`, `because`, `and`...) are never names. Without them an unfinished rule would
    swallow the next word as a name and the error would point past the real mistake.

    `prev` is the text of the token before (or ""). Only `text[begin:stop]` is being parsed
    (`stop` -1 for the end): what comes before `begin` counts as blank.
    """
    if value not in CLAUSE_WORDS and (
        value not in ITEM_KEYWORDS or not first_on_line(text, start, begin)
    ):
        return False
    if prev == ".":
        return False
    return _KEY_AHEAD.match(text, end, len(text) if stop < 0 else stop) is None
