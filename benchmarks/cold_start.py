"""Cold start: what a fresh process pays before its first decision, in milliseconds.

    python benchmarks/cold_start.py [--runs 9] [--policy PATH] [--repo PATH]
    python -m benchmarks.cold_start ...

`--repo` measures another checkout of Charter (say, before a change) with this script.

Every figure comes from a new interpreter (`python -c`), timed inside it from just before the
first `import charter...` (interpreter start-up itself is left out), median of `--runs` runs
after one warm-up run that leaves the `.pyc` files in place, as an installed package has them.
The policy is the ~20-rule reference policy (`benchmarks/reference/policy.agentpolicy`).

Each row is a `Row`: setup code (not timed), the timed code, and a target if it has one. To add
a row (another way to load a saved policy, a host's start-up), append it to `ROWS`; the code
may use `POLICY` (the policy file's path), `SAVED` (that policy compiled and saved with
`Policy.save`) and `REQUEST` (a request of the reference set, as a dict).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
]

_CHILD = """\
import json, sys, time
POLICY, SAVED, REQUEST = {policy!r}, {saved!r}, json.loads({request!r})
{setup}
_start = time.perf_counter()
{code}
_ms = (time.perf_counter() - _start) * 1e3
print(json.dumps([_ms, "lark" in sys.modules]))
"""


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with .pyc files, as installed
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _once(row: Row, repo: Path, policy: Path, saved: Path, request: str) -> tuple[float, bool]:
    code = _CHILD.format(
        policy=str(policy),
        saved=str(saved),
        request=request,
        setup=row.setup,
        code=row.code,
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(repo), cwd=repo
    )
    if out.returncode != 0:
        raise RuntimeError(f"{row.name}: {out.stderr.strip()}")
    ms, lark = json.loads(out.stdout.strip().splitlines()[-1])
    return float(ms), bool(lark)


def _save(repo: Path, policy: Path, saved: Path) -> None:
    code = (
        "import charter, sys\n"
        f"charter.compile(open({str(policy)!r}, encoding='utf-8').read()).save({str(saved)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(repo), cwd=repo)


Result = tuple[Row, float, float, bool]


def run(runs: int = 9, policy: Path = POLICY, repo: Path = ROOT) -> list[Result]:
    """(row, median ms, min ms, whether Lark was imported) for every row of `ROWS`."""
    request = json.dumps(json.loads(REQUESTS.read_text(encoding="utf-8"))[0]["request"])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "policy.compiled"
        _save(repo, policy, saved)
        for row in ROWS:
            _once(row, repo, policy, saved, request)  # warm-up: .pyc files written
            samples = [_once(row, repo, policy, saved, request) for _ in range(runs)]
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
        lines.append(f"{row.name:<54} {median:>6.1f}ms {low:>6.1f}ms  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per row")
    parser.add_argument("--policy", type=Path, default=POLICY, help="the policy file")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the Charter checkout to time")
    args = parser.parse_args(argv)
    print(render(run(args.runs, args.policy.resolve(), args.repo.resolve())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
