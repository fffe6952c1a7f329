"""Choosing among overlapping matches and splicing placeholders into text.

Rule (documented in docs/matchers.md): matches are taken left to right; among matches that
start at the same offset the longest wins; among equally long ones, the matcher listed first
in the `redact` effect (group members in their group's order) wins. A match that overlaps an
already chosen one is dropped. The result is deterministic and non-overlapping.
"""

# No `from __future__ import annotations`: a NamedTuple's string annotations are each
# compiled (typing.ForwardRef) when the class is made, in every fresh process (a hook's).

from typing import NamedTuple


class Hit(NamedTuple):
    """A validated match: byte offsets into the encoded text and the matcher's priority."""

    start: int
    end: int
    priority: int  # position of the matcher in the requested names; lower wins ties
    matcher: int  # the matcher's index in the scanner


def select(hits: list[Hit]) -> list[Hit]:
    """Deterministic non-overlapping subset of `hits`: earliest, then longest, then priority.
    Empty matches are dropped (they would redact nothing)."""
    ordered = sorted(hits, key=lambda h: (h.start, h.start - h.end, h.priority))
    chosen: list[Hit] = []
    last_end = -1
    for h in ordered:
        if h.end > h.start and h.start >= last_end:
            chosen.append(h)
            last_end = h.end
    return chosen


def splice(data: bytes, chosen: list[Hit], placeholders: list[bytes]) -> bytes:
    """`data` with each chosen span replaced by its matcher's placeholder.

    Works on UTF-8 bytes: RE2 matches whole code points, so every span boundary is a
    character boundary and the result decodes cleanly.
    """
    parts: list[bytes] = []
    pos = 0
    for h in chosen:
        parts.append(data[pos : h.start])
        parts.append(placeholders[h.matcher])
        pos = h.end
    parts.append(data[pos:])
    return b"".join(parts)
