"""What one `charter hook` call costs: a fresh process per tool call, start to decision.

    python benchmarks/hook.py [--runs 21]
    python -m benchmarks.hook ...

Every row is a whole process (`python -m charter.cli hook ...` with a recorded Claude Code
event on stdin), timed from the parent around `subprocess.run`, so interpreter start-up is
included, as the host pays it. The rows run interleaved, round by round, in one process,
and each is reported as a median and as a ratio to the baseline: a Python process that only
prints a constant (`python -c "print('{}')"`), the floor any Python hook pays (the rows run
with `python -S` against the same without site). The policy is
`tests/hosts/policy` (12 rules). "warm" means the compiled-policy cache already holds the
policy's digest (every call but the first after an edit); "cold" compiles it in the call;
"thin hook" is `charter hook --server` posting to a warm `charter serve` on a Unix socket
(when the `serve` extra is installed).

Each row gives wall time (what the host waits) and the child's CPU time (what the call
costs; the steadier figure on a busy machine). A second table splits one warm call inside
the process, in CPU time: importing the hook, loading the cached policy (discovery, digest,
`Policy.loads`), opening the Guard over SQLite, deciding and answering.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
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
    expect: str = ""  # what the answer must hold (the row measures the decision it names)
    no_site: bool = False  # its ratio is to the baseline without site


HOOK = (sys.executable, "-m", "charter.cli", "hook", "claude-code")
#: The same interpreter without `site` (`-S`; the site-packages directories go on PYTHONPATH
#: instead): what start-up costs without the .pth files of this machine's install (an
#: editable install's finder, a certificate hook), which every process here pays and an
#: ordinary install does not.
NO_SITE = (sys.executable, "-S")


def rows(saved: Path, sock: Path | None) -> list[Row]:
    thin = (
        []
        if sock is None
        else [
            Row(
                "thin hook (--server) -> warm charter serve",
                (*HOOK, "--server", f"unix:{sock}"),
                "pre_allow",
            ),
        ]
    )
    return [
        Row("baseline: python -c \"print('{}')\"", (sys.executable, "-c", "print('{}')"), ""),
        Row("hook, warm cache, SQLite state: allow", (*HOOK, "--policy", str(POLICY)), "pre_allow"),
        Row("baseline without site: python -S -c ...", (*NO_SITE, "-c", "print('{}')"), ""),
        Row(
            "hook without site (-S): allow",
            (*NO_SITE, *HOOK[1:], "--policy", str(POLICY)),
            "pre_allow",
            no_site=True,
        ),
        Row(
            "hook, warm cache, SQLite state: deny",
            (*HOOK, "--policy", str(POLICY)),
            "pre_deny",
            expect='"permissionDecision":"deny"',
        ),
        Row(
            "hook, warm cache, SQLite state: redact",
            (*HOOK, "--policy", str(POLICY)),
            "pre_redact",
            expect='"updatedInput"',
        ),
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
        *thin,
    ]


def _env(tmp: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with .pyc files, as installed
    site_dirs = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), *site_dirs]),
        CHARTER_CACHE_DIR=str(cache),
        CHARTER_STATE=str(tmp / "state.db"),
        HOME=str(tmp),
    )
    return env


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _once(row: Row, tmp: Path, n: int) -> tuple[float, float]:
    cache = tmp / (f"cache-{n}" if row.fresh_cache else "cache")
    data = (SAMPLES / f"{row.stdin}.json").read_bytes() if row.stdin else b""
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run(
        row.argv, input=data, capture_output=True, env=_env(tmp, cache), cwd=tmp, check=False
    )
    elapsed = (time.perf_counter() - start) * 1e3
    used = (_cpu() - cpu) * 1e3
    if proc.returncode != 0:
        raise RuntimeError(f"{row.name}: exit {proc.returncode}: {proc.stderr.decode()}")
    if row.expect not in proc.stdout.decode():
        raise RuntimeError(f"{row.name}: expected {row.expect} in {proc.stdout.decode()}")
    return elapsed, used


_SPLIT = """\
import json, os, sys, time
t0 = time.process_time()
from charter.cli.hook_cache import load_cached
from charter.cli.hook_state import secret_for
from charter.hosts.approvals import PendingApprovals, SQLitePending
from charter.hosts.held import SQLiteHeld
from charter.hosts.hook import HookOptions, run_hook
from charter.runtime.guard import Guard
from charter.runtime.state.sqlite import SQLiteStore
from charter.stdlib.spec import use_prefilters
use_prefilters()  # as `charter hook` does
t1 = time.process_time()
policy = load_cached({policy!r}, os.environ["CHARTER_CACHE_DIR"], [])
t2 = time.process_time()
state = os.environ["CHARTER_STATE"]
guard = Guard(policy, state=SQLiteStore(state), secret=secret_for(state))
pending = PendingApprovals(guard, SQLitePending(state))
held = SQLiteHeld(state)
t3 = time.process_time()
answer = run_hook(HookOptions("claude-code"), open({sample!r}, "rb").read(),
                  lambda: (guard, pending, held))
