"""Live control (issue 16): what a `Live` handle costs, and reloads under load.

    python benchmarks/live.py [--quick] [--swaps N] [--processes N]
                              [--no-reload] [--no-kill] [--no-replay] [--no-gated]

1. Cost (L-AC4): `Policy.decide` vs `Live.decide` on the reference policy's requests
   (benchmarks/reference), and `Guard.check` vs `Live.check` on a MemoryStore, interleaved
   in one process, best of the rounds; then `Live.decide` with 100 kill switches that match
   none of the requests, and with a 5 % canary (a second version for 5 % of session ids).
2. Reload under load (L-AC1, L-AC2): 8 threads decide without pause while a writer edits a
   watched directory (a real `watchfiles` watcher, the gate with tests, no properties)
   `--swaps` times between two versions with disjoint rule ids, every fifth edit followed by
   a broken one (failing test, syntax error, truncated file). Counts decisions from a
   version that failed the gate and decisions whose rules mix versions (both must be 0),
   and reports file write -> version active (p50, p95). The deciding threads pause 0.1 ms
   every 400 decisions, as a host does between calls: 8 threads that never release the
   GIL leave the watcher's thread ~1/9 of the interpreter and reloads then take ~1.3 s.
   The gate alone on the example policies (`gate_times`); file write -> active with the
   full gate (properties) on the examples and with tests only on a 1,000-rule generated
   policy, and a restart with a broken source serving the last-known-good version
   (`gated_reloads`, `lkg_restart`; `--no-gated` skips both). Then L-AC3: one thread's
   decide p50/p99 idle and while another keeps reloading.
3. Kill switch propagation over a real Redis (L-AC5, `--no-kill` skips): `kill_propagation`.
4. `charter replay`'s report, records per second (R-AC3, `--no-replay` skips): `replay_rate`.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import charter  # noqa: E402
from charter.control import watch  # noqa: E402
from charter.runtime.guard import Guard  # noqa: E402
from charter.runtime.live import Live  # noqa: E402
from charter.runtime.state import MemoryStore  # noqa: E402

REFERENCE = Path(__file__).resolve().parent / "reference"


def _loop(fn: Callable[[Any], Any], reqs: list[Any], loops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(loops):
        for r in reqs:
            fn(r)
    return (time.perf_counter_ns() - start) / (loops * len(reqs)) / 1000


def compare(
    fns: dict[str, Callable[[Any], Any]], reqs: list[Any], rounds: int, loops: int
) -> dict[str, float]:
    """Best-of-rounds microseconds per call of each function, run interleaved."""
    best = {k: float("inf") for k in fns}
    gc.collect()
    gc.disable()
    try:
        for fn in fns.values():
            _loop(fn, reqs, max(1, loops // 10))  # warm the caches
        for _ in range(rounds):
            for k, fn in fns.items():
                best[k] = min(best[k], _loop(fn, reqs, loops))
    finally:
        gc.enable()
    return best


def cost(quick: bool) -> None:
    policy = charter.load(REFERENCE / "policy.agentpolicy")
    reqs = [r["request"] for r in json.loads((REFERENCE / "requests.json").read_text())]
    rounds, loops = (5, 200) if quick else (15, 2000)
    live = Live(policy)
    assert live.decide == policy.decide
    t = compare({"Policy.decide": policy.decide, "Live.decide": live.decide}, reqs, rounds, loops)
    print(
        f"idle      Policy.decide {t['Policy.decide']:.3f} us   Live.decide "
        f"{t['Live.decide']:.3f} us   ratio {t['Live.decide'] / t['Policy.decide']:.3f}"
    )
    guard = Guard(policy, state=MemoryStore())
    live_g = Live(policy, state=MemoryStore())
    t = compare({"Guard.check": guard.check, "Live.check": live_g.check}, reqs, rounds, loops // 20)
    print(
        f"idle      Guard.check   {t['Guard.check']:.3f} us   Live.check  "
        f"{t['Live.check']:.3f} us   ratio {t['Live.check'] / t['Guard.check']:.3f}"
    )
    kills = Live(policy)
    for i in range(100):
        kills.kill(f"nothing{i}.*", "bench")
    t = compare({"Policy.decide": policy.decide, "Live.decide": kills.decide}, reqs, rounds, loops)
    print(
        f"100 kills Policy.decide {t['Policy.decide']:.3f} us   Live.decide "
        f"{t['Live.decide']:.3f} us   +{t['Live.decide'] - t['Policy.decide']:.3f} us"
    )
    canary = Live(policy)
    canary.canary(charter.load(REFERENCE / "policy.agentpolicy"), 5.0)
    t = compare({"Policy.decide": policy.decide, "Live.decide": canary.decide}, reqs, rounds, loops)
    print(
        f"5% canary Policy.decide {t['Policy.decide']:.3f} us   Live.decide "
        f"{t['Live.decide']:.3f} us   +{t['Live.decide'] - t['Policy.decide']:.3f} us"
    )


# ── reload under load ────────────────────────────────────────────────────────

TESTS = (
    'test "x is allowed" {\n  call "x" {n: 1}\n  expect allow\n}\n'
    'test "y is denied" {\n  call "y" {n: 1}\n  expect deny\n}\n'
)


def version(tag: str, x_effect: str = "allow") -> str:
    return (
        f'policy "p"\ndefault deny\ntool "x" (n: int)\ntool "y" (n: int)\n'
        f'@id("{tag}-x")\n{x_effect} tool "x"\n'
        f'@id("{tag}-w")\nwarn tool "x" because "version {tag}"\n'
        f'@id("{tag}-y")\ndeny tool "y" because "version {tag}"\n'
    )


BAD = [
    version("c", x_effect="deny"),
    version("c")[:-5],
    version("c").replace("default deny", "default"),
]


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(".edit.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def reload_under_load(swaps: int, min_decisions: int) -> None:
    logging.getLogger("charter.live").setLevel(logging.CRITICAL)  # the rejected edits
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "policies"
        d.mkdir()
        file = d / "policy.agentpolicy"
        file.write_text(version("a"))
        (d / "policy_test.agentpolicy").write_text(TESTS)
        live = watch(
            d,
            state_dir=Path(tmp) / "state",
            properties=0,
            step_ms=10,
            debounce_ms=200,
            poll_interval_s=1.0,
        )
        good = {"a": live.active.digest}
        stop = threading.Event()
        totals: list[Counter[tuple[str, tuple[str, ...]]]] = []

        def decide() -> None:
            mine: Counter[tuple[str, tuple[str, ...]]] = Counter()
            totals.append(mine)
            x, y = {"tool": "x", "args": {"n": 1}}, {"tool": "y", "args": {"n": 1}}
            while not stop.is_set():
                for _ in range(200):
                    d1 = live.decide(x)
                    d2 = live.decide(y)
                    mine[(d1.policy.digest, d1.rules)] += 1  # type: ignore[union-attr]
                    mine[(d2.policy.digest, d2.rules)] += 1  # type: ignore[union-attr]
                time.sleep(0.0001)  # as a host between calls: lets the gate's thread run

        threads = [threading.Thread(target=decide) for _ in range(8)]
        for t in threads:
            t.start()
        latencies: list[float] = []
        bad_edits = 0
        start = time.perf_counter()
        i = 0
        while i < swaps or sum(sum(c.values()) for c in totals) < min_decisions:
            tag = "b" if i % 2 == 0 else "a"
            t0 = time.perf_counter()
            _replace(file, version(tag))
            target = good.get(tag)
            while (
                (live.active.digest != target) if target else (live.active.digest in good.values())
            ):
                time.sleep(0.001)
            good.setdefault(tag, live.active.digest)
            latencies.append(time.perf_counter() - t0)
            i += 1
            if i % 5 == 0:
                rejected = live.watcher.reloads_rejected
                _replace(file, BAD[bad_edits % len(BAD)])
                bad_edits += 1
                while live.watcher.reloads_rejected == rejected:
                    time.sleep(0.001)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        live.close()
    total: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for c in totals:
        total.update(c)
    tags = {v: k for k, v in good.items()}
    failing = sum(n for (dg, _), n in total.items() if dg not in tags)
    mixed = sum(
        n
        for (dg, rules), n in total.items()
        if dg in tags and not all(r.startswith(tags[dg] + "-") for r in rules)
    )
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"reload    {sum(total.values()):,} decisions in 8 threads, {i:,} swaps and "
        f"{bad_edits} rejected edits in {elapsed:.1f} s: {failing} from a failing "
        f"version, {mixed} mixed; write -> active p50 {statistics.median(ms):.0f} ms, "
        f"p95 {ms[int(len(ms) * 0.95) - 1]:.0f} ms"
    )


def p99_during_reload(n: int) -> None:
    """L-AC3: one thread times `n` single decisions (perf_counter_ns each) while nothing
    happens, then `n` more while another thread keeps editing the watched directory (each
    edit waits for its swap); p50 and p99 of both, and the swaps that happened meanwhile."""
    logging.getLogger("charter.live").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "policies"
        d.mkdir()
        file = d / "policy.agentpolicy"
        file.write_text(version("a"))
        (d / "policy_test.agentpolicy").write_text(TESTS)
        live = watch(d, state_dir=Path(tmp) / "state", properties=0, step_ms=10, debounce_ms=200)
        x = {"tool": "x", "args": {"n": 1}}

        def sample() -> list[int]:
            out = []
            clock = time.perf_counter_ns
            for _ in range(n):
                t0 = clock()
                live.decide(x)
                out.append(clock() - t0)
            return sorted(out)

        gc.collect()
        idle = sample()
        stop = threading.Event()
        swaps = [0]

        def edit() -> None:
            i = 0
            while not stop.is_set():
                before = live.active.generation
                _replace(file, version("b" if i % 2 == 0 else "a"))
                while live.active.generation == before and not stop.is_set():
                    time.sleep(0.001)
                swaps[0] += 1
                i += 1

        writer = threading.Thread(target=edit)
        writer.start()
        time.sleep(0.2)
        busy = sample()
        stop.set()
        writer.join()
        live.close()

    def pct(xs: list[int], q: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * q))] / 1000

    print(
        f"p99       idle p50 {pct(idle, 0.5):.2f} us p99 {pct(idle, 0.99):.2f} us; during "
        f"{swaps[0]} reloads p50 {pct(busy, 0.5):.2f} us p99 {pct(busy, 0.99):.2f} us "
        f"({pct(busy, 0.99) / pct(idle, 0.99):.2f}x)"
    )


def gate_times() -> None:
    """L-AC2's gate alone on the example policies: compile + tests, with and without
    properties (25 examples each), median of 3 (`charter.control.run_gate`)."""
    from charter.control.gate import run_gate

    root = Path(__file__).resolve().parent.parent / "examples"
    for d in ("support", "finance", "coding"):
        cells = []
        for props in (25, 0):
            runs = [run_gate(root / d, properties=props) for _ in range(3)]
            assert all(r.ok for r in runs), runs[0].reason
            cells.append(f"{statistics.median(r.duration_ms for r in runs):.0f} ms")
        print(f"gate      examples/{d}: with properties {cells[0]}, tests only {cells[1]}")


def _edit_until_active(live: Live, file: Path, edits: int) -> list[float]:
    """Write -> active times (ms, sorted) of `edits` edits of `file` (a new comment line
    each: a new source digest, the same rules), each awaited before the next."""
    base = file.read_text()
    ms = []
    for i in range(edits):
        before = live.active.digest
        t0 = time.perf_counter()
        _replace(file, f"{base}\n# edit {i}\n")
        deadline = t0 + 60
        while live.active.digest == before:
            if time.perf_counter() > deadline:
                raise SystemExit(f"{file}: edit {i} not active after 60 s")
            time.sleep(0.001)
        ms.append((time.perf_counter() - t0) * 1000)
    return sorted(ms)


def _p95(ms: list[float]) -> float:
    return ms[max(0, int(len(ms) * 0.95 + 0.5) - 1)]


def gated_reloads(edits: int) -> None:
    """L-AC2 end to end: a file write -> the new version active, through a real `watchfiles`
    watcher and a state dir, with the full gate (compile + tests + 2 properties x 25
    examples) on copies of examples/support, finance and coding, and with tests only on a
    1,000-rule generated policy (benchmarks/scaling.py's rules, two tests); the watcher's
    settings as in the reload row (debounce 200 ms, step 10 ms)."""
    import shutil

    from benchmarks.scaling import charter_source

    logging.getLogger("charter.live").setLevel(logging.CRITICAL)
    root = Path(__file__).resolve().parent.parent / "examples"
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "generated"
        big.mkdir()
        (big / "policy.agentpolicy").write_text(charter_source(1000))
        (big / "policy_test.agentpolicy").write_text(
            'test "tool_7 small" {\n  call "tool_7" {amount: 3}\n  expect allow\n}\n'
            'test "tool_7 large" {\n  call "tool_7" {amount: 9}\n  expect deny\n}\n'
        )
        cases = [(f"examples/{d}", root / d, 25) for d in ("support", "finance", "coding")]
        cases.append(("1,000-rule generated, tests only", big, 0))
        for label, src, props in cases:
            d = Path(tmp) / "w" / src.name
            shutil.copytree(src, d)
            live = watch(
                d,
                state_dir=Path(tmp) / "state" / src.name,
                properties=props,
                step_ms=10,
                debounce_ms=200,
                poll_interval_s=1.0,
            )
            try:
                ms = _edit_until_active(live, d / "policy.agentpolicy", edits)
            finally:
                live.close()
            print(
                f"gated     {label}: write -> active p50 {statistics.median(ms):.0f} ms, "
                f"p95 {_p95(ms):.0f} ms, max {ms[-1]:.0f} ms ({edits} edits"
                f"{', properties 25' if props else ''})"
            )


RESTART = """
import sys, time
t0 = time.perf_counter()
from charter.control import watch
t1 = time.perf_counter()
live = watch(sys.argv[1], state_dir=sys.argv[2], start=False)
decision = live.decide({"tool": "kb.article.get", "args": {"id": "KB-1"}})
t2 = time.perf_counter()
assert live.active.actor == "last-known-good", live.active.actor
assert live.status().state == "DEGRADED", live.status().state
print(f"{(t1 - t0) * 1000:.1f} {(t2 - t1) * 1000:.1f} {decision.effect}", flush=True)
"""


def lkg_restart(restarts: int) -> None:
    """L-AC6: a host restarts (a new process) while its policy source is broken (the
    policy file cut short): `watch` serves the last-known-good version from the state dir.
    Timed in the new process from the `watch` call to its first decision, and apart the
    import of `charter.control` before it; each example policy, `restarts` times."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parent.parent / "examples"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("support", "finance", "coding"):
            d, state = Path(tmp) / name, Path(tmp) / f"{name}-state"
            shutil.copytree(root / name, d)
            watch(d, state_dir=state, start=False).close()  # the LKG it keeps
            file = d / "policy.agentpolicy"
            _replace(file, file.read_text()[: len(file.read_text()) // 2])
            serve, imports = [], []
            for _ in range(restarts):
                out = subprocess.run(
                    [sys.executable, "-c", RESTART, str(d), str(state)],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                ).stdout.split()
                imports.append(float(out[0]))
                serve.append(float(out[1]))
            print(
                f"restart   examples/{name}, broken source: watch -> LKG serving, first "
                f"decision {statistics.median(serve):.0f} ms (max {max(serve):.0f} ms; "
                f"import of charter.control before it {statistics.median(imports):.0f} ms; "
                f"{restarts} restarts)"
            )


def file_kill(kills: int) -> None:
    """L-AC5's file control on one host: two handles (one process, each with its own
    `FileControl` watcher thread on the same `control.json`); a kill through one, timed
    until the other's first deny; median and max over `kills` rounds."""
    from charter.runtime.live_file import FileControl

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "control.json"
        a, b = (
            Live(charter.compile('policy "k"\ndefault allow\n')),
            Live(charter.compile('policy "k"\ndefault allow\n')),
        )
        for live in (a, b):
            FileControl(path, poll_interval_s=1.0).attach(live)
        ms = []
        for r in range(kills):
            req = {"tool": f"t{r}.send", "args": {}}
            time.sleep(0.05)
            t0 = time.perf_counter()
            a.kill(f"t{r}.*", "bench")
            while b.decide(req).allowed:
                time.sleep(0.0002)
            ms.append((time.perf_counter() - t0) * 1000)
        a.close()
        b.close()
    ms.sort()
    print(
        f"kill      file control    2 handles x {kills} kills: write -> first deny median "
        f"{statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--swaps", type=int, default=None)
    ap.add_argument("--no-reload", action="store_true")
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--no-replay", action="store_true")
    ap.add_argument("--no-gated", action="store_true")
    args = ap.parse_args()
    cost(args.quick)
    gate_times()
    if not args.no_gated:
        gated_reloads(2 if args.quick else 6)
        lkg_restart(1 if args.quick else 3)
    if not args.no_reload:
        swaps = args.swaps if args.swaps is not None else (20 if args.quick else 1000)
        reload_under_load(swaps, 10_000 if args.quick else 1_000_000)
        p99_during_reload(50_000 if args.quick else 2_000_000)
    if not args.no_kill:
        kill_propagation(args.processes, 5 if args.quick else 20)
        file_kill(5 if args.quick else 20)
    if not args.no_replay:
        replay_rate(2_000 if args.quick else 20_000)


CHILD = """
import logging, sys, time
import charter
from charter.runtime.live import Live
from charter.runtime.live_redis import RedisControl
url, prefix, rounds, poll = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
logging.getLogger("charter.live").setLevel(logging.ERROR)  # the dropped subscriptions
live = Live(charter.compile('policy "k"\\ndefault allow\\n'))
control = RedisControl(url, prefix=prefix, poll_interval_s=poll).attach(live)
control.synced.wait(30)
print("ready", flush=True)
for r in range(rounds):
    req = {"tool": f"t{r}.send", "args": {}}
    while live.decide(req).allowed:
        time.sleep(0.0002)
    print(r, time.time(), flush=True)
"""


def kill_propagation(processes: int, kills: int, poll_s: float = 1.0) -> None:
    """L-AC5: `processes` subprocesses, each a `Live` with a `RedisControl` (poll
    `poll_s`), decide in a loop (a 0.2 ms pause between decisions); a writer in this
    process kills one tool per round; each process reports the wall-clock time of its first
    deny; write -> first deny in every process, median and max over all rounds and
    processes. Second row: the same after `CLIENT KILL TYPE pubsub` right before each
    kill, so only the backstop poll (and the resubscription) can carry it."""
    import subprocess
    import uuid

    from benchmarks.guard import redis_server
    from charter.runtime.live import KillSwitch
    from charter.runtime.live_redis import RedisControl

    with redis_server() as url:
        if url is None:
            print("kill      skipped: no redis-server on PATH")
            return
        import redis

        admin = redis.Redis.from_url(url)
        for label, drop in (("pub/sub", False), ("pub/sub killed", True)):
            prefix = f"bench-{uuid.uuid4().hex}:"
            root = Path(__file__).resolve().parent.parent
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", CHILD, url, prefix, str(kills), str(poll_s)],
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=root,
                )
                for _ in range(processes)
            ]
            for p in procs:
                assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            writer = RedisControl(url, prefix=prefix)
            ms: list[float] = []
            for r in range(kills):
                time.sleep(0.05)
                if drop:
                    admin.client_kill_filter(_type="pubsub")
                t0 = time.time()
                writer.kill(KillSwitch(f"k{r}", (f"t{r}.*",), "bench"))
                for p in procs:
                    assert p.stdout is not None
                    _, at = p.stdout.readline().split()
                    ms.append((float(at) - t0) * 1000)
            for p in procs:
                p.wait(timeout=30)
            ms.sort()
            print(
                f"kill      {label:15} {processes} processes x {kills} kills, poll "
                f"{poll_s:g} s: write -> first deny median {statistics.median(ms):.1f} ms, "
                f"max {ms[-1]:.1f} ms"
            )
        admin.close()


def replay_rate(n: int) -> None:
    """R-AC3: `charter replay`'s report (`runtime.replay_report.report`, first order, with
    the hash key) over `n` records of the replay workload (benchmarks/replay_workload.py),
    against the policy that wrote them and against an edit (every web.fetch denied); CPU
    time of this thread (`time.thread_time`), so other processes on the machine do not
    count; best of 3. Reading the log (`audit.read`) is timed apart and with the report."""
    from benchmarks import replay_workload as workload
    from charter.runtime import audit
    from charter.runtime.replay_report import report

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"
        workload.write_log(path, n)
        same = workload.policy()
        edit = charter.compile(
            workload.POLICY + 'deny tool "web.fetch" because "no web"\n', "workload.agentpolicy"
        )

        def best(fn: Callable[[], Any]) -> tuple[Any, float]:
            times = []
            for _ in range(3):
                t0 = time.thread_time()
                out = fn()
                times.append(time.thread_time() - t0)
            return out, min(times)

        records, t_read = best(lambda: list(audit.read(path)))
        decisions = sum(1 for r in records if r.get("event") is None)
        for label, policy in (("same policy", same), ("edited", edit)):
            rep, t_rep = best(lambda p=policy: report(records, p, hash_key=workload.HASH_KEY))
            _, t_all = best(lambda p=policy: report(path, p, hash_key=workload.HASH_KEY))
            print(
                f"replay    {label:11} {decisions:,} records: report {decisions / t_rep:,.0f}"
                f" records/s, with reading the log {decisions / t_all:,.0f} records/s "
                f"({rep.tally.same:,} unchanged, {rep.tally.changed:,} changed)"
            )
        print(f"replay    audit.read alone {len(records) / t_read:,.0f} records/s")


if __name__ == "__main__":
    main()
