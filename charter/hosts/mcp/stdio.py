"""stdio for the proxy without worker threads or relay tasks: its front and its upstreams.

The SDK's `mcp.server.stdio.stdio_server` reads stdin and writes stdout through
`anyio.wrap_file`, i.e. a worker-thread hop for every line read, every write and every
flush: three thread round trips (each a futex wake and an event-loop wake-up) per
`tools/call`, which on a loaded two-core machine was the largest single part of the time
the proxy adds. When stdin and stdout are pipes or sockets (what an MCP client gives a
stdio server) this transport reads and writes them on the event loop itself
(`loop.connect_read_pipe` / `connect_write_pipe`) and hands `Server.run` the same two
streams the SDK's transport does: parsed `SessionMessage`s (or the parse error, which
the SDK answers as a JSON-RPC error) in, `SessionMessage`s out, one JSON line each.

As the SDK's transport does, it takes the wire off fds 0 and 1 while it serves (fd 0
reads the null device, fd 1 goes to stderr), so a stray `print` or a child inheriting
the descriptors cannot corrupt the protocol stream, and puts them back afterwards.
Anything else (a regular file or a terminal on stdin, a non-asyncio event loop) falls back
to the SDK's transport.

`serve_lines` is `Server.run` for these streams without its relay: the SDK's dual-era loop
peeks at the client's first request (its protocol era decides the connection's) through a
task that then relays every later message through a memory stream to the dispatcher, two
more event-loop hops per message. `LineReader` can hold the frames read before that request
and hand them out again, so the era's serving loop reads the pipe itself.

`process_streams` does the same for an upstream started as a process, in place of the SDK's
`stdio_client` (which relays the pipes through two tasks and memory streams); it is given to
`mcp.Client` as a `Transport`. Its pipes are connected to the event loop directly, not
through asyncio's subprocess protocol (which hands every chunk read on with one more
`call_soon`). Messages are UTF-8 JSON lines, as MCP's stdio transport says
(`StdioServerParameters.encoding` is not consulted).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import stat
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import mcp_types
from mcp import StdioServerParameters
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCRequest, JSONRPCResponse

__all__ = ["LineReader", "LineWriter", "process_streams", "serve_lines", "stdio_streams"]

#: Longest line accepted from the client (a line is one JSON-RPC message). The SDK's
#: transport has no limit; asyncio's default, 64 KiB, is too small for file contents.
LINE_LIMIT = 64 * 1024 * 1024


def _is_stream(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _on_asyncio() -> bool:
    try:
        import sniffio

        return sniffio.current_async_library() == "asyncio"
    except Exception:  # noqa: BLE001 - unknown loop: use the SDK's transport
        return False


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[tuple[Any, Any]]:
    """`(read_stream, write_stream)` for `Server.run` over this process's stdin/stdout."""
    if not (_on_asyncio() and _is_stream(0) and _is_stream(1)):
        from mcp.server.stdio import stdio_server

        async with stdio_server() as streams:
            yield streams
        return
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
        os.dup2(2, 1)
    finally:
        os.close(devnull)
    try:
        async with _serve(wire_in, wire_out) as streams:
            yield streams
    finally:
        sys.stdout.flush()
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)


def _parse(line: bytes) -> Any:
    """One JSON-RPC message, as the SDK's message union validates it. The line is first
    tried as the one member its keys point at (a request with `"method"` and `"id"`, a
    response with `"result"` and no `"method"`), which is the member the union picks for
    it when it fits (the others require or forbid those keys), at half the union's cost;
    anything that does not fit goes to the union, which decides and words the error."""
    if b'"method"' in line:
        first: Any = JSONRPCRequest if b'"id"' in line else None
    else:
        first = JSONRPCResponse if b'"result"' in line else None
    if first is not None:
        try:
            return first.model_validate_json(line, by_name=False)
        except ValueError:
            pass
    return mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)