t4 = time.process_time()
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


Samples = list[tuple[float, float]]  # (wall ms, child CPU ms) per call


def run(runs: int) -> tuple[list[tuple[Row, Samples]], list[list[float]]]:
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        saved = tmp / "policy.charter"
        subprocess.run(
            [*HOOK[:3], "compile", str(POLICY), "-o", str(saved)],
            check=True,
            env=_env(tmp, tmp / "cache"),
            capture_output=True,
        )
        server = _serve(tmp)
        try:
            table = rows(saved, tmp / "charter.sock" if server is not None else None)
            for row in table:
                _once(row, tmp, -1)  # warm-up: .pyc files, the cache, the state file
            samples: dict[str, Samples] = {row.name: [] for row in table}
            for n in range(runs):
                for row in table:
                    samples[row.name].append(_once(row, tmp, n))
            split = [_split(tmp) for _ in range(runs)]
            return [(row, samples[row.name]) for row in table], split
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)


def _serve(tmp: Path) -> subprocess.Popen[bytes] | None:
    """A warm `charter serve` on a Unix socket for the thin-hook row (None without the
    `serve` extra)."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return None
    sock = tmp / "charter.sock"
    proc = subprocess.Popen(
        [
            *HOOK[:3],
            "serve",
            str(POLICY),
            "--listen",
            f"unix:{sock}",
            "--state",
            f"sqlite:{tmp / 'serve.db'}",
        ],
        env=_env(tmp, tmp / "cache"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        if sock.exists():
            time.sleep(0.2)
            return proc
        time.sleep(0.1)
    proc.kill()
    return None


def render(results: list[tuple[Row, Samples]], split: list[list[float]]) -> str:
    """Wall time (what the host waits) and the child's CPU time (what the call costs; the
    figure to read on a busy machine), both as medians and as ratios to the baseline."""
    bases = {}
    for row, times in results:
        if row.name.startswith("baseline"):
            bases["-S" in row.argv] = (
                statistics.median(w for w, _ in times),
                statistics.median(c for _, c in times),
            )
    lines = [
        f"{'fresh process, start to exit':<48} {'wall':>8} {'p90':>8} {'x base':>7}"
        f" {'cpu':>8} {'x base':>7}"
    ]
    for row, times in results:
        walls = sorted(w for w, _ in times)
        wall, cpu = statistics.median(walls), statistics.median(c for _, c in times)
        base_wall, base_cpu = bases["-S" in row.argv]
        p90 = walls[int(0.9 * (len(walls) - 1))]
        lines.append(
            f"{row.name:<48} {wall:>6.1f}ms {p90:>6.1f}ms {wall / base_wall:>6.2f}x"
            f" {cpu:>6.1f}ms {cpu / base_cpu:>6.2f}x"
        )
    lines.append("")
    lines.append(f"{'inside one warm call (CPU)':<48} {'median':>8}")
    for i, name in enumerate(SPLIT_NAMES):
        lines.append(f"{name:<48} {statistics.median(s[i] for s in split):>6.1f}ms")
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
