"""`charter mcp proxy` in front of real servers (npm server-filesystem, PyPI mcp-server-git,
an SDK server that fails on purpose), driven by the `mcp` SDK's real client over stdio and
streamable HTTP, in both protocol eras (spec hosts.md §1.9)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client, MCPError, types

from charter.hosts.mcp.proxy import SESSION_META
from tests.hosts.mcp.conftest import CARD, EMAIL, Setup

FRONTS = [("stdio", "legacy"), ("stdio", "2026-07-28"), ("http", "legacy"), ("http", "2026-07-28")]


def _run(setup: Setup, front: str, mode: str, body: Callable[[Client], Awaitable[None]]) -> None:
    async def go() -> None:
        opener = setup.stdio if front == "stdio" else setup.http
        async with opener(mode) as client:
            await body(client)

    anyio.run(go)


class _RawCall(types.Request[dict[str, Any], str]):
    """A request the SDK's typed models would refuse to build: sent as it is."""


def _raw_call(params: dict[str, Any]) -> _RawCall:
    return _RawCall(method="tools/call", params=params)


def _text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def listing_is_namespaced_tagged_and_denied_tools_hidden(
    setup: Setup, client: Client
) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"fs.read_text_file", "fs.write_file", "git.git_status", "every.echo"} <= set(tools)
    tags = tools["fs.read_text_file"].meta["io.charter/tags"]
    assert "mcp" in tags and "read_only" in tags and "destructive" not in tags
    assert "destructive" in tools["fs.write_file"].meta["io.charter/tags"]
    assert "hint:read_only" not in tags  # fs is trusted; every is not:
    assert all(t.startswith(("mcp", "hint:")) for t in tools["every.echo"].meta["io.charter/tags"])
    assert tools["git.git_status"].meta["io.charter/tool"] == "mcp.git.git_status"
    # `deny tool "mcp.git.git_reset"` with no condition: hidden, and calling it anyway is
    # the MCP spec's unknown tool
    assert "git.git_reset" not in tools
    with pytest.raises(MCPError) as err:
        await client.call_tool("git.git_reset", {"repo_path": str(setup.repo)})
    assert err.value.code == -32602 and "Unknown tool: git.git_reset" in str(err.value)


async def allowed_calls_pass_and_pii_in_results_is_redacted(setup: Setup, client: Client) -> None:
    plain = await client.call_tool("fs.read_text_file", {"path": str(setup.data / "plain.txt")})
    assert not plain.is_error and _text(plain) == "nothing to see\n"
    assert plain.structured_content == {"content": "nothing to see\n"}  # unchanged
    notes = await client.call_tool("fs.read_text_file", {"path": str(setup.data / "notes.txt")})
    assert not notes.is_error
    for shown in (_text(notes), str(notes.structured_content)):
        assert CARD not in shown and EMAIL not in shown
        assert "[CARD]" in shown and "[EMAIL]" in shown
    # the redacted structured content still fits the tool's declared outputSchema
    listed = {t.name: t for t in (await client.list_tools()).tools}
    schema = listed["fs.read_text_file"].output_schema
    assert schema is not None
    jsonschema.validate(notes.structured_content, schema)
    if client.protocol_version >= "2026":
        # a relayed result carries the proxy's serverInfo stamp, not the upstream's
        assert notes.meta["io.modelcontextprotocol/serverInfo"]["name"] == "charter-mcp"
    # server-everything, over streamable HTTP behind the proxy
    echo = await client.call_tool("every.echo", {"message": f"write to {EMAIL}"})
    assert not echo.is_error and EMAIL not in _text(echo) and "[EMAIL]" in _text(echo)


async def argument_rules_deny_with_their_reason_and_the_upstream_sees_nothing(
    setup: Setup, client: Client
) -> None:
    outside = setup.root / "evil.txt"
    denied = await client.call_tool("fs.write_file", {"path": str(outside), "content": "x"})
    assert denied.is_error and "files stay under the data root" in _text(denied)
    assert denied.meta["io.charter/decision"]["effect"] == "deny"  # deny beats the approval
    assert "outside-root" in denied.meta["io.charter/decision"]["rules"]
    assert not outside.exists()
    target = setup.data / "forbidden"
    denied = await client.call_tool("fs.create_directory", {"path": str(target)})
    assert denied.is_error and _text(denied) == "no directories named forbidden"
    assert not target.exists()
    fine = await client.call_tool("fs.create_directory", {"path": str(setup.data / "ok")})
    assert not fine.is_error and (setup.data / "ok").is_dir()


