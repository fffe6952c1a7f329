"""Redaction: typed placeholders, structure preserved, counts only, deterministic overlaps."""

from __future__ import annotations

import pytest

from charter.stdlib import Scanner, resolve, user_matcher
from charter.stdlib.redaction import Hit, select


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    specs = [*(resolve("pii.any") or ()), *(resolve("secrets.any") or ())]
    return Scanner([*specs, user_matcher("employee_id", r"\bEMP-[0-9]{6}\b")])


def test_placeholders_and_counts(scanner: Scanner) -> None:
    text = "Mail jo@example.com, card 4111-1111-1111-1111, badge EMP-004211."
    out, counts = scanner.redact(text, ["pii.email", "pii.card", "employee_id"])
    assert out == "Mail [EMAIL], card [CARD], badge [EMPLOYEE_ID]."
    assert counts == {"pii.email": 1, "pii.card": 1, "employee_id": 1}


def test_only_requested_matchers_are_redacted(scanner: Scanner) -> None:
    out, counts = scanner.redact("jo@example.com 4111111111111111", ["pii.card"])
    assert out == "jo@example.com [CARD]"
    assert counts == {"pii.card": 1}


def test_structure_preserved(scanner: Scanner) -> None:
    value = {
        "rows": [{"email": "a@example.com", "n": 3}, ("b@example.com", None)],
        "tags": {"x"},
        "card": 4111111111111111,
        "ok": True,
    }
    out, counts = scanner.redact(value, ["pii.any"])
    assert out == {
        "rows": [{"email": "[EMAIL]", "n": 3}, ("[EMAIL]", None)],
        "tags": {"x"},
        "card": "[CARD]",
        "ok": True,
    }
    assert counts == {"pii.email": 2, "pii.card": 1}
    assert value["rows"][0]["email"] == "a@example.com"  # type: ignore[index]


def test_counts_never_contain_matched_text(scanner: Scanner) -> None:
    _, counts = scanner.redact("a@example.com", ["pii.email"])
    assert "a@example.com" not in repr(counts)


def test_redacted_keys_do_not_collide(scanner: Scanner) -> None:
    out, counts = scanner.redact({"a@example.com": 1, "b@example.com": 2}, ["pii.email"])
    assert out == {"[EMAIL]": 1, "[EMAIL]#2": 2}
    assert counts == {"pii.email": 2}


def test_non_ascii_text_is_redacted_at_the_right_place(scanner: Scanner) -> None:
    out, _ = scanner.redact("Müller ☎ +49 30 1234567 • ok", ["pii.phone"])
    assert out == "Müller ☎ [PHONE] • ok"


def test_overlap_rule_earliest_then_longest_then_listed_first() -> None:
    hits = [Hit(5, 10, 0, 0), Hit(0, 4, 1, 1), Hit(5, 12, 1, 1), Hit(3, 6, 0, 2), Hit(20, 25, 1, 3),
            Hit(20, 25, 0, 4), Hit(30, 30, 0, 0)]  # fmt: skip
    assert select(hits) == [Hit(0, 4, 1, 1), Hit(5, 12, 1, 1), Hit(20, 25, 0, 4)]


def test_same_span_from_two_matchers_uses_listed_order(scanner: Scanner) -> None:
    text = "api_key = sk_live_" + "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ"
    out, counts = scanner.redact(text, ["secrets.any"])
    assert out == "api_key = [STRIPE_KEY]"
    assert counts == {"secrets.stripe_key": 1}
    out, counts = scanner.redact(text, ["secrets.generic", "secrets.stripe_key"])
    assert out == "api_key = [SECRET]"
