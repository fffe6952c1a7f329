"""One measurement in its own process, printed as one JSON line on stdout.

Every engine runs in a separate process: regopy and cel-expr-python abort the interpreter
(`free(): invalid size`) when used in one process, and a crash or a runaway size must not
take the whole report down.

    python -m benchmarks.worker reference ENGINE [--quick]
    python -m benchmarks.worker scaling ENGINE N [--quick]
    python -m benchmarks.worker agree ENGINE [N]      (no timing; N: the scaling policy)
    python -m benchmarks.worker pii
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from benchmarks import engines, reference, scaling, timing


def check(engine: str, source: Any, cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Load ``source`` and compare the engine's effect with the expected one on every case."""
    result: dict[str, Any] = {"engine": engine, "checked": len(cases), "mismatches": []}
    error = engines.import_error(engine)
    if error is not None:
        return {**result, "status": "unavailable", "error": error}
    module = engines.import_engine(engine)
    try:
        loaded, load_ms = timing.time_once_ms(lambda: module.load(source))
    except Exception as exc:  # the report says why an engine could not load the policy
        return {**result, "status": "load_failed", "error": f"{type(exc).__name__}: {exc}"}
    mismatches = []
    for case in cases:
        try:
            got = module.decide(loaded, case["request"])
        except Exception as exc:  # a crash on one request is a disagreement, not a stop
            got = f"error: {type(exc).__name__}: {exc}"
        if got != case["expect"]:
            mismatches.append({"name": case["name"], "expect": case["expect"], "got": got})
    status = "ok" if not mismatches else "disagrees"
    return {
        **result,
        "status": status,
        "mismatches": mismatches,
        "load_ms": load_ms,
        "_loaded": loaded,
        "_module": module,
    }


def measure(
    engine: str, source: Any, cases: Sequence[dict[str, Any]], settings: timing.Settings
) -> dict[str, Any]:
    """Agreement first; only an engine that agrees on every case gets timed."""
    result = check(engine, source, cases)
    loaded = result.pop("_loaded", None)
    module = result.pop("_module", None)
    if result["status"] == "ok" and module is not None:
        requests = [case["request"] for case in cases]
        result["timing"] = asdict(timing.measure(module.decide, loaded, requests, settings))
    return result


def _pii() -> dict[str, Any]:
    try:
        # Written by another helper; imported by name so its absence is a note, not an error.
        pii = importlib.import_module("benchmarks.pii")
    except ImportError as exc:
        return {"status": "missing", "error": f"{type(exc).__name__}: {exc}"}
    try:
        rows = pii.run()
    except Exception as exc:  # another helper's module: report, never crash the run
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    return {"status": "ok", "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    parser.add_argument("task", choices=("reference", "scaling", "agree", "pii"))
    parser.add_argument("engine", nargs="?")
    parser.add_argument("size", nargs="?", type=int)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    settings = timing.QUICK if args.quick else timing.Settings()
    if args.task == "pii":
        out = _pii()
    elif args.engine not in engines.ENGINES:
        parser.error(f"engine must be one of {', '.join(engines.ENGINES)}")
    elif args.task == "reference":
        out = measure(args.engine, _safe_source(args.engine), reference.cases(), settings)
    elif args.task == "agree":
        if args.size is None:
            out = check(args.engine, _safe_source(args.engine), reference.cases())
        else:
            out = check(
                args.engine, _safe_scaled(args.engine, args.size), scaling.requests(args.size)
            )
        out.pop("_loaded", None)
        out.pop("_module", None)
    else:
        if args.size is None:
            parser.error("scaling needs a size")
        out = measure(
            args.engine,
            _safe_scaled(args.engine, args.size),
            scaling.requests(args.size),
            settings,
        )
        out["size"] = args.size
    json.dump(out, sys.stdout, default=str)
    sys.stdout.write("\n")
    return 0


def _safe_source(engine: str) -> Any:
    # Building a peer's source imports its adapter; an engine that does not import is
    # reported by check() instead of failing here.
    return None if engines.import_error(engine) else reference.source(engine)


def _safe_scaled(engine: str, size: int) -> Any:
    return None if engines.import_error(engine) else scaling.source(engine, size)


if __name__ == "__main__":
    raise SystemExit(main())
