"""Issue 18 / D12: a grant lets through exactly the action a human approved, nothing wider.

An agent that holds one grant tries every way to stretch it: a bigger estimate, another agent,
other tool tags, another session, edited args, a replay, after expiry, re-labelled, tampered.
Two different actions must never share a digest either (the canon is exact and typed).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import charter
from charter import Decision, Guard, Policy
from charter.runtime.approvals import (
    BAD_SIGNATURE,
    MALFORMED,
    Grant,
    action_digest,
    canonical_json,
    mint_grant,
    verify_grant,
)
from charter.runtime.state import MemoryStore, SQLiteStore, Store

POLICY = """
policy "grant-binding" version "1"
default deny

tool "pay" (amount: decimal, memo?: str) tags money
tool "files.delete" (path: str)

allow tool "pay", "files.delete", "tagged.*"
budget cost_usd <= 1.00 per 1d per agent.id then require approval from "ops"
  because "daily agent budget of $1 reached"
require approval from "finance" tool "pay" when args.amount > 100
  because "pays over 100 need finance"
deny tool tagged destructive unless approved by "ops" because "destructive needs ops"
"""
NOW = 1_800_000_600.0
SECRET = b"grant-binding-secret"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def policy() -> Policy:
    return charter.compile(POLICY, "binding.agentpolicy")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    made: Store = MemoryStore() if request.param == "memory" else SQLiteStore(
        tmp_path / "state.db")
    yield made
    made.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(policy: Policy, store: Store, clock: Clock) -> Guard:
    return Guard(policy, state=store, secret=SECRET, clock=clock)


def pay(cost: object = "2.00", agent: str = "bot-1", session: str = "s1",
        amount: object = 50, tags: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    tool: Any = "pay" if tags is None else {"name": "pay", "tags": tags}
    return {"tool": tool, "args": {"amount": amount}, "agent": {"id": agent, "tenant": "t1"},
            "session": {"id": session}, "estimate": {"cost_usd": Decimal(str(cost))}, **extra}


def granted(guard: Guard, request: dict[str, Any], group: str = "ops") -> Grant:
    first = guard.check(request)
    assert first.effect == "require_approval", first.reasons
    return guard.approve(first, by="alice", group=group)


def wrong_action_reason(decision: Decision) -> bool:
    return any("(transplanted)" in r for r in decision.reasons)


def wrong_action(decision: Decision) -> bool:
    return not decision.allowed and wrong_action_reason(decision)


# ── the reported attack ─────────────────────────────────────────────────────────────────


def test_grant_for_an_estimate_of_2_does_not_let_10000_through(guard: Guard) -> None:
    grant = granted(guard, pay("2.00"))
    assert wrong_action(guard.check({**pay("10000"), "approvals": [grant]}))
    # The grant was not used up by the attempt: it still opens the approved action once.
    assert guard.check({**pay("2.00"), "approvals": [grant]}).allowed


@pytest.mark.parametrize("cost", ["2.01", "2.000000000000000000000000000001", "1.99", "1.01"])
def test_grant_binds_the_exact_estimate(guard: Guard, cost: str) -> None:
    grant = granted(guard, pay("2.00"))
    assert wrong_action(guard.check({**pay(cost), "approvals": [grant]}))


def test_grant_binds_every_estimate_field(guard: Guard) -> None:
    grant = granted(guard, pay("2.00"))
    more = pay("2.00")
    more["estimate"]["tokens"] = 10**9
    assert wrong_action(guard.check({**more, "approvals": [grant]}))
    # Within budget without an estimate, the call passes on its own; the grant is not its.
    dropped = pay("2.00")
    del dropped["estimate"]
    assert wrong_action_reason(guard.check({**dropped, "approvals": [grant]}))


def test_equal_estimates_written_differently_are_the_same_action(guard: Guard) -> None:
    grant = granted(guard, pay("2.00"))
    assert guard.check({**pay("2"), "approvals": [grant]}).allowed


# ── who, where, which tool ─────────────────────────────────────────────────────────────


def test_grant_binds_the_agent(guard: Guard) -> None:
    grant = granted(guard, pay(agent="bot-1"))
    assert wrong_action(guard.check({**pay(agent="bot-2"), "approvals": [grant]}))


def test_grant_binds_the_rest_of_the_agent_and_the_user(guard: Guard) -> None:
    grant = granted(guard, pay())
    other_tenant = pay()
    other_tenant["agent"] = {"id": "bot-1", "tenant": "t2"}
    assert wrong_action(guard.check({**other_tenant, "approvals": [grant]}))
    as_user = {**pay(), "user": {"id": "mallory"}}
    assert wrong_action(guard.check({**as_user, "approvals": [grant]}))


def test_grant_binds_the_session(guard: Guard) -> None:
    grant = granted(guard, pay(session="s1"))
    assert wrong_action(guard.check({**pay(session="s2"), "approvals": [grant]}))
    no_session = pay()
    del no_session["session"]
    assert not guard.check({**no_session, "approvals": [grant]}).allowed


def test_grant_binds_the_tool_tags(guard: Guard) -> None:
    # An "ops" grant for an untagged call must not open the same call tagged destructive.
    grant = granted(guard, pay())
    tagged = pay(tags=["destructive"])
    assert wrong_action(guard.check({**tagged, "approvals": [grant]}))


def test_tag_order_and_the_tool_form_do_not_change_the_action() -> None:
    base = {"args": {}, "session": {"id": "s"}}
    plain = action_digest({**base, "tool": "x"})
    assert action_digest({**base, "tool": {"name": "x"}}) == plain
    assert action_digest({**base, "tool": {"name": "x", "tags": []}}) == plain
    assert action_digest({**base, "tool": {"name": "x", "tags": ["a", "b"]}}) == action_digest(
        {**base, "tool": {"name": "x", "tags": ["b", "a", "a"]}})
    assert action_digest({**base, "tool": {"name": "x", "tags": ["a"]}}) != plain


def test_grant_binds_args_and_stage(guard: Guard) -> None:
    grant = granted(guard, pay())
    assert wrong_action(guard.check({**pay(amount=51), "approvals": [grant]}))
    memo = pay()
    memo["args"] = {"amount": 50, "memo": "x"}
    assert wrong_action(guard.check({**memo, "approvals": [grant]}))
    result = {**pay(), "stage": "tool_result", "result": 1, "approvals": [grant]}
    assert any("(transplanted)" in r for r in guard.check(result).reasons)


def test_grant_binds_the_stage_payload() -> None:
    def result(value: object) -> dict[str, Any]:
        return {"stage": "tool_result", "tool": "x", "session": {"id": "s"}, "result": value}

    assert action_digest(result("ok")) != action_digest(result("rm -rf /"))
    assert action_digest(result(None)) != action_digest(
        {k: v for k, v in result(None).items() if k != "result"})


def test_volatile_parts_of_a_request_are_not_bound() -> None:
    # The grant itself, the trace id, the clock and the session's running totals change
    # between the check and the retry without changing what was approved.
    base = pay()
    moved = {**base, "approvals": ["x"], "trace_id": "t-2", "now": "2026-01-01T00:00:00Z",
             "session": {"id": "s1", "tool_calls": 9, "consecutive_tool_calls": 9,
                         "cost_usd": 5, "tokens": 7, "labels": ["a"]}}
    assert action_digest(moved) == action_digest(base)


# ── replay, expiry, group, signature ───────────────────────────────────────────────────


def test_replay_expiry_group_and_tampering(guard: Guard, clock: Clock) -> None:
    grant = granted(guard, pay())
    assert guard.check({**pay(), "approvals": [grant]}).allowed
    again = guard.check({**pay(), "approvals": [grant]})
    assert not again.allowed and any("(replayed)" in r for r in again.reasons)

    late = granted(guard, pay(session="s3"))
    clock.now += 301
    expired = guard.check({**pay(session="s3"), "approvals": [late]})
    assert any("grant has expired" in r for r in expired.reasons)

    # Over 100 and over budget: finance and ops must both approve; finance alone is not ops.
    big = pay(session="s4", amount=500)
    finance = granted(guard, big, group="finance")
    assert guard.check({**big, "approvals": [finance]}).effect == "require_approval"
    widened = {**finance.to_dict(), "group": "ops"}
    tampered = guard.check({**big, "approvals": [widened]})
    assert any("(forged or altered)" in r for r in tampered.reasons)


@pytest.mark.parametrize("text", ["é" * 64, "\ud800"])
@pytest.mark.parametrize("field", ["signature", "digest", "approver", "nonce"])
def test_non_ascii_grant_fields_are_rejected_not_raised(field: str, text: str) -> None:
    grant = mint_grant(SECRET, "0" * 64, "alice", "ops", 300, NOW)
    bad = {**grant.to_dict(), field: text}
    check = verify_grant(SECRET, bad, "0" * 64, NOW)
    assert not check.ok and check.code in (BAD_SIGNATURE, MALFORMED)


# ── the canon: different actions never share a digest ──────────────────────────────────


@pytest.mark.parametrize(("a", "b"), [
    # past 28 significant digits (the decimal context's precision)
    (Decimal("12345678901234567890123456789012345678.1"),
     Decimal("12345678901234567890123456789012345678.4")),
    (Decimal("0.10000000000000000000000000001"), Decimal("0.1")),
    ([1, 2], {1, 2}),
    ([1, 2], (1, 2)),
    ({1, 2}, frozenset({1, 2, 3})),
    (True, 1),
    (False, 0),
    (None, "null"),
    ("1", 1),
    ([], {}),
    (Decimal("1E+40"), Decimal("1E+41")),
    (10**40, 10**40 + 1),
])
def test_different_values_encode_differently(a: object, b: object) -> None:
    assert canonical_json(a) != canonical_json(b)


@pytest.mark.parametrize(("a", "b"), [
    (1, Decimal("1.00")),
    (Decimal("1.0"), Decimal("1")),
    (100, Decimal("1E+2")),
    (0.1, Decimal("0.1")),
    (Decimal("-0"), 0),
    (10**40, Decimal("1E+40")),
    (Decimal("12345678901234567890123456789012345678.10"),
     Decimal("12345678901234567890123456789012345678.1")),
    ({2, 1}, {1, 2}),
])
def test_equal_numbers_and_sets_encode_alike(a: object, b: object) -> None:
    assert canonical_json(a) == canonical_json(b)


def test_int_keys_are_rejected_not_confused_with_string_keys() -> None:
    with pytest.raises(ValueError, match="keys must be strings"):
        canonical_json({1: "v"})
    with pytest.raises(ValueError, match="keys must be strings"):
        action_digest({"tool": "x", "args": {1: "v"}})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"),
                                 Decimal("sNaN")])
def test_non_finite_numbers_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": [bad]})


def test_huge_exponents_stay_short() -> None:
    text = canonical_json(Decimal("1E+999999999"))
    assert len(text) < 32
    assert text != canonical_json(Decimal("1E+999999998"))


def test_cycles_and_deep_nesting_are_rejected() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError):
        canonical_json(loop)


def test_uncanonical_args_make_the_action_unapprovable(guard: Guard) -> None:
    request = {"tool": {"name": "tagged.x", "tags": ["destructive"]}, "args": {1: "v"},
               "agent": {"id": "bot-1"}, "session": {"id": "s1"}}
    first = guard.check(request)
    assert first.effect == "deny" and first.action is None
    other = granted(guard, pay())
    retry = guard.check({**request, "approvals": [other]})
    assert not retry.allowed
    assert any("cannot be canonicalised" in r for r in retry.reasons), retry.reasons


_NUMBERS = st.one_of(
    st.integers(min_value=-10**60, max_value=10**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.builds(lambda c, e: Decimal(f"{c}E{e}"), st.integers(-10**40, 10**40),
              st.integers(-200, 200)),
)


@settings(max_examples=400, deadline=None)
@given(_NUMBERS, _NUMBERS)
def test_numbers_encode_alike_exactly_when_equal(a: int | float | Decimal,
                                                 b: int | float | Decimal) -> None:
    # The exact value of each: a float counts as the decimal it prints as.
    def exact(x: int | float | Decimal) -> Decimal:
        return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)

    # Decimal equality is exact (no context): 1 == 1.00, and 28+ digit values stay apart.
    assert (canonical_json(a) == canonical_json(b)) == (exact(a) == exact(b))
    assert Decimal(canonical_json(a)) == exact(a)
