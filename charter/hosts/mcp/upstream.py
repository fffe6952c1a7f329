"""One upstream MCP server, connected through the SDK's real client.

Each upstream lives in its own task, holding its `mcp.Client` open until the proxy stops, so
a crash of one (its process killed, its connection dropped) ends that task only: the upstream
is marked down with the reason, its calls answer with that reason, and the other upstreams
keep serving. A call that does not answer within `timeout` seconds is an `UpstreamError`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from mcp import Client, MCPError, StdioServerParameters, types
from mcp_types import HEADER_MISMATCH, REQUEST_TIMEOUT
from pydantic import TypeAdapter

from charter.hosts.mcp.config import ServerConfig

__all__ = ["Upstream", "UpstreamError"]

_LOG = logging.getLogger("charter.mcp")
#: Seconds an upstream may take to start and list its tools (npx and Python servers take a
#: second or two; a call's own `timeout` is usually shorter).
START_TIMEOUT = 60.0
# `send_request`'s result type for a tools/call relayed as it is (typed Any: the SDK's
# signature binds result types to models, and a TypeAdapter of dict is what we mean)
_WIRE_RESULT: Any = TypeAdapter(dict[str, Any])


class UpstreamError(Exception):
    """An upstream could not answer; the message says which and why."""


class Upstream:
    """A connection to one configured server (`run` in a task group, then `ready`)."""

    def __init__(self, config: ServerConfig, timeout: float,
                 on_tools_changed: Callable[[Upstream], Awaitable[None]] | None = None) -> None:
        self.config = config
        self.name = config.name
        self.timeout = timeout
        self.on_tools_changed = on_tools_changed
        self.client: Client | None = None
        self.down: str | None = None  # why it cannot serve (None while it can)
        self.tools: list[types.Tool] = []
        self.ready = anyio.Event()
        self._stop = anyio.Event()

    def _target(self) -> Any:
        cfg = self.config
        if cfg.command is not None:
            from charter.hosts.mcp.stdio import process_streams

            return process_streams(StdioServerParameters(
                command=cfg.command, args=list(cfg.args),
                env=dict(cfg.env) if cfg.env is not None else None, cwd=cfg.cwd))
        assert cfg.url is not None
        if not cfg.headers:
            return cfg.url
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        return streamable_http_client(cfg.url, http_client=httpx2.AsyncClient(
            headers=dict(cfg.headers)))

    async def run(self) -> None:
        """Connect, list the tools, and hold the connection until `stop` (never raises)."""
        try:
            async with Client(self._target(), message_handler=self._message,
                              read_timeout_seconds=self.timeout) as client:
                self.client = client
                with anyio.fail_after(max(self.timeout, START_TIMEOUT)):
                    self.tools = await self.list_tools()
                self.ready.set()
                if str(client.protocol_version) >= "2026":
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._listen, client)
                        await self._stop.wait()
                        tg.cancel_scope.cancel()
                else:
                    await self._stop.wait()
        except Exception as err:  # noqa: BLE001 - one upstream's failure stays its own
            self._fail(f"upstream {self.name!r} is unavailable: {_describe(err)}")
        except BaseException as err:
            self._fail(f"upstream {self.name!r} stopped: {_describe(err)}")
            raise
        finally:
            self.client = None
            if self.down is None:
                self.down = f"upstream {self.name!r} has stopped"
            self.ready.set()

    def _fail(self, reason: str) -> None:
        if self.down is None:
            self.down = reason
            _LOG.error("%s", reason)

    def stop(self) -> None:
        self._stop.set()

    async def list_tools(self) -> list[types.Tool]:
        client = self._client()
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(1000):  # an upstream that pages forever is cut off, not followed
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def call(self, name: str, arguments: dict[str, Any] | None,
                   input_responses: Mapping[str, Any] | None = None,
                   request_state: str | None = None) -> dict[str, Any]:
        """The upstream's result in its wire form, or `UpstreamError` (down, timed out,
        broken answer).

        Sent with the session's `send_request` and a plain-dict result type: the SDK still
        checks the answer against the negotiated protocol version's result schema (a
        broken answer is an `UpstreamError`), but does not build a `CallToolResult` model
        the proxy would only dump again, nor re-check `structuredContent` against the
        tool's `outputSchema` (the agent's own client does that on what the proxy sends).
        `HEADER_MISMATCH` (a 2026-07-28 HTTP upstream whose tool schema changed) is re-listed
        and sent once more, as `Client.call_tool` does. An `input_required` answer is
        returned as it is; the proxy relays it (`Proxy._relay_input`)."""
        client = self._client()
        params = types.CallToolRequestParams(
            name=name, arguments=arguments, request_state=request_state,
            input_responses=dict(input_responses) if input_responses is not None else None)
        request = types.CallToolRequest(params=params)
        try:
            with anyio.fail_after(self.timeout):
                try:
                    raw = await client.session.send_request(request, _WIRE_RESULT)
                except MCPError as err:
                    if err.code != HEADER_MISMATCH:
                        raise
                    await client.list_tools(cache_mode="refresh")
                    raw = await client.session.send_request(request, _WIRE_RESULT)
        except TimeoutError:
            raise UpstreamError(self._late(name)) from None
        except MCPError as err:
            if err.code == REQUEST_TIMEOUT:
                raise UpstreamError(self._late(name)) from None
            raise self._failed(name, err) from None
        except Exception as err:  # noqa: BLE001 - any failure is the upstream's error
            raise self._failed(name, err) from None
        if not isinstance(raw, dict):
            raise UpstreamError(f"upstream {self.name!r} answered {name!r} with a "
                                f"{type(raw).__name__}, not a result object")
        return raw

    def _late(self, name: str) -> str:
        return f"upstream {self.name!r} did not answer {name!r} within {self.timeout:g} s"

    def _failed(self, name: str, err: BaseException) -> UpstreamError:
        if self.client is None or self.down is not None:
            return UpstreamError(self.down or f"upstream {self.name!r} stopped")
        return UpstreamError(f"upstream {self.name!r} failed on {name!r}: {_describe(err)}")

    def _client(self) -> Client:
        if self.down is not None or self.client is None:
            raise UpstreamError(self.down or f"upstream {self.name!r} is not connected")
        return self.client

    async def _message(self, message: Any) -> None:
        """Handshake-era servers announce a changed tool list as a notification."""
        root = getattr(message, "root", message)
        if isinstance(root, types.ToolListChangedNotification) and self.ready.is_set():
            await self._relist()

    async def _listen(self, client: Client) -> None:
        """2026-07-28 servers announce it on a `subscriptions/listen` stream, if asked."""
        try:
            async with client.listen(tools_list_changed=True) as events:
                async for _ in events:
                    await self._relist()
        except Exception as err:  # noqa: BLE001 - no stream: the list stays as first seen
            _LOG.info("upstream %r: no tool-list change stream: %s", self.name, _describe(err))

    async def _relist(self) -> None:
        try:
            self.tools = await self.list_tools()
        except Exception as err:  # noqa: BLE001 - keep the last list, say why
            _LOG.error("upstream %r: cannot re-list its tools: %s", self.name, err)
            return
        if self.on_tools_changed is not None:
            await self.on_tools_changed(self)


def _describe(err: BaseException) -> str:
    if isinstance(err, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in err.exceptions)
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
