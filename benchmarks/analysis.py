"""Static analysis time without a solver (spec B.7, A-AC3), in milliseconds.

    python benchmarks/analysis.py [--runs 5] [--conflicts]
    python -m benchmarks.analysis ...

Each row compiles its policy once (not timed) and then times `analyze` (the analyze stage:
cells, regions, findings and their witnesses, verified by `Policy.decide` and
`Policy.interpret`), median of `--runs` runs, each on a fresh analysis (nothing cached
between runs). Targets: each example policy <= 200 ms, all examples together <= 1 s, the
1,000-rule scaling policy (`benchmarks/scaling.py`: one rule per tool) <= 2 s, 1,000 rules on
10 tools <= 10 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.scaling import charter_source  # noqa: E402
from charter.analysis import deciders  # noqa: E402
from charter.compiler.analysis import Options, analyze  # noqa: E402
from charter.compiler.analysis.locate import locator  # noqa: E402
from charter.compiler.pipeline import Compilation, compile_sources  # noqa: E402
from charter.compiler.sources import discover, read_sources  # noqa: E402
from charter.language.source import Source  # noqa: E402

EXAMPLES = ("support", "finance", "coding")


def ten_tools(n: int) -> str:
    """`n` rules spread over 10 tools: allows and denies on overlapping amount bands."""
    tools = "\n".join(f'tool "t{i}" (amount: int, currency: str)' for i in range(10))
    rules = []
    for i in range(n):
        kind = "allow" if i % 3 else "deny"
        because = ' because "band"' if kind == "deny" else ""
        rules.append(f'{kind} tool "t{i % 10}" when args.amount > {i} and '
                     f'args.amount <= {i + 50}{because}')
    return f'policy "ten-{n}"\ndefault deny\n{tools}\n' + "\n".join(rules) + "\n"


def string_policy(seed: int) -> str:
    """Rules on string functions and sums, which only the solver decides (seeded)."""
    import random

    rng = random.Random(seed)
    rules = []
    for i in range(6):
        pre = rng.choice(["a", "ab", "abc", "b"])
        cond = (f'startswith(args.s, "{pre}") and len(args.s) {rng.choice(["<", ">", "=="])} '
                f'{rng.randint(0, 5)}')
        if rng.random() < 0.3:
            cond = f"args.n + estimate.cost_usd > {rng.randint(0, 9)}"
        kind = rng.choice(["allow", "deny"])
        because = ' because "r"' if kind == "deny" else ""
        rules.append(f'@id("r{i}")\n{kind} tool "t" when {cond}{because}')
    return ('policy "s"\ndefault deny\ntool "t" (s: str, n: decimal)\n'
            + "\n".join(rules) + "\n")


def _compile(name: str, text: str | None = None) -> Compilation:
    if text is None:
        return compile_sources(read_sources(discover(ROOT / "examples" / name)))
    return compile_sources([Source(f"{name}.agentpolicy", text)])


def time_one(comp: Compilation, runs: int, options: Options) -> tuple[float, int]:
    """Median milliseconds of `runs` analyses, and the number of findings."""
    assert comp.compiled is not None and comp.ir is not None and comp.tree is not None
    times = []
    found = 0
    for _ in range(runs):
        check = deciders(comp.compiled)
        t0 = time.perf_counter()
        findings = analyze(comp.ir, comp.tree, options=options, locator=locator(comp.checked),
                           deciders=check)
        times.append((time.perf_counter() - t0) * 1000)
        found = len(findings)
    return statistics.median(times), found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--conflicts", action="store_true", help="also look for W0507")
    parser.add_argument("--solver", choices=["none", "z3"], default="none",
                        help="with z3: also report the solver's queries and the slowest one "
                        "against --timeout-ms (A-AC4)")
    parser.add_argument("--timeout-ms", type=int, default=2000)
    args = parser.parse_args(argv)
    options = Options(conflicts=args.conflicts, solver=args.solver, timeout_ms=args.timeout_ms)
    rows: list[tuple[str, float, int, float]] = []
    total = 0.0
    for name in EXAMPLES:
        ms, n = time_one(_compile(name), args.runs, options)
        total += ms
        rows.append((f"examples/{name}", ms, n, 200))
    rows.append(("all examples", total, sum(r[2] for r in rows), 1000))
    ms, n = time_one(_compile("scale-1000", charter_source(1000)), max(1, args.runs // 2),
                     options)
    rows.append(("1,000 rules, one per tool", ms, n, 2000))
    ms, n = time_one(_compile("ten-1000", ten_tools(1000)), 1, options)
    rows.append(("1,000 rules on 10 tools", ms, n, 10000))
    if args.solver != "none":
        rows.clear()  # the solver's figure is the time per query, not per policy
        _solver_rows(options)
        return 0
    print("| policy | analyze (ms, median) | findings | target (ms) | within |")
    print("| --- | ---: | ---: | ---: | --- |")
    ok = True
    for label, ms, n, target in rows:
        within = ms <= target
        ok = ok and within
        print(f"| {label} | {ms:.1f} | {n} | {target:.0f} | {'yes' if within else 'NO'} |")
    return 0 if ok else 1


def _solver_rows(options: Options) -> None:
    """Every solver query the examples and the corpus ask, against the per-query timeout."""
    from charter.compiler.analysis import findings as findings_mod

    made: list[object] = []
    real = findings_mod._solver

    def spy(policy: object, opts: Options) -> object:
        solver = real(policy, opts)  # type: ignore[arg-type]
        made.append(solver)
        return solver

    findings_mod._solver = spy  # type: ignore[assignment]
    try:
        comps = [_compile(name) for name in EXAMPLES]
        comps += [_compile(p.stem, p.read_text()) for p in
                  sorted((ROOT / "tests" / "corpus" / "analysis").glob("*.agentpolicy"))]
        comps += [_compile(f"strings-{n}", string_policy(n)) for n in range(40)]
        for comp in comps:
            assert comp.ir is not None and comp.tree is not None
            analyze(comp.ir, comp.tree, options=options, locator=locator(comp.checked))
    finally:
        findings_mod._solver = real
    queries = sum(getattr(s, "queries", 0) for s in made)
    slowest = max((getattr(s, "slowest_ms", 0.0) for s in made), default=0.0)
    print("| policies | solver queries | slowest query (ms) | timeout (ms) | within |")
    print("| ---: | ---: | ---: | ---: | --- |")
    print(f"| {len(comps)} | {queries} | {slowest:.1f} | {options.timeout_ms} | "
          f"{'yes' if slowest <= options.timeout_ms else 'NO'} |")


if __name__ == "__main__":
    sys.exit(main())
