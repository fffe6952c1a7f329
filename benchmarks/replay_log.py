"""What the decision log's replay block costs the Guard, and how fast records replay.

    python benchmarks/replay_log.py [--quick] [--gigabytes N]

The same requests of the replay workload (`benchmarks/replay_workload.py`: budgets, limits,
labels, approvals, masked e-mails and cards, tool objects) go through fresh Guards over a
`MemoryStore`, one configuration after the other in each round, best of the rounds:

- `no log`: `Guard(policy)`;
- `log`: `AuditLog(path, replay=False)`, the record as it was before schema v1;
- `log + replay`: the default `AuditLog(path)`, with the replay block;
- `log + replay + hashes`: `AuditLog(path, hash_key=...)`, keyed hashes of masked values.

For the example policies, `AuditLog.write` is timed two ways: alone over the records a
Guard handed it (`write us`: the same records written again and again, so the record's
masking runs hot in the CPU's caches and predictors and anything else done in between
costs more than it would alone), and as a Guard calls it between its checks (`in Guard`:
each call timed in place, `thread_time_ns` less the timer's own cost), which is the cost a
host sees.

Prints microseconds per `check`, each row's ratio to `no log` and to `log`, the mean record
size, `AuditLog.write` alone with and without the block over the same records (R-L4 of
live-control-analysis.md: the block should add at most 25 % to it), and replayed records
per second (`charter.runtime.replay.replay_record`), and `charter replay`'s report over a
log file end to end (reading and decoding it included: R-AC3 of live-control-analysis.md
asks for 20,000 records/s first order on one core), beside reading the file alone.
Times are the thread's CPU time (`time.thread_time`), not wall time, so that other
processes on a shared machine do not inflate them (the log's `write(2)` is counted, the
disk's own work is not).

`--gigabytes N` also checks that the report streams (R-AC3: constant memory): it writes a
log of at least N GB (the workload's log repeated) to a temporary directory, runs the
report over it and over one copy of the workload log in fresh child processes, prints each
child's peak RSS (`resource.getrusage`) and deletes the log.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import replay_workload as workload  # noqa: E402
from charter.runtime import audit  # noqa: E402
from charter.runtime.audit import AuditLog  # noqa: E402
from charter.runtime.guard import Guard  # noqa: E402
from charter.runtime.replay import replay_record  # noqa: E402
from charter.runtime.replay_report import report  # noqa: E402
from charter.runtime.state import MemoryStore  # noqa: E402

CONFIGS: dict[str, dict[str, Any] | None] = {
    "no log": None,
    "log": {"replay": False},
    "log + replay": {},
    "log + replay + hashes": {"hash_key": workload.HASH_KEY},
}


def requests(n: int, seed: int = 5) -> list[tuple[float, dict[str, Any]]]:
    """`n` workload requests with the clock time each is checked at."""
    rng = random.Random(seed)
    now = workload.START
    out = []
    for i in range(n):
        now += rng.uniform(0, 4)
        session = f"sess-{i // 300}-{rng.randrange(12)}"
        out.append((now, workload.request(rng, session, f"agent-{rng.randrange(6)}")))
    return out


def run(reqs: list[tuple[float, dict[str, Any]]], config: dict[str, Any] | None,
        path: Path) -> float:
    """Seconds to check every request under a fresh Guard with `config`'s log."""
    path.unlink(missing_ok=True)
    clock = workload.Clock()
    log = AuditLog(path, **config) if config is not None else None
    guard = Guard(workload.policy(), MemoryStore(), log=log, clock=clock, secret=b"s" * 32)
    check = guard.check
    gc.disable()
    try:
        start = time.thread_time()
        for at, req in reqs:
            clock.now = at
            check(req)
        elapsed = time.thread_time() - start
    finally:
        gc.enable()
        if log is not None:
            log.close()
    return elapsed


Calls = list[tuple[dict[str, object], Any, Any]]


class _Spy(AuditLog):
    """A log that keeps what the Guard hands `write` (record, matchers, capture)."""

    def __init__(self, path: Path, calls: Calls) -> None:
        super().__init__(path)
        self.calls = calls

    def write(self, record: Any, *, matchers: Any = None, capture: Any = None) -> None:
        self.calls.append((dict(record), matchers, capture))


def writes(reqs: list[tuple[float, dict[str, Any]]], tmp: Path, rounds: int
           ) -> dict[str, float]:
    """Best seconds per record of `AuditLog.write` alone over the records (and captures)
    one Guard run hands it: without the block, with it, with it and hashes."""
    calls: Calls = []
    clock = workload.Clock()
    guard = Guard(workload.policy(), MemoryStore(), log=_Spy(tmp / "spy.jsonl", calls),
                  clock=clock, secret=b"s" * 32)
    for at, req in reqs:
        clock.now = at
        guard.check(req)
    return timed_writes(calls, tmp, rounds)


