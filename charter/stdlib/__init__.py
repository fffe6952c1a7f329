"""Charter's standard library: stdlib matchers (`pii`, `secrets`), the RE2 scanning engine,
redaction and user-pattern validation. Runtime-safe: imports neither Lark nor the language.

The names below load on first use (PEP 562): importing one submodule, say
`charter.stdlib.functions` for the checker's signatures, must not pay for RE2, the matcher
tables and the scanner in every fresh process (issue 11's cold-start targets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from charter.stdlib.matchers import GROUPS, MODULES, MatcherSpec, resolve, user_matcher
    from charter.stdlib.regex import PatternError, compile_user_pattern
    from charter.stdlib.scanner import Finding, ScanError, Scanner

_WHERE = {
    "GROUPS": "matchers",
    "MODULES": "matchers",
    "MatcherSpec": "matchers",
    "resolve": "matchers",
    "user_matcher": "matchers",
    "PatternError": "regex",
    "compile_user_pattern": "regex",
    "Finding": "scanner",
    "ScanError": "scanner",
    "Scanner": "scanner",
}

__all__ = [
    "GROUPS",
    "MODULES",
    "Finding",
    "MatcherSpec",
    "PatternError",
    "ScanError",
    "Scanner",
    "compile_user_pattern",
    "resolve",
    "user_matcher",
]


def __getattr__(name: str) -> object:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # here: importing a submodule (a hook call does) need not load it

    value = getattr(importlib.import_module(f"charter.stdlib.{where}"), name)
    globals()[name] = value
    return value
