"""`Sidecar`: Charter over HTTP (spec hosts.md §4), a Starlette app served by uvicorn.

Endpoints (§4.2): `POST /v1/decide` (the Guard; `?stateless=1` is `Policy.decide`),
`/v1/check` (the Guard, always), `/v1/decide/batch`, `/v1/settle`, `/v1/release`,
`/v1/approve`, `/v1/hooks/{agent}`, `GET /v1/approvals`, `POST /v1/approvals/{id}/grant|deny`,
the OPA-shaped `POST /v1/data/charter/decision`, `GET /health` (`?strict`), `/health/ready`,
`/status` (the `LiveStatus`), `/v1/status`, `/v1/policy`, `/metrics`, and the approval inbox
page `GET /approvals`.

Request bodies are handed to the wire module (`charter.hosts.wire`) as bytes; answers are
`Decision.to_json()` bytes with `decision_id` (and `ticket` for a parked approval) added.
A request that cannot be decided is a 200 deny naming the field, never a 5xx a client could
read as "no answer, go ahead"; HTTP errors (`{"code", "message"}`) are for what is not a
request at all: a body over the limit (413), a content type that is not JSON (415), a body
that is not JSON on the non-decide endpoints (400, the reason names the field), a missing or
wrong approver token (401/403).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from charter.engine.decision import Decision
from charter.hosts import wire
from charter.hosts.approvals import (
    DENIED,
    GRANTED,
    PENDING,
    ApprovalError,
    PendingApprovals,
    Ticket,
)
from charter.hosts.held import MemoryHeld
from charter.hosts.names import AGENTS
from charter.hosts.serve.auth import COOKIE, SESSION_TTL, Approver, Approvers
from charter.hosts.serve.inbox import page
from charter.hosts.serve.metrics import CONTENT_TYPE, Metrics
from charter.hosts.serve.opalog import OPADecisionLog
from charter.stdlib.values import describe, describe_error

if TYPE_CHECKING:
    from charter.runtime.guard import Guard
    from charter.runtime.live import Live
    from charter.runtime.live_status import LiveEvent, LiveStatus
    from charter.runtime.policy import Policy

__all__ = ["MAX_BATCH", "MAX_BODY", "Sidecar"]

MAX_BODY: Final = 1024 * 1024
MAX_BATCH: Final = 1000
_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")
_JSON: Final = "application/json"
_LOG = logging.getLogger("charter.serve")
_Handler = Callable[[Request], Awaitable[Response]]
_DECISION: Final = msgspec.json.Decoder(Decision)
_NO_STORE: Final = {"cache-control": "no-store"}


class _Head(msgspec.Struct):
    """The fields of a request that metrics and telemetry label decisions with."""

    stage: object = "tool_call"
    tool: object = None
    session: object = None
    agent: object = None


_HEAD: Final = msgspec.json.Decoder(_Head)


class _HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(value: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_ENCODER.encode(value), status, headers=headers, media_type=_JSON)


def _hook_failed(request: Request, reason: str) -> Response:
    """The hooks route's answer to a failure nothing else caught: blocking, 200."""
    agent = request.path_params.get("agent", "")
    event = request.query_params.get("event")
    answer = wire.blocked(agent if agent in AGENTS else "claude-code", event, reason)
    if request.query_params.get("reply") == "envelope":
        return _json({"stdout": answer.stdout, "exit_code": answer.code, "stderr": answer.stderr})
    return Response(answer.stdout.encode("utf-8"), media_type=_JSON)


def _unknown_agent(agent: str, raw: bytes) -> wire.HookAnswer:
    """An HTTP hook posted to an agent Charter does not know: Claude Code's blocking answer
    (the one host with HTTP hooks) for the event the body names, never an empty allow."""
    try:
        body = _DECODER.decode(raw)
        name = body.get("hook_event_name") if isinstance(body, dict) else None
    except (msgspec.DecodeError, RecursionError):
        name = None
    event = name if type(name) is str else None
    return wire.blocked(
        "claude-code",
        event,
        f"charter: unknown agent {agent!r} in the hook URL (known: {', '.join(AGENTS)})",
    )


def _error(status: int, code: str, message: str) -> Response:
    return _json({"code": code, "message": message}, status)


def _with(decision_json: bytes, **extra: object) -> bytes:
    """`decision_json` (an object) with `extra` keys added at the end, the rest byte for byte."""
    tail = b"".join(
        b"," + _ENCODER.encode(k) + b":" + _ENCODER.encode(v)
        for k, v in extra.items()
        if v is not None
    )
    return decision_json[:-1] + tail + b"}"


