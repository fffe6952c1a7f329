"""Cold start: what a fresh process pays before its first decision, in milliseconds.

    python benchmarks/cold_start.py [--runs 9] [--policy PATH] [--repo PATH] [--cpu]
    python -m benchmarks.cold_start ...

`--repo` measures another checkout of Charter (say, before a change) with this script.

Every figure comes from a new interpreter (`python -c`), timed inside it from just before the
first `import charter...` (interpreter start-up itself is left out), median of `--runs` runs
after one warm-up run that leaves the `.pyc` files in place, as an installed package has them.
Rows marked "whole process" are timed from outside instead: spawning the interpreter, its
start-up and exit included, as a hook pays it. The policy is the ~20-rule reference policy
(`benchmarks/reference/policy.agentpolicy`); the 1,000-rule one is `decide_policies`'s.

Wall-clock time is what a user waits for, but on a busy machine (CI, other jobs on the same
cores) it measures the scheduler too; `--cpu` reports the child's CPU time
(`time.process_time`) instead, which contention inflates far less. Compare runs in one mode.

Each row is a `Row`: setup code (not timed), the timed code, and a target if it has one. To add
a row (another way to load a saved policy, a host's start-up), append it to `ROWS`; the code
may use `POLICY` (the policy file's path), `SAVED` (that policy compiled and saved with
`Policy.save`), `SAVED_1000` (the 1,000-rule policy, saved), `REQUEST` (a request of the
reference set, as a dict) and `REQUEST_FILE` (that request as a JSON file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # `python benchmarks/cold_start.py`: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import decide_policies  # noqa: E402

POLICY = ROOT / "benchmarks" / "reference" / "policy.agentpolicy"
REQUESTS = ROOT / "benchmarks" / "reference" / "requests.json"


@dataclass(frozen=True)
class Row:
    name: str
    #: timed, in a fresh process
    code: str
    #: run before the clock starts (no charter imports here, or they are not counted)
    setup: str = ""
    target_ms: float | None = None
    #: timed from outside: `code` is the command line after `python`, start-up included
    whole: bool = False


ROWS: list[Row] = [
    Row("import charter", "import charter"),
    Row(
        "import the parser",
        "import charter.language.parser",
    ),
    Row(
        "first parse (imports included)",
        "from charter.language.parser import parse\n"
        "from charter.language.source import Source\n"
        "module, diagnostics = parse(Source('policy.agentpolicy', TEXT))\n"
        "assert not diagnostics, diagnostics",
        setup="TEXT = open(POLICY, encoding='utf-8').read()",
    ),
    Row(
        "first parse, parser already imported",
        "module, diagnostics = parse(Source('policy.agentpolicy', TEXT))\n"
        "assert not diagnostics, diagnostics",
        setup="TEXT = open(POLICY, encoding='utf-8').read()\n"
        "from charter.language.parser import parse\n"
        "from charter.language.source import Source",
    ),
    Row(
        "first compile (import charter included)",
        "import charter\npolicy = charter.compile(TEXT)",
        setup="TEXT = open(POLICY, encoding='utf-8').read()",
        target_ms=30,
    ),
    Row(
        "load saved policy + first decision (import included)",
        "import charter\n"
        "policy = charter.load_compiled(SAVED)\n"
        "decision = policy.decide(REQUEST)",
        target_ms=40,
    ),
    Row(
        "load saved 1,000-rule policy (imports excluded)",
        "policy = charter.load_compiled(SAVED_1000)",
        setup="import charter, charter.runtime.policy, charter.engine.tree",
        target_ms=5,
    ),
    Row(
        "load saved 1,000-rule policy again (same process)",
        "policy = charter.load_compiled(SAVED_1000)",
        setup="import charter, charter.runtime.policy, charter.engine.tree\n"
        "charter.load_compiled(SAVED_1000)",
        target_ms=5,
    ),
    Row(
        "load saved 1,000-rule policy + first decision",
        "policy = charter.load_compiled(SAVED_1000)\n"
        "decision = policy.decide(REQUEST)",
        setup="import charter, charter.runtime.policy, charter.engine.tree",
    ),
    Row(
        "`charter eval` on a saved policy (in process)",
        "from charter.cli.entry import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass",
        setup="sys.argv = ['charter', 'eval', SAVED, '-r', REQUEST_FILE, '--format', 'json']",
    ),
    Row(
        "`python -c pass` (whole process: the floor)",
        "-c pass",
        whole=True,
    ),
    Row(
        "`charter eval` on a saved policy (whole process)",
        "-m charter.cli.entry eval {saved} -r {request_file} --format json",
        whole=True,
    ),
]

_CHILD = """\
import json, sys, time
POLICY, SAVED, SAVED_1000 = {policy!r}, {saved!r}, {saved_1000!r}
REQUEST, REQUEST_FILE = json.loads({request!r}), {request_file!r}
{setup}
_cpu, _start = time.process_time(), time.perf_counter()
{code}
_ms = (time.perf_counter() - _start) * 1e3
_cpu_ms = (time.process_time() - _cpu) * 1e3
print(json.dumps([_ms, _cpu_ms, "lark" in sys.modules]))
"""


class Files:
    """The files every row may use, made once per run."""

    def __init__(self, tmp: Path, policy: Path, request: str) -> None:
        self.policy = policy
        self.saved = tmp / "policy.compiled"
        self.saved_1000 = tmp / "policy-1000.compiled"
        self.request = request
        self.request_file = tmp / "request.json"
        self.request_file.write_text(request, encoding="utf-8")
        (tmp / "policy-1000.agentpolicy").write_text(
            decide_policies.charter_source(1_000), encoding="utf-8"
        )


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with .pyc files, as installed
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _once(row: Row, repo: Path, files: Files, cpu: bool) -> tuple[float, bool]:
    if row.whole:
        return _whole(row, repo, files, cpu), False
    code = _CHILD.format(
        policy=str(files.policy),
        saved=str(files.saved),
        saved_1000=str(files.saved_1000),
        request=files.request,
        request_file=str(files.request_file),
        setup=row.setup,
        code=row.code,
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(repo), cwd=repo
    )
    if out.returncode != 0:
        raise RuntimeError(f"{row.name}: {out.stderr.strip()}")
    ms, cpu_ms, lark = json.loads(out.stdout.strip().splitlines()[-1])
    return float(cpu_ms if cpu else ms), bool(lark)


def _whole(row: Row, repo: Path, files: Files, cpu: bool) -> float:
    args = row.code.format(saved=files.saved, request_file=files.request_file).split()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *args], capture_output=True, env=_env(repo), cwd=repo)
    ms = (time.perf_counter() - start) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"{row.name}: {out.stderr.decode(errors='replace').strip()}")
    if cpu:  # the child's user + system time, as the kernel accounts it
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return used * 1e3
    return ms


def _save(repo: Path, policy: Path, saved: Path) -> None:
    code = (
        "import charter, sys\n"
        f"charter.compile(open({str(policy)!r}, encoding='utf-8').read()).save({str(saved)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(repo), cwd=repo)


Result = tuple[Row, float, float, bool]


def run(
    runs: int = 9, policy: Path = POLICY, repo: Path = ROOT, cpu: bool = False
) -> list[Result]:
    """(row, median ms, min ms, whether Lark was imported) for every row of `ROWS`."""
    request = json.dumps(json.loads(REQUESTS.read_text(encoding="utf-8"))[0]["request"])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = Files(Path(tmp), policy, request)
        _save(repo, policy, files.saved)
        _save(repo, Path(tmp) / "policy-1000.agentpolicy", files.saved_1000)
        for row in ROWS:
            try:
                _once(row, repo, files, cpu)  # warm-up: .pyc files written
            except RuntimeError as err:  # say, a row for a command an older --repo lacks
                print(f"skipped: {err}", file=sys.stderr)
                results.append((row, math.nan, math.nan, False))
                continue
            samples = [_once(row, repo, files, cpu) for _ in range(runs)]
            times = [ms for ms, _ in samples]
            lark = any(loaded for _, loaded in samples)
            results.append((row, statistics.median(times), min(times), lark))
    return results


def render(results: list[Result]) -> str:
    lines = [f"{'fresh process':<54} {'median':>8} {'min':>8}  target"]
    for row, median, low, lark in results:
        if row.target_ms is None:
            verdict = ""
        else:
            verdict = f"< {row.target_ms:g} ms " + ("ok" if median < row.target_ms else "MISSED")
        if lark:
            verdict += " (imported Lark)"
        if math.isnan(median):
            lines.append(f"{row.name:<54} {'n/a':>8} {'n/a':>8}")
            continue
        lines.append(f"{row.name:<54} {median:>6.1f}ms {low:>6.1f}ms  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per row")
    parser.add_argument("--policy", type=Path, default=POLICY, help="the policy file")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the Charter checkout to time")
    parser.add_argument("--cpu", action="store_true", help="CPU time instead of wall-clock")
    args = parser.parse_args(argv)
    print(render(run(args.runs, args.policy.resolve(), args.repo.resolve(), args.cpu)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
