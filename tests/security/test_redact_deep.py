"""Issue 18 / D13: `redact` over a value nested more than 128 levels deep made the whole
decision an internal error.

The scanner's walks are iterative now (no recursion), so a deep value is scanned and redacted
like any other up to `MAX_DEPTH` levels; past that (or for a cyclic value) the decision is a
deny whose reason says why, never an internal error and never the value let through unmasked.
"""

from __future__ import annotations

from typing import Any

import charter
from charter.stdlib.scanner import MAX_DEPTH

POLICY = """
policy "deep" version "1"
use pii
default allow
@id("mask-emails")
on tool_result redact pii.email in result
"""


def _nested(depth: int, leaf: object) -> Any:
    value: Any = leaf
    for i in range(depth):
        value = {"level": i, "next": value} if i % 2 else [value]
    return value


def _bottom(value: Any) -> Any:
    while isinstance(value, dict | list):
        value = value["next"] if isinstance(value, dict) else value[0]
    return value


def _decide(result: object) -> Any:
    policy = charter.compile(POLICY)
    return policy.decide({"stage": "tool_result", "tool": "crm.read", "result": result})


def test_redact_works_deeper_than_128_levels() -> None:
    result = _nested(300, "write to jo.doe@example.com today")
    decision = _decide(result)
    assert decision.effect == "allow", decision.reasons
    assert not decision.errors
    assert [r.counts for r in decision.redactions] == [{"pii.email": 1}]
    assert _bottom(decision.redact(result)) == "write to [EMAIL] today"


def test_redact_past_the_depth_limit_is_a_clear_deny() -> None:
    decision = _decide(_nested(MAX_DEPTH + 10, "jo.doe@example.com"))
    assert decision.effect == "deny"
    assert any("nested deeper than" in r for r in decision.reasons), decision.reasons
    assert not any("internal error" in r for r in decision.reasons), decision.reasons


def test_a_cyclic_result_is_a_clear_deny() -> None:
    result: list[object] = ["jo.doe@example.com"]
    result.append(result)
    decision = _decide(result)
    assert decision.effect == "deny"
    assert any("cyclic" in r for r in decision.reasons), decision.reasons
