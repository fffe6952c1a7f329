"""The `MatcherSpec` record shared by the stdlib modules, user matchers and the scanner."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class MatcherSpec(NamedTuple):
    """One named matcher: an RE2 pattern, its redaction placeholder and an optional validator.

    `group` selects the capture group that is the matched value. Stdlib patterns use group 1
    when they must consume a context character (RE2 has no look-around), so that the
    boundary character is neither validated nor redacted. User matchers always use group 0.
    (A NamedTuple: a hook process builds the scanner in every call, and making a dataclass
    costs about half a millisecond.)
    """

    name: str
    pattern: str
    placeholder: str
    validator: Callable[[str], bool] | None = None
    doc: str = ""
    group: int = 0
