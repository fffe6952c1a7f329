"""Tool-name globs, the one implementation: the checker, the planner and test generators
all read `*` and `**` the same way."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["glob_regex", "name_matches"]


@lru_cache(maxsize=8192)
def glob_regex(glob: str) -> Any:
    """Tool-name globs: `*` within one dot-separated segment, `**` across segments."""
    import re2  # here, not at the top: a policy without globs never loads RE2 (issue 11)

    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^.]*")
            i += 1
        else:
            out.append(re2.escape(glob[i]))
            i += 1
    return re2.compile("".join(out))


def name_matches(pattern: str, name: str) -> bool:
    if "*" not in pattern:
        return pattern == name
    return glob_regex(pattern).fullmatch(name) is not None
