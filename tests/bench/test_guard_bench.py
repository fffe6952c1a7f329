"""benchmarks/guard.py measures the paths it names (no timing)."""

from __future__ import annotations

import charter
from benchmarks import guard as bench
from charter.runtime.state import MemoryStore


def test_benchmark_requests_take_the_paths_they_name() -> None:
    policy = charter.compile(bench.POLICY, "bench.agentpolicy")
    guard = charter.Guard(policy, state=MemoryStore())
    for _ in range(2):  # the first call of a kind plans it, the second runs its path
        stateless = guard.check(bench.REQUESTS["stateless"])
        stateful = guard.check(bench.REQUESTS["stateful"])
    assert stateless.allowed and stateless.reservation is None
    assert stateful.allowed and stateful.reservation is not None
    assert ("tool_call", "kb.read") in guard.plan.lean
    needs = guard.plan.memory[("tool_call", "web.fetch")]
    assert needs.labels and needs.memory is not None and needs.memory.simple
    assert ("tool_call", "web.fetch") in guard._runners
    assert guard.settle(stateful)