async def destructive_call_needs_an_approval_granted_once(setup: Setup, client: Client) -> None:
    target = setup.data / "report.txt"
    write = {"path": str(target), "content": "quarterly numbers"}
    first = await client.call_tool("fs.write_file", write)
    assert first.is_error and "approval required from eng" in _text(first)
    assert not target.exists()
    ticket = first.meta["io.charter/approval"]["ticket"]
    assert re.search(rf"ticket {ticket}\b", _text(first))
    wrong = setup.grant(ticket, "mallory", "finance")
    assert wrong.returncode != 0 and "finance" in wrong.stderr
    granted = setup.grant(ticket, "alice", "eng")
    assert granted.returncode == 0, granted.stderr
    # other arguments are another action: the grant does not carry over
    other = await client.call_tool("fs.write_file", {**write, "content": "edited"})
    assert other.is_error and "approval required" in _text(other)
    assert not target.exists()
    done = await client.call_tool("fs.write_file", write)
    assert not done.is_error, _text(done)
    assert target.read_text() == "quarterly numbers"
    again = await client.call_tool("fs.write_file", write)
    assert again.is_error and "approval required" in _text(again)  # single use


@pytest.mark.parametrize(("front", "mode"), FRONTS)
def test_through_the_proxy(setup: Setup, front: str, mode: str) -> None:
    # one proxy process per front and era (each start spawns three upstreams): the checks
    # run in turn over the same connection, each named for what it shows
    async def body(client: Client) -> None:
        await listing_is_namespaced_tagged_and_denied_tools_hidden(setup, client)
        await allowed_calls_pass_and_pii_in_results_is_redacted(setup, client)
        await argument_rules_deny_with_their_reason_and_the_upstream_sees_nothing(setup, client)
        await destructive_call_needs_an_approval_granted_once(setup, client)

    _run(setup, front, mode, body)


@pytest.mark.parametrize(("front", "mode"), FRONTS)
def test_budgets_schemas_timeouts_and_a_crashed_upstream(
    setup: Setup, front: str, mode: str
) -> None:
    async def body(client: Client) -> None:
        # arguments the tool's own inputSchema refuses never reach the upstream
        bad = await client.call_tool("fs.read_text_file", {"path": 3})
        assert bad.is_error and "path" in _text(bad)
        assert bad.is_error and "arguments do not fit the schema" in _text(bad)
        # an upstream that never answers: an error result after the call timeout, no hang
        hung = await client.call_tool("flaky.hang", {})
        assert hung.is_error and "did not answer 'hang' within 2 s" in _text(hung)
        # an upstream killed mid-call: an error result; the other upstreams keep serving
        crashed = await client.call_tool("flaky.crash", {})
        assert crashed.is_error and "flaky" in _text(crashed)
        after = await client.call_tool("flaky.echo", {"text": "hi"})
        assert after.is_error and "flaky" in _text(after)
        status = await client.call_tool("git.git_status", {"repo_path": str(setup.repo)})
        assert not status.is_error and "branch" in _text(status)
        echo = await client.call_tool("every.echo", {"message": "still here"})
        assert not echo.is_error and "still here" in _text(echo)
        with pytest.raises(MCPError) as err:
            await client.call_tool("nope.nothing", {})
        assert err.value.code == -32602
        with pytest.raises(MCPError) as err:
            await client.call_tool("git.no_such_tool", {})
        assert err.value.code == -32602 and "Unknown tool: git.no_such_tool" in str(err.value)

        # last, as it spends the session: git_log costs $0.30 (config), the $1 budget stops it
        log = {"repo_path": str(setup.repo), "max_count": 1}
        results = [await client.call_tool("git.git_log", log) for _ in range(5)]
        allowed = [not r.is_error for r in results]
        assert allowed[:3] == [True, True, True] and not all(allowed)
        stopped = results[allowed.index(False)]
        assert "session budget of $1 reached" in _text(stopped)
        # the stopped session stays served: calls with no cost still pass
        status = await client.call_tool("git.git_status", {"repo_path": str(setup.repo)})
        assert not status.is_error, _text(status)

    _run(setup, front, mode, body)


