"""Syntax errors: Lark exceptions turned into friendly diagnostics, and where to resume.

Messages name what was found and what was expected in words ("expected an effect such as
`allow`...; found `alow`") and offer a did-you-mean when the word found is close to a keyword
the parser could have taken. `recovery_region` picks the text to blank out so that parsing can
resume at the next item and report every syntax error of a file, not just the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from charter.language.source import Diagnostic, Span
from charter.language.suggest import closest

#: Words that start a top-level item; such a word first on a line always starts a new item.
ITEM_KEYWORDS = frozenset(
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
_STMT_KEYWORDS = frozenset({"given", "call", "expect", "for", "approve", "row"})
_ANCHOR_WORDS = ITEM_KEYWORDS | _STMT_KEYWORDS

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


def first_on_line(text: str, offset: int) -> bool:
    """True when only whitespace precedes `offset` on its line."""
    return text[text.rfind("\n", 0, offset) + 1 : offset].strip() == ""


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """One syntax error: its diagnostic and where it happened (for recovery)."""

    diagnostic: Diagnostic
    offset: int
    #: the error is an unknown word first on its line: that line starts the broken item
    restart_here: bool
    #: `{` left open at the end of the piece: recover by closing them, keeping their items
    closes: int = 0


def to_problem(
    err: UnexpectedInput,
    file: str,
    text: str,
    parsed: str,
    expected: set[str],
    vocab: Vocabulary,
    next_item: int | None = None,
) -> SyntaxProblem:
    """Turn a Lark error into a CH01xx diagnostic.

    `text` is the source, `parsed` the text actually parsed (same positions, some of it blanked
    or cut); `next_item` is where the next item starts when `parsed` stops before it.
    """
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(err.pos_in_stream or 0, file, text)
    if isinstance(err, UnexpectedToken):
        tok = err.token
        tok_type, value = str(tok.type), str(tok)
        start = tok.start_pos if tok.start_pos is not None else len(parsed)
        if tok_type == "$END":
            return _end_of_file(file, text, parsed, expected, vocab, next_item)
        after = tok.end_pos or 0
        if tok_type == "NAME" and value == "r" and text[after : after + 1] == '"':
            return _bad_character(after, file, text, raw_regex_at=start)
        end = tok.end_pos if tok.end_pos is not None else start + len(value)
        want = describe_expected(expected, vocab)
        help_text = _help_for(tok_type, value, expected, vocab, text, start)
        diag = Diagnostic(
            "CH0101",
            "error",
            _span(file, text, start, end),
            f"expected {want}; found {describe_token(tok_type, value)}",
            help_text,
        )
        restart = tok_type == "NAME" and first_on_line(text, start)
        return SyntaxProblem(diag, start, restart)
    return _end_of_file(file, text, parsed, expected, vocab, next_item)


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
        diag = Diagnostic(
            "CH0101",
            "error",
            _span(file, text, next_item, next_item + len(word)),
            f"expected {want}; found `{word}`",
            f"`{word}` starts a new item here; the item before it looks unfinished",
        )
        return SyntaxProblem(diag, end, False)
    help_text = "a `{` is still open" if "}" in vocab.words_for(expected).values() else None
    diag = Diagnostic(
        "CH0104",
        "error",
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
    diag = Diagnostic(
        "CH0111",
        "error",
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
        diag = Diagnostic(
            "CH0103",
            "error",
            _span(file, text, begin, max(line_end, begin + 1)),
            f"unterminated {what}",
            'close it with `"` on the same line; write a quote inside it as \\"',
        )
        return SyntaxProblem(diag, begin, False)
    shown = repr(char)[1:-1] if char.isprintable() is False else char
    diag = Diagnostic(
        "CH0102",
        "error",
        _span(file, text, pos, pos + 1),
        f"unexpected character `{shown}`",
        _CHAR_HELP.get(char),
    )
    return SyntaxProblem(diag, pos, False)


# ── recovery ────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int
    indent: int
    head: str  # first word, or first character, or "" for blank/comment lines


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    pos = 0
    for raw in text.split("\n"):
        stripped = raw.lstrip(" \t")
        indent = len(raw) - len(stripped)
        head = ""
        if stripped and not stripped.startswith("#"):
            word = ""
            for ch in stripped:
                if not (ch.isalnum() or ch == "_"):
                    break
                word += ch
            head = word or stripped[0]
        out.append(_Line(pos, pos + len(raw), indent, head))
        pos += len(raw) + 1
    return out


def _brace_deltas(text: str) -> list[int]:
    """+1/-1 per `{`/`}` outside strings and comments, as a list in text order."""
    return [delta for _, delta in _braces(text)]


def unclosed_braces(text: str) -> list[int]:
    """Offsets of the `{` that no `}` closes, outermost first."""
    stack: list[int] = []
    for at, delta in _braces(text):
        if delta > 0:
            stack.append(at)
        elif stack:
            stack.pop()
    return stack


def _braces(text: str) -> list[tuple[int, int]]:
    """(offset, +1/-1) per `{`/`}` outside strings and comments, in text order."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch == "{":
            out.append((i, 1))
        elif ch == "}":
            out.append((i, -1))
        i += 1
    return out


def _balanced(text: str) -> bool:
    depth = 0
    for d in _brace_deltas(text):
        depth += d
        if depth < 0:
            return False
    return depth == 0


def _anchor(line: _Line) -> bool:
    return line.head == "@" or line.head in _ANCHOR_WORDS


def _with_annotations(lines: list[_Line], s: int) -> int:
    while s > 0 and lines[s - 1].head == "@":
        s -= 1
    return s


def _line_of(lines: list[_Line], offset: int) -> int:
    for i, line in enumerate(lines):
        if offset <= line.end:
            return i
    return len(lines) - 1


def _continued_from(lines: list[_Line], text: str, here: int) -> int:
    """The anchor that line `here` continues, when it is indented under it (not in a block)."""
    p = here - 1
    while p >= 0 and not _anchor(lines[p]):
        p -= 1
    if p < 0 or lines[p].indent >= lines[here].indent:
        return here
    return p if sum(_brace_deltas(text[lines[p].start : lines[here].start])) == 0 else here


def _fine_region(lines: list[_Line], text: str, err: int, here: int | None) -> tuple[int, int]:
    """The innermost item around the error, at any indentation, stopping at a closing `}`."""
    if here is not None:
        s = _continued_from(lines, text, here)
    else:
        cands = [i for i, ln in enumerate(lines) if _anchor(ln) and ln.start + ln.indent < err]
        if not cands:
            return (0, 0)
        s = cands[-1]
    indent = lines[s].indent
    e = s + 1
    depth = sum(_brace_deltas(text[lines[s].start : lines[s].end]))
    while e < len(lines):
        line = lines[e]
        if _anchor(line) and line.indent <= indent and depth == 0:
            break
        deltas = _brace_deltas(text[line.start : line.end])
        if line.head == "}" and depth + sum(deltas) < 0:
            break
        depth += sum(deltas)
        e += 1
    s = _with_annotations(lines, s)
    end = lines[e].start if e < len(lines) else len(text)
    return (lines[s].start, end)


def _coarse_region(lines: list[_Line], text: str, err: int, here: int | None) -> tuple[int, int]:
    """The top-level item around the error: from a line starting at column 1 to the next."""

    def top(ln: _Line) -> bool:
        return ln.indent == 0 and (ln.head == "@" or ln.head[:1].isalpha())

    if here is not None and lines[here].indent == 0:
        s = here
    else:
        cands = [i for i, ln in enumerate(lines) if top(ln) and ln.start < err]
        s = cands[-1] if cands else 0
    e = s + 1
    while e < len(lines) and not top(lines[e]):
        e += 1
    s = _with_annotations(lines, s)
    end = lines[e].start if e < len(lines) else len(text)
    return (lines[s].start, end)


def item_starts(text: str) -> list[int]:
    """Offsets of the lines that start a top-level item: an item keyword or `@` at column 1,
    outside any braces, not right after an annotation line. Always includes 0.

    Braces that are never closed do not count: a column-1 item after a scope whose `}` is
    missing starts a new item, so one missing `}` does not swallow the rest of the file."""
    starts = [0]
    never = set(unclosed_braces(text))
    open_: list[int] = []
    prev_head = ""
    for line in _lines(text):
        if (
            line.start > 0
            and all(b in never for b in open_)
            and line.indent == 0
            and _anchor(line)
            and prev_head != "@"
            and line.head in ITEM_KEYWORDS | {"@"}
        ):
            starts.append(line.start)
            open_.clear()
        if "{" in text[line.start : line.end] or "}" in text[line.start : line.end]:
            for at, delta in _braces(text[line.start : line.end]):
                if delta > 0:
                    open_.append(line.start + at)
                elif open_:
                    open_.pop()
        if line.head:
            prev_head = line.head
    return starts


def recovery_region(text: str, problem: SyntaxProblem) -> tuple[int, int] | None:
    """The span of text to blank out so that parsing can resume, or None to give up.

    Prefer the innermost broken item (so a typo inside a `scope` keeps the scope's other rules)
    when blanking it keeps braces balanced; else the whole top-level item; else the rest of the
    error's line. The region always holds some non-blank text, so repeated recovery ends.
    """
    lines = _lines(text)
    here = _line_of(lines, problem.offset) if problem.restart_here else None
    for finder in (_fine_region, _coarse_region):
        start, end = finder(lines, text, problem.offset, here)
        if text[start:end].strip() and _balanced(text[start:end]):
            return (start, end)
    start, end = _coarse_region(lines, text, problem.offset, here)
    if text[start:end].strip():
        return (start, end)
    line = lines[_line_of(lines, problem.offset)]
    if text[line.start : line.end].strip():
        return (line.start, line.end)
    return None


def blank(text: str, region: tuple[int, int]) -> str:
    """Replace a region with spaces, keeping newlines so every position stays the same."""
    start, end = region
    middle = "".join(ch if ch == "\n" else " " for ch in text[start:end])
    return text[:start] + middle + text[end:]
