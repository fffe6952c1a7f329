"""Charter's standard library: stdlib matchers (`pii`, `secrets`), the RE2 scanning engine,
redaction and user-pattern validation. Runtime-safe: imports neither Lark nor the language."""

from charter.stdlib.matchers import GROUPS, MODULES, MatcherSpec, resolve, user_matcher
from charter.stdlib.regex import PatternError, compile_user_pattern
from charter.stdlib.scanner import Finding, ScanError, Scanner

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
