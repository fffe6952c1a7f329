"""Racing agents spend one budget through `Guard.check` / `settle` / `release`.

SQLite and Redis: 8 processes x 4 threads, each process with its own Guard over the shared
store. Memory: the store lives in one process, so the 32 workers are threads sharing one
Guard. In every case the budget and the call limit are never exceeded, and the store's
usage equals exactly what the workers settled (no reservation lost or counted twice).
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

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
COST = "cost_usd:1d:1"
CALLS = "calls:1d:2"
ESTIMATE = Decimal("0.5")


@pytest.fixture(scope="module")
def race_policy() -> Policy:
    policy = charter.compile(POLICY, "race.agentpolicy")
    assert {c.id for c in policy.counters} == {COST, CALLS}
    return policy


def _open(spec: tuple[str, str]) -> Store:
    kind, where = spec
    if kind == "sqlite":
        return SQLiteStore(where)
    from charter.runtime.state import RedisStore

    url, prefix = where.split("|")
    return RedisStore(url, prefix=prefix)


def _spend(guard: Guard, worker: int, start: threading.Barrier) -> tuple[int, Decimal]:
    """TRIES attempts; of the granted ones every third is released (did not run), the others
    settle at a cost at or below the estimate."""
    start.wait(timeout=30)
    ran, settled = 0, Decimal(0)
    for attempt in range(TRIES):
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


def _threads(guard: Guard, count: int, base: int) -> tuple[int, Decimal]:
    start = threading.Barrier(count)
    results: list[tuple[int, Decimal]] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        outcome = _spend(guard, worker, start)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(base + i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == count, "a worker thread failed"
    return sum(r for r, _ in results), sum((s for _, s in results), Decimal(0))


def _process(policy: Policy, spec: tuple[str, str], index: int, start: Any, out: Any) -> None:
    try:
        store = _open(spec)
        guard = Guard(policy, state=store, clock=lambda: NOW)
        start.wait(timeout=30)
        ran, settled = _threads(guard, THREADS, index * THREADS)
        store.close()
        out.put((ran, str(settled)))
    except BaseException as exc:  # report instead of leaving the parent waiting
        out.put((-1, repr(exc)))
        raise


def _run_processes(policy: Policy, spec: tuple[str, str]) -> tuple[int, Decimal]:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(PROCESSES)
    out = ctx.Queue()
    procs = [ctx.Process(target=_process, args=(policy, spec, i, start, out))
             for i in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    errors = [detail for ran, detail in results if ran < 0]
    assert not errors, errors
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return sum(r for r, _ in results), sum((Decimal(s) for _, s in results), Decimal(0))


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
    ran, settled = _threads(guard, PROCESSES * THREADS, 0)
    _check(store, ran, settled)


def test_sqlite_processes_never_overspend(race_policy: Policy, tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SQLiteStore(path).close()  # create the schema before the race
    ran, settled = _run_processes(race_policy, ("sqlite", path))
    store = SQLiteStore(path)
    _check(store, ran, settled)
    store.close()


def test_redis_processes_never_overspend(race_policy: Policy, redis_url: str) -> None:
    from charter.runtime.state import RedisStore

    prefix = f"race-{uuid.uuid4().hex}:"
    ran, settled = _run_processes(race_policy, ("redis", f"{redis_url}|{prefix}"))
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


def test_memory_threads_never_overspend_when_reserving_first() -> None:
    """Counters keyed by the session id take the lean path, which reserves before deciding
    and gives back what a deny took (here every `n == 3` call): still never over the
    limits, and nothing left behind."""
    policy = charter.compile(SESSION_POLICY, "race.agentpolicy")
    store = MemoryStore()
    guard = Guard(policy, state=store, clock=lambda: NOW)
    start = threading.Barrier(PROCESSES * THREADS)
    granted: list[Decimal] = []
    wrong: list[charter.Decision] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        start.wait(timeout=30)
        for attempt in range(TRIES):
            decision = guard.check({
                "tool": "spend", "args": {"n": attempt}, "session": {"id": "shared"},
                "estimate": {"cost_usd": ESTIMATE}})
            if attempt == 3 and "three is unlucky" not in decision.reasons:
                wrong.append(decision)
            if decision.allowed:
                actual = ESTIMATE if (worker + attempt) % 2 else Decimal("0.25")
                settled = guard.settle(decision, cost_usd=actual)
                with lock:
                    granted.append(actual)
                    if not settled:
                        wrong.append(decision)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(PROCESSES * THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong
    assert guard._runners, "the lean path was not taken"
    ids = {c.metric: c.id for c in policy.ir.counters}
    refs = (CounterRef(ids["calls"], "shared", 86400), CounterRef(ids["cost_usd"], "shared", 86400))
    usage = store.read(StateQuery("shared", refs), NOW).usage
    assert 0 < len(granted) <= 40
    assert usage[(ids["calls"], "shared")] == len(granted)
    assert usage[(ids["cost_usd"], "shared")] == sum(granted, Decimal(0)) <= Decimal(10)
    assert not store._reservations
