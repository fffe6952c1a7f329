"""The layout engine of the formatter: blocks of entries, rows of pieces, comments.

An *entry* is one thing on its own line(s) inside a block (an item of a file or scope, a
statement of a test). An entry is laid out as *rows*, each a run of *pieces* (a document plus
the source range it came from) joined by spaces; the source ranges are what lets comments go
back next to the code they were written beside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from charter.language.fmt_comments import Comment, line_of
from charter.language.fmt_doc import Doc, flat, join, render

WIDTH = 100
INDENT = 2


@dataclass
class Out:
    """One output line: its text with indentation, and comments to put at its end."""

    text: str
    trailing: list[str] = field(default_factory=list)

    def render(self) -> str:
        if not self.trailing:
            return self.text.rstrip()
        if not self.text.strip():
            return self.text + "  ".join(self.trailing)
        return self.text.rstrip() + "  " + "  ".join(self.trailing)


BLANK_TEXT = ""


@dataclass(frozen=True, slots=True)
class Piece:
    """A document and the source offsets `[start, end)` of the code it prints."""

    doc: Doc
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Row:
    """Pieces printed on one line (more if a group inside breaks), `extra` columns deeper."""

    pieces: tuple[Piece, ...]
    extra: int = 0


Layout = Callable[[int, list[Comment]], list[Out]]


@dataclass(frozen=True, slots=True)
class Entry:
    """Something that starts on its own line in a block.

    `group` decides blank lines (a different group from the previous entry's forces one);
    `roomy` entries (scopes, tests) always have blank lines around them. `layout` gets the
    indentation and the comments written inside the entry's source range.
    """

    start: int
    end: int
    group: int
    roomy: bool
    layout: Layout


def clause_rows(head: list[Piece], clauses: list[Piece], indent: int) -> list[Row]:
    """One line if it fits; else the head with as many clauses as fit, then one continuation
    line per remaining clause, indented."""
    everything = head + clauses
    if indent + _flat_width(everything) <= WIDTH or not clauses:
        return [Row(tuple(everything))]
    taken = 0
    while taken < len(clauses) and indent + _flat_width(head + clauses[: taken + 1]) <= WIDTH:
        taken += 1
    first, rest = head + clauses[:taken], clauses[taken:]
    return [Row(tuple(first))] + [Row((c,), INDENT) for c in rest]


def _flat_width(pieces: list[Piece]) -> int:
    return sum(len(flat(p.doc)) for p in pieces) + max(len(pieces) - 1, 0)


class Layouter:
    """Lays out blocks and rows of one source text, putting its comments back."""

    def __init__(self, text: str, comments: list[Comment]) -> None:
        self.text = text
        self.comments = comments

    # ── rows ────────────────────────────────────────────────────────────────

    def rows(self, rows: list[Row], indent: int, interior: list[Comment]) -> list[Out]:
        """Print rows at `indent`. A trailing comment stays at the end of the row whose code
        ends on the comment's line; any other comment moves above the first row."""
        outs: list[list[Out]] = []
        for row in rows:
            col = indent + row.extra
            doc = join(" ", [p.doc for p in row.pieces])
            lines = render(doc, WIDTH, col)
            outs.append([Out(" " * col + lines[0])] + [Out(x) for x in lines[1:]])
        above: list[Out] = []
        for c in interior:
            target = self._row_of(rows, c) if c.trailing else None
            if target is None:
                above.append(Out(" " * indent + c.text))
            else:
                outs[target][-1].trailing.append(c.text)
        return above + [o for group in outs for o in group]

    def _row_of(self, rows: list[Row], c: Comment) -> int | None:
        found: tuple[int, Piece] | None = None
        for i, row in enumerate(rows):
            for p in row.pieces:
                if p.start <= c.start:
                    found = (i, p)
        if found is None or line_of(self.text, found[1].end) != c.line:
            return None
        return found[0]

    # ── blocks ──────────────────────────────────────────────────────────────

    def block(
        self, entries: list[Entry], lo: int, hi: int, indent: int, keep_blanks: bool
    ) -> tuple[list[Out], list[str]]:
        """Print entries at `indent` with the comments found in `[lo, hi)`.

        Returns the lines and the trailing comments that come before the first entry (they
        belong at the end of the line that opens the block).
        """
        mine = [c for c in self.comments if lo <= c.start < hi]
        interior: dict[int, list[Comment]] = {i: [] for i in range(len(entries))}
        before: dict[int, list[Comment]] = {i: [] for i in range(len(entries))}
        after_trailing: dict[int, list[str]] = {i: [] for i in range(len(entries))}
        tail: list[Comment] = []
        orphans: list[str] = []
        for c in mine:
            inside = next((i for i, e in enumerate(entries) if e.start <= c.start < e.end), None)
            if inside is not None:
                interior[inside].append(c)
            elif c.trailing:
                prev = [i for i, e in enumerate(entries) if e.end <= c.start]
                if prev:
                    after_trailing[max(prev, key=lambda i: entries[i].end)].append(c.text)
                else:
                    orphans.append(c.text)
            else:
                nxt = next((i for i, e in enumerate(entries) if e.start > c.start), None)
                (tail if nxt is None else before[nxt]).append(c)

        out: list[Out] = []
        prev_end: int | None = None
        prev_entry: Entry | None = None
        for i, entry in enumerate(entries):
            forced = prev_entry is not None and keep_blanks and (
                prev_entry.group != entry.group or prev_entry.roomy or entry.roomy
            )
            for j, c in enumerate(before[i]):
                if prev_end is not None and (
                    (forced and j == 0) or (keep_blanks and self._blank(prev_end, c.start))
                ):
                    out.append(Out(BLANK_TEXT))
                out.append(Out(" " * indent + c.text))
                prev_end = c.start
            if prev_end is not None and (
                (forced and not before[i]) or (keep_blanks and self._blank(prev_end, entry.start))
            ):
                out.append(Out(BLANK_TEXT))
            lines = entry.layout(indent, interior[i])
            if lines:
                lines[-1].trailing.extend(after_trailing[i])
            out.extend(lines)
            prev_end, prev_entry = entry.end, entry
        for c in tail:
            if prev_end is not None and keep_blanks and self._blank(prev_end, c.start):
                out.append(Out(BLANK_TEXT))
            out.append(Out(" " * indent + c.text))
            prev_end = c.start
        return out, orphans

    def _blank(self, end: int, start: int) -> bool:
        """Whether the source has an empty line between two offsets."""
        if start <= end:
            return False
        return any(not seg.strip() for seg in self.text[end:start].split("\n")[1:-1])
