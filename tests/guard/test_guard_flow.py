"""The one Guard flow: a counter whose scope reads the store's answer reserves after the
decision (a second `take`), every other one in the step that reads; same counts either way,
on every store."""

from __future__ import annotations

from typing import Any

import pytest
from guard_helpers import Clock

import charter
from charter import Guard
from charter.runtime.state import StateQuery, Store

POLICY = """
policy "late"
default deny
tool "fetch" (url: str)
allow tool "fetch"
on tool_result allow tool "**"
on tool_result label session "vip" when result == "vip"
scope "vip" in session.labels {
  limit calls(tool "fetch") <= 1 per 1h because "vip fetch limit"
}
limit calls(tool "fetch") <= 3 per 1h because "fetch limit"
"""


def _fetch(session: str = "s1") -> dict[str, Any]:
    return {"tool": "fetch", "args": {"url": "https://a"}, "session": {"id": session}}


def test_a_scope_that_reads_labels_counts_only_while_it_holds(store: Store) -> None:
    policy = charter.compile(POLICY, "late.agentpolicy")
    guard = Guard(policy, state=store, clock=Clock())
    plan = guard.plan.plan_for("tool_call", "fetch", ())
    assert plan.late  # the vip scope reads labels: reserved after the decision
    takes: list[tuple[StateQuery, Any]] = []
    real = store.take

    def counting(query: StateQuery, reservations: Any, now: float) -> Any:
        takes.append((query, list(reservations)))
        return real(query, reservations, now)

    store.take = counting  # type: ignore[method-assign]
    first = guard.check(_fetch())
    assert first.allowed and guard.settle(first)
    # Read first (no reservation), then the reservation: the vip scope did not hold.
    assert [len(r) for _, r in takes] == [0, 1]
    guard.check({"stage": "tool_result", "tool": "fetch", "result": "vip",
                 "session": {"id": "s1"}})
    # Now the vip limit counts too, from zero: the first call in the scope fits, the next
    # does not (the plain limit, at 2 of 3, would still let it through).
    second = guard.check(_fetch())
    assert second.allowed and guard.settle(second)
    third = guard.check(_fetch())
    assert not third.allowed and third.reasons == ("vip fetch limit",)


@pytest.mark.parametrize("estimate", [None, {"cost_usd": "x"}])
def test_a_denied_check_leaves_nothing_reserved(store: Store, estimate: Any) -> None:
    policy = charter.compile(POLICY.replace('allow tool "fetch"', 'allow tool "fetch"\n'
                                            'deny tool "fetch" when args.url == "bad"'),
                             "late.agentpolicy")
    guard = Guard(policy, state=store, clock=Clock())
    request = {**_fetch(), "args": {"url": "bad"}}
    if estimate is not None:
        request["estimate"] = estimate
    for _ in range(5):
        assert not guard.check(request).allowed
    ok = guard.check(_fetch())
    assert ok.allowed  # nothing the denied calls took is still held


BUDGET = """
policy "budget"
default deny
tool "fetch" (url: str)
allow tool "fetch"
budget cost_usd <= 1.00 per 1h because "hourly budget"
limit calls(tool "fetch") <= 100 per 1h because "fetch limit"
"""


def test_each_call_is_charged_its_own_estimate_in_its_own_session(store: Store) -> None:
    # The charge of a session's call is built once per session and estimate and reused:
    # sessions and estimates that alternate must each still be charged what they sent.
    policy = charter.compile(BUDGET, "budget.agentpolicy")
    guard = Guard(policy, state=store, clock=Clock())
    counters = guard.plan.plan_for("tool_call", "fetch", ()).counters
    assert [u.key for u in counters] == [None, None]  # both keyed by the session id
    spent = {"s1": 0.0, "s2": 0.0}
    for i, (sid, cost) in enumerate([("s1", 0.25), ("s2", 0.5), ("s1", 0.25), ("s1", 0.5),
                                     ("s2", 0.5), ("s1", 0.25), ("s2", 0.01)]):
        decision = guard.check({**_fetch(sid), "estimate": {"cost_usd": cost}})
        fits = spent[sid] + cost <= 1.0
        assert decision.allowed is fits, (i, sid, cost, decision.reasons)
        if fits:
            spent[sid] += cost
            assert guard.settle(decision)
    # s1 spent 0.25 + 0.25 + 0.5 = 1.00: nothing more fits; one call without an estimate
    # still does (it is charged one call and no cost).
    assert not guard.check({**_fetch("s1"), "estimate": {"cost_usd": 0.01}}).allowed
    assert guard.check(_fetch("s1")).allowed


@pytest.mark.parametrize("bad", [True, "0.5", -0.5, [0.5], float("nan")])
def test_an_equal_but_bad_estimate_is_refused_after_a_good_one(store: Store, bad: Any) -> None:
    # Equal estimates share their amounts (read once); one equal to an accepted estimate but
    # of another type (True == 1), or no number at all, is still refused.
    policy = charter.compile(BUDGET, "budget.agentpolicy")
    guard = Guard(policy, state=store, clock=Clock())
    good = 1 if bad is True else 0.5
    assert guard.check({**_fetch(), "estimate": {"cost_usd": good}}).allowed is (good <= 1)
    refused = guard.check({**_fetch("s2"), "estimate": {"cost_usd": bad}})
    assert not refused.allowed
    assert refused.errors and refused.errors[0].field == "estimate.cost_usd"
