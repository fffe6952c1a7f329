"""`MatcherSpec.ascii_pattern`: on ASCII text a matcher's ASCII twin finds exactly what its
Unicode pattern finds (the scanner confirms candidates with it there, to spare RE2's slow
compile of Unicode classes), and a text that is not all ASCII still gets the Unicode one."""

from __future__ import annotations

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.stdlib import pii, secrets
from charter.stdlib.engine import engine_options, searcher
from charter.stdlib.scanner import DEFAULT_MAX_MEM, Scanner
from charter.stdlib.spec import MatcherSpec

TWINNED = [
    s
    for module in (pii, secrets)
    for s in vars(module).values()
    if isinstance(s, MatcherSpec) and s.ascii_pattern is not None
]
ALPHABET = "abcXYZ019_.%+-@ \n\t:/#$<>\"'(),;=é"[:-1]  # ASCII only (the last one is cut)


def _spans(pattern: str, data: bytes) -> list[list[tuple[int, int]]]:
    search = searcher(re2.compile(pattern, engine_options(DEFAULT_MAX_MEM)))
    out, pos = [], 0
    while pos <= len(data):
        spans = search(data, pos)
        if spans is None:
            break
        out.append(spans)
        pos = max(spans[0][1], pos + 1)
    return out


def test_there_is_a_twin_to_check() -> None:
    assert [s.name for s in TWINNED] == ["pii.email"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(ALPHABET, max_size=12),
            st.sampled_from(
                [
                    "a@b.co",
                    "first.last+tag@mail.example.org",
                    "x@-bad.com",
                    "a@b.c",
                    "me@host",
                    "user@sub.domain.io.",
                    "@@x.yz",
                    "a.@b.cd",
                    "_%+-@a-b.cc",
                ]
            ),
        ),
        max_size=6,
    ).map("".join)
)
def test_the_ascii_twin_finds_the_same_spans(text: str) -> None:
    data = text.encode()
    for spec in TWINNED:
        assert spec.ascii_pattern is not None
        assert _spans(spec.ascii_pattern, data) == _spans(spec.pattern, data), spec.name


def test_a_text_with_unicode_letters_is_scanned_with_the_unicode_pattern() -> None:
    scanner = Scanner([pii.EMAIL], prefilters=True)
    for text, found in (
        ("write to a@b.co", ["a@b.co"]),  # the ASCII twin
        ("write to josé@correo.es or a@b.co", ["josé@correo.es", "a@b.co"]),
        ("write to a@b.co", ["a@b.co"]),
        ("mail ünsal@örnek.com.tr", ["ünsal@örnek.com.tr"]),
    ):
        assert [text[f.start : f.end] for f in scanner.find(text)] == found