def timed_writes(calls: Calls, tmp: Path, rounds: int) -> dict[str, float]:
    """Best seconds per record of `AuditLog.write` over `calls`, per configuration, the
    configurations side by side in each round."""
    logs = {"write": (AuditLog(tmp / "w0.jsonl"), False),
            "write + replay": (AuditLog(tmp / "w1.jsonl"), True),
            "write + replay + hashes": (AuditLog(tmp / "w2.jsonl",
                                                 hash_key=workload.HASH_KEY), True)}
    best = {name: float("inf") for name in logs}
    for _ in range(rounds):
        for name, (log, block) in logs.items():
            gc.disable()
            try:
                start = time.thread_time()
                for record, matchers, capture in calls:
                    log.write(record, matchers=matchers, capture=capture if block else None)
                best[name] = min(best[name], (time.thread_time() - start) / len(calls))
            finally:
                gc.enable()
    for log, _ in logs.values():
        log.close()
    return best


class _Timed(AuditLog):
    """A log that adds up the thread CPU time its `write` calls take, less the timer's own."""

    def __init__(self, path: Path, **config: Any) -> None:
        super().__init__(path, **config)
        self.spent = 0
        self.calls = 0

    def write(self, record: Any, *, matchers: Any = None, capture: Any = None) -> None:
        start = time.thread_time_ns()
        super().write(record, matchers=matchers, capture=capture)
        self.spent += time.thread_time_ns() - start - _TIMER_NS
        self.calls += 1


def _timer_ns() -> int:
    """What one `thread_time_ns` pair costs (the least of many)."""
    best = 10**9
    for _ in range(2000):
        start = time.thread_time_ns()
        best = min(best, time.thread_time_ns() - start)
    return best


_TIMER_NS = _timer_ns()


