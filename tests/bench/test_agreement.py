"""Every engine returns the expected effect on the reference requests (no timing).

Each engine is checked in its own process, as the benchmark does: regopy and
cel-expr-python abort the interpreter when used in one process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import engines, reference
from benchmarks.engines.base import EFFECTS

ROOT = Path(__file__).resolve().parents[2]
NON_CHARTER = [name for name in engines.ENGINES if name != "charter"]


def agree(engine: str, size: int | None = None) -> dict[str, Any]:
    extra = [] if size is None else [str(size)]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", "agree", engine, *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def skip_if_missing(engine: str) -> None:
    error = engines.import_error(engine)
    if error is not None:
        pytest.skip(f"{engine} not importable: {error}")


def test_reference_requests_are_well_formed() -> None:
    cases = reference.cases()
    assert {case["expect"] for case in cases} == set(EFFECTS)
    assert len({case["name"] for case in cases}) == len(cases)


@pytest.mark.parametrize("engine", NON_CHARTER)
def test_engine_agrees_on_reference_requests(engine: str) -> None:
    skip_if_missing(engine)
    result = agree(engine)
    assert result["status"] == "ok", result
    assert result["mismatches"] == []
    assert result["checked"] == len(reference.cases())


# Charter must not be skipped: a policy it cannot compile is a failure.
def test_charter_agrees_on_reference_requests() -> None:
    result = agree("charter")
    assert result["status"] == "ok", result
    assert result["mismatches"] == []


@pytest.mark.parametrize("engine", NON_CHARTER)
def test_engine_agrees_on_generated_policy(engine: str) -> None:
    skip_if_missing(engine)
    result = agree(engine, 10)
    assert result["status"] == "ok", result
