"""The RE2 Set engine: one pass, validation, walking values, offsets, failing closed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.stdlib import MODULES, ScanError, Scanner, resolve, user_matcher
from charter.stdlib.matchers import GROUPS
from charter.stdlib.scanner import MAX_DEPTH


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    specs = [*(resolve("pii.any") or ()), *(resolve("secrets.any") or ())]
    return Scanner([*specs, user_matcher("employee_id", r"\bEMP-[0-9]{6}\b")])


def test_registry_and_groups() -> None:
    assert set(MODULES) == {"pii", "secrets"}
    assert {"email", "phone", "ssn", "card", "iban", "ip"} == set(MODULES["pii"])
    assert resolve("pii.email") == (MODULES["pii"]["email"],)
    assert [s.name for s in resolve("pii.any") or ()] == list(GROUPS["pii.any"])
    assert resolve("pii.nope") is None and resolve("nope") is None
    assert user_matcher("employee_id", "x").placeholder == "[EMPLOYEE_ID]"


def test_clean_text_reports_nothing(scanner: Scanner) -> None:
    assert scanner.scan("Please summarise the open tickets for the EU region.") == frozenset()
    assert scanner.scan("") == frozenset()


def test_candidates_are_validated(scanner: Scanner) -> None:
    assert scanner.scan("card 4111 1111 1111 1111") == {"pii.card"}
    assert scanner.scan("card 4111 1111 1111 1112") == frozenset()  # fails Luhn
    assert scanner.scan("ssn 666-12-3456") == frozenset()


def test_user_matcher_without_validator(scanner: Scanner) -> None:
    assert scanner.scan("badge EMP-123456 at desk") == {"employee_id"}
    assert scanner.scan("badge EMP-12345") == frozenset()


def test_walks_nested_values_keys_and_ints(scanner: Scanner) -> None:
    value = {
        "args": [{"to": "ops@example.com"}, ("x", 1)],
        "meta": {"AKIAJ7Q2ZK4M5N6P3R2T": True},
        "n": 4111111111111111,
        "flag": True,
        "f": 1.5,
        None: None,
    }
    assert scanner.scan(value) == {"pii.email", "secrets.aws_access_key", "pii.card"}


def test_count_matches_and_groups(scanner: Scanner) -> None:
    text = "a@example.com, b@example.org; call +44 20 7946 0958"
    assert scanner.count(text, "pii.email") == 2
    assert scanner.count([text, text], "pii.email") == 4
    assert scanner.count(text, "pii.any") == 3
    with pytest.raises(KeyError):
        scanner.count(text, "pii.unknown")


def test_offsets_are_characters_in_non_ascii_text(scanner: Scanner) -> None:
    text = "Grüße 👋 — schreib an jörg@exämple.de oder ruf 030 12345678 an"
    found = scanner.find(text)
    assert [(f.name, text[f.start : f.end]) for f in found] == [
        ("pii.email", "jörg@exämple.de"),
        ("pii.phone", "030 12345678"),
    ]


def test_adjacent_values_are_all_found(scanner: Scanner) -> None:
    assert scanner.count("10.0.0.1,10.0.0.2 10.0.0.3", "pii.ip") == 3
    assert scanner.count("536-22-1234,234-56-7890", "pii.ssn") == 2


def test_lone_surrogates_do_not_raise(scanner: Scanner) -> None:
    assert scanner.scan("\ud800 mail a@example.com") == {"pii.email"}


def test_set_failure_fails_closed(scanner: Scanner, monkeypatch: pytest.MonkeyPatch) -> None:
    # The binding returns [] for "DFA out of memory"; the sentinel tells it from "no match".
    broken = Scanner(resolve("pii.any") or ())
    monkeypatch.setattr(broken, "_set_match", lambda data: [])
    with pytest.raises(ScanError):
        broken.scan("nothing to see")
    with pytest.raises(ScanError):
        broken.redact("nothing", ["pii.any"])


def test_set_that_does_not_fit_memory_is_an_error() -> None:
    with pytest.raises(ScanError):
        Scanner(resolve("pii.any") or (), max_mem=4 << 10)


def test_deeply_nested_value_is_scanned_up_to_the_limit_then_refused(scanner: Scanner) -> None:
    value: object = "a@example.com"
    for _ in range(MAX_DEPTH):
        value = [value]
    assert scanner.scan(value) == {"pii.email"}
    with pytest.raises(ScanError, match="nested deeper"):
        scanner.scan([value])


def test_duplicate_names_must_agree() -> None:
    with pytest.raises(ValueError):
        Scanner([user_matcher("x", "a"), user_matcher("x", "b")])
    assert len(Scanner([user_matcher("x", "a"), user_matcher("x", "a")]).specs) == 1


def test_pathological_user_pattern_is_linear() -> None:
    s = Scanner([user_matcher("evil", r"(a+)+$")])
    assert s.scan("a" * 100_000 + "!") == frozenset()
    assert s.scan("a" * 100_000) == {"evil"}


# --- one Set pass over all strings of a value -------------------------------------------


def test_anchored_user_patterns_keep_their_meaning_per_string() -> None:
    scanner = Scanner([user_matcher("whole", r"^EMP-[0-9]{3}$"), user_matcher("start", r"\AX")])
    assert scanner.scan(["a", "EMP-123"]) == {"whole"}
    assert scanner.scan(["EMP-123 and more", "b"]) == frozenset()
    assert scanner.scan(["line\nEMP-123"]) == frozenset()  # `$`/`^` of the string, not a line
    assert scanner.scan("line\nEMP-123") == frozenset()
    assert scanner.scan(["a", "Xb"]) == {"start"}  # \A: scanned string by string
    assert scanner.scan(["aX", "b"]) == frozenset()


def test_no_match_across_two_strings() -> None:
    scanner = Scanner([user_matcher("ab", r"a[^z]*b"), *(resolve("pii.email") or ())])
    assert scanner.scan(["xa", "bx"]) == frozenset()
    assert scanner.scan(["jo.doe@exam", "ple.com"]) == frozenset()
    assert scanner.count(["a", "ab", "b", "xaxb"], "ab") == 2


def test_hits_map_back_to_their_strings_and_paths() -> None:
    scanner = Scanner(resolve("pii.any") or ())
    value = {"to": ["ops", "jo@example.com"], "n": 4111111111111111, "t": ("x", "a@b.io")}
    out, counts = scanner.redact(value, ["pii.any"])
    assert out == {"to": ["ops", "[EMAIL]"], "n": "[CARD]", "t": ("x", "[EMAIL]")}
    assert counts == {"pii.email": 2, "pii.card": 1}
    assert scanner.counts(value, ["pii.any"]) == counts
    assert scanner.count(value, "pii.email") == 2


def test_clean_value_is_returned_itself() -> None:
    scanner = Scanner(resolve("pii.any") or ())
    value = {"a": ["nothing", {"b": "here"}]}
    out, counts = scanner.redact(value, ["pii.any"])
    assert out is value and counts == {}


def test_bytes_are_scanned_and_redacted_as_bytes() -> None:
    scanner = Scanner(resolve("pii.email") or ())
    assert scanner.scan({"blob": b"mail jo@example.com"}) == {"pii.email"}
    out, _ = scanner.redact([b"mail jo@example.com"], ["pii.email"])
    assert out == [b"mail [EMAIL]"]


_SAMPLES = ("a@b.co", "4111 1111 1111 1111", "EMP-123456", "AKIAIOSFODNN7EXAMPLE", "x", "X", "")
_NAME_SETS = (
    ("pii.email",),
    ("pii.any",),
    ("pii.any", "secrets.any"),
    ("employee_id",),
    ("whole",),
    ("whole", "pii.email"),
    ("start",),
    ("start", "pii.any"),
)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.sampled_from(_SAMPLES) | st.text(max_size=12),
        lambda kids: (
            st.lists(kids, max_size=3)
            | st.dictionaries(st.sampled_from(_SAMPLES), kids, max_size=3)
        ),
        max_leaves=8,
    ),
    st.sampled_from(_NAME_SETS),
)
def test_may_match_is_false_only_when_redact_finds_nothing(
    value: object, names: tuple[str, ...]
) -> None:
    # `decide` skips the redaction pass (and serves a cached decision) when may_match is
    # False, so a False with something to redact would let a value through unmasked
    scanner = Scanner(
        [
            *(resolve("pii.any") or ()),
            *(resolve("secrets.any") or ()),
            user_matcher("employee_id", r"\bEMP-[0-9]{6}\b"),
            user_matcher("whole", r"^EMP-[0-9]{6}$"),
            user_matcher("start", r"\AX"),
        ]
    )
    _, counts = scanner.redact(value, names)
    if counts:
        assert scanner.may_match(value, names)
    assert scanner.may_match(value, names) == scanner.may_match(value, names)  # cached plan


_ALL = (*(resolve("pii.any") or ()), *(resolve("secrets.any") or ()))
_UNFILTERED = [s._replace(prefilter=None) for s in _ALL]
_MAILS = ("jo@example.com", "ü.ö@bücher.de", "a@b", "x@@y.zz", "@", "mail:a.b@c.io,", "q@r.s")
_KEYS = (
    "api_key=Zx81Qm2Pq7Lw0Rt5",
    "PASSWORD: 'hunter2hunter2x'",
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow==\n-----END RSA PRIVATE KEY-----",
    "token",
    "KEY",
)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.sampled_from(_MAILS + _KEYS) | st.text(alphabet="ab.@-_üx1 \n", max_size=16),
        lambda kids: (
            st.lists(kids, max_size=10)
            | st.dictionaries(st.sampled_from(_MAILS + _KEYS), kids, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_a_prefilter_changes_no_finding(value: object) -> None:
    # The Set holds a prefilter for pii.email and the costly secrets (`MatcherSpec.prefilter`);
    # the scanner built from the full patterns must say the same about every value, one text
    # or many (FEW_TEXTS).
    filtered = Scanner(_ALL, prefilters=True)
    full = Scanner(_UNFILTERED)
    assert any(s.prefilter for s in filtered.specs) and not any(s.prefilter for s in full.specs)
    names = ["pii.any", "secrets.any"]
    assert filtered.scan(value) == full.scan(value)
    assert filtered.counts(value, names) == full.counts(value, names)
    assert filtered.redact(value, names) == full.redact(value, names)
    assert filtered.may_match(value, names) or not full.counts(value, names)
    if isinstance(value, str):
        assert filtered.find(value) == full.find(value)


def test_a_prefilter_must_be_joinable() -> None:
    email = (resolve("pii.email") or ())[0]
    with pytest.raises(ValueError, match="joinable"):
        Scanner([email._replace(prefilter=r"\A@")], prefilters=True)


def test_prefilters_only_where_asked() -> None:
    # A long-lived host's Set holds the full patterns (prefilters halve the scan rate on
    # text full of candidates, such as Python's `@` decorators); a hook process asks.
    from charter.stdlib import spec as spec_mod

    assert not any(s.prefilter for s in Scanner(_ALL).specs)
    assert any(s.prefilter for s in Scanner(_ALL, prefilters=True).specs)
    spec_mod.use_prefilters()
    try:
        assert any(s.prefilter for s in Scanner(_ALL).specs)
        assert not any(s.prefilter for s in Scanner(_ALL, prefilters=False).specs)
    finally:
        spec_mod.use_prefilters(False)
    assert not any(s.prefilter for s in Scanner(_ALL).specs)
