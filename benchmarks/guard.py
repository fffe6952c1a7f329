"""The cost of `Guard.check` and `Guard.settle` over `Policy.decide`, per state store.

    python benchmarks/guard.py [--quick] [--no-throughput]

Request shapes (`REQUESTS`), each decided by `Policy.decide` and checked by the Guard in the
same process, interleaved, best of many short rounds (so a busy machine costs both alike):
- "stateless object": `kb.read` as a tool object with tags and a server, nested args; no
  budget, limit, label or history rule applies, so the Guard adds no store access;
- "stateful name": `web.fetch` named by a bare string: a per-session rate limit and a
  read of the session's labels (one `Store.take`: read and reserve in one step);
- "stateful object": the same call as a tool object with tags and a server, nested args
  and an estimate.
For each: `check / decide`, and `settle / decide` where settle is timed as check + settle
minus check (what a host pays after every allowed call). Over Redis the table adds, timed
in the same rounds, a bare `PING` through the store's redis-py client as a user would send
it (`client.ping()`) and `check / PING` (the target's baseline), and the same `PING` packed
and sent on the store's own connection path (`wire PING`: the round trip's floor).
Throughput: decisions/s single-threaded (check + settle in a loop) and with 8 processes x 4
threads, each process with its own Guard (its own `MemoryStore`; the shared SQLite file or
Redis server). Targets (issue 12): memory check and settle each <= 2x decide, SQLite check
<= 15x decide, Redis check <= 1.5x PING. The Redis rows need a `redis-server` on PATH (one
is started on a free loopback port and stopped afterwards).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import charter  # noqa: E402
from charter.runtime.state import MemoryStore, SQLiteStore, Store  # noqa: E402

POLICY = """
policy "bench-guard"
use pii, secrets
default deny
tool "kb.read" (query: str, limit?: int, filters?: map<str, any>) tags read
tool "web.fetch" (url: str, options?: map<str, any>) tags external
allow tool "kb.*", "web.fetch"
deny tool "kb.read" when has(args.limit) and args.limit > 100 because "too many rows"
deny tool tagged external when args contains secrets.any because "no secrets out"
deny tool tagged external when "saw_pii" in session.labels because "no egress after PII"
limit calls(tool "web.fetch") <= 1000000000 per 1d because "rate limit"
"""
_WHO = {"agent": {"id": "a1", "team": "support"}, "session": {"id": "s1"}}
REQUESTS: dict[str, dict[str, Any]] = {
    "stateless object": {
        "tool": {"name": "kb.read", "tags": ["read", "internal"], "server": "mcp-kb"},
        "args": {"query": "refund policy", "limit": 5,
                 "filters": {"lang": ["en", "de"], "since": {"days": 30}}}, **_WHO},
    "stateful name": {"tool": "web.fetch", "args": {"url": "https://docs.example.com/a"},
                      **_WHO},
    "stateful object": {
        "tool": {"name": "web.fetch", "tags": ["external", "http"], "server": "mcp-web"},
        "args": {"url": "https://docs.example.com/a",
                 "options": {"headers": {"accept": "text/html"}, "retries": [1, 2]}},
        "estimate": {"cost_usd": 0.002}, **_WHO},
}
STATEFUL = "stateful object"


def best_of(fns: dict[str, Callable[[], Any]], seconds: float) -> dict[str, float]:
    """Microseconds per call of each function: the best of many short rounds, the functions
    interleaved round by round."""
    loops = {}
    for key, fn in fns.items():
        n = 1
        while True:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            if time.perf_counter() - start >= 0.002:
                break
            n *= 2
        loops[key] = n
    best = dict.fromkeys(fns, float("inf"))
    deadline = time.perf_counter() + seconds
    gc.disable()
    try:
        while time.perf_counter() < deadline:
            for key, fn in fns.items():
                n = loops[key]
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                best[key] = min(best[key], (time.perf_counter() - start) / n)
    finally:
        gc.enable()
    return {key: value * 1e6 for key, value in best.items()}


@contextmanager
def redis_server() -> Iterator[str | None]:
    server = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        server = None
    if server is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="charter-bench-redis-")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.RedisError:
                time.sleep(0.05)
        else:
            yield None
            return
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def open_store(kind: str, where: str) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(where)
    from charter.runtime.state import RedisStore

    url, prefix = where.split("|")
    return RedisStore(url, prefix=prefix)


def _loop(guard: charter.Guard, seconds: float) -> int:
    """check + settle of the stateful call until `seconds` pass; the number done."""
    request = REQUESTS[STATEFUL]
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            decision = guard.check(request)
            assert decision.allowed, decision
            guard.settle(decision)
        done += 20
    return done


def _worker(kind: str, where: str, threads: int, seconds: float, start: Any, out: Any) -> None:
    store = open_store(kind, where)
    policy = charter.compile(POLICY, "bench.agentpolicy")
    guard = charter.Guard(policy, state=store)
    counts: list[int] = []
    barrier = threading.Barrier(threads)

    def run() -> None:
        barrier.wait()
        counts.append(_loop(guard, seconds))

    pool = [threading.Thread(target=run) for _ in range(threads)]
    start.wait()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    store.close()
    out.put(sum(counts))


def throughput(kind: str, where: str, seconds: float, processes: int = 8,
               threads: int = 4) -> float:
    """Decisions (check + settle) per second over `processes` x `threads` workers."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(kind, where, threads, seconds, start, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    total = sum(out.get(timeout=120) for _ in procs)
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join(timeout=30)
    return total / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--no-throughput", action="store_true", help="skip the 8x4 runs")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else 2.0
    policy = charter.compile(POLICY, "bench.agentpolicy")
    verdicts: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, redis_server() as url:
        kinds = [("memory", ""), ("sqlite", str(Path(tmp) / "state.db"))]
        if url is not None:
            kinds.append(("redis", f"{url}|bench-{uuid.uuid4().hex}:"))
        else:
            print("redis: skipped (no redis-server or redis client)")
        print(f"{'store':<7} {'request':<17} {'decide µs':>9} {'check µs':>9} {'check':>7} "
              f"{'settle µs':>9} {'settle':>7}")
        rates: list[tuple[str, float, float | None]] = []
        for kind, where in kinds:
            store = open_store(kind, where)
            guard = charter.Guard(policy, state=store)
            extra: dict[str, Callable[[], Any]] = {}
            if kind == "redis":
                # A bare PING through the store's own client, interleaved with the checks;
                # and one sent as the store sends its scripts (`redis_wire.Script`).
                extra["ping"] = store._r.ping  # type: ignore[attr-defined]
                extra["wire"] = _wire_ping(store)
            worst_check = worst_settle = 0.0
            pings: list[float] = []
            wires: list[float] = []
            for shape, request in REQUESTS.items():
                assert guard.check(request).allowed
                us = best_of({
                    "decide": lambda r=request: policy.decide(r),
                    "check": lambda r=request, g=guard: g.check(r),
                    "both": lambda r=request, g=guard: g.settle(g.check(r)),
                    **extra,
                }, seconds)
                ping = us.get("ping")
                if ping is not None:
                    pings.append(ping)
                    wires.append(us["wire"])
                settle = max(us["both"] - us["check"], 0.0)
                ratio, settled = us["check"] / us["decide"], settle / us["decide"]
                print(f"{kind:<7} {shape:<17} {us['decide']:>9.2f} {us['check']:>9.2f} "
                      f"{ratio:>6.2f}x {settle:>9.2f} {settled:>6.2f}x"
                      + ("" if ping is None else f"   {us['check'] / ping:.2f}x PING"
                         f"  {us['check'] / us['wire']:.2f}x wire PING"))
                if shape.startswith("stateful"):
                    worst_check = max(worst_check, ratio if ping is None
                                      else us["check"] / ping)
                    worst_settle = max(worst_settle, settled)
            if pings:
                print(f"{kind:<7} {'bare PING':<17} {'':>9} {min(pings):>9.2f}")
                print(f"{kind:<7} {'wire PING':<17} {'':>9} {min(wires):>9.2f}")
            single = 1e6 / best_of({"loop": lambda g=guard: g.settle(
                g.check(REQUESTS[STATEFUL]))}, seconds)["loop"]
            many = None if args.no_throughput else throughput(kind, where, seconds)
            rates.append((kind, single, many))
            store.close()
            if kind == "memory":
                verdicts.append(_verdict("memory check <= 2x decide", worst_check, 2))
                verdicts.append(_verdict("memory settle <= 2x decide", worst_settle, 2))
            elif kind == "sqlite":
                verdicts.append(_verdict("sqlite check <= 15x decide", worst_check, 15))
            else:
                verdicts.append(_verdict("redis check <= 1.5x PING", worst_check, 1.5))
    print(f"\n{'store':<7} {'decisions/s, 1 thread':>22} {'8 processes x 4 threads':>24}")
    for kind, single, many in rates:
        print(f"{kind:<7} {single:>22,.0f} {'-' if many is None else f'{many:,.0f}':>24}")
    print()
    for line in verdicts:
        print(line)
    return 0


def _wire_ping(store: Any) -> Callable[[], Any]:
    """PING packed and sent on the connections the store's scripts go over."""
    send = store._take._send
    return lambda: send(b"*1\r\n$4\r\nPING\r\n")


def _verdict(what: str, worst: float, limit: float) -> str:
    return f"{what} (worst stateful shape {worst:.2f}x): {'PASS' if worst <= limit else 'FAIL'}"


if __name__ == "__main__":
    raise SystemExit(main())