class Sidecar:
    """Serve `guard`'s policy over HTTP.

    `pending`: where approval tickets wait (in memory unless given; an `SQLitePending` on the
    state file lets `charter approvals` reach them too). `approvers`: the approver tokens (no
    one can approve over HTTP without them). `max_body`: the largest request body read.
    `source`: where the policy came from (shown by `/v1/status`). `ticket_ttl`: how long a
    parked approval waits. `reload`: makes the policy again from its source (`POST
    /v1/reload`, SIGHUP); a policy that does not compile is not swapped in. `tracer`: an
    OpenTelemetry tracer; each decision is then a `gen_ai.guardrail.result` event
    (`charter.hosts.otel`), under the caller's `traceparent`. `opa_log`: a file for decision
    events in OPA's field names (`opalog.py`); `opa_log_url`: where to upload them.
    `watch`: the policy file or directory whose edits reload it (with `reload`).
    `live`: a `Live` handle (`charter.control.watch`) that decides instead of `guard`: its
    kill switches and canary apply, its watcher reloads, `/status` is its `LiveStatus` and
    `/health?strict` its state (L-H3); `guard` then follows its active version.
    """

    def __init__(
        self,
        guard: Guard,
        pending: PendingApprovals | None = None,
        *,
        approvers: Approvers | None = None,
        max_body: int = MAX_BODY,
        source: str | None = None,
        ticket_ttl: float = 900,
        store_kind: str = "memory",
        tracer: Any = None,
        reload: Callable[[], Policy] | None = None,
        opa_log: str | os.PathLike[str] | None = None,
        opa_log_url: str | None = None,
        watch: str | os.PathLike[str] | None = None,
        live: Live | None = None,
    ) -> None:
        self.live = live
        self.guard = guard
        self.pending = pending if pending is not None else PendingApprovals(guard)
        # Reservations hook events made before a tool, until its after-event (one process
        # answers both: the thin hook and HTTP hooks post every event here).
        self.held = MemoryHeld()
        self.approvers = approvers if approvers is not None else Approvers()
        self.approvers.key(guard.secret)
        self.max_body = max_body
        self.source = source
        self.ticket_ttl = ticket_ttl
        self.store_kind = store_kind
        self.loaded_at = time.time()
        self.metrics = Metrics(store_kind)
        self.reload = reload
        self.watch = watch
        self.opa_log: OPADecisionLog | None = None
        if opa_log is not None or opa_log_url is not None:
            from importlib.metadata import PackageNotFoundError, version

            try:
                ours = version("charter")
            except PackageNotFoundError:
                ours = ""
            self.opa_log = OPADecisionLog(opa_log, ours, url=opa_log_url)
        self._serving(guard)
        if live is not None:
            live.on_event(self._followed)
        #: decisions as OpenTelemetry events (`charter.hosts.otel.DecisionEvents`), if set
        self.events: Any = None
        if tracer is not None:
            from charter.hosts.otel import DecisionEvents

            self.events = DecisionEvents(tracer)

    # ── the app ──────────────────────────────────────────────────────────────

    def app(self) -> Starlette:
        """The ASGI app."""
        r = self._route
        routes = [
            Route("/v1/decide", r("decide", self._decide), methods=["POST"]),
            Route("/v1/check", r("check", self._check), methods=["POST"]),
            Route("/v1/decide/batch", r("batch", self._batch), methods=["POST"]),
            Route("/v1/settle", r("settle", self._settle), methods=["POST"]),
            Route("/v1/release", r("release", self._release), methods=["POST"]),
            Route("/v1/approve", r("approve", self._approve), methods=["POST"]),
            Route("/v1/hooks/{agent}", r("hooks", self._hook), methods=["POST"]),
            Route("/v1/approvals", r("approvals", self._list), methods=["GET"]),
            Route("/v1/approvals/{ticket}", r("approval", self._show), methods=["GET"]),
            Route("/v1/approvals/{ticket}/grant", r("grant", self._grant), methods=["POST"]),
            Route("/v1/approvals/{ticket}/deny", r("deny", self._deny), methods=["POST"]),
            Route("/v1/data/charter/decision", r("opa", self._opa), methods=["POST"]),
            Route("/v1/status", r("status", self._status), methods=["GET"]),
            Route("/v1/policy", r("policy", self._policy), methods=["GET"]),
            Route("/v1/reload", r("reload", self._reload), methods=["POST"]),
            Route("/health", r("health", self._health), methods=["GET"]),
            Route("/status", r("live_status", self._live_status), methods=["GET"]),
            Route("/health/ready", r("ready", self._ready), methods=["GET"]),
            Route("/metrics", r("metrics", self._metrics), methods=["GET"]),
            Route("/approvals", r("inbox", self._inbox), methods=["GET"]),
            Route(
                "/approvals/session", r("session", self._session), methods=["GET", "POST", "DELETE"]
            ),
            Route("/approvals/{ticket}", r("inbox", self._inbox), methods=["GET"]),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """SIGHUP reloads the policy (when the server runs in the main thread); with `watch`,
        so does a change to the policy's files."""
        import asyncio
        import signal

        hooked = False
        watcher = None
        if self.reload is not None or self.live is not None:
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_now)
                hooked = True
            except (RuntimeError, ValueError, NotImplementedError):
                pass  # not the main thread, or no signals here: POST /v1/reload still works
            if self.watch is not None:
                watcher = asyncio.create_task(self._watching(Path(self.watch)))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            if self.live is not None:
                self.live.close()
            if hooked:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    async def _watching(self, path: Path, every: float = 0.5) -> None:
        """Reload when the policy files under `path` change (polled: no extra dependency)."""
        import asyncio

        seen = _fingerprint(path)
        while True:
            await asyncio.sleep(every)
            now = _fingerprint(path)
            if now != seen:
                seen = now
                answer = self.reload_now()
                if not answer["reloaded"]:
                    _LOG.error(
                        "policy edit not loaded, the old one keeps serving: %s",
                        answer["diagnostics"],
                    )

    def _followed(self, event: LiveEvent) -> None:
        """A live handle's event (on its event thread): serve its active version's Guard
        (metrics labels, masks, approvals) and count its reloads."""
        live = self.live
        if live is None:
            return
        if live.guard is not self.guard:
            self._serving(live.guard)
            self.loaded_at = time.time()
        if event.kind in ("CONFIGURATION_CHANGED", "ERROR"):
            result = "ok" if event.kind == "CONFIGURATION_CHANGED" else "failed"
            self.metrics.inc("charter_policy_reloads_total", ("result", result))

    def _serving(self, guard: Guard) -> None:
        """Make `guard` the one that decides (the metrics and masks follow its policy)."""
        info = guard.policy.info
        self.metrics.policy = (info.name or "", info.version or "", info.digest or "")
        self.matchers = {n: m.pattern for n, m in guard.policy.ir.matchers.items()}
        self.guard = guard
        self.pending.guard = guard

    def reload_now(self) -> dict[str, Any]:
        """Make the policy again from its source and swap it in if it compiles; the state,
        the grant secret, the log and the approvers stay. Returns what `/v1/reload` says."""
        old = self.guard
        before = old.policy.info.digest
        if self.live is not None and self.live.watcher is not None:
            attempt = self.live.watcher.reload()  # the gate; an unchanged source is None
            after = self.live.policy.digest
            failed = attempt is not None and not attempt.ok
            return {
                "reloaded": not failed,
                "digest": after,
                "previous": before,
                "changed": after != before,
                "diagnostics": [{"message": d} for d in attempt.diagnostics] if failed else [],
            }
        if self.reload is None:
            return {
                "reloaded": False,
                "digest": before,
                "diagnostics": [{"message": "this sidecar has no policy source to reload"}],
            }
        try:
            policy = self.reload()
        except Exception as err:  # noqa: BLE001 - the old policy keeps serving
            self.metrics.inc("charter_policy_reloads_total", ("result", "failed"))
            return {"reloaded": False, "digest": before, "diagnostics": _diagnostics(err)}
        from charter.runtime.guard import Guard

        fresh = Guard(
            policy,
            state=old.store,
            log=old.log,
            secret=old.secret,
            clock=old.clock,
            approvers=old.is_member,
            checkpoint_resets=old.resets,
        )
        self._serving(fresh)
        self.loaded_at = time.time()
        self.metrics.inc("charter_policy_reloads_total", ("result", "ok"))
        digest = policy.info.digest
        return {
            "reloaded": True,
            "digest": digest,
            "previous": before,
            "changed": digest != before,
            "diagnostics": [],
        }

    def _route(self, name: str, handler: _Handler) -> _Handler:
        """`handler` with HTTP errors answered, failures contained and the request counted.
        On the decide routes an unexpected failure is a 200 deny (fail closed)."""
        deciding = name in ("decide", "check", "opa")

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except _HTTPError as err:
                response = _error(err.status, err.code, err.message)
            except Exception as err:  # noqa: BLE001 - nothing raises into the client
                reason = f"charter: internal error: {describe_error(err)}"
                if deciding:
                    deny = Decision("deny", False, reasons=(reason,), policy=self.guard.policy.info)
                    response = Response(
                        _with(deny.to_json(), decision_id=uuid.uuid4().hex), media_type=_JSON
                    )
                elif name == "hooks":  # an HTTP hook's 500 would let the call run
                    response = _hook_failed(request, reason)
                else:
                    response = _error(500, "internal", reason)
            self.metrics.inc(
                "charter_http_requests_total", ("route", name), ("code", str(response.status_code))
            )
            return response

        return run

    # ── reading requests ─────────────────────────────────────────────────────

    async def _body(self, request: Request) -> bytes:
        """The body, refusing a content type that is not JSON (415) and a body over the limit
        (413), whether or not Content-Length says so."""
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        # curl -d sends the form type; a JSON body under it is still read as JSON.
        if (
            kind
            and kind != _JSON
            and not kind.endswith("+json")
            and (kind != "application/x-www-form-urlencoded")
        ):
            raise _HTTPError(
                415, "invalid_parameter", f"content-type must be {_JSON}; found {kind}"
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise _HTTPError(413, "too_large", f"body is larger than {self.max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise _HTTPError(413, "too_large", f"body is larger than {self.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _object(self, request: Request, what: str) -> dict[str, Any]:
        """The body as a JSON object, or 400 saying what is wrong with it."""
        raw = await self._body(request)
        try:
            value = _DECODER.decode(raw)
        except (msgspec.DecodeError, RecursionError) as err:
            raise _HTTPError(400, "invalid_parameter", f"{what}: not valid JSON: {err}") from None
        if type(value) is not dict:
            raise _HTTPError(
                400, "invalid_parameter", f"{what} must be a JSON object; found {describe(value)}"
            )
        return value

    # ── deciding ─────────────────────────────────────────────────────────────

    def check(self, request: object) -> tuple[Decision, Ticket | None]:
        """`Guard.check` of one request (a decoded JSON value) with approvals: a granted
        ticket of the identical action is attached, spent when it lets the call through,
        and a `require_approval` parks a ticket. Never raises."""
        try:
            check = self.live.check if self.live is not None else self.guard.check
            if type(request) is not dict:
                return check(_ENCODER.encode(request)), None
            req: dict[str, Any] = request
            if req.get("stage", "tool_call") == "tool_call":
                req = self.pending.attach(req)
            decision = check(req)
            for _ in self.pending.settle(req, decision):
                self.metrics.inc("charter_approvals_total", ("state", "used"))
            ticket = None
            if decision.effect == "require_approval" and decision.action is not None:
                try:
                    ticket = self.pending.park(decision, req, ttl=self.ticket_ttl)
                    self.metrics.inc("charter_approvals_total", ("state", "parked"))
                except ApprovalError:
                    ticket = None
            return decision, ticket
        except Exception as err:  # noqa: BLE001
            return Decision(
                "deny",
                False,
                reasons=(f"charter: internal error: {describe_error(err)}",),
                policy=self.guard.policy.info,
            ), None

    def _count(
        self,
        decision: Decision,
        raw: bytes,
        request: object,
        seconds: float,
        did: str,
        caller: Request | None,
    ) -> None:
        """Metrics, the OpenTelemetry event and the OPA-shaped log line of one decision."""
        if isinstance(request, dict):
            head: dict[str, Any] | None = request
        else:
            try:  # only the few fields the labels need (msgspec skips the rest)
                head = msgspec.structs.asdict(_HEAD.decode(raw))
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                head = None
        stage = head.get("stage", "tool_call") if head is not None else "invalid"
        stage = stage if isinstance(stage, str) and len(stage) <= 32 else "invalid"
        store_error = any(r.startswith("state store unavailable") for r in decision.reasons)
        self.metrics.decision(decision.effect, stage, seconds, store_error)
        if self.events is not None:
            self.events.record(
                decision,
                head,
                stage,
                latency_us=int(seconds * 1e6),
                decision_id=did,
                context=self._parent(caller) if caller is not None else None,
            )
        if self.opa_log is not None:
            if request is None:
                try:
                    request = _DECODER.decode(raw)
                except (msgspec.DecodeError, RecursionError):
                    request = raw.decode("utf-8", "replace")
            client = caller.client if caller is not None else None
            self.opa_log.write(
                decision_id=did,
                decision=msgspec.to_builtins(decision),
                request=request,
                matchers=self.matchers,
                elapsed_ns=int(seconds * 1e9),
                peer=f"{client.host}:{client.port}" if client is not None else None,
                traceparent=caller.headers.get("traceparent") if caller is not None else None,
            )

    def _one(self, raw: bytes, stateless: bool, caller: Request | None = None) -> bytes:
        """One decision answered as JSON with `decision_id` (and `ticket`)."""
        start = time.perf_counter()
        did = uuid.uuid4().hex
        if stateless:
            out = self._stateless(raw)
            decision = _DECISION.decode(out)
            self._count(decision, raw, None, time.perf_counter() - start, did, caller)
            return _with(out, decision_id=did)
        try:
            request = _DECODER.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            out = wire.check_json(self.guard, raw)  # the Guard's own malformed-request deny
            decision = _DECISION.decode(out)
            self._count(decision, raw, None, time.perf_counter() - start, did, caller)
            return _with(out, decision_id=did)
        decision, ticket = self.check(request)
        self._count(decision, raw, request, time.perf_counter() - start, did, caller)
        return _with(decision.to_json(), decision_id=did, ticket=_ticket_ref(ticket))

    def _stateless(self, raw: bytes) -> bytes:
        """`Policy.decide` of a JSON request; with a live handle, its `decide` (kill
        switches and canary apply to stateless decisions too). Never raises."""
        live = self.live
        if live is None:
            return wire.decide_json(self.guard.policy, raw)
        try:
            return live.decide(raw).to_json()
        except Exception as err:  # noqa: BLE001 - nothing raises into the client
            reason = f"charter: internal error: {describe_error(err)}"
            return Decision("deny", False, reasons=(reason,), policy=live.policy.info).to_json()

    def _parent(self, request: Request) -> Any:
        """The caller's trace context (W3C `traceparent`), when decisions are traced."""
        if self.events is None or "traceparent" not in request.headers:
            return None
        from opentelemetry.propagate import extract

        return extract(dict(request.headers))

    async def _decide(self, request: Request) -> Response:
        stateless = request.query_params.get("stateless", "") in ("1", "true")
        raw = await self._body(request)
        return Response(self._one(raw, stateless, request), media_type=_JSON)

    async def _check(self, request: Request) -> Response:
        raw = await self._body(request)
        return Response(self._one(raw, False, request), media_type=_JSON)

    async def _batch(self, request: Request) -> Response:
        body = await self._object(request, "batch request")
        items = body.get("requests")
        if not isinstance(items, list):
            raise _HTTPError(
                400,
                "invalid_parameter",
                f"requests must be a list of requests; found {describe(items)}",
            )
        if len(items) > MAX_BATCH:
            raise _HTTPError(
                400,
                "invalid_parameter",
                f"requests holds {len(items)} requests; at most {MAX_BATCH}",
            )
        stateless = request.query_params.get("stateless", "") in ("1", "true")
        outs = [self._one(_ENCODER.encode(item), stateless, request) for item in items]
        return Response(b'{"decisions":[' + b",".join(outs) + b"]}", media_type=_JSON)

    async def _opa(self, request: Request) -> Response:
        body = await self._object(request, "OPA query")
        if "input" not in body:
            # OPA answers an undefined document without `result`; Charter's input is a request.
            raise _HTTPError(
                400, "invalid_parameter", 'input must hold the Charter request: {"input": {...}}'
            )
        answer = self._one(_ENCODER.encode(body["input"]), False, request)
        decision, _, rest = answer[:-1].rpartition(b',"decision_id":')
        did = rest.split(b",", 1)[0]
        return Response(
            b'{"result":' + decision + b'},"decision_id":' + did + b"}", media_type=_JSON
        )

    async def _settle(self, request: Request) -> Response:
        return self._settled(await self._body(request), release=False)

    async def _release(self, request: Request) -> Response:
        return self._settled(await self._body(request), release=True)

    def _settled(self, raw: bytes, release: bool) -> Response:
        if release:
            try:
                body = _DECODER.decode(raw)
            except (msgspec.DecodeError, RecursionError) as err:
                raise _HTTPError(
                    400, "invalid_parameter", f"release request: not valid JSON: {err}"
                ) from None
            if isinstance(body, dict):
                body["release"] = True
                raw = _ENCODER.encode(body)
        out = wire.settle_json(self.guard, raw)
        answer = msgspec.json.decode(out)
        if "error" in answer:
            raise _HTTPError(400, "invalid_parameter", str(answer["error"]))
        result = "released" if release else ("settled" if answer.get("ok") else "store_error")
        self.metrics.inc("charter_reservations_total", ("result", result))
        return Response(out, media_type=_JSON)

    async def _hook(self, request: Request) -> Response:
        """A coding agent's hook event over HTTP, always answered 200 (a non-2xx answer is a
        non-blocking error to Claude Code: the call would run). The body is the host's own
        answer, what `charter hook` prints on stdout: what a Claude Code `type: "http"` hook
        reads; anything that goes wrong (a body too large or not JSON, an unknown agent, no
        policy) is the host's blocking answer, since an HTTP hook has no exit code 2. With
        `?reply=envelope` (the thin `charter hook --server`): `{"stdout", "exit_code",
        "stderr"}`, the command hook's whole answer. `?authoritative=1` and `?ask_group=G`
        (repeatable) are `charter hook`'s `--authoritative` and `--ask-group`."""
        from charter.hosts.hook import HookOptions, run_hook

        agent = request.path_params["agent"]
        event = request.query_params.get("event")
        envelope = request.query_params.get("reply") == "envelope"
        try:
            raw = await self._body(request)
        except _HTTPError as err:
            answer = wire.blocked(agent, event, f"charter: {err.message}")
        else:
            query = request.query_params
            opts = HookOptions(
                agent,
                event=event,
                names=query.get("names", "normalized"),
                authoritative=query.get("authoritative") in ("1", "true"),
                ask_groups=frozenset(query.getlist("ask_group")),
            )
            answer = run_hook(opts, raw, lambda: (self._hook_guard(), self.pending, self.held))
            if answer.code != 0 and not envelope and agent not in AGENTS:
                answer = _unknown_agent(agent, raw)
        if envelope:
            return _json(
                {"stdout": answer.stdout, "exit_code": answer.code, "stderr": answer.stderr}
            )
        return Response(answer.stdout.encode("utf-8"), media_type=_JSON)

    def _hook_guard(self) -> Guard:
        """What decides a hook event: the Guard, or with a live handle the handle itself, so
        its kill switches and canary apply to hooks as to /v1/decide. `run_hook` uses only
        `check`, `settle`, `release` and `policy`, which `Live` has with the Guard's
        contract (hence the cast)."""
        if self.live is None:
            return self.guard
        return cast("Guard", self.live)

    # ── approvals ────────────────────────────────────────────────────────────

    def _who(self, request: Request, changing: bool) -> Approver:
        """The approver making `request`: a bearer token, or a signed-in inbox session whose
        CSRF token the request repeats (for requests that change anything)."""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            found = self.approvers.by_token(auth[7:].strip())
            if found is None:
                raise _HTTPError(401, "unauthorized", "unknown approver token")
            return found
        session = self.approvers.session(request.cookies.get(COOKIE))
        if session is None:
            if not self.approvers:
                raise _HTTPError(
                    401,
                    "unauthorized",
                    "no approvers are configured (charter serve --approvers FILE)",
                )
            raise _HTTPError(
                401, "unauthorized", "sign in with an approver token (Authorization: Bearer TOKEN)"
            )
        if changing:
            origin = request.headers.get("origin")
            if origin is not None and origin != _origin(request):
                raise _HTTPError(403, "forbidden", f"cross-origin request from {origin} refused")
            sent = request.headers.get("x-csrf-token", "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise _HTTPError(403, "forbidden", "missing or wrong X-CSRF-Token")
        return session.approver

    def _view(self, t: Ticket, now: float) -> dict[str, Any]:
        """A ticket as the approver sees it: arguments masked, no grant token."""
        from charter.runtime.audit import mask_value

        state = t.state
        if state == PENDING and t.expired(now):
            state = "expired"
        return {
            "id": t.id,
            "tool": t.tool,
            "args": mask_value(t.args, self.matchers),
            "rules": list(t.rules),
            "reasons": list(t.reasons),
            "approvers": list(t.approvers),
            "session": t.session,
            "state": state,
            "created_at": t.created_at,
            "expires_at": t.expires_at,
            "by": t.by,
            "group": t.group,
            "note": t.note,
            "decided_at": t.decided_at,
        }

    async def _list(self, request: Request) -> Response:
        who = self._who(request, changing=False)
        state = request.query_params.get("state", PENDING)
        if state not in ("pending", "granted", "denied", "used", "all"):
            raise _HTTPError(
                400,
                "invalid_parameter",
                f"state must be pending, granted, denied, used or all; found {state}",
            )
        now = float(self.guard.clock())
        tickets = [
            self._view(t, now)
            for t in self.pending.list(None if state == "all" else state)
            if not t.approvers or who.groups & set(t.approvers)
        ]
        return _json(
            {"approver": {"name": who.name, "groups": sorted(who.groups)}, "approvals": tickets}
        )

    async def _show(self, request: Request) -> Response:
        who = self._who(request, changing=False)
        t = self._ticket(request.path_params["ticket"])
        if t.approvers and not who.groups & set(t.approvers):
            raise _HTTPError(403, "forbidden", f"{who.name} cannot approve ticket {t.id}")
        return _json(self._view(t, float(self.guard.clock())))

    def _ticket(self, ticket_id: str) -> Ticket:
        try:
            return self.pending.get(ticket_id)
        except ApprovalError as err:
            raise _HTTPError(404, "not_found", str(err)) from None

    async def _grant(self, request: Request) -> Response:
        who = self._who(request, changing=True)
        body = await self._object(request, "grant request")
        t = self._ticket(request.path_params["ticket"])
        group = body.get("group")
        if group is None:  # the one group both the approver and the ticket name
            common = sorted(who.groups & set(t.approvers)) if t.approvers else sorted(who.groups)
            if len(common) != 1:
                raise _HTTPError(
                    400,
                    "invalid_parameter",
                    "group must name the approver group you approve for; "
                    f"you are in {', '.join(sorted(who.groups))}",
                )
            group = common[0]
        if type(group) is not str:
            raise _HTTPError(
                400, "invalid_parameter", f"group must be a group name; found {describe(group)}"
            )
        if group not in who.groups:
            raise _HTTPError(
                403,
                "forbidden",
                f"{who.name} may approve for {', '.join(sorted(who.groups))}, not {group}",
            )
        by = body.get("by", who.name)
        if by != who.name:
            raise _HTTPError(403, "forbidden", f"this token approves as {who.name}, not {by}")
        ttl = body.get("ttl", 300)
        if type(ttl) is bool or not isinstance(ttl, int | Decimal) or ttl <= 0:
            raise _HTTPError(
                400,
                "invalid_parameter",
                f"ttl must be a positive number of seconds; found {describe(ttl)}",
            )
        try:
            done = self.pending.grant(t.id, by=who.name, group=group, ttl=float(ttl))
        except ApprovalError as err:
            raise _HTTPError(409, "conflict", str(err)) from None
        self._audit(done, GRANTED)
        return _json(self._view(done, float(self.guard.clock())))

    async def _deny(self, request: Request) -> Response:
        who = self._who(request, changing=True)
        body = await self._object(request, "deny request")
        t = self._ticket(request.path_params["ticket"])
        if t.approvers and not who.groups & set(t.approvers):
            raise _HTTPError(
                403,
                "forbidden",
                f"{who.name} may approve for {', '.join(sorted(who.groups))}, "
                f"not {', '.join(t.approvers)}",
            )
        reason = body.get("reason")
        if reason is not None and type(reason) is not str:
            raise _HTTPError(
                400, "invalid_parameter", f"reason must be a string; found {describe(reason)}"
            )
        try:
            done = self.pending.deny(t.id, by=who.name, reason=reason)
        except ApprovalError as err:
            raise _HTTPError(409, "conflict", str(err)) from None
        self._audit(done, DENIED)
        return _json(self._view(done, float(self.guard.clock())))

    def _audit(self, t: Ticket, state: str) -> None:
        """A grant or a denial in the decision log: who, when, which ticket and action."""
        self.metrics.inc("charter_approvals_total", ("state", state))
        log = self.guard.log
        if log is None:
            return
        record: dict[str, object] = {
            "time": t.decided_at,
            "event": "approval",
            "state": state,
            "ticket": t.id,
            "action": t.action,
            "tool": t.tool,
            "session_id": t.session,
            "by": t.by,
            "group": t.group,
            "note": t.note,
            "approvers": list(t.approvers),
            "policy_digest": self.guard.policy.info.digest,
        }
        try:
            log.write(record, matchers=self.matchers)
        except Exception as err:  # noqa: BLE001 - the grant stands; say the log failed
            _LOG.error("cannot write the approval to the decision log %s: %s", log.path, err)

    async def _approve(self, request: Request) -> Response:
        """`Guard.approve` of an action digest (`wire.approve_json`) by the token's approver."""
        who = self._who(request, changing=True)
        body = await self._object(request, "approve request")
        group = body.get("group")
        if type(group) is str and group not in who.groups:
            raise _HTTPError(
                403,
                "forbidden",
                f"{who.name} may approve for {', '.join(sorted(who.groups))}, not {group}",
            )
        body["by"] = who.name
        out = wire.approve_json(self.guard, _ENCODER.encode(body))
        answer = msgspec.json.decode(out)
        if "error" in answer:
            raise _HTTPError(400, "invalid_parameter", str(answer["error"]))
        self.metrics.inc("charter_approvals_total", ("state", GRANTED))
        return Response(out, media_type=_JSON)

    # ── the inbox page and its session ───────────────────────────────────────

    async def _inbox(self, request: Request) -> Response:
        html, nonce = page(request.path_params.get("ticket"))
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        return HTMLResponse(
            html,
            headers={
                "content-security-policy": csp,
                "x-frame-options": "DENY",
                "referrer-policy": "no-referrer",
                "cache-control": "no-store",
            },
        )

    async def _session(self, request: Request) -> Response:
        """GET: who is signed in (and the CSRF token); POST `{"token"}`: sign in; DELETE:
        sign out."""
        if request.method == "POST":
            body = await self._object(request, "sign-in request")
            token = body.get("token")
            if type(token) is not str or not token:
                raise _HTTPError(
                    400,
                    "invalid_parameter",
                    f"token must be your approver token; found {describe(token)}",
                )
            who = self.approvers.by_token(token)
            if who is None:
                raise _HTTPError(401, "unauthorized", "unknown approver token")
            new_sid, new = self.approvers.sign_in(who)
            response = _json({"name": who.name, "groups": sorted(who.groups), "csrf": new.csrf})
            response.set_cookie(
                COOKIE,
                new_sid,
                max_age=SESSION_TTL,
                httponly=True,
                samesite="strict",
                path="/",
                secure=request.url.scheme == "https",
            )
            return response
        sid = request.cookies.get(COOKIE)
        session = self.approvers.session(sid)
        if request.method == "DELETE":
            if session is not None:
                origin = request.headers.get("origin")
                if origin is not None and origin != _origin(request):
                    raise _HTTPError(403, "forbidden", "cross-origin request refused")
            self.approvers.sign_out(sid)
            response = _json({})
            response.delete_cookie(COOKIE, path="/")
            return response
        if session is None:
            raise _HTTPError(401, "unauthorized", "not signed in")
        who = session.approver
        return _json({"name": who.name, "groups": sorted(who.groups), "csrf": session.csrf})

    # ── health, status, metrics ──────────────────────────────────────────────

    async def _health(self, request: Request) -> Response:
        """200 once a version is active (always, for a fixed policy); with `?strict`, 503
        unless the live handle is READY (DEGRADED and STALE fail it), L-H3."""
        if self.live is None:
            return _json({})
        state = self.live.state
        strict = "strict" in request.query_params
        body = {"state": state, "digest": self.live.policy.digest}
        bad = state == "NOT_READY" or (strict and state != "READY")
        return _json(body, 503 if bad else 200)

    async def _live_status(self, request: Request) -> Response:
        """The `LiveStatus` (L-H1); for a fixed policy, READY with its digest."""
        return Response(
            msgspec.json.encode(self.live_status()), media_type=_JSON, headers=_NO_STORE
        )

    def live_status(self) -> LiveStatus:
        """What `/status` answers."""
        if self.live is not None:
            return self.live.status()
        from charter.runtime.live_status import ActiveStatus, LiveStatus

        info = self.guard.policy.info
        return LiveStatus(
            state="READY",
            active=ActiveStatus(
                digest=info.digest or "",
                name=info.name,
                version=info.version,
                since=self.loaded_at,
                source=self.source,
            ),
            updated_at=time.time(),
            pid=os.getpid(),
        )

    async def _ready(self, request: Request) -> Response:
        """Ready when the store answers one read (the policy is loaded by construction)."""
        from charter.runtime.state.base import StateQuery

        try:
            self.guard.store.read(
                StateQuery("charter-ready", calls=False), float(self.guard.clock())
            )
        except Exception as err:  # noqa: BLE001
            return _error(503, "not_ready", f"state store unavailable: {describe_error(err)}")
        return _json({})

    async def _status(self, request: Request) -> Response:
        info = self.guard.policy.info
        counts: dict[str, int] = {}
        for t in self.pending.list():
            counts[t.state] = counts.get(t.state, 0) + 1
        return _json(
            {
                "policy": {
                    "name": info.name,
                    "version": info.version,
                    "digest": info.digest,
                    "loaded_at": self.loaded_at,
                    "source": self.source,
                },
                "store": self.store_kind,
                "approvals": counts,
                "pid": os.getpid(),
            }
        )

    async def _reload(self, request: Request) -> Response:
        return _json(self.reload_now())

    async def _policy(self, request: Request) -> Response:
        info = self.guard.policy.info
        return _json(
            {
                "name": info.name,
                "version": info.version,
                "digest": info.digest,
                "source": self.source,
            }
        )

    async def _metrics(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, mtime and size of the policy files at `path` (a file, or a directory's
    `.agentpolicy` files, as `charter.load` reads them)."""
    try:
        files = [path] if path.is_file() else sorted(path.glob("*.agentpolicy"))
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return ()


def _diagnostics(err: Exception) -> list[dict[str, Any]]:
    """A failed load's diagnostics (a `CompileError`'s, read by shape), else its message."""
    found = []
    for d in getattr(err, "diagnostics", None) or ():
        span = getattr(d, "span", None)
        found.append(
            {
                "file": getattr(span, "file", None),
                "line": getattr(span, "line", None),
                "col": getattr(span, "col", None),
                "code": getattr(d, "code", None),
                "message": str(getattr(d, "message", d)),
            }
        )
    return found or [{"message": describe_error(err)}]


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def _ticket_ref(t: Ticket | None) -> dict[str, object] | None:
    if t is None:
        return None
    return {
        "id": t.id,
        "state": t.state,
        "approvers": list(t.approvers),
        "expires_at": t.expires_at,
        "inbox": f"/approvals/{t.id}",
    }
