"""One upstream MCP server, connected through the SDK's real client.

Each upstream lives in its own task, holding its `mcp.Client` open until the proxy stops, so
a crash of one (its process killed, its connection dropped) ends that task only: the upstream
is marked down with the reason, its calls answer with that reason, and the other upstreams
keep serving. A call that does not answer within `timeout` seconds is an `UpstreamError`;
the time an elicitation the upstream started waits for a person does not count.

The client declares the elicitation capability to every upstream, so servers that ask
(server-everything registers its elicitation tools only then) can; `on_elicit` takes each
such request to the agent of the one call in flight (with several in flight there is no
telling whose: refused).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client, MCPError, StdioServerParameters, types
from mcp_types import HEADER_MISMATCH, INVALID_REQUEST, REQUEST_TIMEOUT
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


@dataclass
class _Call:
    front: Any  # the agent's request context the call serves
    scope: anyio.CancelScope  # its deadline


class UpstreamError(Exception):
    """An upstream could not answer; the message says which and why."""


class Upstream:
    """A connection to one configured server (`run` in a task group, then `ready`)."""

    def __init__(
        self,
        config: ServerConfig,
        timeout: float,
        on_tools_changed: Callable[[Upstream], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.timeout = timeout
        self.on_tools_changed = on_tools_changed
        #: Where an upstream's `elicitation/create` goes: `(front, params) -> answer`, with
        #: `front` the agent's request context of the call it came during (set by the proxy).
        self.on_elicit: Callable[[Any, Any], Awaitable[Any]] | None = None
        self._calls: dict[object, _Call] = {}  # calls in flight, each with its deadline
        self.client: Client | None = None
        self.down: str | None = None  # why it cannot serve (None while it can)
        self.tools: list[types.Tool] = []
        self.ready = anyio.Event()
        self._stop = anyio.Event()

    def _target(self) -> Any:
        cfg = self.config
        if cfg.command is not None:
            from charter.hosts.mcp.stdio import process_streams

            return process_streams(
                StdioServerParameters(
                    command=cfg.command,
                    args=list(cfg.args),
                    env=dict(cfg.env) if cfg.env is not None else None,
                    cwd=cfg.cwd,
                )
            )
        assert cfg.url is not None
        if not cfg.headers:
            return cfg.url
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        return streamable_http_client(
            cfg.url, http_client=httpx2.AsyncClient(headers=dict(cfg.headers))
        )

    async def run(self) -> None:
        """Connect, list the tools, and hold the connection until `stop` (never raises)."""
        try:
            async with Client(
                self._target(),
                message_handler=self._message,
                elicitation_callback=self._elicit,
                read_timeout_seconds=self.timeout,
            ) as client:
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

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        input_responses: Mapping[str, Any] | None = None,
        request_state: str | None = None,
        front: Any = None,
    ) -> dict[str, Any]:
        """The upstream's result in its wire form, or `UpstreamError` (down, timed out,
        broken answer).

        Sent with the session's `send_request` and a plain-dict result type: the SDK still
        checks the answer against the negotiated protocol version's result schema (a
        broken answer is an `UpstreamError`), but does not build a `CallToolResult` model
        the proxy would only dump again, nor re-check `structuredContent` against the
        tool's `outputSchema` (the agent's own client does that on what the proxy sends).
        `HEADER_MISMATCH` (a 2026-07-28 HTTP upstream whose tool schema changed) is re-listed
        and sent once more, as `Client.call_tool` does. An `input_required` answer is
        returned as it is, for the proxy to relay.

        The call has `timeout` seconds, not counting the time an elicitation it started
        waits for the agent's user (`front`: the agent's request it serves)."""
        client = self._client()
        params = types.CallToolRequestParams(
            name=name,
            arguments=arguments,
            request_state=request_state,
            input_responses=dict(input_responses) if input_responses is not None else None,
        )
        request = types.CallToolRequest(params=params)
        key = object()
        with anyio.CancelScope(deadline=anyio.current_time() + self.timeout) as scope:
            self._calls[key] = _Call(front, scope)
            try:
                raw = await self._send(client, request)
            except MCPError as err:
                if err.code == REQUEST_TIMEOUT:
                    raise UpstreamError(self._late(name)) from None
                raise self._failed(name, err) from None
            except Exception as err:  # noqa: BLE001 - any failure is the upstream's error
                raise self._failed(name, err) from None
            finally:
                del self._calls[key]
        if scope.cancelled_caught:
            raise UpstreamError(self._late(name))
        if not isinstance(raw, dict):
            raise UpstreamError(
                f"upstream {self.name!r} answered {name!r} with a "
                f"{type(raw).__name__}, not a result object"
            )
        return raw

    async def _send(self, client: Client, request: types.CallToolRequest) -> Any:
        # no SDK read timeout on the call (math.inf): ours above is the one that pauses
        # while a person answers an elicitation
        try:
            return await client.session.send_request(request, _WIRE_RESULT, math.inf)
        except MCPError as err:
            if err.code != HEADER_MISMATCH:
                raise
            await client.list_tools(cache_mode="refresh")
            return await client.session.send_request(request, _WIRE_RESULT, math.inf)

    async def _elicit(self, context: Any, params: Any) -> Any:
        """An upstream's `elicitation/create` during a call: handed to `on_elicit` with the
        agent's request the call serves, the call's clock stopped meanwhile. With no call,
        or several, in flight there is no telling whose user should answer: refused."""
        calls = list(self._calls.values())
        if self.on_elicit is None or len(calls) != 1 or calls[0].front is None:
            why = (
                "no call is in flight"
                if not calls
                else f"{len(calls)} calls are in flight: no telling which one asks"
                if len(calls) > 1
                else "the proxy does not relay elicitation here"
            )
            return types.ErrorData(
                code=INVALID_REQUEST, message=f"charter: elicitation refused: {why}"
            )
        call = calls[0]
        left = call.scope.deadline - anyio.current_time()
        call.scope.deadline = math.inf
        try:
            return await self.on_elicit(call.front, params)
        finally:
            call.scope.deadline = anyio.current_time() + max(left, 0.0)

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
