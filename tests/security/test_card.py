"""Issue 18 / D2: a card number followed by its expiry passed `contains pii.card`.

`"4111 1111 1111 1111 12 29"` and `"4111111111111111 1229"` were neither denied by
`deny ... when args.note contains pii.card` nor masked in the decision log: the card pattern
refused any number followed by another separated number (to skip the middle of a spaced
IBAN), so a card with its expiry after it was not a candidate at all. Now a card ends where
its printed grouping ends; only another group of four or more digits (a longer number) or a
separated number before it (an IBAN's middle) disqualifies it.
"""

from __future__ import annotations

import pytest

import charter
from charter.runtime.audit import mask_value
from charter.stdlib import Scanner, resolve

POLICY = """
policy "cards" version "1"
use pii
default allow
@id("no-cards")
deny tool "note.save" when args.note contains pii.card because "no card numbers in notes"
"""

WITH_EXPIRY = [
    "4111 1111 1111 1111 12 29",
    "4111111111111111 1229",
    "4111-1111-1111-1111 12/29",
    "card 5555 5555 5555 4444 exp 12 29, cvc 123",
    "4111111111111111 12 29",
]


@pytest.mark.parametrize("note", WITH_EXPIRY)
def test_card_with_expiry_is_denied(note: str) -> None:
    policy = charter.compile(POLICY)
    decision = policy.decide({"tool": "note.save", "args": {"note": note}})
    assert decision.effect == "deny", note
    assert "no-cards" in decision.rules


@pytest.mark.parametrize("note", WITH_EXPIRY)
def test_card_with_expiry_is_masked_in_the_log(note: str) -> None:
    masked = mask_value({"note": note})
    assert isinstance(masked, dict)
    assert "[CARD]" in masked["note"]
    digits = "".join(c for c in masked["note"] if c.isdigit())
    assert "41111111" not in digits and "55555555" not in digits


@pytest.mark.parametrize(
    "text",
    [
        "FR76 3000 6000 0112 3456 7890 189",  # a spaced IBAN: its middle is not a card
        "4111 1111 1111 1111 1234",  # five groups of four: a 20-digit number, not a card
        "account 1234 4111 1111 1111 1111",  # preceded by another separated number
    ],
)
def test_longer_numbers_are_still_not_cards(text: str) -> None:
    scanner = Scanner(resolve("pii.card") or ())
    assert scanner.scan(text) == frozenset(), text
