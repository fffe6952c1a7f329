"""What one `charter hook` call costs: a fresh process per tool call, start to exit.

    python benchmarks/hooks.py [--runs 21]
    python -m benchmarks.hooks ...

Every row is a whole process (`python -m charter.cli hook ...` with a recorded Claude Code
event on stdin), timed from the parent around `subprocess.run`, so interpreter start-up is
included, as the host pays it. The rows run interleaved, round by round, in one process,
and each is reported as a median and as a ratio to the baseline: a Python process that only
prints a constant (`python -c "print('{}')"`), the floor any Python hook pays. The policy is
`tests/hosts/policy` (12 rules). "warm" means the compiled-policy cache already holds the
policy's digest (every call but the first after an edit); "cold" compiles it in the call.

A second table splits one warm call inside the process: importing the hook, loading the
cached policy (discovery, digest, `Policy.loads`), opening the Guard over SQLite, deciding.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "tests" / "hosts" / "policy"
SAMPLES = ROOT / "tests" / "hosts" / "samples" / "claude-code"


@dataclass(frozen=True)
class Row:
    name: str
    argv: tuple[str, ...]
    stdin: str  # sample name, or "" for none
    fresh_cache: bool = False  # a new, empty cache directory for every call


HOOK = (sys.executable, "-m", "charter.cli", "hook", "claude-code")


def rows(saved: Path) -> list[Row]:
    return [
        Row("baseline: python -c \"print('{}')\"", (sys.executable, "-c", "print('{}')"), ""),
        Row("hook, warm cache, SQLite state: allow", (*HOOK, "--policy", str(POLICY)), "pre_allow"),
        Row("hook, warm cache, SQLite state: deny", (*HOOK, "--policy", str(POLICY)), "pre_deny"),
        Row(
            "hook, warm cache, --state memory: allow",
            (*HOOK, "--policy", str(POLICY), "--state", "memory"),
            "pre_allow",
        ),
        Row(
            "hook, saved policy file (charter compile -o)",
            (*HOOK, "--policy", str(saved)),
            "pre_allow",
        ),
        Row(
            "hook, event it does not decide (SessionStart)",
            (*HOOK, "--policy", str(POLICY)),
            "session_start",
        ),
        Row(
            "hook, cold cache (compiles in the call)",
            (*HOOK, "--policy", str(POLICY)),
            "pre_allow",
            fresh_cache=True,
        ),
    ]


def _env(tmp: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with .pyc files, as installed
    env.update(
        PYTHONPATH=str(ROOT),
        CHARTER_CACHE_DIR=str(cache),
        CHARTER_STATE=str(tmp / "state.db"),
        HOME=str(tmp),
    )
    return env


def _once(row: Row, tmp: Path, n: int) -> float:
    cache = tmp / (f"cache-{n}" if row.fresh_cache else "cache")
    data = (SAMPLES / f"{row.stdin}.json").read_bytes() if row.stdin else b""
    start = time.perf_counter()
    proc = subprocess.run(
        row.argv, input=data, capture_output=True, env=_env(tmp, cache), cwd=tmp, check=False
    )
    elapsed = (time.perf_counter() - start) * 1e3
    if proc.returncode != 0:
        raise RuntimeError(f"{row.name}: exit {proc.returncode}: {proc.stderr.decode()}")
    return elapsed


_SPLIT = """\
import json, os, sys, time
t0 = time.perf_counter()
from charter.cli.hook_cache import load_cached
from charter.cli.hook_state import secret_for
from charter.hosts.approvals import PendingApprovals, SQLitePending
from charter.hosts.hook import HookOptions, run_hook
from charter.runtime.guard import Guard
from charter.runtime.state.sqlite import SQLiteStore
from pathlib import Path
t1 = time.perf_counter()
policy = load_cached(Path({policy!r}), Path(os.environ["CHARTER_CACHE_DIR"]), [])
t2 = time.perf_counter()
state = Path(os.environ["CHARTER_STATE"])
guard = Guard(policy, state=SQLiteStore(state), secret=secret_for(state))
pending = PendingApprovals(guard, SQLitePending(state))
t3 = time.perf_counter()
answer = run_hook(HookOptions("claude-code"), open({sample!r}, "rb").read(),
                  lambda: (guard, pending))
t4 = time.perf_counter()
print(json.dumps([(t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3]))
"""
SPLIT_NAMES = (
    "import the hook modules",
    "load the cached policy",
    "open Guard + SQLite",
    "decide and answer",
)


def _split(tmp: Path) -> list[float]:
    code = _SPLIT.format(policy=str(POLICY), sample=str(SAMPLES / "pre_allow.json"))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(tmp, tmp / "cache"),
        cwd=tmp,
        check=True,
    )
    parts: list[float] = json.loads(out.stdout.strip().splitlines()[-1])
    return parts


def run(runs: int) -> tuple[list[tuple[Row, list[float]]], list[list[float]]]:
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        saved = tmp / "policy.charter"
        subprocess.run(
            [*HOOK[:3], "compile", str(POLICY), "-o", str(saved)],
            check=True,
            env=_env(tmp, tmp / "cache"),
            capture_output=True,
        )
        table = rows(saved)
        for row in table:
            _once(row, tmp, -1)  # warm-up: .pyc files, the cache, the state file
        samples: dict[str, list[float]] = {row.name: [] for row in table}
        for n in range(runs):
            for row in table:
                samples[row.name].append(_once(row, tmp, n))
        split = [_split(tmp) for _ in range(runs)]
        return [(row, samples[row.name]) for row in table], split


def render(results: list[tuple[Row, list[float]]], split: list[list[float]]) -> str:
    base = statistics.median(results[0][1])
    lines = [f"{'fresh process, start to exit':<50} {'median':>9} {'p90':>9} {'x baseline':>11}"]
    for row, times in results:
        med = statistics.median(times)
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        lines.append(f"{row.name:<50} {med:>7.1f}ms {p90:>7.1f}ms {med / base:>10.2f}x")
    lines.append("")
    lines.append(f"{'inside one warm call':<50} {'median':>9}")
    for i, name in enumerate(SPLIT_NAMES):
        lines.append(f"{name:<50} {statistics.median(s[i] for s in split):>7.1f}ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="rounds (one call per row each)")
    args = parser.parse_args(argv)
    results, split = run(args.runs)
    print(render(results, split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
