"""Racing agents spend one budget through `Guard.check` / `settle` / `release`.

SQLite and Redis: 8 processes x 4 threads, each process with its own Guard over the shared
store. Memory: the store lives in one process, so the 32 workers are threads sharing one
Guard. In every case the budget and the call limit are never exceeded, and the store's
usage equals exactly what the workers settled (no reservation lost or counted twice).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from race_harness import Spender, in_processes, in_threads, open_store

import charter
from charter import Guard, Policy
from charter.runtime.state import CounterRef, MemoryStore, SQLiteStore, StateQuery, Store

PROCESSES = 8
THREADS = 4
TRIES = 10
NOW = 1_800_000_600.0
POLICY = """
policy "race"
default deny
tool "spend" (n: int)
allow tool "spend"
budget cost_usd <= 10.00 per 1d per agent.id because "team budget reached"
limit calls(tool "spend") <= 40 per 1d per agent.id because "team call limit reached"
"""
_SPECS = {c.metric: c.id for c in charter.compile(POLICY, "race.agentpolicy").counters}
COST, CALLS = _SPECS["cost_usd"], _SPECS["calls"]
ESTIMATE = Decimal("0.5")
# The same policy after an edit: a rule inserted above the budget, the budget and the limit
# swapped. Counter ids come from content (docs/state.md), so the counts carry over.
EDITED = """
policy "race"
default deny
tool "spend" (n: int)
allow tool "spend"
deny tool "spend" when args.n > 99 because "never sent"
limit calls(tool "spend") <= 40 per 1d per agent.id because "team call limit reached"
budget cost_usd <= 10.00 per 1d per agent.id because "team budget reached"
"""


@pytest.fixture(scope="module")
def race_policy() -> Policy:
    policy = charter.compile(POLICY, "race.agentpolicy")
    assert {c.id for c in policy.counters} == {COST, CALLS}
    return policy


def _spend(guard: Guard, worker: int, start: threading.Barrier, edited: Guard | None = None
           ) -> tuple[int, Decimal]:
    """TRIES attempts; of the granted ones every third is released (did not run), the others
    settle at a cost at or below the estimate. With `edited`, the second half of the attempts
    go through it (a Guard on the edited policy: a hot swap in the middle of the race)."""
    start.wait(timeout=30)
    ran, settled = 0, Decimal(0)
    for attempt in range(TRIES):
        if edited is not None and attempt == TRIES // 2:
            guard = edited
        decision = guard.check({
            "tool": "spend", "args": {"n": attempt}, "agent": {"id": "team"},
            "session": {"id": f"w{worker}"}, "estimate": {"cost_usd": ESTIMATE}})
        if not decision.allowed:
            assert decision.effect == "deny", decision
            continue
        if (worker + attempt) % 3 == 0:
            assert guard.release(decision)
            continue
        actual = ESTIMATE if attempt % 2 else Decimal("0.25")
        assert guard.settle(decision, cost_usd=actual)
        ran += 1
        settled += actual
    return ran, settled


def _spender(policy: Policy, edited: Policy | None = None) -> Callable[[Store], Spender]:
    """For each process: its own Guard over its own connection to the shared store (and one
    on the `edited` policy, which its workers switch to half way)."""
    def make(store: Store) -> Spender:
        then = None if edited is None else Guard(edited, state=store, clock=lambda: NOW)
        return partial(_spend, Guard(policy, state=store, clock=lambda: NOW), edited=then)

    return make


def _check(store: Store, ran: int, settled: Decimal) -> None:
    refs = (CounterRef(COST, "team", 86400), CounterRef(CALLS, "team", 86400))
    usage = store.read(StateQuery("x", refs), NOW).usage
    # Never more than the limits...
    assert 0 < ran <= 40
    assert settled <= Decimal(10)
    # ...and every reservation was settled or released exactly once.
    assert usage[(CALLS, "team")] == ran
    assert usage[(COST, "team")] == settled


def test_memory_threads_never_overspend(race_policy: Policy) -> None:
    store = MemoryStore()
    guard = Guard(race_policy, state=store, clock=lambda: NOW)
    ran, settled = in_threads(partial(_spend, guard), PROCESSES * THREADS)
    _check(store, ran, settled)


def test_sqlite_processes_never_overspend(race_policy: Policy, tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SQLiteStore(path).close()  # create the schema before the race
    ran, settled = in_processes(_spender(race_policy), ("sqlite", path), PROCESSES, THREADS)
    store = SQLiteStore(path)
    _check(store, ran, settled)
    store.close()


def test_redis_processes_never_overspend(race_policy: Policy, redis_url: str) -> None:
    from charter.runtime.state import RedisStore

    prefix = f"race-{uuid.uuid4().hex}:"
    ran, settled = in_processes(_spender(race_policy), ("redis", f"{redis_url}|{prefix}"),
                                PROCESSES, THREADS)
    store = RedisStore(redis_url, prefix=prefix)
    _check(store, ran, settled)
    store.close()


@pytest.fixture(scope="module")
def edited_policy() -> Policy:
    policy = charter.compile(EDITED, "race.agentpolicy")
    assert {c.id for c in policy.counters} == {COST, CALLS}
    return policy


def test_sqlite_processes_never_overspend_across_a_policy_edit(
        race_policy: Policy, edited_policy: Policy, tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SQLiteStore(path).close()
    ran, settled = in_processes(_spender(race_policy, edited_policy), ("sqlite", path),
                                PROCESSES, THREADS)
    store = SQLiteStore(path)
    _check(store, ran, settled)  # one count across both versions: nothing reset or lost
    store.close()


def test_redis_processes_never_overspend_across_a_policy_edit(
        race_policy: Policy, edited_policy: Policy, redis_url: str) -> None:
    from charter.runtime.state import RedisStore

    prefix = f"race-{uuid.uuid4().hex}:"
    ran, settled = in_processes(_spender(race_policy, edited_policy),
                                ("redis", f"{redis_url}|{prefix}"), PROCESSES, THREADS)
    store = RedisStore(redis_url, prefix=prefix)
    _check(store, ran, settled)
    store.close()


SESSION_POLICY = """
policy "race-session"
default deny
tool "spend" (n: int)
allow tool "spend"
deny tool "spend" when args.n == 3 because "three is unlucky"
budget cost_usd <= 10.00 per 1d because "session budget reached"
limit calls(tool "spend") <= 40 per 1d because "session call limit reached"
"""


def _spend_shared_session(guard: Guard, worker: int, start: threading.Barrier
                          ) -> tuple[int, Decimal]:
    """TRIES attempts on one shared session; attempt 3 is denied by a rule, whatever the
    budget says."""
    start.wait(timeout=30)
    ran, settled = 0, Decimal(0)
    for attempt in range(TRIES):
        decision = guard.check({
            "tool": "spend", "args": {"n": attempt}, "session": {"id": "shared"},
            "estimate": {"cost_usd": ESTIMATE}})
        assert attempt != 3 or "three is unlucky" in decision.reasons, decision
        if decision.allowed:
            actual = ESTIMATE if (worker + attempt) % 2 else Decimal("0.25")
            assert guard.settle(decision, cost_usd=actual)
            ran += 1
            settled += actual
    return ran, settled


def _check_session(store: Store, policy: Policy, ran: int, settled: Decimal) -> None:
    ids = {c.metric: c.id for c in policy.ir.counters}
    refs = (CounterRef(ids["calls"], "shared", 86400), CounterRef(ids["cost_usd"], "shared", 86400))
    usage = store.read(StateQuery("shared", refs), NOW).usage
    assert 0 < ran <= 40 and settled <= Decimal(10)
    # What a denied call's take reserved was given back: the counts are exactly the calls
    # that ran and what they settled.
    assert usage[(ids["calls"], "shared")] == ran
    assert usage[(ids["cost_usd"], "shared")] == settled


def test_memory_threads_never_overspend_when_reserving_first() -> None:
    """Every check reserves in the step that reads (`Store.take`) and gives back what a deny
    took (here every `n == 3` call): still never over the limits, and nothing left behind."""
    policy = charter.compile(SESSION_POLICY, "race.agentpolicy")
    store = MemoryStore()
    guard = Guard(policy, state=store, clock=lambda: NOW)
    ran, settled = in_threads(partial(_spend_shared_session, guard), PROCESSES * THREADS)
    _check_session(store, policy, ran, settled)
    assert not store._reservations


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_processes_never_overspend_when_reserving_first(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The same race on one shared session, 8 processes x 4 threads."""
    policy = charter.compile(SESSION_POLICY, "race.agentpolicy")
    if kind == "sqlite":
        where = str(tmp_path / "state.db")
        SQLiteStore(where).close()
    else:
        where = f"{request.getfixturevalue('redis_url')}|race-{uuid.uuid4().hex}:"

    def make(store: Store) -> Spender:
        return partial(_spend_shared_session, Guard(policy, state=store, clock=lambda: NOW))

    ran, settled = in_processes(make, (kind, where), PROCESSES, THREADS)
    store = open_store((kind, where))
    _check_session(store, policy, ran, settled)
    store.close()
