"""Many racing agents spend one budget: it is never overspent and no reservation is lost.

SQLite and Redis: 8 processes x 4 threads.  Memory: the store lives in one process, so the
same 32 workers are threads of this process.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from charter.runtime.state import (
    CounterRef,
    MemoryStore,
    Reservation,
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


def _open(spec: tuple[str, str]) -> Store:
    kind, where = spec
    if kind == "sqlite":
        return SQLiteStore(where)
    from charter.runtime.state import RedisStore

    url, prefix = where.split("|")
    return RedisStore(url, prefix=prefix)


def _spend(store: Store, worker: int, start: threading.Barrier | None) -> tuple[int, Decimal]:
    """Try TRIES times to spend one unit; every other grant settles at half its estimate."""
    if start is not None:
        start.wait(timeout=30)
    granted, settled = 0, Decimal(0)
    for attempt in range(TRIES):
        result = store.reserve(
            [
                Reservation(COST, "team", 3600, 1, LIMIT),
                Reservation(CALLS, "team", 3600, 1, LIMIT),
            ],
            NOW,
        )
        if not result.ok:
            continue
        assert result.token is not None
        granted += 1
        actual = Decimal("0.5") if (worker + attempt) % 2 else Decimal(1)
        store.settle(result.token, {(COST, "team"): actual}, NOW)
        settled += actual
    return granted, settled


def _threads(store: Store, count: int, base: int) -> tuple[int, Decimal]:
    start = threading.Barrier(count)
    results: list[tuple[int, Decimal]] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        outcome = _spend(store, worker, start)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(base + i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == count, "a worker thread failed"
    return sum(g for g, _ in results), sum((s for _, s in results), Decimal(0))


def _process(spec: tuple[str, str], index: int, start: Any, out: Any) -> None:
    try:
        store = _open(spec)
        start.wait(timeout=30)
        granted, settled = _threads(store, THREADS, index * THREADS)
        store.close()
        out.put((granted, str(settled)))
    except BaseException as exc:  # report instead of leaving the parent waiting
        out.put((-1, repr(exc)))
        raise


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


def _run_processes(spec: tuple[str, str]) -> tuple[int, Decimal]:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(PROCESSES)
    out = ctx.Queue()
    procs = [ctx.Process(target=_process, args=(spec, i, start, out)) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    errors = [detail for granted, detail in results if granted < 0]
    assert not errors, errors
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return sum(g for g, _ in results), sum((Decimal(s) for _, s in results), Decimal(0))


def test_memory_store_threads_never_overspend() -> None:
    store = MemoryStore()
    granted, settled = _threads(store, PROCESSES * THREADS, 0)
    _check(store, granted, settled)


def test_sqlite_store_processes_never_overspend(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SQLiteStore(path).close()  # create the schema before the race
    granted, settled = _run_processes(("sqlite", path))
    store = SQLiteStore(path)
    _check(store, granted, settled)
    store.close()


def test_redis_store_processes_never_overspend(redis_url: str) -> None:
    pytest.importorskip("redis")
    from charter.runtime.state import RedisStore

    prefix = f"race-{uuid.uuid4().hex}:"
    granted, settled = _run_processes(("redis", f"{redis_url}|{prefix}"))
    store = RedisStore(redis_url, prefix=prefix)
    _check(store, granted, settled)
    store.close()
