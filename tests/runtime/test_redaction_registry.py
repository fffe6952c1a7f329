"""`Decision.redact` finds its policy's matchers while any policy of that digest lives."""

from __future__ import annotations

import gc

import charter

SOURCE = """policy "r" version "1"
use pii
default allow
on tool_result redact pii.email in result
"""
REQUEST = {"stage": "tool_result", "tool": "kb.read", "result": "mail a@b.co"}


def test_a_second_compile_of_the_same_policy_does_not_orphan_the_first() -> None:
    first = charter.compile(SOURCE)
    second = charter.compile(SOURCE)  # a hot reload compiles the same text again
    assert first.digest == second.digest
    del second
    gc.collect()
    decision = first.decide(REQUEST)
    assert decision.redact(REQUEST["result"]) == "mail [EMAIL]"


def test_the_second_still_redacts_when_the_first_is_gone() -> None:
    first = charter.compile(SOURCE)
    second = charter.compile(SOURCE)
    del first
    gc.collect()
    decision = second.decide(REQUEST)
    assert decision.redact(REQUEST["result"], "result") == "mail [EMAIL]"
