"""`Proxy`: an MCP server to the agent, an MCP client to each upstream, a Guard between.

Enforcement is in the low-level `Server`'s request handlers (the SDK's middleware is
provisional; hosts.md §1.3):

- `tools/list`: the catalog (`catalog.py`): upstream tools renamed `<server>.<tool>`, their
  Charter name and tags in `_meta`, tools no call of which can be allowed left out;
- `tools/call`: an unknown or hidden tool is JSON-RPC -32602 `Unknown tool`, as the MCP spec
  says for unknown tools. Otherwise the Guard decides `{"stage": "tool_call", "tool":
  {"name": "mcp.<server>.<tool>", "server", "tags"}, "args", "agent", "session"}` with any
  granted approval for this exact action attached (`PendingApprovals.attach`); a deny is an
  `isError` result with the reasons (the model reads them) and the decision in
  `_meta["io.charter/decision"]`; `require_approval` parks a ticket and answers with its
  text (`charter approvals grant ID ...`, then the identical retry passes once). An allowed
  call goes upstream (with redacted arguments where the policy says so), its usage is
  settled (`cost_usd` per tool from the config, else the estimate), and its result goes
  through the `tool_result` stage: redacted, or withheld.
- An upstream that asks the user something during a call is relayed to the agent's client:
  a handshake-era upstream's `elicitation/create` (form or URL mode) is sent on to the
  agent's request it belongs to (push; a handshake-era client that declared elicitation),
  and a 2026-07-28 upstream's `InputRequiredResult` becomes the proxy's own (its
  requestState sealed by the SDK, so the retry comes back to the same upstream state) or,
  for a handshake-era client, push elicitations answered before the upstream is asked
  again. A client that cannot be asked is an error the upstream hears, never a hang.
- An upstream that fails (down, timeout, broken answer) is an `isError` result naming it;
  the reservation is released; the other upstreams go on. Nothing here fails open: any
  exception in the proxy's own code is an `isError` deny with the reason.

Session ids (hosts.md §0.4), as `session_from` says: by default the connection's (a
handshake-era HTTP client's `Mcp-Session-Id`, else one id per proxy: one stdio connection
is one agent session); with `header` an `X-Charter-Session` header, with `meta` the
request's `_meta["io.charter/session"]`, each else the connection's.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp import MCPError, types
from mcp.server.lowlevel import Server
from mcp.shared.message import ServerMessageMetadata
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST, SERVER_INFO_META_KEY

from charter.engine.decision import Decision
from charter.hosts.approvals import ApprovalError, PendingApprovals, ticket_text
from charter.hosts.mcp.catalog import Catalog, Entry
from charter.hosts.mcp.config import ProxyConfig
from charter.hosts.mcp.results import (
    as_policy_value,
    decision_meta,
    error_result,
    from_policy_value,
    masks,
)
from charter.hosts.mcp.upstream import Upstream, UpstreamError
from charter.runtime.guard import Guard
from charter.stdlib.values import describe_error

__all__ = ["INVALID_PARAMS", "Proxy"]

INVALID_PARAMS = -32602
SESSION_META = "io.charter/session"
SESSION_HEADER = "x-charter-session"
_BY_CONNECTION = ("mcp-session-id",)  # the headers that name a session, per source
_BY_HEADER = (SESSION_HEADER, *_BY_CONNECTION)
_LOG = logging.getLogger("charter.mcp")
_ROUND = "charter-approval:"  # requestState prefix: the action digest follows
_ROUND_KEY = "charter-approval"
_UPSTREAM = "charter-upstream:"  # requestState prefix: an upstream's own state follows
_MAX_ROUNDS = 10  # input rounds an upstream may ask for in one call (the SDK's default)
# elicitation forms are flat primitives only (MCP spec)
_APPROVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean", "title": "Approve"},
        "note": {"type": "string", "title": "Note"},
    },
    "required": ["approve"],
}


class Proxy:
    """Enforce `guard`'s policy on every `tools/call` to the upstreams of `config`.

    `pending`: where approval tickets wait (in memory unless given; give a
    `SQLitePending` on the Guard's state file so `charter approvals grant` reaches it).
    """

    def __init__(
        self, guard: Guard, config: ProxyConfig, pending: PendingApprovals | None = None
    ) -> None:
        self.guard = guard
        self.config = config
        self.pending = pending if pending is not None else PendingApprovals(guard)
        self.catalog = Catalog(config, guard.policy)
        self.session_id = f"mcp-{uuid.uuid4().hex[:12]}"
        self.upstreams: dict[str, Upstream] = {}
        self._users = 0
        self._changed: list[Any] = []  # handshake-era sessions to tell about a new tool list
        # 2026-07-28 clients hear of it on their subscriptions/listen stream
        from mcp.server.subscriptions import InMemorySubscriptionBus

        self._bus = InMemorySubscriptionBus()
        self._stamp: dict[str, Any] = {}  # the proxy's serverInfo stamp (`as_server`)

    # ── life cycle ───────────────────────────────────────────────────────────

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Proxy]:
        """Connect every upstream (each in its own task) for the duration of the block;
        nested uses share the connections."""
        if self._users:
            self._users += 1
            try:
                yield self
            finally:
                self._users -= 1
            return
        self._users = 1
        self.upstreams = {
            name: Upstream(cfg, self.config.timeout, self._tools_changed)
            for name, cfg in self.config.servers.items()
        }
        for up in self.upstreams.values():
            up.on_elicit = self._forward_elicitation
        try:
            async with anyio.create_task_group() as tg:
                for up in self.upstreams.values():
                    tg.start_soon(up.run)
                for up in self.upstreams.values():
                    await up.ready.wait()
                    if up.down is None:
                        self.catalog.rebuild(up.config, up.tools)
                try:
                    yield self
                finally:
                    for up in self.upstreams.values():
                        up.stop()
        finally:
            self._users = 0

    async def _tools_changed(self, up: Upstream) -> None:
        from mcp.server.subscriptions import ToolsListChanged

        self.catalog.rebuild(up.config, up.tools)
        await self._bus.publish(ToolsListChanged())
        for session in list(self._changed):
            try:
                await session.send_tool_list_changed()
            except Exception:  # noqa: BLE001 - a gone client just stops hearing about it
                self._changed.remove(session)

    def as_server(self) -> Server[Proxy]:
        """The low-level MCP `Server` the agent connects to."""

        @asynccontextmanager
        async def lifespan(_: Server[Proxy]) -> AsyncIterator[Proxy]:
            async with self.running() as proxy:
                yield proxy

        from mcp.server.subscriptions import ListenHandler

        server: Server[Proxy] = Server(
            "charter-mcp",
            version=_version(),
            lifespan=lifespan,
            instructions="Tools of several MCP servers, each call decided by a Charter policy.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self._bus),
        )
        # the approval round trip of 2026-07-28 clients: the SDK seals the requestState we
        # return (AES-GCM under the Guard's secret, bound to the request) and answers a
        # tampered one with -32602 "Invalid or expired requestState" before we see it
        from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity

        self._stamp = server.server_info.model_dump(by_alias=True, mode="json", exclude_none=True)
        security = RequestStateSecurity(keys=[_state_key(self.guard.secret)], ttl=900.0)
        if not _tracing():
            # the SDK's default OpenTelemetry middleware makes a (no-op) span per message,
            # ~60 us a call here; its docs say to drop it from the list to opt out. Kept
            # when a tracer provider is installed, i.e. when someone collects the spans.
            server.middleware = []
        server.middleware.append(RequestStateBoundary(security, default_audience="charter-mcp"))
        return server

    async def run_stdio(self) -> None:
        """Serve one agent over this process's stdin and stdout (both protocol eras)."""
        from charter.hosts.mcp.stdio import LineReader, LineWriter, serve_lines, stdio_streams

        server = self.as_server()
        options = server.create_initialization_options()
        async with stdio_streams() as (read, write):
            if isinstance(read, LineReader) and isinstance(write, LineWriter):
                await serve_lines(server, read, write, options)
            else:  # the SDK's own transport (stdin is not a pipe)
                await server.run(read, write, options)

    def asgi_app(self, path: str = "/mcp", host: str = "127.0.0.1") -> Any:
        """A Starlette app serving streamable HTTP at `path` (both protocol eras)."""
        return self.as_server().streamable_http_app(streamable_http_path=path, host=host)

    # ── handlers ─────────────────────────────────────────────────────────────

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        session = getattr(ctx, "session", None)
        # handshake-era sessions are told of a new tool list on the session itself (2026-07-28
        # clients listen on subscriptions/listen instead, and have no lasting session to keep)
        legacy = str(getattr(ctx, "protocol_version", "")) < "2026"
        if legacy and session is not None and session not in self._changed:
            self._changed.append(session)
        return types.ListToolsResult(tools=self.catalog.listed())

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        # Any: a CallToolResult or InputRequiredResult the proxy makes, or an upstream's
        # result dict relayed as it came (the SDK's runner serialises dicts too, and checks
        # them against the client's protocol version on the way out)
        entry = self.catalog.find(params.name)
        if entry is None:
            down = self._down_server(params.name)
            if down is not None:
                return error_result(down)
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        try:
            return await self._decide_and_call(ctx, entry, params)
        except Exception as err:  # noqa: BLE001 - nothing raises into the host, nothing opens
            _LOG.exception("charter mcp: internal error on %s", params.name)
            return error_result(
                f"charter: internal error, the call was not made: {describe_error(err)}"
            )

    def _down_server(self, name: str) -> str | None:
        server, sep, _ = name.partition(self.config.separator)
        up = self.upstreams.get(server) if sep else None
        return up.down if up is not None else None

    def _session(self, ctx: Any) -> str:
        """The agent session a request belongs to (hosts.md §0.4), from the source the
        config names (`session_from`): the client's own `_meta["io.charter/session"]`
        (`meta`) or `X-Charter-Session` header (`header`) when it sends one; else, and by
        default, the connection's: a handshake-era HTTP client's `Mcp-Session-Id` (one
        per client), else the proxy's one id (stdio: one connection is one agent)."""
        source = self.config.session_from
        if source == "meta":
            meta = getattr(ctx, "meta", None)
            sent = (
                meta.get(SESSION_META)
                if isinstance(meta, dict)
                else getattr(meta, SESSION_META, None)
                if meta is not None
                else None
            )
            if isinstance(sent, str) and sent:
                return sent
        headers = getattr(getattr(ctx, "request", None), "headers", None)
        if headers is not None:
            for name in _BY_HEADER if source == "header" else _BY_CONNECTION:
                value = headers.get(name)
                if isinstance(value, str) and value:
                    return value
        return self.session_id

    def _request(self, ctx: Any, entry: Entry, args: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "stage": "tool_call",
            "tool": entry.charter,
            "args": args,
            "session": {"id": self._session(ctx)},
        }
        if self.config.agent:
            request["agent"] = dict(self.config.agent)
        cost = self.config.servers[entry.server].cost_usd.get(entry.upstream_name)
        if cost is not None:
            request["estimate"] = {"cost_usd": cost}  # the budget reserves it before the call
        request_id = getattr(ctx, "request_id", None)
        if request_id is not None:
            request["trace_id"] = str(request_id)
        return request

    async def _decide_and_call(
        self, ctx: Any, entry: Entry, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult | dict[str, Any]:
        args = dict(params.arguments or {})
        problem = entry.problem(args)
        if problem is not None:
            return error_result(problem)
        request = self.pending.attach(self._request(ctx, entry, args))
        decision = self.guard.check(request)
        if decision.effect == "require_approval":
            token: str | None
            if self._asks_in_round_trip(ctx, decision):
                token = self._round_trip_answer(params, decision)
                if token is None:
                    return _approval_round(decision)
            else:
                token = await self._elicit(ctx, decision)
            if token is None:
                return self._ask(decision, request)
            if not token:
                return _refusal(decision, "the user declined the approval")
            present = request.get("approvals") or []
            request = {**request, "approvals": [*present, token]}
            decision = self.guard.check(request)
        if not decision.allowed:
            return _refusal(decision)
        self.pending.settle(request, decision)
        if masks(decision, "args"):
            args = decision.redact(args, "args")
        up = self.upstreams[entry.server]
        try:
            result = await self._call_upstream(ctx, up, entry.upstream_name, args, params)
        except UpstreamError as err:
            self.guard.release(decision)
            return error_result(
                str(err), {"io.charter/upstream": {"server": up.name, "error": str(err)}}
            )
        except BaseException:
            self.guard.release(decision)
            raise
        if result.get("resultType") == "input_required":
            # relayed to a 2026-07-28 client, which retries the call with its answers: this
            # call did not happen (the retry is decided, and reserves, afresh)
            self.guard.release(decision)
            return result
        cost = up.config.cost_usd.get(entry.upstream_name)
        self.guard.settle(decision, cost_usd=cost)
        return self._result(request, result, _modern(ctx))

    async def _call_upstream(
        self,
        ctx: Any,
        up: Upstream,
        name: str,
        args: dict[str, Any],
        params: types.CallToolRequestParams,
    ) -> dict[str, Any]:
        """Call `name` upstream; when the upstream answers `input_required` (2026-07-28
        multi round-trip), relay its questions to the agent's client: as an
        `InputRequiredResult` to a 2026-07-28 client (returned: its retry carries the
        answers and the upstream's state back), as push elicitations to a handshake-era
        client (answered here, then the upstream is asked again, up to `_MAX_ROUNDS`)."""
        state, responses = None, None
        if params.request_state is not None and params.request_state.startswith(_UPSTREAM):
            state = params.request_state[len(_UPSTREAM) :] or None
            responses = params.input_responses
        result = await up.call(name, args, responses, state, front=ctx)
        for _ in range(_MAX_ROUNDS):
            if result.get("resultType") != "input_required":
                return result
            if _modern(ctx):
                return _relay_input(result)
            answers = await self._answer_inputs(ctx, up, result)
            if isinstance(answers, str):
                raise UpstreamError(answers)
            result = await up.call(name, args, answers, result.get("requestState"), front=ctx)
        raise UpstreamError(
            f"upstream {up.name!r} asked for input more than "
            f"{_MAX_ROUNDS} times on {name!r}: given up"
        )

    async def _answer_inputs(
        self, ctx: Any, up: Upstream, result: dict[str, Any]
    ) -> dict[str, Any] | str:
        """The agent's user's answers to an upstream's `inputRequests` (elicitations only),
        or why they cannot be had."""
        requests = result.get("inputRequests")
        answers: dict[str, Any] = {}
        for key, wire in requests.items() if isinstance(requests, dict) else ():
            method = wire.get("method") if isinstance(wire, dict) else None
            if method != "elicitation/create":
                return (
                    f"upstream {up.name!r} asked for {method or 'unknown'} input; the "
                    "proxy relays elicitation only"
                )
            ask = types.ElicitRequest.model_validate(wire)
            answer = await self._forward_elicitation(ctx, ask.params)
            if isinstance(answer, types.ErrorData):
                return f"upstream {up.name!r} asked the user for input: {answer.message}"
            answers[key] = answer
        return answers

    async def _forward_elicitation(
        self, front: Any, params: Any
    ) -> types.ElicitResult | types.ErrorData:
        """Ask the agent's client an upstream's elicitation (form or URL mode) on the
        request it belongs to, and hand back its answer as it is. Only a handshake-era
        client that declared elicitation can be asked mid-call."""
        session = getattr(front, "session", None)
        if _modern(front):
            return types.ErrorData(
                code=INVALID_REQUEST,
                message=("charter: a 2026-07-28 client cannot be asked in the middle of a call"),
            )
        if session is None or not session.check_client_capability(
            types.ClientCapabilities(elicitation=types.ElicitationCapability())
        ):
            return types.ErrorData(
                code=INVALID_REQUEST,
                message=("charter: the agent's client declared no elicitation capability"),
            )
        try:
            answer: types.ElicitResult = await session.send_request(
                types.ElicitRequest(params=params),
                types.ElicitResult,
                metadata=ServerMessageMetadata(
                    related_request_id=getattr(front, "request_id", None)
                ),
            )
        except MCPError as err:
            return err.error
        except Exception as err:  # noqa: BLE001 - the upstream hears why, the proxy stays
            return types.ErrorData(
                code=INTERNAL_ERROR,
                message=(f"charter: the agent's client could not be asked: {describe_error(err)}"),
            )
        return answer

    def _local_groups(self, decision: Decision) -> list[str]:
        return [g for g in decision.approvers if g in self.config.local_user_groups]

    def _asks_in_round_trip(self, ctx: Any, decision: Decision) -> bool:
        """Elicit mode on a 2026-07-28 session: the approval is an `InputRequiredResult`."""
        return (
            self.config.approvals == "elicit"
            and bool(self._local_groups(decision))
            and str(getattr(ctx, "protocol_version", "")) >= "2026"
        )

    def _round_trip_answer(
        self, params: types.CallToolRequestParams, decision: Decision
    ) -> str | None:
        """On the client's retry: the grant token if its user approved this very action,
        "" if they said no (or the state is for another action); None on the first call."""
        state = params.request_state
        responses = params.input_responses or {}
        if state is None and not responses:
            return None
        if state != f"{_ROUND}{decision.action}":
            return ""  # sealed by us, but for another action: never widened to this one
        answer = responses.get(_ROUND_KEY)
        root = getattr(answer, "root", answer)
        content = getattr(root, "content", None) or {}
        if getattr(root, "action", None) != "accept" or content.get("approve") is not True:
            return ""
        group = self._local_groups(decision)[0]
        return self.guard.approve(decision, by="mcp-client-user", group=group).to_token()

    async def _elicit(self, ctx: Any, decision: Decision) -> str | None:
        """With `approvals = "elicit"`: ask the client's user, through `elicitation/create`,
        to approve for a group the config says that user stands for. The grant token on
        yes, "" on no, None when elicitation does not apply (then a ticket is parked)."""
        groups = self._local_groups(decision)
        session = getattr(ctx, "session", None)
        if (
            self.config.approvals != "elicit"
            or not groups
            or session is None
            or str(getattr(ctx, "protocol_version", "")) >= "2026"
            or not session.check_client_capability(
                types.ClientCapabilities(elicitation=types.ElicitationCapability())
            )
        ):
            return None
        reasons = "; ".join(decision.reasons) or "the policy asks for an approval"
        answer = await session.elicit_form(
            f"Approve this call? {reasons} (approver: {groups[0]})",
            _APPROVE_SCHEMA,
            related_request_id=getattr(ctx, "request_id", None),
        )
        content = answer.content or {}
        if answer.action != "accept" or content.get("approve") is not True:
            return ""
        grant = self.guard.approve(decision, by="mcp-client-user", group=groups[0])
        return grant.to_token()

    def _ask(self, decision: Decision, request: dict[str, Any]) -> types.CallToolResult:
        try:
            ticket = self.pending.park(
                decision, {k: v for k, v in request.items() if k != "approvals"}
            )
        except ApprovalError as err:
            return error_result(
                f"approval required, but it cannot be asked: {err}",
                {"io.charter/decision": decision_meta(decision)},
            )
        return error_result(
            ticket_text(ticket),
            {
                "io.charter/decision": decision_meta(decision),
                "io.charter/approval": {
                    "ticket": ticket.id,
                    "approvers": list(ticket.approvers),
                    "reasons": list(ticket.reasons),
                    "expires_at": ticket.expires_at,
                },
            },
        )

    def _result(
        self, request: dict[str, Any], result: dict[str, Any], modern: bool = False
    ) -> types.CallToolResult | dict[str, Any]:
        value = as_policy_value(result)
        seen = self.guard.check(
            {
                **{k: v for k, v in request.items() if k not in ("approvals", "estimate")},
                "stage": "tool_result",
                "result": value,
            }
        )
        if not seen.allowed:
            reasons = "; ".join(seen.reasons) or seen.effect
            return error_result(
                f"result withheld by policy: {reasons}",
                {"io.charter/decision": decision_meta(seen)},
            )
        if masks(seen, "result"):
            result = from_policy_value(result, seen.redact(value, "result"))
        return _relayed(result, self._stamp if modern else None)


def _modern(ctx: Any) -> bool:
    """The agent's request is of the 2026-07-28 era (no server-to-client requests)."""
    return str(getattr(ctx, "protocol_version", "")) >= "2026"


def _relay_input(result: dict[str, Any]) -> dict[str, Any]:
    """An upstream's `InputRequiredResult` for the agent's 2026-07-28 client: its questions
    as they are, its requestState marked as the upstream's (the SDK seals it under the
    proxy's key and binds it to this very call)."""
    state = result.get("requestState")
    return {
        "resultType": "input_required",
        "inputRequests": result.get("inputRequests"),
        "requestState": _UPSTREAM + (state if isinstance(state, str) else ""),
    }


def _relayed(result: dict[str, Any], stamp: dict[str, Any] | None = None) -> dict[str, Any]:
    """An upstream's final result as the proxy answers it: `resultType` said (2026-07-28
    requires it; the SDK drops it for a handshake-era client), and the upstream's own
    serverInfo stamp replaced by the proxy's: the agent's server is the proxy. `stamp`, for
    a 2026-07-28 client, is put in here (the SDK would stamp a deep copy of the same dump
    on each result, ~10 µs a call); without it the upstream's is only left out."""
    meta = result.get("_meta")
    if isinstance(meta, dict) and SERVER_INFO_META_KEY in meta:
        meta = {k: v for k, v in meta.items() if k != SERVER_INFO_META_KEY}
    if stamp:
        meta = {**(meta if isinstance(meta, dict) else {}), SERVER_INFO_META_KEY: dict(stamp)}
    if meta is not result.get("_meta"):
        result = (
            {**result, "_meta": meta} if meta else {k: v for k, v in result.items() if k != "_meta"}
        )
    return {**result, "resultType": "complete"}


def _approval_round(decision: Decision) -> types.InputRequiredResult:
    reasons = "; ".join(decision.reasons) or "the policy asks for an approval"
    ask = types.ElicitRequest(
        params=types.ElicitRequestFormParams(
            message=f"Approve this call? {reasons}", requested_schema=_APPROVE_SCHEMA
        )
    )
    return types.InputRequiredResult(
        input_requests={_ROUND_KEY: ask}, request_state=f"{_ROUND}{decision.action}"
    )


def _tracing() -> bool:
    """An OpenTelemetry SDK tracer provider is installed (the API's default is a proxy that
    makes non-recording spans)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    provider = trace.get_tracer_provider()
    return type(provider).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider")


def _state_key(secret: bytes) -> bytes:
    """A key for sealing requestState, derived from (never equal to) the grant secret."""
    import hashlib
    import hmac

    return hmac.new(secret, b"charter-mcp requestState", hashlib.sha256).digest()


def _refusal(decision: Decision, why: str | None = None) -> types.CallToolResult:
    reasons = "; ".join(decision.reasons) or "denied by policy"
    text = f"{why}: {reasons}" if why else reasons
    return error_result(text, {"io.charter/decision": decision_meta(decision)})


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("charter")
    except Exception:  # noqa: BLE001 - a version is a courtesy
        return "0"
