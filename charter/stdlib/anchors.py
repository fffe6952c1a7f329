"""Which text-position assertions a pattern uses, for scanning many strings in one pass.

The scanner joins the strings of a value with "\\n" and runs each pattern as `(?m:PATTERN)`
over the joined text. In multi-line mode `^` and `$` hold at every string's edge, and `\\b`
sees the "\\n" as a non-word character just as it sees a string's edge, so every match inside
one string is still a match in the joined text (the joined pass may report more, never
fewer). `\\A` and `\\z` hold only at the ends of the joined text, and a `(?-m)` flag turns
multi-line mode off again, so a pattern using either is scanned string by string.
"""

# No `from __future__ import annotations`: a NamedTuple's string annotations are each
# compiled (typing.ForwardRef) when the class is made, in every fresh process (a hook's).

from typing import NamedTuple


class Anchoring(NamedTuple):
    line: bool  # uses `^` or `$`: (?m:...) matches more than the pattern does
    joinable: bool  # no `\A`, `\z` or `(?-m)`: one pass over joined strings finds every match


def _flag_group_clears_m(pattern: str, i: int) -> bool:
    """Whether the group opening at `pattern[i]` is `(?flags-flags)`/`(?...:` clearing `m`."""
    j = i + 2
    flags = ""
    while j < len(pattern) and pattern[j] in "imsU-":
        flags += pattern[j]
        j += 1
    return "-" in flags and "m" in flags.split("-", 1)[1]


def anchoring(pattern: str) -> Anchoring:
    """Scan an RE2 pattern's syntax (escapes and character classes skipped)."""
    line = False
    joinable = True
    in_class = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern.startswith(("A", "z"), i + 1):  # even in a class: err on the safe side
                joinable = False
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            # `[]...]` and `[^]...]`: a leading `]` is a member.
            j = i + 1 + (pattern.startswith("^", i + 1))
            if pattern.startswith("]", j):
                i = j
        elif c in "^$":
            line = True
        elif c == "(" and pattern.startswith("(?", i) and _flag_group_clears_m(pattern, i):
            joinable = False
        i += 1
    return Anchoring(line, joinable)
