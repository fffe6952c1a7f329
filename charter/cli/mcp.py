"""`charter mcp proxy|wrap|tools`: the MCP proxy from the command line (docs/hosts.md).

`proxy POLICY --config charter-mcp.toml` serves the configured upstreams to one agent over
stdio (default) or streamable HTTP (`--listen http://127.0.0.1:8765/mcp`). `wrap POLICY --
COMMAND ARGS...` is the one-upstream form for an `mcpServers` entry. `tools` prints the
merged tool list with each tool's Charter name, tags and whether it is hidden. State
(budgets, limits, approval tickets) lives in the `--state` SQLite file, which `charter
approvals` reads; `memory` keeps it in the process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from charter.cli.common import fail

if TYPE_CHECKING:
    from charter.hosts.mcp import Proxy, ProxyConfig

_STATE = click.option(
    "--state",
    default="memory",
    show_default=True,
    help="SQLite state file shared with `charter approvals`, or `memory`",
)
_LOG = click.option("--log", type=click.Path(dir_okay=False), help="decision log (JSON lines)")


@click.group("mcp")
def mcp_cmd() -> None:
    """A policy-enforcing MCP proxy in front of MCP servers."""


@mcp_cmd.command("proxy")
@click.argument("policy", type=click.Path(exists=True))
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True),
    help="charter-mcp.toml: the upstream servers",
)
@click.option(
    "--listen",
    default="stdio",
    show_default=True,
    help="stdio, or http://HOST:PORT/PATH for streamable HTTP",
)
@_STATE
@_LOG
@click.option(
    "--session-from",
    type=click.Choice(["connection", "header", "meta"]),
    help="where a call's session id comes from (default: the config's session_from, "
    "else connection): the connection's, an X-Charter-Session header, or "
    '_meta["io.charter/session"]; the last two let the client name its sessions',
)
def proxy_cmd(
    policy: str,
    config_path: str,
    listen: str,
    state: str,
    log: str | None,
    session_from: str | None,
) -> None:
    """Serve the upstreams of --config, every tools/call decided by POLICY."""
    import dataclasses

    from charter.hosts.mcp import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as err:
        fail(str(err))
    if session_from is not None:
        config = dataclasses.replace(config, session_from=session_from)
    _serve(_proxy(policy, config, state, log), listen)


@mcp_cmd.command("wrap", context_settings={"ignore_unknown_options": True})
@click.argument("policy", type=click.Path(exists=True))
@click.option("--name", default="tool", show_default=True, help="the upstream's server name")
@_STATE
@_LOG
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def wrap_cmd(policy: str, name: str, state: str, log: str | None, command: tuple[str, ...]) -> None:
    """Serve one stdio upstream COMMAND over stdio: `charter mcp wrap POLICY -- CMD ARGS`."""
    from charter.hosts.mcp import ConfigError
    from charter.hosts.mcp.config import parse_config

    try:
        config = parse_config(
            {"servers": {name: {"command": command[0], "args": list(command[1:])}}}, "wrap"
        )
    except ConfigError as err:
        fail(str(err))
    _serve(_proxy(policy, config, state, log), "stdio")


@mcp_cmd.command("tools")
@click.argument("policy", type=click.Path(exists=True))
@click.option("--config", "config_path", required=True, type=click.Path(exists=True))
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    help="also write the tools as a tools/list result under their Charter names, "
    "for `tools from` in the policy (typed arguments, declared tags)",
)
def tools_cmd(policy: str, config_path: str, json_out: str | None) -> None:
    """Print the merged tool list: exported name, Charter name, tags, hidden or shown."""
    import anyio

    from charter.hosts.mcp import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as err:
        fail(str(err))
    proxy = _proxy(policy, config, "memory", None)

    async def show() -> None:
        async with proxy.running():
            for up in proxy.upstreams.values():
                if up.down is not None:
                    click.echo(f"# {up.down}", err=True)
            for name, entry in sorted(proxy.catalog.entries.items()):
                verdict = "hidden" if entry.hidden else "shown"
                click.echo(
                    f"{name}\t{entry.charter['name']}\t{','.join(entry.charter['tags'])}\t{verdict}"
                )
            if json_out is not None:
                _write_tools(proxy, Path(json_out))

    anyio.run(show)


def _write_tools(proxy: Proxy, out: Path) -> None:
    """The upstream tools as one `tools/list` result named as the policy sees them; their
    annotations are kept only for trusted servers (`tools from` trusts its file)."""
    import json

    tools = []
    for entry in sorted(proxy.catalog.entries.values(), key=lambda e: e.exported):
        trusted = proxy.config.servers[entry.server].trust_annotations
        shown = entry.tool.model_dump(by_alias=True, exclude_none=True, mode="json")
        item = {"name": entry.charter["name"], "inputSchema": shown.get("inputSchema", {})}
        if trusted and "annotations" in shown:
            item["annotations"] = shown["annotations"]
        tools.append(item)
    out.write_text(json.dumps({"tools": tools}, indent=2) + "\n", encoding="utf-8")


def _proxy(policy: str, config: ProxyConfig, state: str, log: str | None) -> Proxy:
    import charter
    from charter.hosts.approvals import PendingApprovals, SQLitePending
    from charter.hosts.mcp import Proxy
    from charter.language.source import CompileError
    from charter.runtime.guard import Guard

    try:
        compiled = charter.load(policy)
    except CompileError as err:
        fail(str(err))
    if state == "memory":
        guard = Guard(compiled, log=log)
        return Proxy(guard, config)
    from charter.cli.hook_state import secret_for
    from charter.runtime.state.sqlite import SQLiteStore

    path = Path(state.removeprefix("sqlite:"))
    try:
        secret = secret_for(path)
    except (OSError, ValueError) as err:
        fail(f"cannot open the state file {path}: {err}")
    guard = Guard(compiled, state=SQLiteStore(path), secret=secret, log=log)
    return Proxy(guard, config, PendingApprovals(guard, SQLitePending(path)))


def _serve(proxy: Proxy, listen: str) -> None:
    import gc

    # What is loaded by now (the SDK's and pydantic's ~100k objects, the policy) lives as
    # long as the process: frozen out of the collector's generations, it is not traversed
    # again by every full collection, which took ~70 ms, one per ~3,000 tools/call (25 µs
    # a call on average, all of it in one call's latency). Collected first, so no garbage
    # is frozen with it; unfrozen at the end, so finalizers run at exit as they would.
    gc.collect()
    gc.freeze()
    try:
        _run(proxy, listen)
    finally:
        gc.unfreeze()


def _run(proxy: Proxy, listen: str) -> None:
    import anyio

    if listen == "stdio":
        anyio.run(proxy.run_stdio)
        return
    parts = urlsplit(listen)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        fail(f"--listen: stdio or http://HOST:PORT/PATH, found {listen!r}")
    import uvicorn

    app: Any = proxy.asgi_app(parts.path or "/mcp", parts.hostname)
    print(f"charter mcp: serving {listen}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=parts.hostname, port=parts.port, log_level="warning")
