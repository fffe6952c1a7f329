"""Signed bundles (issue 16, L-S2..L-S4): what verification adds to loading, and push ->
active over Redis.

    python benchmarks/bundles.py [--rules 1000] [--processes 4] [--pushes 20]

1. Load cost: `Policy.loads` of a compiled artifact vs `verify_bundle` of the bundle that
   carries it (signature, file list, every hash, then the same load), HMAC-SHA256 and
   Ed25519, generated policies (benchmarks/scaling.py's rules), interleaved in one process,
   best of the rounds; the ratio is the figure (absolute times move with the load).
2. Push -> active (`--processes` host subprocesses following a real redis-server, each
   deciding in a loop): `RedisSource.push` in this process, then the wall-clock time at
   which each host first decides with the new version; median and max. Second row: the
   same after `CLIENT KILL TYPE pubsub` right before each push, so only the resubscription
   and the backstop poll (1 s) can carry it.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import charter  # noqa: E402
from benchmarks.scaling import charter_source  # noqa: E402
from charter.runtime.bundle import pack, verify_bundle  # noqa: E402
from charter.runtime.policy import Policy  # noqa: E402

SECRET = bytes(range(32))


def _bundle(policy: Policy, text: str, key: Any, key_id: str) -> bytes:
    return pack(
        {"policy.agentpolicy": text.encode()},
        policy.dumps(),
        policy_digest=policy.digest,
        gate={"ok": True},
        builder="bench",
        key=key,
        key_id=key_id,
    )


def _best(fns: dict[str, Callable[[], Any]], rounds: int, loops: int) -> dict[str, float]:
    """Best-of-rounds milliseconds per call of each function, run interleaved."""
    best = {k: float("inf") for k in fns}
    for fn in fns.values():
        fn()  # warm
    for _ in range(rounds):
        for k, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(loops):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / loops * 1000)
    return best


def load_cost(rules: list[int], rounds: int) -> None:
    keys: dict[str, tuple[Any, Any]] = {"hmac": (SECRET, SECRET)}
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        private = ed25519.Ed25519PrivateKey.generate()
        keys["ed25519"] = (private, private.public_key())
    except ImportError:
        print("load      ed25519 skipped: no cryptography")
    for n in rules:
        text = charter_source(n)
        policy = charter.compile(text)
        artifact = policy.dumps()
        fns: dict[str, Callable[[], Any]] = {"Policy.loads": lambda a=artifact: Policy.loads(a)}
        for alg, (signer, verifier) in keys.items():
            data = _bundle(policy, text, signer, alg)
            ring = {alg: verifier}
            fns[f"verify {alg}"] = lambda data=data, ring=ring: verify_bundle(data, ring)  # type: ignore[misc]
        loops = max(1, 200 // max(1, n // 50))
        t = _best(fns, rounds, loops)
        base = t["Policy.loads"]
        cols = "   ".join(
            f"{k} {v:.2f} ms ({v / base:.2f}x)" for k, v in t.items() if k != "Policy.loads"
        )
        print(
            f"load      {n:>5} rules, artifact {len(artifact) / 1024:.0f} KB: "
            f"Policy.loads {base:.2f} ms   {cols}"
        )


HOST = """
import logging, sys, time
from charter.runtime.live_redis_source import follow_redis
url, prefix, pushes = sys.argv[1], sys.argv[2], int(sys.argv[3])
logging.getLogger("charter.live").setLevel(logging.ERROR)
live = follow_redis(url, prefix=prefix, keys={"ops-1": bytes(range(32))}, poll_interval_s=1.0)
print("ready", flush=True)
req = {"tool": "x", "args": {"n": 1}}
for r in range(1, pushes + 1):
    want = ("v%d" % r,)
    while live.decide(req).rules != want:
        time.sleep(0.0002)
    print(r, time.time(), flush=True)
"""


def _version(tag: str) -> tuple[Policy, str]:
    text = f'policy "p"\ndefault deny\ntool "x" (n: int)\n@id("{tag}")\nallow tool "x"\n'
    return charter.compile(text), text


def push_to_active(processes: int, pushes: int) -> None:
    from benchmarks.guard import redis_server

    with redis_server() as url:
        if url is None:
            print("push      skipped: no redis-server on PATH")
            return
        for drop in (False, True):
            _push_rounds(url, processes, pushes, drop)


def _push_rounds(url: str, processes: int, pushes: int, drop: bool) -> None:
    import redis

    from charter.runtime.live_redis_source import RedisSource

    admin = redis.Redis.from_url(url)
    prefix = f"bench-{uuid.uuid4().hex}:"
    writer = RedisSource(url, prefix=prefix)
    bundles = [_bundle(*_version(f"v{r}"), SECRET, "ops-1") for r in range(pushes + 1)]
    writer.push(bundles[0])
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOST, url, prefix, str(pushes)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env=env,
        )
        for _ in range(processes)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    ms: list[float] = []
    for r in range(1, pushes + 1):
        time.sleep(0.05)
        if drop:
            admin.client_kill_filter(_type="pubsub")
        t0 = time.time()
        writer.push(bundles[r])
        for p in procs:
            assert p.stdout is not None
            _, at = p.stdout.readline().split()
            ms.append((float(at) - t0) * 1000)
    for p in procs:
        p.wait(timeout=30)
    ms.sort()
    how = "pub/sub killed" if drop else "pub/sub"
    print(
        f"push      {how:14} {processes} processes x {pushes} pushes, poll 1 s: push -> "
        f"new version deciding median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms"
    )
    admin.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, nargs="*", default=[100, 1000])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--pushes", type=int, default=20)
    ap.add_argument("--no-push", action="store_true")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    load_cost(args.rules, args.rounds)
    if not args.no_push:
        push_to_active(args.processes, args.pushes)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
