"""benchmarks/guard.py measures what it names (no timing)."""

from __future__ import annotations

from typing import Any

import charter
from benchmarks import guard as bench
from charter.runtime.state import MemoryStore, StateQuery, Store, Taken


class Counting(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.takes: list[tuple[StateQuery, Any]] = []

    def take(self, query: StateQuery, reservations: Any, now: float) -> Taken:
        self.takes.append((query, list(reservations)))
        return super().take(query, reservations, now)


def test_benchmark_requests_are_the_shapes_they_name() -> None:
    policy = charter.compile(bench.POLICY, "bench.agentpolicy")
    store = Counting()
    guard = charter.Guard(policy, state=store)
    for shape, request in bench.REQUESTS.items():
        for _ in range(2):  # the first call of a kind plans it, the second runs its runner
            store.takes.clear()
            decision = guard.check(request)
            assert decision.allowed, shape
            if shape.startswith("stateful"):
                # One store step: the labels read and the limit reserved together.
                (query, reservations), = store.takes
                assert query.labels and len(reservations) == 1 and not query.counters
                assert decision.reservation is not None and guard.settle(decision)
            else:
                assert store.takes == [] and decision.reservation is None
    tool = bench.REQUESTS[bench.STATEFUL]["tool"]
    assert tool["tags"] and tool["server"]  # a tool object, not a bare name


def test_throughput_runner_counts_decisions() -> None:
    store: Store = bench.open_store("memory", "")
    guard = charter.Guard(charter.compile(bench.POLICY, "bench.agentpolicy"), state=store)
    assert bench._loop(guard, 0.01) >= 20
