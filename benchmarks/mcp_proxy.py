"""MCP proxy overhead: added latency per `tools/call` through `charter mcp proxy`.

    python benchmarks/mcp_proxy.py [--calls N] [--baseline DIR] [--mode auto|legacy]

(Not `benchmarks/mcp.py`, as issue 14 names it: run as a script, that file would shadow
the `mcp` package it measures.)

One process holds two sessions of the `mcp` SDK's real client open at once: one straight to
`@modelcontextprotocol/server-filesystem` over stdio, one to `charter mcp proxy` over stdio in
front of the same server (its own process, with the SQLite state store the CLI uses by
default for hooks, here `memory`). Calls alternate between them, so drift hits both alike.

Request shapes: `read_text_file` of a 60 B file (the proxy decides a tool object with tags
`mcp, read_only` and server `fs`, then the `tool_result` of the whole `CallToolResult`, with
a `redact pii.card in result` rule scanning its text), and `list_directory` of a directory
of 20 entries. The policy is `tests/hosts/mcp/proxy_policy.agentpolicy`.

Each proxy runs the charter of a given source tree (this one; with `--baseline DIR` also
another, e.g. `git archive REV charter | tar -x -C DIR`, in a third session, calls
alternating with the other two: a before/after measured side by side in one run).

`--mode` is the protocol era the client asks for (`Client(mode=...)`): `auto` (the default)
speaks 2026-07-28 to the proxy and, as server-filesystem knows only the handshake, 2025-11-25
to the server directly; `legacy` speaks 2025-11-25 to both.

Reports median and p99 per call for each side, the added µs (proxy - direct) and the ratio,
and the CPU time the proxy process spent per call (user + system, from /proc: it does not
grow when the machine is busy, as wall times do). Target (issue 14): the proxy adds < 1 ms
on stdio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
FILESYSTEM = (
    ROOT / "tests/hosts/npm/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
)
POLICY = ROOT / "tests/hosts/mcp/proxy_policy.agentpolicy"
TARGET_ADDED_US = 1000.0


def _config(data: Path, out: Path) -> Path:
    out.write_text(f"""
