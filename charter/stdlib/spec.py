"""The `MatcherSpec` record shared by the stdlib modules, user matchers and the scanner."""

# No `from __future__ import annotations`: a NamedTuple's string annotations are each
# compiled (typing.ForwardRef) when the class is made, in every fresh process (a hook's).

from collections.abc import Callable
from typing import NamedTuple


class MatcherSpec(NamedTuple):
    """One named matcher: an RE2 pattern, its redaction placeholder and an optional validator.

    `group` selects the capture group that is the matched value. Stdlib patterns use group 1
    when they must consume a context character (RE2 has no look-around), so that the
    boundary character is neither validated nor redacted. User matchers always use group 0.
    (A NamedTuple: a hook process builds the scanner in every call, and making a dataclass
    costs about half a millisecond.)

    `prefilter`, when set, is what the scanner's RE2 Set holds in place of `pattern`: a
    pattern that matches wherever `pattern` matches (a necessary condition, such as the `@`
    of every e-mail address) and compiles in a fraction of the time. Every candidate is still
    confirmed by `pattern` itself, so the findings are the same; only the Set pass may name
    this matcher for a value that holds no match. It must be joinable (no `\\A`, `\\z`,
    `(?-m)`; see `anchors.py`).
    """

    name: str
    pattern: str
    placeholder: str
    validator: Callable[[str], bool] | None = None
    doc: str = ""
    group: int = 0
    prefilter: str | None = None
