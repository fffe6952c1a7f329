"""Validation and compilation of user-written patterns (`matcher NAME = r"..."`, `matches`).

Every user pattern is RE2 syntax and is compiled by google-re2 only, so matching is linear in
the input whatever the pattern. Constructs that need backtracking (look-around,
backreferences, atomic groups, possessive quantifiers, recursion, conditionals) are rejected
with a message saying why and what to write instead, at the construct's offset.

`X matches r"..."` has *search* semantics: it is true when the pattern matches anywhere in
X (like Python's `re.search`). Anchor with `^...$` (or `\\A...\\z`) for a whole-string match.
"""

from __future__ import annotations

from typing import Any

_LINEAR = "not supported by RE2 (Charter matches in linear time)"

# Group openers that RE2 rejects, longest first, with the advice shown to the author.
_BAD_GROUPS: tuple[tuple[str, str], ...] = (
    ("(?<=", f"look-behind `(?<=...)` is {_LINEAR}; match the prefix and test it separately"),
    ("(?<!", f"negative look-behind `(?<!...)` is {_LINEAR}; use `(?:^|[^...])` instead"),
    ("(?=", f"look-ahead `(?=...)` is {_LINEAR}; match the text itself, or use `\\b`"),
    ("(?!", f"negative look-ahead `(?!...)` is {_LINEAR}; use a negated class `[^...]`"),
    ("(?>", f"atomic group `(?>...)` is {_LINEAR}; a plain group `(?:...)` behaves the same"),
    ("(?P=", f"backreference `(?P=name)` is {_LINEAR}"),
    ("(?(", f"conditional group `(?(...)...)` is {_LINEAR}"),
    ("(?R)", f"recursion `(?R)` is {_LINEAR}"),
    ("(?&", f"subroutine call `(?&name)` is {_LINEAR}"),
)


class PatternError(Exception):
    """A user pattern RE2 cannot compile. `offset` indexes the pattern where known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _check_escape(pattern: str, i: int, in_class: bool) -> None:
    """Raise for an escape at `pattern[i]` (a backslash) that RE2 does not support."""
    nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
    if not in_class and nxt in "123456789" and nxt:
        raise PatternError(f"backreference `\\{nxt}` is {_LINEAR}", i)
    if nxt in ("k", "g") and not in_class:
        raise PatternError(f"backreference `\\{nxt}` is {_LINEAR}", i)
    if nxt == "Z":
        raise PatternError("`\\Z` is not RE2 syntax; use `\\z` for end of text", i)
    if nxt == "G":
        raise PatternError(f"`\\G` (continue at last match) is {_LINEAR}", i)


def precheck(pattern: str) -> None:
    """Find constructs RE2 rejects and raise `PatternError` with advice and an offset.

    This runs before RE2 so that the common PCRE-isms get a helpful message rather than
    RE2's terse one. Anything it misses is still caught by RE2 itself.
    """
    i = 0
    in_class = False
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            _check_escape(pattern, i, in_class)
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                close = pattern.find(":]", i + 2)
                if close >= 0:  # POSIX class such as [:alpha:] inside a bracket expression
                    i = close + 2
                    continue
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            # A `]` right after `[` or `[^` is a literal member, not the end.
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                i = j
        elif c == "(":
            for opener, advice in _BAD_GROUPS:
                if pattern.startswith(opener, i):
                    raise PatternError(advice, i)
            if pattern.startswith("(?", i) and i + 2 < n and pattern[i + 2].isdigit():
                raise PatternError(f"recursion `(?N)` is {_LINEAR}", i)
        elif c in "*+?}" and i + 1 < n and pattern[i + 1] == "+":
            raise PatternError(f"possessive quantifier `{c}+` is {_LINEAR}; drop the `+`", i + 1)
        i += 1


def _error_text(err: Exception) -> str:
    arg = err.args[0] if err.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _offset_of(message: str, pattern: str) -> int | None:
    # RE2 messages end with the offending fragment: "missing ): (abc".
    _, sep, fragment = message.partition(": ")
    if sep and fragment:
        at = pattern.find(fragment)
        if at >= 0:
            return at
    return None


def options(max_mem: int = 8 << 20) -> Any:
    """RE2 options used for every user pattern: UTF-8, no logging to stderr."""
    # RE2 is imported where a pattern is compiled, not with this module: the checker imports
    # it for every policy, and the extension costs ~1.5 ms of a fresh process (issue 11).
    import re2

    opts = re2.Options()
    opts.max_mem = max_mem
    opts.log_errors = False
    return opts


def compile_user_pattern(pattern: str) -> Any:
    """Compile a user pattern with RE2, or raise `PatternError` (message, offset).

    The result is a `re2._Regexp`; use `.search(text)` for `matches` (search semantics).
    """
    import re2

    precheck(pattern)
    try:
        return re2.compile(pattern, options())
    except re2.error as err:
        message = _error_text(err)
        offset = _offset_of(message, pattern)
        if "pattern too large" in message:
            message = "pattern too large for RE2's memory budget; simplify the repetition"
        raise PatternError(f"invalid RE2 pattern: {message}", offset) from None
