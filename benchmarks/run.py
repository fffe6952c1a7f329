"""Runs every measurement, each in its own worker process, and collects the results."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks import engines, scaling

# The rule: skip an engine at a size where one run would take more than two minutes.
RUN_LIMIT_S = 120.0


@dataclass
class Results:
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    # engine -> size -> worker result (or {"status": "skipped", "error": why})
    scaling: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    pii: dict[str, Any] = field(default_factory=dict)
    quick: bool = False
    seconds: float = 0.0


def worker(args: Sequence[str], timeout: float = RUN_LIMIT_S) -> tuple[dict[str, Any], float]:
    """Run ``python -m benchmarks.worker ARGS``; return its JSON result and the wall time."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.worker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        elapsed = time.monotonic() - start
        return {"status": "skipped", "error": f"run exceeded {timeout:.0f} s"}, elapsed
    elapsed = time.monotonic() - start
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "crashed", "error": f"exit {proc.returncode}: {tail}"}, elapsed
    result: dict[str, Any] = json.loads(lines[-1])
    return result, elapsed


def run(
    names: Sequence[str],
    quick: bool = False,
    with_pii: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> Results:
    results = Results(quick=quick)
    start = time.monotonic()
    flags = ["--quick"] if quick else []
    for name in names:
        progress(f"reference: {name}")
        results.reference[name], _ = worker(["reference", name, *flags])
    sizes = scaling.QUICK_SIZES if quick else scaling.SIZES
    for name in names:
        results.scaling[name] = _scale(name, sizes, flags, progress)
    if with_pii:
        progress("pii")
        # Presidio loads spaCy models; give it the same two minutes as any other run.
        results.pii, _ = worker(["pii", *flags])
    results.seconds = time.monotonic() - start
    return results


def _scale(
    name: str, sizes: Sequence[int], flags: list[str], progress: Callable[[str], None]
) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    previous: tuple[int, float] | None = None
    stopped: str | None = None
    for size in sizes:
        if stopped is not None:
            out[size] = {"status": "skipped", "error": stopped}
            continue
        if previous is not None:
            # Loading and timing grow at least linearly with the rules for every peer, so
            # project from the last size and skip rather than burn two minutes on a kill.
            last_size, last_wall = previous
            projected = last_wall * size / last_size
            if projected > RUN_LIMIT_S:
                out[size] = {
                    "status": "skipped",
                    "error": f"projected {projected:.0f} s > {RUN_LIMIT_S:.0f} s",
                }
                continue
        progress(f"scaling: {name} x {size}")
        out[size], wall = worker(["scaling", name, str(size), *flags])
        status = out[size].get("status")
        if status != "ok":
            stopped = f"not run: {status} at {size} rules"
        previous = (size, wall)
    return out


def available(names: Sequence[str]) -> dict[str, str | None]:
    return {name: engines.import_error(name) for name in names}