[servers.fs]
command = "node"
args = [{str(FILESYSTEM)!r}, {str(data)!r}]
trust_annotations = true
""")
    return out


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _proxy_pids() -> dict[str, int]:
    """This process's `charter mcp proxy` children, by the source tree they run."""
    found: dict[str, int] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"proxy" not in cmd or b"charter.cli.main" not in cmd:
            continue
        if int(fields[1]) == os.getpid():  # ppid
            for item in env:
                if item.startswith(b"PYTHONPATH="):
                    found[item[len(b"PYTHONPATH=") :].decode()] = int(pid)
    return found


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proxy(tree: Path, config: Path) -> StdioServerParameters:
    """`charter mcp proxy` run from the source tree `tree` (its own cwd and PYTHONPATH: `-m`
    puts the cwd first on sys.path, and the SDK's default environment has no PYTHONPATH)."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "charter.cli.main", "mcp", "proxy", str(POLICY), "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=str(tree),
    )


async def _measure(
    calls: int, data: Path, config: Path, baseline: Path | None, mode: str
) -> dict[str, dict[str, list[float]]]:
    direct = StdioServerParameters(command="node", args=[str(FILESYSTEM), str(data)])
    shapes: dict[str, tuple[str, str, dict[str, Any]]] = {
        "read_text_file 60 B": (
            "read_text_file",
            "fs.read_text_file",
            {"path": str(data / "notes.txt")},
        ),
        "list_directory 20 entries": (
            "list_directory",
            "fs.list_directory",
            {"path": str(data / "dir")},
        ),
    }
    out: dict[str, dict[str, list[float]]] = {
        k: {"direct": [], "proxy": [], "cpu": [], "baseline": [], "baseline cpu": []}
        for k in shapes
    }
    async with AsyncExitStack() as stack:
        plain = await stack.enter_async_context(Client(direct, mode=mode))  # type: ignore[arg-type]
        proxy = await stack.enter_async_context(Client(_proxy(ROOT, config), mode=mode))  # type: ignore[arg-type]
        older = (
            await stack.enter_async_context(Client(_proxy(baseline, config), mode=mode))  # type: ignore[arg-type]
            if baseline is not None
            else None
        )
        pids = _proxy_pids()
        for shape, (name, exported, args) in shapes.items():
            for _ in range(20):  # warm both sides (the proxy's first decision compiles code)
                await plain.call_tool(name, args)
                await proxy.call_tool(exported, args)
                if older is not None:
                    await older.call_tool(exported, args)
            cpu = {tree: _cpu(pid) for tree, pid in pids.items()}
            for _ in range(calls):
                t0 = time.perf_counter()
                a = await plain.call_tool(name, args)
                t1 = time.perf_counter()
                b = await proxy.call_tool(exported, args)
                t2 = time.perf_counter()
                if a.is_error or b.is_error:
                    raise SystemExit(f"{shape}: a call failed: {a.content} / {b.content}")
                out[shape]["direct"].append((t1 - t0) * 1e6)
                out[shape]["proxy"].append((t2 - t1) * 1e6)
                if older is not None:
                    t3 = time.perf_counter()
                    c = await older.call_tool(exported, args)
                    out[shape]["baseline"].append((time.perf_counter() - t3) * 1e6)
                    if c.is_error:
                        raise SystemExit(f"{shape}: a baseline call failed: {c.content}")
            used = {tree: (_cpu(pid) - cpu[tree]) / calls * 1e6 for tree, pid in pids.items()}
            out[shape]["cpu"] = [used[str(ROOT)]]
            if baseline is not None:
                out[shape]["baseline cpu"] = [used[str(baseline)]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another charter source tree (e.g. `git archive REV | tar -x -C DIR`) whose "
        "proxy runs side by side, for a before/after in the same run",
    )
    parser.add_argument(
        "--mode",
        choices=["auto", "legacy"],
        default="auto",
        help="the client's protocol era: auto (2026-07-28 where the server speaks it) or legacy",
    )
    args = parser.parse_args()
    if not FILESYSTEM.exists():
        raise SystemExit("npm server-filesystem missing: cd tests/hosts/npm && npm ci")
    load = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "dir").mkdir(parents=True)
        (data / "notes.txt").write_text("a short note with nothing to hide in it at all.\n")
        for i in range(20):
            (data / "dir" / f"f{i:02}.txt").write_text("x")
        results = anyio.run(
            _measure,
            args.calls,
            data,
            _config(data, Path(tmp) / "c.toml"),
            args.baseline,
            args.mode,
        )
    print(f"load average before/after: {load} / {os.getloadavg()[0]:.2f}; mode {args.mode}")
    print(
        f"| shape ({args.calls} calls each) | direct p50 µs | proxy p50 µs | added p50 µs "
        "| direct p99 µs | proxy p99 µs | added p99 µs | ratio p50 | proxy CPU µs/call | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for shape, sides in results.items():
        d50, p50 = statistics.median(sides["direct"]), statistics.median(sides["proxy"])
        d99, p99 = _p99(sides["direct"]), _p99(sides["proxy"])
        added = p50 - d50
        ok = "ok" if added < TARGET_ADDED_US else "MISSED"
        print(
            f"| {shape} | {d50:.0f} | {p50:.0f} | {added:.0f} | {d99:.0f} | {p99:.0f} | "
            f"{p99 - d99:.0f} | {p50 / d50:.2f}x | {sides['cpu'][0]:.0f} | < 1000 µs added: {ok} |"
        )
        if sides["baseline"]:
            b50, b99 = statistics.median(sides["baseline"]), _p99(sides["baseline"])
            print(
                f"| {shape}, baseline tree | {d50:.0f} | {b50:.0f} | {b50 - d50:.0f} | {d99:.0f} "
                f"| {b99:.0f} | {b99 - d99:.0f} | {b50 / d50:.2f}x | "
                f"{sides['baseline cpu'][0]:.0f} | |"
            )


if __name__ == "__main__":
    main()
