"""µs per decision: Charter beside hand-written Python, in one process.

    python benchmarks/decide.py [--quick] [--sizes 10,100,1000,10000]
    python -m benchmarks.decide ...

Measures the example policies (``examples/*``), the 20-rule reference policy against its
hand-written twin (``benchmarks/reference``), and generated policies of N rules against their
twins (``benchmarks/decide_policies.py``), then checks the targets: a ~20-rule policy within
2x of hand-written Python, 10,000 rules within 1.5x of 20 rules, 10,000 rules compiled in
under 3 s. Before anything is timed, Charter and the Python twin must return the same effect
on every request of the mix. ``run(sizes, quick)`` returns the rows for other reports.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/decide.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import decide_policies, reference  # noqa: E402
from benchmarks.timing import (  # noqa: E402
    QUICK,
    Settings,
    calibrate,
    measure,
    run_loops,
    time_once_ms,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("support", "coding", "finance")
SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100, 1_000)
BASE_SIZE = 20  # the "20 rules" of the scaling target; always measured

TARGET_VS_PYTHON = 2.0
TARGET_SCALING = 1.5
TARGET_COMPILE_S = 3.0
TARGET_COMPILE_SIZE = 10_000

Row = dict[str, Any]
Request = Any
Decider = Callable[[Request], str]


class Mismatch(AssertionError):
    """Charter and the hand-written Python disagree on a request: timings would mean nothing."""


def _charter_decide(policy: Any, request: Request) -> Any:
    return policy.decide(request)


def _python_decide(fn: Decider, request: Request) -> str:
    return fn(request)


def _effect(decision: Any) -> str:
    effect = decision.effect
    return effect if isinstance(effect, str) else str(effect.value)


def check_agreement(policy: Any, twin: Decider, requests: Sequence[Request]) -> int:
    """Raise `Mismatch` unless Charter and ``twin`` return the same effect on every request."""
    bad = []
    for index, request in enumerate(requests):
        got, want = _effect(policy.decide(request)), twin(request)
        if got != want:
            bad.append(f"#{index} tool={request.get('tool')!r}: charter {got}, python {want}")
    if bad:
        raise Mismatch(f"{len(bad)}/{len(requests)} disagree: " + "; ".join(bad[:5]))
    return len(requests)


@contextlib.contextmanager
def _stage_timings() -> Iterator[dict[str, float]]:
    """Collect the pipeline's own stage timings (parse, check, lower) of the compiles inside.

    ``charter.compile`` stays the measured entry point; this only wraps the pipeline function
    it calls, and yields nothing if the pipeline no longer looks the way it does today.
    """
    seen: dict[str, float] = {}
    try:
        from charter.compiler import pipeline
    except ImportError:
        yield seen
        return
    original = getattr(pipeline, "compile_sources", None)
    if original is None:
        yield seen
        return

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        comp = original(*args, **kwargs)
        timings = getattr(comp, "timings", None)
        if isinstance(timings, dict):
            seen.clear()
            seen.update(timings)
        return comp

    pipeline.compile_sources = wrapped
    try:
        yield seen
    finally:
        pipeline.compile_sources = original


def _compile_ms(text: str, first: Request, repeats: int) -> tuple[Any, float, dict[str, float]]:
    """Text → ``charter.compile`` → first decision, in ms (median over ``repeats``).

    Also returns the last compile's stage split in ms (``parse``, ``check``, ``lower`` and
    ``rest``: everything after lowering, up to and including the first decision).
    """
    import charter

    def build() -> Any:
        policy = charter.compile(text)
        policy.decide(first)
        return policy

    with _stage_timings() as stages:
        runs = [time_once_ms(build) for _ in range(repeats)]
    split = {name: seconds * 1000 for name, seconds in stages.items()}
    if split:
        split["rest"] = max(0.0, runs[-1][1] - sum(split.values()))
    return runs[-1][0], statistics.median(ms for _, ms in runs), split


def measure_pair(
    policy: Any, twin: Decider, requests: Sequence[Request], settings: Settings
) -> tuple[float, float, float]:
    """Charter µs, Python µs and their ratio, timed in alternating repeats (GC off).

    On a shared machine the load changes from one second to the next; alternating the two
    and taking the median of the per-repeat ratios keeps the ratio honest even so.
    """
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        charter_loops = calibrate(_charter_decide, policy, requests, settings)
        python_loops = calibrate(_python_decide, twin, requests, settings)
        charter_us: list[float] = []
        python_us: list[float] = []
        for _ in range(settings.repeats):
            ns = run_loops(_charter_decide, policy, requests, charter_loops)
            charter_us.append(ns / (charter_loops * len(requests)) / 1000)
            ns = run_loops(_python_decide, twin, requests, python_loops)
            python_us.append(ns / (python_loops * len(requests)) / 1000)
    finally:
        if gc_was_enabled:
            gc.enable()
    ratio = statistics.median(c / p for c, p in zip(charter_us, python_us, strict=True))
    return statistics.median(charter_us), statistics.median(python_us), ratio


def _rule_count(policy: Any) -> int:
    return len(policy.rules) + len(getattr(policy, "counters", ()))


def _twin_row(
    kind: str,
    name: str,
    text: str,
    twin: Decider,
    requests: Sequence[Request],
    settings: Settings,
    compile_repeats: int,
) -> Row:
    row: Row = {"kind": kind, "name": name, "requests": len(requests), "status": "ok"}
    try:
        policy, row["compile_ms"], row["compile_split_ms"] = _compile_ms(
            text, requests[0], compile_repeats
        )
        row["rules"] = _rule_count(policy)
        row["checked"] = check_agreement(policy, twin, requests)
    except Mismatch as error:
        return {**row, "status": "mismatch", "error": str(error)}
    except Exception as error:  # noqa: BLE001 - a broken compiler is reported, not fatal
        return {**row, "status": "error", "error": f"{type(error).__name__}: {error}"}
    row["charter_us"], row["python_us"], row["ratio"] = measure_pair(
        policy, twin, requests, settings
    )
    return row


def reference_row(settings: Settings, compile_repeats: int) -> Row:
    from benchmarks.reference.handwritten import decide

    requests = [case["request"] for case in reference.cases()]
    text = reference.source("charter")
    return _twin_row("reference", "reference", text, decide, requests, settings, compile_repeats)


def generated_row(n: int, settings: Settings, compile_repeats: int) -> Row:
    text = decide_policies.charter_source(n)
    twin = decide_policies.python_twin(n)
    row = _twin_row(
        "generated",
        f"generated-{n}",
        text,
        twin,
        decide_policies.requests(n),
        settings,
        compile_repeats,
    )
    row["size"] = n
    return row


def example_row(name: str, settings: Settings) -> Row:
    import charter

    folder = ROOT / "examples" / name
    row: Row = {"kind": "example", "name": f"examples/{name}", "status": "ok"}
    files = sorted((folder / "requests").glob("*.json"))
    if not (folder / "policy.agentpolicy").exists() or not files:
        return {**row, "status": "skipped", "error": f"{folder} has no policy or requests yet"}
    requests = [json.loads(path.read_text()) for path in files]
    row["requests"] = len(requests)
    try:
        policy, row["compile_ms"] = time_once_ms(lambda: charter.load(folder))
        row["rules"] = _rule_count(policy)
        effects = [_effect(policy.decide(request)) for request in requests]
    except Exception as error:  # noqa: BLE001
        return {**row, "status": "error", "error": f"{type(error).__name__}: {error}"}
    expected_path = folder / "expected.json"
    if expected_path.exists():
        expected = json.loads(expected_path.read_text())
        wrong = [
            path.name
            for path, effect in zip(files, effects, strict=True)
            if path.name in expected and expected[path.name].get("effect") != effect
        ]
        if wrong:
            row["note"] = (
                "pure decide() (no Guard state or grants) differs from expected.json on "
                + ", ".join(wrong)
            )
    row["charter_us"] = measure(_charter_decide, policy, requests, settings).median_us
    return row


def run(sizes: Sequence[int] = SIZES, quick: bool = False) -> list[Row]:
    """Every measurement of this benchmark, one dict per policy (see `render`)."""
    import charter

    settings = QUICK if quick else Settings()
    # Pay the one-off costs (imports, grammar) before any compile is timed.
    warm = charter.compile(decide_policies.charter_source(1))
    warm.decide(decide_policies.requests(1)[0])

    rows = [example_row(name, settings) for name in EXAMPLES]
    small_repeats = 1 if quick else 3
    rows.append(reference_row(settings, small_repeats))
    for n in sorted({BASE_SIZE, *sizes}):
        rows.append(generated_row(n, settings, small_repeats if n <= 1_000 else 1))
    return rows


def _by_name(rows: Sequence[Row], name: str) -> Row | None:
    return next((row for row in rows if row["name"] == name and row["status"] == "ok"), None)


def targets(rows: Sequence[Row]) -> list[Row]:
    """``{"target", "value", "result"}`` per target; result is PASS, MISS or NOT MEASURED."""
    out: list[Row] = []
    ref = _by_name(rows, "reference")
    out.append(
        _target(
            f"20-rule reference policy within {TARGET_VS_PYTHON:g}x of hand-written Python",
            None if ref is None else ref["ratio"],
            TARGET_VS_PYTHON,
            "{:.2f}x",
        )
    )
    base = _by_name(rows, f"generated-{BASE_SIZE}")
    big = _by_name(rows, "generated-10000")
    scaling = None if base is None or big is None else big["charter_us"] / base["charter_us"]
    out.append(
        _target(
            f"10,000 rules within {TARGET_SCALING:g}x of {BASE_SIZE} rules per decision",
            scaling,
            TARGET_SCALING,
            "{:.2f}x",
        )
    )
    compile_s = None if big is None else big["compile_ms"] / 1000
    out.append(
        _target(
            f"10,000 rules compile in under {TARGET_COMPILE_S:g} s",
            compile_s,
            TARGET_COMPILE_S,
            "{:.2f} s",
        )
    )
    return out


def _target(name: str, value: float | None, limit: float, fmt: str) -> Row:
    if value is None:
        return {"target": name, "value": None, "text": "—", "result": "NOT MEASURED"}
    result = "PASS" if value <= limit else "MISS"
    return {"target": name, "value": value, "text": fmt.format(value), "result": result}


def _us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def render(rows: Sequence[Row], quick: bool = False) -> str:
    base = _by_name(rows, f"generated-{BASE_SIZE}")
    header = (
        f"{'policy':<20} {'rules':>6} {'reqs':>5} {'charter µs':>11} {'python µs':>10} "
        f"{'ch/py':>6} {f'vs {BASE_SIZE}':>6} {'compile ms':>11}"
    )
    lines = ["Charter decide() vs hand-written Python, µs per decision (median)", header]
    lines.append("-" * len(header))
    notes: list[str] = []
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"{row['name']:<20} {row['status']}: {row.get('error', '')}")
            continue
        python_us = row.get("python_us")
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "—"
        growth = "—"
        if row["kind"] == "generated" and base is not None:
            growth = f"{row['charter_us'] / base['charter_us']:.2f}x"
        lines.append(
            f"{row['name']:<20} {row.get('rules', 0):>6} {row['requests']:>5} "
            f"{_us(row['charter_us']):>11} {_us(python_us):>10} {ratio:>6} {growth:>6} "
            f"{row.get('compile_ms', 0):>11,.1f}"
        )
        if "note" in row:
            notes.append(f"{row['name']}: {row['note']}")
        split = row.get("compile_split_ms")
        if split and row["compile_ms"] >= 1000:
            parts = ", ".join(f"{name} {ms:,.0f}" for name, ms in split.items())
            notes.append(f"{row['name']}: compile split (ms): {parts}")
    lines += ["", "Targets"]
    for target in targets(rows):
        lines.append(f"  [{target['result']}] {target['target']}: {target['text']}")
    lines += ["", "Notes"]
    lines.append(
        "  rules = compiled rules + counters; compile = charter.compile(text) + first decision "
        "(examples: charter.load(dir)), after one warm-up compile in the process"
    )
    lines.append(
        "  every request of a twin row was checked to get the same effect from Charter and "
        "the Python twin before timing; ch/py is the median of per-repeat ratios, Charter and "
        "Python timed alternately"
    )
    if quick:
        lines.append("  quick run: few repeats, small sizes — not for quoting")
    lines += [f"  {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a list of sizes: {text!r}") from error
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decide", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats; sizes up to 1,000")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        help="generated policy sizes, comma-separated (default "
        f"{','.join(map(str, SIZES))}; --quick: {','.join(map(str, QUICK_SIZES))})",
    )
    args = parser.parse_args(argv)
    sizes: tuple[int, ...] = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    rows = run(sizes, quick=args.quick)
    sys.stdout.write(render(rows, quick=args.quick))
    failed = [row for row in rows if row["status"] in ("mismatch", "error")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
