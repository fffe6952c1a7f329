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
