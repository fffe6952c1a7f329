"""The Guard over each store (memory, SQLite, Redis): state read, reserved and recorded."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from guard_helpers import Clock, guard_counter

from charter import Decision, Guard, Policy
from charter.runtime.guard_plan import session_counter_id
from charter.runtime.state import (
    Amount,
    CounterRef,
    MemoryStore,
    Reservation,
    SessionCalls,
    StateQuery,
    Store,
    StoreError,
    Taken,
)

AGENT = {"id": "bot-1"}
DAILY_COST, DAILY_TOKENS, HOURLY_CALLS = (guard_counter(p) for p in (
    "cost_usd:1d", "tokens:1d", "calls:1h"))


def req(tool: str, args: dict[str, Any] | None = None, session: str = "s1",
        **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"tool": tool, "args": args or {}, "agent": AGENT,
                           "session": {"id": session}}
    out.update(extra)
    return out


def daily_cost(store: Store, agent: str = "bot-1") -> Decimal:
    ref = CounterRef(DAILY_COST, agent, 86400)
    return store.read(StateQuery("x", (ref,)), 1_800_000_600.0).usage[(ref.counter_id, agent)]


def test_a_call_without_state_needs_gets_the_pure_decision(guard: Guard, policy: Policy) -> None:
    request = {"stage": "tool_result", "tool": "noop", "args": {}, "result": "fine"}
    assert guard.check(request) == policy.decide(request)
    denied = guard.check({"tool": "unknown.tool"})
    assert denied.effect == "deny" and denied.reservation is None


def test_malformed_requests_are_denied_without_raising(guard: Guard) -> None:
    for bad in (b"{not json", "[]", {"stage": "nope"}, {"tool": 5}, 42):
        decision = guard.check(bad)  # type: ignore[arg-type]
        assert decision.effect == "deny"
        assert decision.reasons[0].startswith("malformed request")


def test_rate_limit_counts_allowed_calls_and_denies_past_the_limit(guard: Guard) -> None:
    for _ in range(3):
        assert guard.check(req("web.fetch", {"url": "https://a"})).allowed
    over = guard.check(req("web.fetch", {"url": "https://a"}))
    assert over.effect == "deny"
    assert "web.fetch rate limit" in over.reasons
    # The limit is per session (its default key): another session has its own count.
    assert guard.check(req("web.fetch", {"url": "https://a"}, session="s2")).allowed


def test_rate_limit_window_rolls_over(guard: Guard, clock: Clock) -> None:
    for _ in range(3):
        guard.check(req("web.fetch", {"url": "https://a"}))
    assert not guard.check(req("web.fetch", {"url": "https://a"})).allowed
    clock.now += 3600
    assert guard.check(req("web.fetch", {"url": "https://a"})).allowed


def test_windowed_budget_reserves_settles_and_releases(guard: Guard, store: Store) -> None:
    spend = req("spend", {"amount": 1}, estimate={"cost_usd": 0.75}, session="a")
    first = guard.check(spend)
    assert first.allowed and first.reservation is not None
    assert daily_cost(store) == Decimal("0.75")
    assert guard.settle(first, cost_usd=Decimal("0.25"))
    assert daily_cost(store) == Decimal("0.25")
    # Each call in its own session so that only the daily agent budget ($2) binds.
    held = [guard.check({**spend, "session": {"id": f"b{i}"}}) for i in range(3)]
    assert [d.allowed for d in held] == [True, True, False]
    assert "daily agent budget of $2 reached" in held[2].reasons
    assert guard.release(held[0])
    assert daily_cost(store) == Decimal("1.00")
    assert guard.check({**spend, "session": {"id": "c"}}).allowed
    # Settling twice, or a decision without a reservation, changes nothing.
    assert guard.settle(first, cost_usd=5)
    assert guard.settle(held[2], cost_usd=5)
    assert daily_cost(store) == Decimal("1.75")


def test_token_budget_uses_the_token_estimate(guard: Guard) -> None:
    call = req("metered", {"n": 1}, estimate={"tokens": 60})
    first = guard.check(call)
    assert first.allowed
    assert guard.check({**call, "session": {"id": "t2"}}).reasons == (
        "daily token budget reached",)
    guard.settle(first, tokens=10)
    assert guard.check({**call, "session": {"id": "t3"}}).allowed


def test_per_session_budget_is_tracked_when_the_host_does_not_send_session_cost(
        guard: Guard, store: Store) -> None:
    spend = req("spend", {"amount": 1}, estimate={"cost_usd": 0.4}, agent={"id": "x"})
    for _ in range(2):
        d = guard.check(spend)
        assert d.allowed
        guard.settle(d, cost_usd=Decimal("0.4"))
    over = guard.check(spend)
    assert over.effect == "deny" and "session budget of $1 reached" in over.reasons
    usage = store.read(StateQuery("s1", (CounterRef(session_counter_id("cost_usd"), "s1"),)),
                       1_800_000_600.0).usage
    assert usage[(session_counter_id("cost_usd"), "s1")] == Decimal("0.8")
    # A host that sends session.cost_usd owns it: the Guard uses its value.
    host = {**spend, "session": {"id": "s1", "cost_usd": 0}}
    assert guard.check(host).allowed


def test_missing_counter_key_is_a_deny_naming_the_field(guard: Guard) -> None:
    call = {"tool": "spend", "args": {"amount": 1}, "session": {"id": "s1"}}
    decision = guard.check(call)
    assert decision.effect == "deny"
    assert any("agent.id missing" in r for r in decision.reasons)
    assert decision.reservation is None


def test_labels_are_recorded_and_block_egress_for_that_session_only(guard: Guard) -> None:
    assert guard.check(req("web.fetch", {"url": "https://a"})).allowed
    seen = guard.check(req("kb.read", {"query": "q"}, stage="tool_result",
                           result={"body": "write to ann@example.com"}))
    assert seen.allowed and seen.labels == ("saw_pii",)
    assert seen.redact({"body": "ann@example.com"}) == {"body": "[EMAIL]"}
    blocked = guard.check(req("web.fetch", {"url": "https://a"}))
    assert blocked.effect == "deny" and "no egress after PII" in blocked.reasons
    # Monotonic: a clean result later does not remove the label.
    guard.check(req("kb.read", {"query": "q"}, stage="tool_result", result="clean"))
    assert not guard.check(req("web.fetch", {"url": "https://a"})).allowed
    assert guard.check(req("web.fetch", {"url": "https://a"}, session="other")).allowed


def test_previously_sees_earlier_allowed_calls_through_the_store(
        guard: Guard, clock: Clock) -> None:
    read = req("kb.read", {"query": "q"})
    assert guard.check(read).reasons == ("read only after a $5 spend",)
    assert guard.check(req("spend", {"amount": 4})).allowed
    assert not guard.check(read).allowed
    assert guard.check(req("spend", {"amount": 5, "memo": "x"})).allowed
    assert guard.check(read).allowed
    assert not guard.check(req("kb.read", {"query": "q"}, session="s2")).allowed
    clock.now += 3601
    assert not guard.check(read).allowed


def test_denied_calls_are_not_recorded_as_history(guard: Guard) -> None:
    # Over the session budget: the $5 spend is denied, so it does not unlock kb.read.
    assert not guard.check(req("spend", {"amount": 5}, estimate={"cost_usd": 9})).allowed
    assert not guard.check(req("kb.read", {"query": "q"})).allowed


def test_consecutive_tool_calls_count_the_current_call_and_reset_on_model_steps(
        guard: Guard) -> None:
    metered = req("metered", {"n": 1})
    effects = [guard.check(metered).effect for _ in range(4)]
    # The 4th call sees consecutive_tool_calls == 4 (> 3).
    assert effects == ["allow", "allow", "allow", "require_approval"]
    # A tool result neither counts nor resets; a model step resets.
    guard.check(req("metered", {"n": 1}, stage="tool_result", result=1))
    assert guard.check(metered).effect == "require_approval"
    guard.check({"stage": "model_output", "session": {"id": "s1"}, "output": "ok"})
    assert guard.check(metered).allowed
    # Host-supplied counts are used as they are.
    host = {**metered, "session": {"id": "s1", "tool_calls": 0, "consecutive_tool_calls": 9}}
    assert guard.check(host).effect == "require_approval"


class BrokenStore:
    """A store whose every method fails like an unreachable backend."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.exc
        return fail


