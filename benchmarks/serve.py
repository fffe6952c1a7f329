"""`charter serve` over loopback: decisions/s and latency percentiles from a load client in
another process, beside the same decisions in process, in one run.

    python benchmarks/serve.py [--requests 4000] [--rates 100,1000]

The sidecar is the real command (`python -m charter.cli serve examples/support`, one uvicorn
worker, httptools when installed, memory state) on 127.0.0.1, then the same app on granian
(ASGI, one worker) when granian is installed. The load client is a second
Python process speaking raw HTTP/1.1 over keep-alive connections (asyncio streams, no HTTP
library in the way):

- *sequential*: one connection, one request at a time (the latency floor per call);
- *fixed rate* (open loop, as OPA users measure): requests start on a schedule at R/s over
  8 connections; the percentiles count from each request's send, and "p99 from schedule"
  from its scheduled start (a stalled server is not hidden by a client that waited for it,
  but the client's own late wake-ups are in it too);
- *wrk* (when Debian's `wrk` is installed): 2 threads, 8 connections, 5 s: decisions/s.

The requests are the 21 of `examples/support/requests`, cycled. In process, the same bytes go
through `Policy.decide` (the stateless route) and `Guard.check` (the stateful route), timed
per call. Ratios are sidecar / in process at p50. The client and the server share the
machine's cores, as a sidecar and its agent do.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "examples" / "support"
BODIES = [p.read_bytes() for p in sorted((POLICY / "requests").glob("*.json"))]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(lat_s: list[float], seconds: float) -> dict[str, float]:
    us = [x * 1e6 for x in lat_s]
    return {
        "n": len(us),
        "per_s": len(us) / seconds if seconds else 0.0,
        "p50": _pct(us, 0.50),
        "p90": _pct(us, 0.90),
        "p99": _pct(us, 0.99),
        "p999": _pct(us, 0.999),
    }


# ── the load client (a separate process) ────────────────────────────────────


def _request(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    size = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            size = int(line.split(b":", 1)[1])
    body = await reader.readexactly(size)
    if not head.startswith(b"HTTP/1.1 200") or b'"effect"' not in body:
        raise RuntimeError(head[:200] + body[:200])


async def _sequential(port: int, path: str, n: int) -> dict[str, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    reqs = [_request(path, b) for b in BODIES]
    for i in range(200):  # warm up
        await _one(reader, writer, reqs[i % len(reqs)])
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await _one(reader, writer, reqs[i % len(reqs)])
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    writer.close()
    return _summary(lat, total)


async def _fixed_rate(port: int, path: str, n: int, rate: float) -> dict[str, float]:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)
    reqs = [_request(path, b) for b in BODIES]
    lat: list[float] = []
    late: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def fire(i: int) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        conn = await free.get()
        sent = time.perf_counter()
        try:
            await _one(*conn, reqs[i % len(reqs)])
        finally:
            free.put_nowait(conn)
        lat.append(time.perf_counter() - sent)
        late.append(loop.time() - due)  # from the scheduled start: no coordinated omission

    await asyncio.gather(*(fire(i) for i in range(n)))
    total = loop.time() - start
    for _, w in conns:
        w.close()
    out = _summary(lat, total)
    out["p99_sched"] = _pct([x * 1e6 for x in late], 0.99)
    return out


def client(port: int, path: str, n: int, rates: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"sequential": asyncio.run(_sequential(port, path, n))}
    for r in rates:
        out[f"rate {int(r)}/s"] = asyncio.run(_fixed_rate(port, path, min(n, int(r * 4)), r))
    return out


# ── in process ───────────────────────────────────────────────────────────────


def in_process(n: int) -> dict[str, dict[str, float]]:
    import charter
    from charter.runtime.guard import Guard

    policy = charter.load(POLICY)
    guard = Guard(policy)
    out = {}
    for name, fn in (("Policy.decide", policy.decide), ("Guard.check", guard.check)):
        for i in range(500):
            fn(BODIES[i % len(BODIES)])
        lat = []
        start = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            fn(BODIES[i % len(BODIES)])
            lat.append(time.perf_counter() - t)
        out[name] = _summary(lat, time.perf_counter() - start)
    return out


# ── the run ──────────────────────────────────────────────────────────────────


def _wrk(port: int, path: str) -> float | None:
    if shutil.which("wrk") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(BODIES[0].decode())}\n"
        )
    done = subprocess.run(
        ["wrk", "-t2", "-c8", "-d5s", "-s", script.name, f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(script.name)
    for line in done.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


def _start(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`charter serve` on uvicorn (the command itself), or the same app on granian."""
    if kind == "uvicorn":
        argv = [
            sys.executable,
            "-m",
            "charter.cli",
            "serve",
            str(POLICY),
            "--listen",
            f"127.0.0.1:{port}",
        ]
    else:
        config = {
            "policy": str(POLICY),
            "state": "memory",
            "secret_file": None,
            "approvers_path": None,
            "log": None,
            "max_body": 1 << 20,
        }
        env = {**env, "CHARTER_SERVE_CONFIG": json.dumps(config)}
        argv = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-log",
            "charter.cli.serve:app_from_env",
        ]
    return subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--rates", default="100,1000")
    ap.add_argument("--client", nargs=2, metavar=("PORT", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r]
    if args.client:
        print(json.dumps(client(int(args.client[0]), args.client[1], args.requests, rates)))
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    local = in_process(args.requests)
    rows: list[tuple[str, dict[str, float], float | None, str]] = []
    servers = ["uvicorn"] + (["granian"] if importlib.util.find_spec("granian") else [])
    for kind in servers:
        port = _free_port()
        server = _start(kind, port, env)
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            for route, path, ref in (
                ("stateless", "/v1/decide?stateless=1", "Policy.decide"),
                ("stateful", "/v1/decide", "Guard.check"),
            ):
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--client",
                        str(port),
                        path,
                        "--requests",
                        str(args.requests),
                        "--rates",
                        args.rates,
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                for mode, st in json.loads(done.stdout).items():
                    ratio = st["p50"] / local[ref]["p50"]
                    rows.append((f"{kind}: {route}, {mode}", st, ratio, ref))
                wrk = _wrk(port, path)
                if wrk is not None:
                    rows.append((f"{kind}: {route}, wrk -t2 -c8", {"per_s": wrk}, None, ref))
        finally:
            server.terminate()
            server.wait(10)
    for ref in ("Policy.decide", "Guard.check"):
        rows.append((f"in process: {ref}", local[ref], None, ref))
    print(
        f"charter serve, {len(BODIES)} requests of examples/support cycled; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; "
        f"Python {sys.version.split()[0]}"
    )
    print(
        "| row | decisions/s | p50 µs | p90 µs | p99 µs | p99.9 µs | p99 from schedule µs "
        "| p50 / in process |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s, ratio, _ in rows:
        cells = [f"{s['per_s']:,.0f}"] + [
            f"{s[k]:.1f}" if k in s else "" for k in ("p50", "p90", "p99", "p999", "p99_sched")
        ]
        print(f"| {name} | " + " | ".join(cells) + f" | {f'{ratio:.0f}×' if ratio else ''} |")


if __name__ == "__main__":
    main()
