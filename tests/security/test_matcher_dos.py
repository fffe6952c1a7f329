"""Issue 18 / D8: candidate-dense input made the matchers slow and memory-hungry.

50 MB of e-mail addresses under `count`/`redact` took more than 90 s at 1.9 GB RSS, and
phone-shaped digit runs went one by one through a Python validator at ~1 s/MB. The work per
value is bounded now: a value with more text than `MAX_BYTES`, or more regex candidates than
`MAX_CANDIDATES`, is refused with a reason (a deny), and phone/IP candidates are narrowed by
RE2 so dense digit runs never reach Python. No timing here (speed is measured in
benchmarks/pii.py); these tests pin the bounds and the answers.
"""

from __future__ import annotations

from typing import Any

import pytest

import charter
from charter.stdlib import ScanError, Scanner, resolve
from charter.stdlib.scanner import MAX_BYTES, MAX_CANDIDATES

POLICY = """
policy "dense" version "1"
use pii
default allow
@id("no-email")
deny tool "send" when args.body contains pii.email because "no e-mail addresses"
@id("few-emails")
deny tool "bulk" when count(pii.email in args.body) > 1000 because "too many addresses"
@id("mask")
on tool_result redact pii.email, pii.phone in result
"""


@pytest.fixture(scope="module")
def policy() -> Any:
    return charter.compile(POLICY)


def _emails(size: int) -> str:
    unit = "a.b@example.com "
    return unit * (size // len(unit) + 1)


def test_text_past_the_size_limit_is_denied_with_the_reason(policy: Any) -> None:
    body = _emails(MAX_BYTES + 1024)
    for request in (
        {"tool": "send", "args": {"body": body}},
        {"tool": "bulk", "args": {"body": body}},
        {"stage": "tool_result", "tool": "read", "result": {"text": body}},
    ):
        decision = policy.decide(request)
        assert decision.effect == "deny", request.get("tool")
        assert any("too large to scan" in r for r in decision.reasons), decision.reasons


def test_size_limit_counts_every_string_of_a_value() -> None:
    scanner = Scanner(resolve("pii.email") or (), max_bytes=1000)
    assert scanner.scan(["x" * 400, "y" * 400]) == frozenset()
    with pytest.raises(ScanError, match="too large"):
        scanner.scan(["x" * 400, "y" * 400, "z" * 400])


def test_candidate_cap_refuses_rather_than_half_counts() -> None:
    scanner = Scanner(resolve("pii.email") or (), max_candidates=100)
    assert scanner.count(_emails(16 * 99)[: 16 * 99], "pii.email") == 99
    with pytest.raises(ScanError, match="more than 100 candidate"):
        scanner.count(_emails(16 * 200), "pii.email")
    with pytest.raises(ScanError, match="more than 100 candidate"):
        scanner.redact([_emails(16 * 60), _emails(16 * 60)], ["pii.email"])


def test_dense_emails_under_count_past_the_cap_are_denied(policy: Any) -> None:
    body = _emails(16 * (MAX_CANDIDATES + 10))
    assert len(body) < MAX_BYTES
    decision = policy.decide({"tool": "bulk", "args": {"body": body}})
    assert decision.effect == "deny"
    assert any("candidate matches" in r for r in decision.reasons), decision.reasons


def test_contains_stops_at_the_first_hit_in_dense_input(policy: Any) -> None:
    # Far more candidates than the cap, but `contains` needs only the first one.
    body = _emails(16 * (MAX_CANDIDATES * 3))[: MAX_BYTES - 1]
    decision = policy.decide({"tool": "send", "args": {"body": body}})
    assert decision.effect == "deny"
    assert decision.rules == ("no-email",)


@pytest.mark.parametrize(
    "unit",
    [
        "5855128937 ",  # request-id-like runs: no phone word, no candidate at all
        "12:30:45 ",  # times: not IPv6 shapes
        "2024-01-05 ",  # dates
        "1234567890123 ",  # long ids
        "00:1a:2b:3c:4d:5e ",  # MACs
    ],
)
def test_dense_lookalikes_give_regex_nothing_to_validate(unit: str) -> None:
    # With a budget of one candidate, any candidate handed to Python would raise.
    scanner = Scanner([*(resolve("pii.phone") or ()), *(resolve("pii.ip") or ())], max_candidates=0)
    text = unit * 20_000
    assert scanner.scan(text) == frozenset()
    assert scanner.redact({"log": text, "lines": [unit] * 100}, ["pii.any"]) == (
        {"log": text, "lines": [unit] * 100},
        {},
    )
