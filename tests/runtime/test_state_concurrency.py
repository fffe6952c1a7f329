"""Many racing agents spend one budget: it is never overspent and no reservation is lost.

SQLite and Redis: 8 processes x 4 threads.  Memory: the store lives in one process, so the
same 32 workers are threads of this process.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from race_harness import Spender, in_processes, in_threads

from charter.runtime.state import (
    CounterRef,
    MemoryStore,
    Reservation,
    ReserveResult,
    SQLiteStore,
    StateQuery,
    Store,
)

PROCESSES = 8
THREADS = 4
TRIES = 10
LIMIT = 100
COST = "budget:cost_usd:3600"
CALLS = "limit:calls:3600"
NOW = 1_800_000_000.0


def _spend(store: Store, worker: int, start: threading.Barrier) -> tuple[int, Decimal]:
    """Try TRIES times to spend one unit; every other grant settles at half its estimate.

    Odd attempts go through `take`, which also reads the counters: the usage it reports is
    from the same atomic step as its check, so it fits exactly when the take succeeded."""
    start.wait(timeout=30)
    granted, settled = 0, Decimal(0)
    items = [Reservation(COST, "team", 3600, 1, LIMIT), Reservation(CALLS, "team", 3600, 1, LIMIT)]
    for attempt in range(TRIES):
        if attempt % 2:
            got = store.take(StateQuery(f"w{worker}"), items, NOW)
            fits = all(got.usage[(cid, "team")] + 1 <= LIMIT for cid in (CALLS, COST))
            assert fits == (got.token is not None) == (got.failed is None), got
            token = got.token
        else:
            token = store.reserve(items, NOW).token
        if token is None:
            continue
        result = ReserveResult(True, token)
        granted += 1
        actual = Decimal("0.5") if (worker + attempt) % 2 else Decimal(1)
        store.settle(result.token, {(COST, "team"): actual}, NOW)
        settled += actual
    return granted, settled


def _spender(store: Store) -> Spender:
    return partial(_spend, store)


def _final(store: Store) -> tuple[Decimal, Decimal]:
    snap = store.read(
        StateQuery("s", counters=(CounterRef(COST, "team", 3600), CounterRef(CALLS, "team", 3600))),
        NOW,
    )
    return snap.usage[(COST, "team")], snap.usage[(CALLS, "team")]


def _check(store: Store, granted: int, settled: Decimal) -> None:
    cost, calls = _final(store)
    # 320 attempts race for 100 calls: exactly the limit is granted, never more.
    assert granted == LIMIT
    assert calls == LIMIT
    # Every settlement landed exactly once, and the budget was never overspent.
    assert cost == settled
    assert cost <= LIMIT


def test_memory_store_threads_never_overspend() -> None:
    store = MemoryStore()
    granted, settled = in_threads(partial(_spend, store), PROCESSES * THREADS)
    _check(store, granted, settled)


def test_sqlite_store_processes_never_overspend(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SQLiteStore(path).close()  # create the schema before the race
    granted, settled = in_processes(_spender, ("sqlite", path), PROCESSES, THREADS)
    store = SQLiteStore(path)
    _check(store, granted, settled)
    store.close()


def test_redis_store_processes_never_overspend(redis_url: str) -> None:
    pytest.importorskip("redis")
    from charter.runtime.state import RedisStore

    prefix = f"race-{uuid.uuid4().hex}:"
    granted, settled = in_processes(_spender, ("redis", f"{redis_url}|{prefix}"), PROCESSES,
                                    THREADS)
    store = RedisStore(redis_url, prefix=prefix)
    _check(store, granted, settled)
    store.close()
