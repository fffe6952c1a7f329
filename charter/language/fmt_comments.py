"""Comments and token positions in policy text, for the formatter.

The parser drops comments, so the formatter finds them here. Strings and regexes
(`"..."`, `r"..."`) may contain `#` and cannot span lines, which makes a single left-to-right
scan exact for a file that parses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Comment:
    """A `#` comment: its text (trailing spaces removed), offset, line (1-based), and
    whether code precedes it on its line (a trailing comment)."""

    text: str
    start: int
    line: int
    trailing: bool


def _skip_string(text: str, i: int) -> int:
    """Offset just past the string starting with the quote at `i`."""
    i += 1
    while i < len(text) and text[i] not in '"\n':
        i += 2 if text[i] == "\\" else 1
    return min(i + 1, len(text))


def comments(text: str) -> list[Comment]:
    """Every comment of `text`, in order."""
    out: list[Comment] = []
    i, line, code_on_line = 0, 1, False
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            i, line, code_on_line = i + 1, line + 1, False
        elif ch == '"':
            i, code_on_line = _skip_string(text, i), True
        elif ch == "#":
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out.append(Comment(text[i:end].rstrip(), i, line, code_on_line))
            i = end
        else:
            code_on_line = code_on_line or not ch.isspace()
            i += 1
    return out


def skip_blank(text: str, pos: int, end: int | None = None) -> int:
    """The offset of the first code character at or after `pos` (whitespace and comments
    skipped), or `end`/len(text) if there is none."""
    stop = len(text) if end is None else end
    while pos < stop:
        ch = text[pos]
        if ch == "#":
            nl = text.find("\n", pos)
            pos = stop if nl < 0 else nl
        elif ch.isspace():
            pos += 1
        else:
            return pos
    return stop


def find_code(text: str, lo: int, hi: int, target: str) -> int:
    """The offset of the first `target` (a word or a punctuation mark) between `lo` and `hi`
    that is code, not inside a string or comment; -1 if none."""
    i = lo
    word = target[0].isalpha()
    while i < hi:
        ch = text[i]
        if ch == '"':
            i = _skip_string(text, i)
        elif ch == "#":
            nl = text.find("\n", i)
            i = hi if nl < 0 else nl
        elif text.startswith(target, i) and (
            not word
            or (
                (i == 0 or not _ident(text[i - 1]))
                and (i + len(target) >= len(text) or not _ident(text[i + len(target)]))
            )
        ):
            return i
        else:
            i += 1
    return -1


def _ident(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def line_of(text: str, offset: int) -> int:
    """The 1-based line of an offset."""
    return text.count("\n", 0, offset) + 1
