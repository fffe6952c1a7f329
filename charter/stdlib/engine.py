"""Thin adapters over google-re2's compiled objects, shared by the scanner.

google-re2's Python wrappers build a match object (and, for `str` input, re-encode the text)
on every call. The scanner encodes a value once and then needs only byte spans, so these
adapters call the extension's bound methods directly when they are present and fall back to
the public API otherwise. Either way every match is RE2's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import re2

Spans = list[tuple[int, int]]
SearchFn = Callable[[bytes, int], Spans | None]
SetMatchFn = Callable[[bytes], list[int]]

_NO_SPAN = (-1, -1)


def engine_options(max_mem: int) -> Any:
    """RE2 options for the scanner: UTF-8, a memory budget, no logging to stderr."""
    opts = re2.Options()
    opts.max_mem = max_mem
    opts.log_errors = False
    return opts


def searcher(regexp: Any) -> SearchFn:
    """`fn(data, pos)` -> byte spans of every group of the leftmost match at or after `pos`,
    or None. `data` is UTF-8 bytes; spans are byte offsets."""
    raw = getattr(regexp, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if raw is not None and anchor is not None and hasattr(raw, "Match"):
        match = raw.Match

        def fast(data: bytes, pos: int) -> Spans | None:
            spans: Spans = match(anchor, data, pos, len(data))
            return None if spans[0] == _NO_SPAN else spans

        return fast

    def public(data: bytes, pos: int) -> Spans | None:
        m = regexp.search(data, pos)
        if m is None:
            return None
        return [m.span(g) for g in range(regexp.groups + 1)]

    return public


def set_matcher(regex_set: Any) -> SetMatchFn:
    """`fn(data)` -> indices of the Set's patterns that match `data` (possibly empty).

    The raw binding returns `[]` both for "no match" and for "DFA out of memory"; the scanner
    tells them apart with a sentinel pattern that always matches (see `Scanner`).
    """
    raw = getattr(regex_set, "_set", None)
    if raw is not None and hasattr(raw, "Match"):
        return raw.Match  # type: ignore[no-any-return]

    def public(data: bytes) -> list[int]:
        return list(regex_set.Match(data) or ())

    return public