class FailingReserve(MemoryStore):
    """Reads work, but the store goes away when asked to reserve."""

    def take(self, query: StateQuery, reservations: Sequence[Reservation], now: float) -> Taken:
        if reservations:
            raise StoreError("connection reset")
        return super().take(query, reservations, now)


class FailingLabels(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.released: list[str] = []

    def add_labels(self, session_id: str, labels: Collection[str]) -> None:
        raise StoreError("disk full")

    def release(self, token: str, now: float) -> None:
        self.released.append(token)
        super().release(token, now)


@pytest.mark.parametrize("exc", [StoreError("redis timed out"), RuntimeError("bug")])
def test_a_failing_store_means_deny_never_an_exception(policy: Policy, exc: Exception) -> None:
    guard = Guard(policy, state=BrokenStore(exc))  # type: ignore[arg-type]
    decision = guard.check(req("web.fetch", {"url": "https://a"}))
    assert decision.effect == "deny"
    expected = "state store unavailable: redis timed out" if isinstance(
        exc, StoreError) else "internal error in the guard"
    assert decision.reasons[0].startswith(expected)
    # A call that needs no state still works without the store.
    assert guard.check(req("noop", stage="tool_result", result=1)).allowed


def test_store_failing_at_reserve_or_after_is_a_deny(policy: Policy) -> None:
    guard = Guard(policy, state=FailingReserve())
    decision = guard.check(req("web.fetch", {"url": "https://a"}))
    assert decision.effect == "deny" and "connection reset" in decision.reasons[0]
    labels = FailingLabels()
    guard = Guard(policy, state=labels)
    seen = guard.check(req("noop", stage="tool_result", result="ann@example.com"))
    assert seen.effect == "deny" and "disk full" in seen.reasons[0]


def test_check_never_raises_on_odd_estimates(guard: Guard) -> None:
    for est in ({"cost_usd": "lots"}, {"cost_usd": -1}, {"tokens": 1.5}, "x"):
        decision = guard.check(req("spend", {"amount": 1}, estimate=est))
        assert decision.effect == "deny", est


def test_settle_rejects_negative_usage(guard: Guard) -> None:
    d = guard.check(req("spend", {"amount": 1}, estimate={"cost_usd": 0.1}))
    with pytest.raises(ValueError):
        guard.settle(d, cost_usd=-1)


def test_a_reservation_is_opaque_text_that_settles_after_a_json_round_trip(
        guard: Guard, store: Store) -> None:
    first = guard.check(req("spend", {"amount": 1}, estimate={"cost_usd": 0.5}))
    assert first.allowed and isinstance(first.reservation, str)
    # As a host hands it back: the string alone, through JSON.
    back = msgspec.json.decode(msgspec.json.encode(first.reservation))
    assert guard.settle(Decision("allow", True, reservation=back), cost_usd=Decimal("0.25"))
    assert daily_cost(store) == Decimal("0.25")
    # One settle per reservation, whichever copy of it comes back.
    assert guard.settle(first, cost_usd=Decimal("0.75"))
    assert daily_cost(store) == Decimal("0.25")


def test_a_reservation_made_before_the_length_prefixed_form_still_settles(
        guard: Guard, store: Store) -> None:
    first = guard.check(req("spend", {"amount": 1}, estimate={"cost_usd": 0.5}))
    assert first.allowed and first.reservation is not None
    # What the Guard made before 2026-12: one JSON array of the token, the reservations
    # and their metrics (a host may hold one across an upgrade).
    size, _, rest = first.reservation.partition(":")
    charge, metrics = msgspec.json.decode(rest[:int(size)])
    old = msgspec.json.encode([rest[int(size):], charge, metrics]).decode()
    assert guard.settle(Decision("allow", True, reservation=old), cost_usd=Decimal("0.25"))
    assert daily_cost(store) == Decimal("0.25")


@pytest.mark.parametrize("bad", ["", "garbage", '["t", [], ["calls"]]', "[1, [], []]",
                                 "5:abc", ":[[],[]]t", "x:[[],[]]t", "9:[[],[]]t",
                                 '14:[[],["calls"]]t', "99999999999:[[],[]]t", "٣:[[],[]]t"])
def test_settle_of_what_is_not_a_reservation_raises(guard: Guard, bad: str) -> None:
    with pytest.raises(ValueError, match="not a reservation of this Guard"):
        guard.settle(Decision("allow", True, reservation=bad))


def test_a_tool_named_by_a_bare_string_is_decided_for_its_stage(guard: Guard) -> None:
    # The runner of a bare-named tool call must not answer the same name at another stage,
    # nor a tool object with tags.
    assert guard.check(req("web.fetch", {"url": "https://a"})).allowed
    assert guard.check(req("web.fetch", {"url": "https://a"}, stage="tool_call")).allowed
    result = guard.check(req("web.fetch", {"url": "https://a"}, stage="tool_result",
                             result="mail me at ann@example.com"))
    assert result.allowed and result.labels == ("saw_pii",) and result.redactions
    assert result.reservation is None  # tool results are not charged
    tagged = guard.check(req({"name": "web.fetch", "tags": ["external"]}, {"url": "https://a"}))
    assert not tagged.allowed and tagged.reasons == ("no egress after PII",)
    assert not guard.check(req("web.fetch", {"url": "https://a"})).allowed
    assert guard.check(req("web.fetch", {"url": "https://a"}, stage=5)).effect == "deny"


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.takes: list[tuple[StateQuery, Sequence[Reservation]]] = []

    def take(self, query: StateQuery, reservations: Sequence[Reservation], now: float) -> Taken:
        self.takes.append((query, reservations))
        return super().take(query, reservations, now)

    def bump_session_calls(self, session_id: str, is_tool_call: bool) -> SessionCalls:
        return super().bump_session_calls(session_id, is_tool_call)

    def settle(self, token: str, actual: Mapping[tuple[str, str], Amount], now: float) -> None:
        super().settle(token, actual, now)


def _ids(take: tuple[StateQuery, Sequence[Reservation]]) -> set[str]:
    query, reservations = take
    return {r.counter_id for r in query.counters} | {r.counter_id for r in reservations}


def test_one_store_step_per_decision_with_only_the_matching_counters(policy: Policy) -> None:
    store = CountingStore()
    guard = Guard(policy, state=store)
    allowed = guard.check(req("web.fetch", {"url": "https://a"}, estimate={"cost_usd": 0.1}))
    assert allowed.allowed
    # Read and reserved in one `take`: nothing read twice, nothing left to read.
    (query, reservations), = store.takes
    assert _ids((query, reservations)) == {HOURLY_CALLS, DAILY_COST, DAILY_TOKENS,
                                           "session:cost_usd"}
    assert not query.counters and len(reservations) == 4
    store.takes.clear()
    guard.check(req("spend", {"amount": 1}))
    assert len(store.takes) == 1
    assert HOURLY_CALLS not in _ids(store.takes[0])
    store.takes.clear()
    guard.check({"stage": "tool_result", "tool": "noop", "result": 1})
    assert store.takes == []


def test_decision_returned_is_a_decision(guard: Guard) -> None:
    assert isinstance(guard.check(req("noop")), Decision)
