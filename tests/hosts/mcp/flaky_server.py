"""A small MCP server (the SDK's own MCPServer, stdio) whose tools fail on purpose: `hang`
never answers, `crash` kills the process mid-call, `echo` answers, `grow` adds a tool and
announces the new list. The proxy tests use it
for the failures real servers cannot be made to show on demand."""

from __future__ import annotations

import os
import time

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("flaky")


@server.tool()
def echo(text: str) -> str:
    """Answer with the text."""
    return text


@server.tool()
def hang(seconds: float = 3600) -> str:
    """Answer after a long time."""
    time.sleep(seconds)
    return "late"


def extra() -> str:
    """A tool that exists only after `grow`."""
    return "extra"


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool `extra` and announce the changed tool list."""
    server.add_tool(extra)
    await ctx.notify_tools_changed()
    return "grown"


@server.tool()
def crash() -> str:
    """Kill this server in the middle of the call."""
    os._exit(3)


if __name__ == "__main__":
    server.run()