class LineReader:
    """The read side `Server.run` takes: one JSON-RPC message per line of a pipe, parsed
    where it is awaited (no task and no memory stream between the pipe and the SDK's
    dispatcher). A line that is not a message is handed on as the exception, which the SDK
    answers as a parse error; the end of the pipe ends the iteration."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._closed = False
        self._lead: deque[SessionMessage | Exception] = deque()  # read ahead, handed out first

    async def opening_request(self, keep: int) -> JSONRPCRequest | None:
        """Read up to the client's first request (None if the stream ends first) and keep it
        to be received again, after at most `keep` of the frames that came before it (the
        rest are dropped): what the SDK's dual-era loop does to choose the protocol era."""
        lead: list[SessionMessage | Exception] = []
        opening: JSONRPCRequest | None = None
        try:
            async for item in self:
                if isinstance(item, SessionMessage) and isinstance(item.message, JSONRPCRequest):
                    opening = item.message
                elif len(lead) >= keep:
                    continue
                lead.append(item)
                if opening is not None:
                    break
        except anyio.ClosedResourceError:
            pass  # closed under us: as at the end of the stream
        self._lead.extend(lead)
        return opening

    async def receive(self) -> SessionMessage | Exception:
        if self._lead:
            return self._lead.popleft()
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                line = await self._reader.readline()
            except ValueError:
                # longer than LINE_LIMIT (what is left of it, if anything, arrives as
                # another unparsable line)
                return ValueError(f"message longer than {LINE_LIMIT} bytes")
            if not line:
                raise anyio.EndOfStream
            if not line.strip():
                continue
            try:
                message = _parse(line)
            except Exception as exc:  # noqa: BLE001 - the SDK answers a parse error
                return exc
            return SessionMessage(message)

    def __aiter__(self) -> LineReader:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> LineReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class LineWriter:
    """The write side: each message written as one JSON line where it is sent (asyncio
    buffers it; `drain` waits only when the peer is not reading)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._closed = False

    async def send(self, item: SessionMessage, /) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
        try:
            self._writer.write(data.encode("utf-8") + b"\n")
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as err:  # the peer closed its end
            raise anyio.BrokenResourceError from err

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> LineWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _era_loops() -> tuple[Any, Any, Any, int] | None:
    """The SDK's per-era serving loops, as its dual-era loop calls them, or None when this
    SDK has no such loops with those parameters (then `Server.run`, relay and all, serves)."""
    try:
        from mcp.server import runner
    except ImportError:
        return None
    modern = getattr(runner, "_serve_modern_stream", None)
    legacy = getattr(runner, "_serve_legacy_stream", None)
    is_modern = getattr(runner, "_has_modern_envelope", None)
    keep = getattr(runner, "_PRE_REQUEST_REPLAY_LIMIT", None)
    if modern is None or legacy is None or is_modern is None or not isinstance(keep, int):
        return None
    wanted = {
        modern: {"lifespan_state", "raise_exceptions"},
        legacy: {"lifespan_state", "session_id", "init_options", "raise_exceptions"},
    }
    for loop, names in wanted.items():
        params = inspect.signature(loop).parameters
        if not names <= params.keys() or len(params) != len(names) + 3:
            return None
    return modern, legacy, is_modern, keep


async def serve_lines(server: Any, read: LineReader, write: LineWriter, options: Any) -> None:
    """`server.run(read, write, options)` without the SDK's relay task between `read` and
    the dispatcher: the client's first request, read here, chooses the era's loop as the
    SDK's dual-era loop chooses it (a request carrying the 2026-07-28 `_meta` envelope, not
    `initialize`, opens a modern connection; anything else a handshake one), then that loop
    reads `read` itself, the first request and the frames before it handed out again."""
    loops = _era_loops()
    if loops is None:
        await server.run(read, write, options)
        return
    modern, legacy, is_modern, keep = loops
    async with server.lifespan(server) as state:
        try:
            opening = await read.opening_request(keep)
            if opening is not None and opening.method != "initialize" and is_modern(opening.params):
                await modern(server, read, write, lifespan_state=state, raise_exceptions=False)
            else:
                await legacy(
                    server,
                    read,
                    write,
                    lifespan_state=state,
                    session_id=None,
                    init_options=options,
                    raise_exceptions=False,
                )
        finally:
            await read.aclose()
            await write.aclose()


@asynccontextmanager
async def _serve(wire_in: int, wire_out: int) -> AsyncIterator[tuple[Any, Any]]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    in_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    out_transport, out_protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
        os.fdopen(wire_out, "wb", buffering=0),
    )
    writer = asyncio.StreamWriter(out_transport, out_protocol, None, loop)
    try:
        yield LineReader(reader), LineWriter(writer)
        with suppress(ConnectionError, RuntimeError):
            await writer.drain()  # what the server wrote last goes out before we close
    finally:
        in_transport.close()
        out_transport.close()


#: Seconds an upstream gets to exit after its stdin is closed, then after SIGTERM (the
#: MCP lifecycle's shutdown order: close stdin, wait, SIGTERM, then SIGKILL).
STOP_GRACE = 2.0


@asynccontextmanager
async def process_streams(params: StdioServerParameters) -> AsyncIterator[tuple[Any, Any]]:
    """`(read_stream, write_stream)` for a `Client` over a server process's stdin/stdout.

    The process is started as the SDK's `stdio_client` starts it (the SDK's inherited
    environment plus `params.env`, its own session so the whole tree can be signalled,
    stderr shared with ours), and its pipes are read and written where the SDK's dispatcher
    awaits them (`LineReader`, `LineWriter`) instead of through two relay tasks and memory
    streams. Off asyncio, or on Windows, the SDK's `stdio_client` is used.
    """
    if sys.platform == "win32" or not _on_asyncio():
        from mcp.client.stdio import stdio_client

        async with stdio_client(params) as streams:
            yield streams
        return
    from mcp.client.stdio import get_default_environment

    # Popen, not asyncio.create_subprocess_exec (which starts it the same way): asyncio's
    # subprocess protocol hands each chunk read on with one more call_soon, an event-loop
    # hop per upstream answer; the pipes are connected to the loop as the front's are
    proc = subprocess.Popen(
        [params.command, *params.args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=get_default_environment() | (params.env or {}),
        cwd=params.cwd,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    transports: list[asyncio.BaseTransport] = []
    try:
        reader, writer = await _connect(proc.stdout, proc.stdin, transports)
        yield LineReader(reader), LineWriter(writer)
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(proc, transports)


async def _connect(
    out: Any, into: Any, transports: list[asyncio.BaseTransport]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Stream reader and writer on a child's stdout and stdin pipes (`transports` gets
    their transports, to close)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), out
    )
    transports.append(read_transport)
    write_transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), into
    )
    transports.append(write_transport)
    return reader, asyncio.StreamWriter(write_transport, protocol, None, loop)


async def _stop(proc: subprocess.Popen[bytes], transports: list[asyncio.BaseTransport]) -> None:
    import signal

    for transport in reversed(transports):  # stdin first: its end tells the server to go
        transport.close()
    with suppress(Exception):
        assert proc.stdin is not None
        proc.stdin.close()  # when it was never connected
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if await _exited(proc, STOP_GRACE):
                return
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)  # its session: npx and the node it starts alike
        await _exited(proc, STOP_GRACE)
    finally:
        with suppress(Exception):
            assert proc.stdout is not None
            proc.stdout.close()


async def _exited(proc: subprocess.Popen[bytes], within: float) -> bool:
    # poll(), not wait(): the process is reaped without blocking the loop
    deadline = anyio.current_time() + within
    while proc.poll() is None:
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(0.02)
    return True
