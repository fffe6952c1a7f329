"""A small MCP server (the SDK's own MCPServer, stdio) whose tools fail on purpose: `hang`
never answers, `crash` kills the process mid-call, `echo` answers, `grow` adds a tool and
announces the new list, `ask` asks the user's name in a 2026-07-28 input round. The proxy
tests use it for the failures real servers cannot be made to show on demand."""

from __future__ import annotations

import os
import time
from typing import Any

from mcp import types
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
async def ask(ctx: Context) -> Any:
    """Ask the user's name (a 2026-07-28 input round), then greet them."""
    answer = (ctx.input_responses or {}).get("name")
    if answer is None:
        return types.InputRequiredResult(
            input_requests={
                "name": types.ElicitRequest(
                    params=types.ElicitRequestFormParams(
                        message="What is your name?",
                        requested_schema={
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "required": ["name"],
                        },
                    )
                )
            },
            request_state="asked-once",
        )
    if ctx.request_state != "asked-once":
        return f"state lost: {ctx.request_state!r}"
    root = getattr(answer, "root", answer)
    if getattr(root, "action", None) != "accept":
        return "no name given"
    return f"hello {(root.content or {}).get('name')}"


@server.tool()
def crash() -> str:
    """Kill this server in the middle of the call."""
    os._exit(3)


if __name__ == "__main__":
    server.run()
