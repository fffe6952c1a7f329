"""Racing workers for the concurrency tests: threads of this process, or processes (fork)
of threads each over its own connection to a shared store.

A spender takes (worker index, start barrier) and returns (calls that ran, amount settled);
both runners return the sums over every worker, and fail if any worker raised.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from charter.runtime.state import SQLiteStore, Store

Spender = Callable[[int, threading.Barrier], tuple[int, Decimal]]


def open_store(spec: tuple[str, str]) -> Store:
    """("sqlite", path) or ("redis", "URL|PREFIX")."""
    kind, where = spec
    if kind == "sqlite":
        return SQLiteStore(where)
    from charter.runtime.state import RedisStore

    url, prefix = where.split("|")
    return RedisStore(url, prefix=prefix)


def in_threads(spend: Spender, count: int, base: int = 0) -> tuple[int, Decimal]:
    """`count` threads (workers `base`, `base + 1`...) released together."""
    start = threading.Barrier(count)
    results: list[tuple[int, Decimal]] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        outcome = spend(worker, start)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(base + i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == count, "a worker thread failed"
    return sum(r for r, _ in results), sum((s for _, s in results), Decimal(0))


def _process(make: Callable[[Store], Spender], spec: tuple[str, str], index: int,
             threads: int, start: Any, out: Any) -> None:
    try:
        store = open_store(spec)
        spend = make(store)
        start.wait(timeout=30)
        ran, settled = in_threads(spend, threads, index * threads)
        store.close()
        out.put((ran, str(settled)))
    except BaseException as exc:  # report instead of leaving the parent waiting
        out.put((-1, repr(exc)))
        raise


def in_processes(make: Callable[[Store], Spender], spec: tuple[str, str], processes: int,
                 threads: int) -> tuple[int, Decimal]:
    """`processes` forked processes, each opening the store of `spec` and running
    `make(store)` in `threads` threads."""
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(processes)
    out = ctx.Queue()
    procs = [ctx.Process(target=_process, args=(make, spec, i, threads, start, out))
             for i in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    errors = [detail for ran, detail in results if ran < 0]
    assert not errors, errors
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return sum(r for r, _ in results), sum((Decimal(s) for _, s in results), Decimal(0))
