"""A Guard on an edited policy keeps counting where the old one stopped (issue 12, L-C3):
counter ids do not move when unrelated rules are inserted, and a changed limit applies to the
count so far. Over every store (memory, SQLite, Redis when available)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from guard_helpers import Clock

import charter
from charter import Guard
from charter.runtime.state import Store

HEAD = """policy "carry"
default deny
tool "web.fetch" (url: str)
tool "spend" (amount: decimal)
allow tool "web.fetch", "spend"
"""
LIMIT = 'limit calls(tool "web.fetch") <= {n} per 1h per agent.id because "hourly fetch limit"\n'
DAILY = 'budget cost_usd <= {n} per 1d per agent.id because "daily budget"\n'
SESSION = 'budget cost_usd <= {n} per session because "session budget"\n'
UNRELATED = 'deny tool "web.fetch" when args.url like "ftp:*" because "no ftp"\n'


def fetch(session: str = "s1") -> dict[str, Any]:
    return {"tool": "web.fetch", "args": {"url": "https://a"}, "agent": {"id": "bot"},
            "session": {"id": session}}


def spend(cost: str, session: str = "s1") -> dict[str, Any]:
    return {"tool": "spend", "args": {"amount": 1}, "agent": {"id": "bot"},
            "session": {"id": session}, "estimate": {"cost_usd": Decimal(cost)}}


def _guard(text: str, store: Store, clock: Clock) -> Guard:
    return Guard(charter.compile(text, "carry.agentpolicy"), state=store, clock=clock)


def _run(guard: Guard, request: dict[str, Any]) -> bool:
    decision = guard.check(request)
    if decision.reservation is not None:
        assert guard.settle(decision)
    return decision.allowed


def test_a_lowered_limit_applies_to_the_count_so_far(store: Store) -> None:
    clock = Clock()
    old = _guard(HEAD + LIMIT.format(n=5), store, clock)
    assert [_run(old, fetch()) for _ in range(3)] == [True, True, True]
    # A new version: an unrelated rule above the limit, and the limit lowered to 3.
    new = _guard(HEAD + UNRELATED + LIMIT.format(n=3), store, clock)
    old_ids = {c.id for c in old.policy.counters}
    assert {c.id for c in new.policy.counters} == old_ids
    denied = new.check(fetch())
    assert not denied.allowed and denied.reasons == ("hourly fetch limit",)
    # Raised to 4: one more call, then the limit again.
    raised = _guard(HEAD + LIMIT.format(n=4) + UNRELATED, store, clock)
    assert [_run(raised, fetch()) for _ in range(2)] == [True, False]


def test_a_windowed_budget_carries_over_a_reordered_policy(store: Store) -> None:
    clock = Clock()
    old = _guard(HEAD + DAILY.format(n="2.00") + LIMIT.format(n=50), store, clock)
    assert _run(old, spend("1.50"))
    new = _guard(HEAD + LIMIT.format(n=50) + UNRELATED + DAILY.format(n="1.75"), store, clock)
    assert not new.check(spend("0.50", session="s2")).allowed  # 1.50 + 0.50 > 1.75
    assert _run(new, spend("0.25", session="s2"))


def test_a_session_budget_is_one_counter_whatever_the_edit(store: Store) -> None:
    clock = Clock()
    old = _guard(HEAD + SESSION.format(n="1.00"), store, clock)
    assert _run(old, spend("0.60"))
    new = _guard(HEAD + UNRELATED + DAILY.format(n="9.00") + SESSION.format(n="0.80"), store,
                 clock)
    assert [c.id for c in new.policy.counters if c.session_total] == ["session:cost_usd"] * 3
    over = new.check(spend("0.30"))
    assert not over.allowed and over.reasons == ("session budget",)
    assert _run(new, spend("0.20"))
    assert not new.check(spend("0.01")).allowed
    assert _run(new, spend("0.30", session="other"))  # another session starts at zero


def test_rules_with_the_same_content_share_one_counter(store: Store) -> None:
    """Identical content, one id (docs/state.md): each allowed call is charged once, and the
    tightest limit applies whichever rule comes first."""
    clock = Clock()
    text = HEAD + LIMIT.format(n=5).replace("hourly fetch limit", "loose") + UNRELATED + (
        LIMIT.format(n=2))
    guard = _guard(text, store, clock)
    assert len({c.id for c in guard.policy.counters}) == 1
    assert [_run(guard, fetch()) for _ in range(4)] == [True, True, False, False]
    assert guard.check(fetch()).reasons == ("hourly fetch limit",)
