"""User patterns: RE2 only, friendly errors with offsets, search semantics."""

from __future__ import annotations

import pytest

from charter.stdlib.regex import PatternError, compile_user_pattern


@pytest.mark.parametrize(
    ("pattern", "offset", "words"),
    [
        (r"foo(?=bar)", 3, "look-ahead"),
        (r"foo(?!bar)", 3, "look-ahead"),
        (r"(?<=\$)\d+", 0, "look-behind"),
        (r"(?<!x)y", 0, "look-behind"),
        (r"(a)\1", 3, "backreference"),
        (r"(?P<n>a)(?P=n)", 8, "backreference"),
        (r"(?>a+)b", 0, "atomic"),
        (r"a++", 2, "possessive"),
        (r"abc\Z", 3, r"\z"),
    ],
)
def test_unsupported_constructs_are_explained(pattern: str, offset: int, words: str) -> None:
    with pytest.raises(PatternError) as err:
        compile_user_pattern(pattern)
    assert err.value.offset == offset
    assert words in err.value.message
    if "backreference" in words or "look" in words:
        assert "not supported by RE2 (Charter matches in linear time)" in err.value.message


def test_escaped_and_class_members_are_not_flagged() -> None:
    compile_user_pattern(r"\(\?=[(?=]\\1")
    compile_user_pattern(r"[\]]x")
    compile_user_pattern(r"[[:alpha:](?=]+")


def test_syntax_errors_carry_offset() -> None:
    with pytest.raises(PatternError) as err:
        compile_user_pattern(r"ab(cd")
    assert "invalid RE2 pattern" in err.value.message
    with pytest.raises(PatternError) as err:
        compile_user_pattern(r"ab[x")
    assert err.value.offset == 2


def test_search_semantics_and_named_groups() -> None:
    rx = compile_user_pattern(r"EMP-(?P<n>[0-9]{6})")
    assert rx.search("badge EMP-123456 here") is not None
    assert rx.search("EMP-12") is None


def test_pathological_pattern_compiles() -> None:
    rx = compile_user_pattern(r"(a+)+$")
    assert rx.search("a" * 50_000 + "b") is None
