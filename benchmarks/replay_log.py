"""What the decision log's replay block costs the Guard, and how fast records replay.

    python benchmarks/replay_log.py [--quick]

The same requests of the replay workload (`benchmarks/replay_workload.py`: budgets, limits,
labels, approvals, masked e-mails and cards, tool objects) go through fresh Guards over a
`MemoryStore`, one configuration after the other in each round, best of the rounds:

- `no log`: `Guard(policy)`;
- `log`: `AuditLog(path, replay=False)`, the record as it was before schema v1;
- `log + replay`: the default `AuditLog(path)`, with the replay block;
- `log + replay + hashes`: `AuditLog(path, hash_key=...)`, keyed hashes of masked values.

Prints microseconds per `check`, each row's ratio to `no log` and to `log`, the mean record
size, `AuditLog.write` alone with and without the block over the same records (R-L4 of
live-control-analysis.md: the block should add at most 25 % to it), and replayed records
per second (`charter.runtime.replay.replay_record`). Times are the thread's CPU time
(`time.thread_time`), not wall time, so that other processes on a shared machine do not
inflate them (the log's `write(2)` is counted, the disk's own work is not).
"""

from __future__ import annotations

import argparse
import gc
import random
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


def writes(reqs: list[tuple[float, dict[str, Any]]], tmp: Path, rounds: int
           ) -> dict[str, float]:
    """Best seconds per record of `AuditLog.write` alone over the records (and captures)
    one Guard run hands it: without the block, with it, with it and hashes."""
    calls: list[tuple[dict[str, object], Any, Any]] = []

    class Spy(AuditLog):
        def write(self, record: Any, *, matchers: Any = None, capture: Any = None) -> None:
            calls.append((dict(record), matchers, capture))

    clock = workload.Clock()
    guard = Guard(workload.policy(), MemoryStore(), log=Spy(tmp / "spy.jsonl"), clock=clock,
                  secret=b"s" * 32)
    for at, req in reqs:
        clock.now = at
        guard.check(req)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
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
        records = list(audit.read(Path(tmp) / "log_+_replay_+_hashes.jsonl"))
        write = writes(reqs[: n // 3], Path(tmp), rounds * 3)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
