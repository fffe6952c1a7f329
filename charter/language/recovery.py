"""Syntax error recovery: what to blank out so that parsing resumes after a broken item.

The parser reports every syntax error of a file, not just the first: it splits the file into
top-level items (`item_starts`), and when an item does not parse it blanks out the broken part
(`recovery_region`, `blank`: spaces, newlines kept, so every position stays right) and parses
again. The scans here are line- and brace-based and skip strings and comments; they never need
the grammar.
"""

from __future__ import annotations

from dataclasses import dataclass

from charter.language.lexicon import ITEM_KEYWORDS, STATEMENT_KEYWORDS

_ANCHOR_WORDS = ITEM_KEYWORDS | STATEMENT_KEYWORDS



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


def recovery_region(text: str, offset: int, restart_here: bool) -> tuple[int, int] | None:
    """The span of text to blank out so that parsing can resume after an error at `offset`,
    or None to give up. `restart_here`: the error is an unknown word first on its line, so
    that line starts the broken item.

    Prefer the innermost broken item (so a typo inside a `scope` keeps the scope's other rules)
    when blanking it keeps braces balanced; else the whole top-level item; else the rest of the
    error's line. The region always holds some non-blank text, so repeated recovery ends.
    """
    lines = _lines(text)
    here = _line_of(lines, offset) if restart_here else None
    for finder in (_fine_region, _coarse_region):
        start, end = finder(lines, text, offset, here)
        if text[start:end].strip() and _balanced(text[start:end]):
            return (start, end)
    start, end = _coarse_region(lines, text, offset, here)
    if text[start:end].strip():
        return (start, end)
    line = lines[_line_of(lines, offset)]
    if text[line.start : line.end].strip():
        return (line.start, line.end)
    return None


def blank(text: str, region: tuple[int, int]) -> str:
    """Replace a region with spaces, keeping newlines so every position stays the same."""
    start, end = region
    middle = "".join(ch if ch == "\n" else " " for ch in text[start:end])
    return text[:start] + middle + text[end:]
