"""The policy and the settable clock the Guard tests share."""

from __future__ import annotations

import functools
from typing import Any

POLICY = """
policy "guard-tests" version "1"
use pii
default deny

tool "spend" (amount: decimal, memo?: str) tags money
tool "web.fetch" (url: str) tags external
tool "kb.read" (query: str)
tool "files.delete" (path: str) tags destructive
tool "metered" (n: int)

allow tool "spend", "web.fetch", "kb.read", "files.delete", "metered", "noop"
on tool_result allow tool "**"

budget cost_usd <= 1.00 per session because "session budget of $1 reached"
budget cost_usd <= 2.00 per 1d per agent.id because "daily agent budget of $2 reached"
budget tokens <= 100 per 1d per agent.id because "daily token budget reached"
limit calls(tool "web.fetch") <= 3 per 1h because "web.fetch rate limit"
require approval from "finance" tool "spend" when args.amount > 100
  because "spends over 100 need finance"
deny tool tagged destructive unless approved by "ops" because "deletes need ops"
deny tool tagged external when "saw_pii" in session.labels because "no egress after PII"
on tool_result label session "saw_pii" when result contains pii.email
on tool_result redact pii.email in result
deny tool "kb.read" unless previously call "spend" with {amount: 5} within 1h
  because "read only after a $5 spend"
require approval from "operator" tool "metered" when session.consecutive_tool_calls > 3
  because "too many tool calls in a row"
"""
NOW = 1_800_000_600.0  # inside (not at the edge of) for every window the tests use


class Clock:
    """A settable clock for the Guard."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def counter_id(policy: object, prefix: str) -> str:
    """The id of the one counter of `policy` whose id starts with `prefix` (`metric:window`):
    ids are derived from the counter's content (`charter.compiler.counter_ids`), so tests look
    them up rather than spell them."""
    ids = {c.id for c in policy.counters if c.id.startswith(f"{prefix}:")}  # type: ignore[attr-defined]
    assert len(ids) == 1, (prefix, ids)
    return ids.pop()


@functools.cache
def guard_counter(prefix: str) -> str:
    """`counter_id` of the shared POLICY (compiled once, and kept: a policy's matchers are
    registered by digest for `Decision.redact`)."""
    import charter

    return counter_id(_compiled(charter.compile), prefix)


@functools.cache
def _compiled(compile: Any) -> object:
    return compile(POLICY, "guard.agentpolicy")
