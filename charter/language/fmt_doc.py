"""A small Wadler-style document printer used by the formatter.

A `Doc` is text with optional break points. A `Group` is printed on one line when it fits in
the remaining width and with all its direct break points as newlines otherwise, so a long
set literal becomes one element per line while a short one stays inline.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Line:
    """A break point: `flat` when the enclosing group fits, a newline otherwise."""

    flat: str = " "


@dataclass(frozen=True, slots=True)
class IfBreak:
    """`text` only when the enclosing group is broken (trailing commas)."""

    text: str


@dataclass(frozen=True, slots=True)
class Nest:
    """Indent the newlines of `doc` by `indent` more columns."""

    indent: int
    doc: Doc


@dataclass(frozen=True, slots=True)
class Group:
    """Print `doc` flat if it fits, else break its break points."""

    doc: Doc


Doc = str | Line | IfBreak | Nest | Group | tuple["Doc", ...]

SOFTLINE = Line("")
LINE = Line(" ")

_FLAT, _BREAK = 0, 1
_Cmd = tuple[int, int, Doc]  # indent, mode, doc


def concat(*docs: Doc) -> Doc:
    """Docs one after another."""
    return tuple(docs)


def join(sep: Doc, docs: list[Doc]) -> Doc:
    """Docs separated by `sep`."""
    out: list[Doc] = []
    for i, d in enumerate(docs):
        if i:
            out.append(sep)
        out.append(d)
    return tuple(out)


def flat(doc: Doc) -> str:
    """The one-line rendering of a doc."""
    if isinstance(doc, str):
        return doc
    if isinstance(doc, Line):
        return doc.flat
    if isinstance(doc, IfBreak):
        return ""
    if isinstance(doc, Nest | Group):
        return flat(doc.doc)
    return "".join(flat(d) for d in doc)


def render(doc: Doc, width: int, indent: int = 0) -> list[str]:
    """Lay `doc` out in `width` columns, starting at column `indent`; returns the lines
    (the first one without its indentation, the others with)."""
    lines: list[str] = []
    current: list[str] = []
    col = indent
    stack: list[_Cmd] = [(indent, _BREAK, doc)]
    while stack:
        ind, mode, d = stack.pop()
        if isinstance(d, str):
            current.append(d)
            col += len(d)
        elif isinstance(d, tuple):
            stack.extend((ind, mode, x) for x in reversed(d))
        elif isinstance(d, Nest):
            stack.append((ind + d.indent, mode, d.doc))
        elif isinstance(d, Group):
            fits = _fits(width - col, [(ind, _FLAT, d.doc)], stack)
            stack.append((ind, _FLAT if fits else _BREAK, d.doc))
        elif isinstance(d, IfBreak):
            if mode == _BREAK:
                current.append(d.text)
                col += len(d.text)
        elif mode == _FLAT:
            current.append(d.flat)
            col += len(d.flat)
        else:
            lines.append("".join(current))
            current = [" " * ind]
            col = ind
    lines.append("".join(current))
    return lines


def _fits(room: int, cmds: list[_Cmd], rest: list[_Cmd]) -> bool:
    # The group fits if its flat text, plus whatever follows up to the next possible
    # newline, stays within the line.
    todo = list(cmds)
    tail = list(rest)
    while room >= 0:
        if not todo:
            if not tail:
                return True
            todo.append(tail.pop())
        ind, mode, d = todo.pop()
        if isinstance(d, str):
            room -= len(d)
        elif isinstance(d, tuple):
            todo.extend((ind, mode, x) for x in reversed(d))
        elif isinstance(d, Nest | Group):
            todo.append((ind, mode, d.doc))
        elif isinstance(d, IfBreak):
            if mode == _BREAK:
                room -= len(d.text)
        elif mode == _FLAT:
            room -= len(d.flat)
        else:
            return True
    return False
