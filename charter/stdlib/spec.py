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
    `(?-m)`; see `anchors.py`). The Set holds prefilters only in a process that asked for
    them (`use_prefilters`): confirming every candidate with the full pattern halves the
    throughput on text full of them (Python's decorators are `@`), which a long-lived host
    must not pay to save a few milliseconds of compiling once.

    `ascii_pattern`, when set, is `pattern` with its Unicode classes (`\\pL`, `\\pN`) written
    as the ASCII ranges they are on ASCII text: on a buffer that is all ASCII the two find
    the same spans (a test holds them to it), and the scanner confirms candidates there
    with it, because RE2 compiles a Unicode class ~100x slower (~11 ms for `pii.email`,
    once per process: a hook call that redacts an address pays it every time).
    """

    name: str
    pattern: str
    placeholder: str
    validator: Callable[[str], bool] | None = None
    doc: str = ""
    group: int = 0
    prefilter: str | None = None
    ascii_pattern: str | None = None


_prefilters = [False]  # a list: set by `use_prefilters`, read by every Scanner made after it


def use_prefilters(on: bool = True) -> None:
    """Build the scanners made from now on with each matcher's `prefilter` in the RE2 Set
    in place of its pattern. For a process that scans one event and exits (a hook), where
    compiling the full Set is most of the scan's cost; findings are the same either way."""
    _prefilters[0] = on


def prefilters_in_use() -> bool:
    """Whether scanners made now hold prefilters (see `use_prefilters`)."""
    return _prefilters[0]
