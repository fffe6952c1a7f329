"""What one `charter hook` call costs: a fresh process per tool call, start to decision.

    python benchmarks/hook.py [--runs 21]
    python -m benchmarks.hook ...

Every row is a whole process with a recorded Claude Code event on stdin, timed from the
parent around `subprocess.run`, so interpreter start-up is included, as the host pays it.
"installed hook" rows run the command `charter hook install` writes: this interpreter under
`-I -S` with its launcher (charter/cli/hook_launcher.py); one row runs `python -m
charter.cli hook` instead, through `site` and this machine's `.pth` files. The rows run
interleaved, round by round, in one process, and each is reported as a median and as
ratios to two baselines, Python processes that only print a constant: `python -c
"print('{}')"` (x base) and the same under `-IS` (x -IS), the floor of the launcher's start.
The policy is `tests/hosts/policy` (12 rules). "warm" means the compiled-policy cache
already holds the policy's digest (every call but the first after an edit); "cold"
compiles it in the call; "thin hook" is `charter hook --server` posting to a warm `charter
serve` on a Unix socket (when the `serve` extra is installed).

Each row gives wall time (what the host waits) and the child's CPU time (what the call
costs; the steadier figure on a busy machine). A second table splits one warm call inside
a process started with `-IS`, in CPU time: importing msgspec (and the standard library it
loads), importing the rest of the hook, loading the cached policy (discovery, digest,
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


HOOK = (sys.executable, "-m", "charter.cli", "hook", "claude-code")
#: The interpreter without `site` and isolated, as the command `charter hook install` writes
#: runs it (`python -IS <launcher>`, charter/cli/hook_launcher.py).
ISOLATED = (sys.executable, "-IS")


def rows(saved: Path, sock: Path | None, launcher: tuple[str, ...]) -> list[Row]:
    """`launcher`: the installed command, up to the agent's name."""
    installed = (*launcher, "claude-code")
    thin = (
        []
        if sock is None
        else [
            Row(
                "thin hook (--server) -> warm charter serve",
                (*installed, "--server", f"unix:{sock}"),
                "pre_allow",
            ),
        ]
    )
    return [
        Row("baseline: python -c \"print('{}')\"", (sys.executable, "-c", "print('{}')"), ""),
        Row("baseline: python -IS -c \"print('{}')\"", (*ISOLATED, "-c", "print('{}')"), ""),
        Row(
            "installed hook, warm cache, SQLite: allow",
            (*installed, "--policy", str(POLICY)),
            "pre_allow",
        ),
        Row(
            "installed hook, warm cache, SQLite: deny",
            (*installed, "--policy", str(POLICY)),
            "pre_deny",
            expect='"permissionDecision":"deny"',
        ),
        Row(
            "installed hook, warm cache, SQLite: redact",
            (*installed, "--policy", str(POLICY)),
            "pre_redact",
            expect='"updatedInput"',
        ),
        Row(
            "installed hook, warm cache, --state memory: allow",
            (*installed, "--policy", str(POLICY), "--state", "memory"),
            "pre_allow",
        ),
        Row(
            "installed hook, saved policy (charter compile -o)",
            (*installed, "--policy", str(saved)),
            "pre_allow",
        ),
        Row(
            "installed hook, event it does not decide",
            (*installed, "--policy", str(POLICY)),
            "session_start",
        ),
        Row(
            "installed hook, cold cache (compiles in the call)",
            (*installed, "--policy", str(POLICY)),
            "pre_allow",
            fresh_cache=True,
        ),
        Row(
            "python -m charter.cli hook (site): allow",
            (*HOOK, "--policy", str(POLICY)),
            "pre_allow",
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
import sys
sys.path.extend({paths!r})
import json, os, time
t0 = time.process_time()
from charter.cli.hook_msgspec import import_msgspec
import_msgspec()  # as `charter hook` does
t1 = time.process_time()
import charter.cli.hook_cache as hook_cache
from charter.cli.hook import _open, _quick
# what `_open` imports when it runs, imported here to count as imports, not as its work
from charter.hosts.approvals import PendingApprovals, SQLitePending
from charter.hosts.held import SQLiteHeld
from charter.hosts.hook import HookOptions, run_hook
from charter.runtime.guard import Guard
from charter.runtime.state.sqlite import SQLiteStore
from charter.stdlib.spec import use_prefilters
use_prefilters()  # as `charter hook` does
t2 = time.process_time()
load_cached, loading = hook_cache.load_cached, []
def timed(*args):  # the policy's load, inside the hook's own `_open`
    start = time.process_time()
    policy = load_cached(*args)
    loading.append(time.process_time() - start)
    return policy
hook_cache.load_cached = timed
opened = _open(_quick(["claude-code", "--policy", {policy!r}]), os.environ, [])
t4 = time.process_time()
t3 = t2 + loading[0]
answer = run_hook(HookOptions("claude-code"), open({sample!r}, "rb").read(), lambda: opened)
t5 = time.process_time()
print(json.dumps([(b - a) * 1e3 for a, b in zip([t0, t1, t2, t3, t4], [t1, t2, t3, t4, t5])]))
"""
SPLIT_NAMES = (
    "import msgspec (typing, enum, re, uuid, decimal...)",
    "import the rest of the hook",
    "load the cached policy",
    "open Guard + SQLite",
    "decide and answer",
)


def _split(tmp: Path, paths: list[str]) -> list[float]:
    """One warm call's parts, in a process started as the launcher starts it (-IS)."""
    code = _SPLIT.format(paths=paths, policy=str(POLICY), sample=str(SAMPLES / "pre_allow.json"))
    out = subprocess.run(
        [*ISOLATED, "-c", code],
        capture_output=True,
        text=True,
        env=_env(tmp, tmp / "cache"),
        cwd=tmp,
        check=True,
    )
    parts: list[float] = json.loads(out.stdout.strip().splitlines()[-1])
    return parts


_LAUNCHER = """\
import json, sys
from charter.cli.hook_launcher import hook_command, search_path, write_launcher
print(json.dumps([hook_command(write_launcher(sys.argv[1])), search_path()]))
"""


def _launcher(tmp: Path) -> tuple[tuple[str, ...], list[str]]:
    """The command `charter hook install` writes (its launcher written under `tmp` by a
    process importing this tree, as an install does), and the launcher's search path."""
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(tmp / "bin")],
        capture_output=True,
        text=True,
        env=_env(tmp, tmp / "cache"),
        cwd=tmp,
        check=True,
    )
    command, paths = json.loads(out.stdout)
    return tuple(command), paths


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
        launcher, paths = _launcher(tmp)
        server = _serve(tmp)
        try:
            table = rows(saved, tmp / "charter.sock" if server is not None else None, launcher)
            for row in table:
                _once(row, tmp, -1)  # warm-up: .pyc files, the cache, the state file
            samples: dict[str, Samples] = {row.name: [] for row in table}
            for n in range(runs):
                for row in table:
                    samples[row.name].append(_once(row, tmp, n))
            split = [_split(tmp, paths) for _ in range(runs)]
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
    figure to read on a busy machine), both as medians and as ratios to the baselines: a
    Python process that prints a constant, started plainly and started as the launcher is."""
    medians = {
        row.name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
        for row, t in results
    }
    base, isolated = (medians[row.name] for row, _ in results[:2])
    lines = [
        f"{'fresh process, start to exit':<50} {'wall':>8} {'p90':>8} {'x base':>7}"
        f" {'x -IS':>7} {'cpu':>8} {'x base':>7}"
    ]
    for row, times in results:
        walls = sorted(w for w, _ in times)
        wall, cpu = medians[row.name]
        p90 = walls[int(0.9 * (len(walls) - 1))]
        lines.append(
            f"{row.name:<50} {wall:>6.1f}ms {p90:>6.1f}ms {wall / base[0]:>6.2f}x"
            f" {wall / isolated[0]:>6.2f}x {cpu:>6.1f}ms {cpu / base[1]:>6.2f}x"
        )
    lines.append("")
    lines.append(f"{'inside one warm call, started with -IS (CPU)':<50} {'median':>8}")
    for i, name in enumerate(SPLIT_NAMES):
        lines.append(f"{name:<50} {statistics.median(s[i] for s in split):>6.1f}ms")
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