def test_malformed_json_rpc_gets_an_error_and_the_proxy_stays_up(setup: Setup) -> None:
    import json
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, *setup.proxy_args()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(line: bytes) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line + b"\n")
        proc.stdin.flush()

    def answer(wanted: int) -> dict[str, Any]:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            assert line, "the proxy closed its output"
            message = json.loads(line)
            if message.get("id") == wanted:
                return dict(message)

    try:
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        }
        send(b"{this is not json")
        send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}).encode()
        )
        assert "result" in answer(1)
        send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode())
        send(
            json.dumps(
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": 5}}
            ).encode()
        )
        assert answer(2)["error"]["code"] == -32602
        send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).encode())
        listed = answer(3)["result"]["tools"]
        assert any(t["name"] == "git.git_status" for t in listed)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_malformed_json_rpc_over_http_gets_an_error_and_the_proxy_stays_up(setup: Setup) -> None:
    import httpx2

    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

    async def go() -> None:
        with setup.http_proxy() as url:
            async with httpx2.AsyncClient(timeout=30) as http:
                bad = await http.post(url, content=b"{this is not json", headers=headers)
                assert bad.status_code == 400 and bad.json()["error"]["code"] == -32700
                odd = await http.post(url, json={"jsonrpc": "2.0", "id": 1}, headers=headers)
                assert odd.status_code == 400 and "error" in odd.json()
            for mode in ("legacy", "2026-07-28"):
                async with Client(url, mode=mode, read_timeout_seconds=30) as client:  # type: ignore[arg-type]
                    tools = {t.name for t in (await client.list_tools()).tools}
                    assert "git.git_status" in tools
                    with pytest.raises(MCPError) as err:
                        await client.session.send_request(  # a name that is not a string
                            _raw_call({"name": 5}), types.CallToolResult
                        )
                    # 2026-07-28 over HTTP mirrors the name into the Mcp-Name header, and the
                    # SDK checks the two agree before any handler: -32020 HEADER_MISMATCH
                    assert err.value.code == (-32602 if mode == "legacy" else -32020)

    anyio.run(go)