def writes_in_guard(policy: Any, reqs: list[dict[str, Any]], repeat: int, rounds: int,
                    tmp: Path) -> tuple[float, float]:
    """Best seconds per record of `AuditLog.write` as a Guard calls it, between its checks
    (the record's masking no longer hot in the caches, as in a host), without and with
    the replay block: the configurations alternate in each round."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, replay in enumerate((False, True)):
            path = tmp / f"guard-{replay}.jsonl"
            path.unlink(missing_ok=True)
            log = _Timed(path, replay=replay)
            guard = Guard(policy, MemoryStore(), log=log, secret=b"s" * 32)
            gc.disable()
            try:
                for _ in range(repeat):
                    for req in reqs:
                        guard.check(req)
            finally:
                gc.enable()
                log.close()
            best[i] = min(best[i], log.spent / 1e9 / log.calls)
    return best[0], best[1]


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_costs(tmp: Path, rounds: int, repeat: int) -> None:
    """R-L4 on the example policies (examples/*/policy.agentpolicy and their requests/):
    `AuditLog.write` with and without the replay block, and the record sizes."""
    import charter

    print(f"{'example':<10} {'records':>7} {'write us':>9} {'+ replay':>9} {'x':>6} "
          f"{'B/record':>9} {'+ replay':>9} {'x':>6} {'in Guard':>9} {'+ replay':>9} {'x':>6}")
    for folder in sorted(p for p in EXAMPLES.iterdir() if (p / "requests").is_dir()):
        policy = charter.compile((folder / "policy.agentpolicy").read_text(),
                                 f"{folder.name}.agentpolicy")
        reqs = [json.loads(f.read_text()) for f in sorted((folder / "requests").glob("*.json"))]
        calls: Calls = []
        guard = Guard(policy, MemoryStore(), log=_Spy(tmp / "spy.jsonl", calls),
                      secret=b"s" * 32)
        for _ in range(repeat):
            for req in reqs:
                guard.check(req)
        best = timed_writes(calls, tmp, rounds)
        sizes = []
        for block in (False, True):
            path = tmp / f"size-{block}.jsonl"
            path.unlink(missing_ok=True)
            with AuditLog(path) as log:
                for record, matchers, capture in calls[: len(reqs)]:
                    log.write(record, matchers=matchers, capture=capture if block else None)
            sizes.append(path.stat().st_size / len(reqs))
        plain, with_block = best["write"], best["write + replay"]
        situ, situ_block = writes_in_guard(policy, reqs, repeat, max(rounds // 3, 3), tmp)
        print(f"{folder.name:<10} {len(calls):>7} {plain * 1e6:>9.1f} {with_block * 1e6:>9.1f} "
              f"{with_block / plain:>6.2f} {sizes[0]:>9.0f} {sizes[1]:>9.0f} "
              f"{sizes[1] / sizes[0]:>6.2f} {situ * 1e6:>9.1f} {situ_block * 1e6:>9.1f} "
              f"{situ_block / situ:>6.2f}")


def reports(path: Path, rounds: int) -> tuple[float, float, int]:
    """Best seconds per record of reading the log alone and of the whole report over it
    (reading included), side by side in each round; and the records replayed."""
    policy = workload.policy()
    report(path, policy, hash_key=workload.HASH_KEY)  # warm the policy's caches
    best_read = best_report = float("inf")
    records = 0
    for _ in range(rounds):
        start = time.thread_time()
        lines = sum(1 for _ in audit.read_lines(path))
        best_read = min(best_read, (time.thread_time() - start) / lines)
        start = time.thread_time()
        found = report(path, policy, hash_key=workload.HASH_KEY)
        records = found.tally.records
        best_report = min(best_report, (time.thread_time() - start) / records)
        assert found.tally.same == records, found.tally  # the log's own policy: all same
    return best_read * lines / records, best_report, records


def peak_rss(path: Path) -> tuple[int, int]:
    """The peak RSS (KiB) of a fresh process that reports on `path`, and its records."""
    code = ("import resource, sys; sys.path.insert(0, sys.argv[2]); "
            "from benchmarks import replay_workload as w; "
            "from charter.runtime.replay_report import report; "
            "r = report(sys.argv[1], w.policy(), hash_key=w.HASH_KEY); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, r.tally.records, "
            "r.tally.same)")
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", code, str(path), root], check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": root})
    rss, records, same = (int(x) for x in out.stdout.split())
    assert same == records, out.stdout
    return rss, records


def constant_memory(gigabytes: float, tmp: Path) -> None:
    """R-AC3's constant memory: the report's peak RSS on a log of `gigabytes` GB beside its
    peak on one copy of the workload log (the same records, repeated)."""
    one = tmp / "one.jsonl"
    workload.write_log(one, 10_000)
    data = one.read_bytes()
    big = tmp / "big.jsonl"
    copies = int(gigabytes * 2**30 // len(data)) + 1
    try:
        with open(big, "wb") as f:
            for _ in range(copies):
                f.write(data)
        small_rss, small_n = peak_rss(one)
        start = time.monotonic()
        big_rss, big_n = peak_rss(big)
        wall = time.monotonic() - start
        size = big.stat().st_size
    finally:
        big.unlink(missing_ok=True)
    print(f"peak RSS: {small_rss / 1024:.1f} MiB on {len(data) / 2**20:.0f} MB "
          f"({small_n:,} records), {big_rss / 1024:.1f} MiB on {size / 2**30:.2f} GB "
          f"({big_n:,} records, {wall:.0f} s wall); ratio {big_rss / small_rss:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gigabytes", type=float, default=0,
                        help="also check constant memory on a log of this many GB")
    args = parser.parse_args(argv)
    n, rounds = (300, 2) if args.quick else (3000, 7)
    reqs = requests(n)
    best = {name: float("inf") for name in CONFIGS}
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for name, config in CONFIGS.items():
                path = Path(tmp) / f"{name.replace(' ', '_')}.jsonl"
                best[name] = min(best[name], run(reqs, config, path))
                if config is not None:
                    sizes[name] = path.stat().st_size / n
        logged = Path(tmp) / "log_+_replay_+_hashes.jsonl"
        records = list(audit.read(logged))
        write = writes(reqs[: n // 3], Path(tmp), rounds * 3)
        read_s, report_s, reported = reports(logged, rounds)
        example_costs(Path(tmp), rounds * 3, 3 if args.quick else 30)
        if args.gigabytes:
            constant_memory(args.gigabytes, Path(tmp))
    policy = workload.policy()
    for record in records[:200]:  # warm the policy's caches, as a long replay would
        replay_record(record, policy, hash_key=workload.HASH_KEY)
    start = time.thread_time()
    same = sum(replay_record(r, policy, hash_key=workload.HASH_KEY).same for r in records)
    replay_s = time.thread_time() - start
    base, logged = best["no log"], best["log"]
    print(f"{n} checks of the replay workload, best of {rounds} rounds")
    print(f"{'configuration':<24} {'us/check':>9} {'x no log':>9} {'x log':>7} {'B/record':>9}")
    for name in CONFIGS:
        us = best[name] / n * 1e6
        size = f"{sizes[name]:.0f}" if name in sizes else "-"
        print(f"{name:<24} {us:>9.1f} {best[name] / base:>9.2f} {best[name] / logged:>7.2f} "
              f"{size:>9}")
    for name, seconds in write.items():
        print(f"AuditLog.{name:<24} {seconds * 1e6:>7.1f} us/record "
              f"{seconds / write['write']:>6.2f}x")
    print(f"replay: {len(records) / replay_s:,.0f} records/s "
          f"({replay_s / len(records) * 1e6:.1f} us/record), {same} of {len(records)} the same")
    print(f"report over the log file, reading included: {1 / report_s:,.0f} records/s "
          f"({report_s * 1e6:.1f} us/record; reading alone {read_s * 1e6:.1f} us, "
          f"{read_s / report_s:.0%} of it), {reported} records")
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
