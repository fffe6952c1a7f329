"""Timing: median of repeated runs, auto-calibrated loop counts, GC off while timing."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Per-decision time in microseconds: median (and spread) over ``repeats`` runs."""

    median_us: float
    min_us: float
    max_us: float
    repeats: int
    decisions_per_repeat: int


@dataclass(frozen=True)
class Settings:
    repeats: int = 7
    # Each repeat runs at least this long, so the clock's resolution does not matter.
    min_repeat_s: float = 0.05
    max_loops: int = 1_000_000


QUICK = Settings(repeats=3, min_repeat_s=0.005)


def run_loops(
    decide: Callable[[Any, Any], Any], loaded: Any, requests: Sequence[Any], loops: int
) -> int:
    """Nanoseconds to run `decide(loaded, r)` over the request mix `loops` times."""
    start = time.perf_counter_ns()
    for _ in range(loops):
        for request in requests:
            decide(loaded, request)
    return time.perf_counter_ns() - start


def calibrate(
    decide: Callable[[Any, Any], Any],
    loaded: Any,
    requests: Sequence[Any],
    settings: Settings,
) -> int:
    """Smallest loop count (doubling) whose run lasts at least ``settings.min_repeat_s``."""
    loops = 1
    target = settings.min_repeat_s * 1e9
    while loops < settings.max_loops:
        elapsed = run_loops(decide, loaded, requests, loops)
        if elapsed >= target:
            break
        # Jump close to the target instead of doubling all the way up.
        loops = min(settings.max_loops, max(loops * 2, int(loops * target / max(elapsed, 1))))
    return loops


def measure(
    decide: Callable[[Any, Any], Any],
    loaded: Any,
    requests: Sequence[Any],
    settings: Settings = Settings(),
) -> Timing:
    """Time ``decide(loaded, r)`` over the request mix; GC is disabled while timing."""
    if not requests:
        raise ValueError("no requests to time")
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        loops = calibrate(decide, loaded, requests, settings)
        decisions = loops * len(requests)
        samples = [
            run_loops(decide, loaded, requests, loops) / decisions / 1000.0
            for _ in range(settings.repeats)
        ]
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(
        median_us=statistics.median(samples),
        min_us=min(samples),
        max_us=max(samples),
        repeats=settings.repeats,
        decisions_per_repeat=decisions,
    )


def time_once_ms(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``fn`` once; return its result and the wall time in milliseconds."""
    start = time.perf_counter_ns()
    result = fn()
    return result, (time.perf_counter_ns() - start) / 1e6