@pytest.mark.parametrize("front", ["stdio", "http"])
@pytest.mark.parametrize("approve", [True, False])
def test_elicit_mode_asks_the_clients_user(setup: Setup, approve: bool, front: str) -> None:
    from mcp import types

    setup.proxy_setting('approvals = "elicit"')
    setup.proxy_setting('local_user_groups = ["eng"]')
    asked: list[str] = []

    async def answer(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        if approve:
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")

    async def go() -> None:
        target = setup.data / "asked.txt"
        opener = setup.stdio if front == "stdio" else setup.http
        async with opener("legacy", elicitation_callback=answer) as client:
            result = await client.call_tool("fs.write_file", {"path": str(target), "content": "ok"})
        assert len(asked) == 1 and "destructive calls need an approval" in asked[0]
        if approve:
            assert not result.is_error, _text(result)
            assert target.read_text() == "ok"
        else:
            assert result.is_error and "the user declined the approval" in _text(result)
            assert not target.exists()

    anyio.run(go)


@pytest.mark.parametrize("front", ["stdio", "http"])
def test_elicit_mode_on_a_2026_client_is_an_input_required_round_trip(
    setup: Setup, front: str
) -> None:
    from mcp import types

    setup.proxy_setting('approvals = "elicit"')
    setup.proxy_setting('local_user_groups = ["eng"]')
    target = setup.data / "round.txt"
    write = {"path": str(target), "content": "ok"}

    async def go() -> None:
        opener = setup.stdio if front == "stdio" else setup.http
        async with opener("2026-07-28") as client:
            assert client.protocol_version == "2026-07-28"
            first = await client.session.call_tool(
                "fs.write_file", write, allow_input_required=True
            )
            assert isinstance(first, types.InputRequiredResult)
            assert first.result_type == "input_required" and first.request_state
            assert not target.exists()
            ((key, ask),) = first.input_requests.items()
            assert "destructive calls need an approval" in ask.params.message
            yes = {key: types.ElicitResult(action="accept", content={"approve": True})}
            # a tampered requestState is refused by the SDK's seal, as the spec says
            with pytest.raises(MCPError) as err:
                await client.session.call_tool(
                    "fs.write_file",
                    write,
                    input_responses=yes,
                    request_state=first.request_state[:-2] + "xx",
                    allow_input_required=True,
                )
            assert err.value.code == -32602
            assert "Invalid or expired requestState" in str(err.value)
            assert not target.exists()
            # the state is bound to this call (the SDK's request binding): other arguments
            # with it are refused the same way
            with pytest.raises(MCPError) as err:
                await client.session.call_tool(
                    "fs.write_file",
                    {**write, "content": "no"},
                    input_responses=yes,
                    request_state=first.request_state,
                    allow_input_required=True,
                )
            assert err.value.code == -32602
            assert not target.exists()
            done = await client.session.call_tool(
                "fs.write_file",
                write,
                input_responses=yes,
                request_state=first.request_state,
                allow_input_required=True,
            )
            assert not isinstance(done, types.InputRequiredResult)
            assert not done.is_error, _text(done)
            assert target.read_text() == "ok"

    anyio.run(go)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_an_upstream_tool_list_change_is_relisted_and_told_to_the_client(
    setup: Setup, mode: str
) -> None:
    from mcp import types

    told = anyio.Event()

    async def messages(message: Any) -> None:
        if isinstance(getattr(message, "root", message), types.ToolListChangedNotification):
            told.set()

    async def grow_and_see(client: Client) -> None:
        before = {t.name for t in (await client.list_tools()).tools}
        assert "flaky.grow" in before and "flaky.extra" not in before
        grown = await client.call_tool("flaky.grow", {})
        assert not grown.is_error, _text(grown)

    async def go() -> None:
        async with setup.stdio(mode, message_handler=messages) as client:
            if mode == "legacy":  # a notification on the session
                await grow_and_see(client)
                with anyio.fail_after(10):
                    await told.wait()
            else:  # an event on the client's subscriptions/listen stream
                async with client.listen(tools_list_changed=True) as events:
                    await grow_and_see(client)
                    with anyio.fail_after(10):
                        await events.__anext__()
            after = {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}
            assert "flaky.extra" in after
            assert _text(await client.call_tool("flaky.extra", {})) == "extra"

    anyio.run(go)


async def _until_listed(client: Client, name: str) -> None:
    """server-everything registers its elicitation tools once it has seen the proxy's
    capabilities, after the handshake, and announces them: wait for the relisted catalog."""
    with anyio.fail_after(15):
        while name not in {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}:
            await anyio.sleep(0.1)


EVERY_ASKS = "every.trigger-elicitation-request"


@pytest.mark.parametrize(
    ("front", "action"), [("stdio", "accept"), ("http", "accept"), ("stdio", "decline")]
)
def test_an_upstream_elicitation_is_asked_of_the_agents_user(
    setup: Setup, front: str, action: str
) -> None:
    # legacy push elicitation from server-everything (2025-11-25), and a 2026-07-28
    # InputRequiredResult from the flaky server, both asked of a handshake-era agent
    asked: list[str] = []

    async def answer(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        if action == "accept":
            return types.ElicitResult(action="accept", content={"name": "Ada Lovelace"})
        return types.ElicitResult(action="decline")

    async def go() -> None:
        opener = setup.stdio if front == "stdio" else setup.http
        async with opener("legacy", elicitation_callback=answer) as client:
            await _until_listed(client, EVERY_ASKS)
            pushed = await client.call_tool(EVERY_ASKS, {})
            rounds = await client.call_tool("flaky.ask", {})
        assert asked == ["Please provide inputs for the following fields:", "What is your name?"]
        assert not pushed.is_error and not rounds.is_error, (_text(pushed), _text(rounds))
        if action == "accept":
            assert "Name: Ada Lovelace" in _text(pushed)
            assert _text(rounds) == "hello Ada Lovelace"
        else:
            assert "declined" in _text(pushed)
            assert _text(rounds) == "no name given"

    anyio.run(go)


def test_upstream_questions_and_clients_that_cannot_be_asked(setup: Setup) -> None:
    asked: list[str] = []

    async def answer(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Grace"})

    async def go() -> None:
        with setup.http_proxy() as url:
            # a 2026-07-28 agent: the upstream's input round is relayed as its own
            # InputRequiredResult, and the SDK client's retry carries the answer back
            async with Client(url, mode="2026-07-28", elicitation_callback=answer) as modern:  # type: ignore[arg-type]
                first = await modern.session.call_tool("flaky.ask", {}, allow_input_required=True)
                assert isinstance(first, types.InputRequiredResult)
                assert first.request_state and "asked-once" not in first.request_state  # sealed
                done = await modern.call_tool("flaky.ask", {})
                assert _text(done) == "hello Grace"
                # server-everything asks mid-call, which a 2026-07-28 client cannot be:
                # an error result, no hang
                await _until_listed(modern, EVERY_ASKS)
                pushed = await modern.call_tool(EVERY_ASKS, {})
                assert pushed.is_error
            # a handshake-era agent that declared no elicitation: refused, no hang
            async with Client(url, mode="legacy", read_timeout_seconds=30) as plain:  # type: ignore[arg-type]
                await _until_listed(plain, EVERY_ASKS)
                refused = await plain.call_tool(EVERY_ASKS, {})
                assert refused.is_error
                unasked = await plain.call_tool("flaky.ask", {})
                assert unasked.is_error and "declared no elicitation" in _text(unasked)
        assert asked == ["What is your name?"]

    anyio.run(go)


def test_http_clients_are_sessions_of_their_own(setup: Setup) -> None:
    # budgets are per session: a handshake-era HTTP client's session is its Mcp-Session-Id,
    # a 2026-07-28 client's the X-Charter-Session header it sends (session_from = "header")
    import httpx2

    setup.proxy_setting('session_from = "header"')
    from mcp.client.streamable_http import streamable_http_client

    log = {"repo_path": str(setup.repo), "max_count": 1}

    async def spend(client: Client) -> list[bool]:
        return [not (await client.call_tool("git.git_log", log)).is_error for _ in range(4)]

    def tagged(url: str, session: str) -> Any:
        http = httpx2.AsyncClient(headers={"X-Charter-Session": session}, timeout=30)
        return streamable_http_client(url, http_client=http)

    async def go() -> None:
        with setup.http_proxy() as url:
            async with Client(url, mode="legacy", read_timeout_seconds=30) as first:  # type: ignore[arg-type]
                assert await spend(first) == [True, True, True, False]
                async with Client(url, mode="legacy", read_timeout_seconds=30) as second:  # type: ignore[arg-type]
                    assert await spend(second) == [True, True, True, False]
            async with Client(tagged(url, "agent-c"), mode="2026-07-28") as c:
                assert await spend(c) == [True, True, True, False]
            async with Client(tagged(url, "agent-c"), mode="2026-07-28") as again:
                assert await spend(again) == [False] * 4  # the same session, already spent
            async with Client(tagged(url, "agent-d"), mode="2026-07-28") as d:
                assert await spend(d) == [True, True, True, False]

    anyio.run(go)


def test_a_client_cannot_name_its_session_unless_configured(setup: Setup) -> None:
    # hosts.md §0.4: the session source is configured, never guessed. By default a client's
    # own `_meta` session id or X-Charter-Session header is ignored, so it cannot start a
    # fresh budget by naming a new session on each call; `session_from = "meta"` trusts it.
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    log = {"repo_path": str(setup.repo), "max_count": 1}

    async def spend(client: Client, *, rotate: bool) -> list[bool]:
        out = []
        for i in range(4):
            meta = {SESSION_META: f"rotated-{i}"} if rotate else None
            result = await client.call_tool("git.git_log", log, meta=meta)  # type: ignore[arg-type]
            out.append(not result.is_error)
        return out

    async def by_default() -> None:
        async with setup.stdio() as client:
            assert await spend(client, rotate=True) == [True, True, True, False]
        with setup.http_proxy() as url:
            for i, expect in enumerate(([True, True, True, False], [False] * 4)):
                http = httpx2.AsyncClient(headers={"X-Charter-Session": f"h{i}"}, timeout=30)
                async with Client(
                    streamable_http_client(url, http_client=http), mode="2026-07-28"
                ) as c:
                    assert await spend(c, rotate=False) == expect

    anyio.run(by_default)
    setup.proxy_setting('session_from = "meta"')

    async def trusted() -> None:
        async with setup.stdio() as client:
            assert await spend(client, rotate=True) == [True] * 4

    anyio.run(trusted)
