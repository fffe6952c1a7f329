"""A clean value under `redact` reuses a cached decision; a dirty one never gets it."""

from __future__ import annotations

import charter

POLICY = """
policy "mask" version "1"
use pii
default allow
@id("mask")
on tool_result redact pii.email in result
"""


def _result(text: str) -> dict[str, object]:
    return {"stage": "tool_result", "tool": "crm.read", "result": {"note": text}}


def test_dirty_after_clean_is_still_redacted() -> None:
    policy = charter.compile(POLICY)
    for _ in range(3):  # the second clean call comes from the cache
        clean = policy.decide(_result("nothing here"))
        assert [r.counts for r in clean.redactions] == [{}]
        dirty = policy.decide(_result("write to jo@example.com"))
        assert [r.counts for r in dirty.redactions] == [{"pii.email": 1}]
        assert dirty.redact(_result("write to jo@example.com")["result"]) == {
            "note": "write to [EMAIL]"
        }
    assert policy.decide(_result("nothing here")) is policy.decide(_result("still nothing"))


def test_clean_decision_matches_the_interpreter() -> None:
    policy = charter.compile(POLICY)
    request = _result("nothing here")
    policy.decide(request)
    fast, slow = policy.decide(request), policy.interpret(request)
    assert (fast.effect, fast.rules, fast.redactions) == (slow.effect, slow.rules, slow.redactions)
