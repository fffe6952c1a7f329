"""LangChain / LangGraph: `CharterMiddleware`, an `AgentMiddleware` for `create_agent`.

`wrap_tool_call` decides each call before its tool runs:

- allow: the tool runs (with redacted arguments where the policy says so), its usage is
  settled and its `ToolMessage` content goes through the `tool_result` stage;
- deny: the tool never runs; the model gets `ToolMessage(status="error")` with the reasons;
- require_approval: `langgraph.types.interrupt(payload)` pauses the run (a checkpointer is
  needed) with `{"charter": "approval", "tool", "args", "approvers", "reasons", "action"}`.
  Resume with `Command(resume=...)` carrying one of the decisions of LangChain's own
  `HumanInTheLoopMiddleware`: `{"type": "approve", "grant": TOKEN}` (the grant re-checked
  against the call: a grant for other arguments is refused), `{"type": "edit",
  "edited_action": {"name", "args"}}` (a new action, decided afresh, never run on an old
  grant), `{"type": "reject", "message": ...}`. LangGraph re-runs the node on resume, so
  the check runs again with the resume value in hand.

Imports LangChain lazily: `charter.hosts.adapters.langchain` imports without it, and
`CharterMiddleware` raises ImportError naming the extra when it is missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from charter.hosts.adapters.gate import ToolGate, Verdict

if TYPE_CHECKING:
    from charter.runtime.guard import Guard

__all__ = ["CharterMiddleware", "approval_payload"]

_MAX_ROUNDS = 8  # approve/edit rounds on one call before it is refused


def approval_payload(verdict: Verdict, tool_call: Mapping[str, Any]) -> dict[str, Any]:
    """What `interrupt()` shows the human: the call, its approvers, reasons and action."""
    return {
        **verdict.pause_info(),
        "tool": tool_call.get("name"),
        "args": verdict.args,
        "tool_call_id": tool_call.get("id"),
    }


def _middleware_base() -> type:
    try:
        from langchain.agents.middleware import AgentMiddleware
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "CharterMiddleware needs LangChain: pip install 'charter[langchain]'"
        ) from err
    return AgentMiddleware


def CharterMiddleware(guard: Guard, **gate: Any) -> Any:  # noqa: N802 - a class to its users
    """An `AgentMiddleware` enforcing `guard`'s policy on every tool call of the agent.

    Keyword arguments go to `ToolGate` (`context`, `tags`, `cost`, `tokens`).
    """
    base = _middleware_base()
    checker = ToolGate(guard, **gate)

    class _CharterMiddleware(base):  # type: ignore[misc, valid-type]
        name = "CharterMiddleware"

        def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
            verdict, request = _decide(checker, request)
            if not verdict.run:
                return _error(request, verdict.message)
            return _after(checker, verdict, request, _run(checker, verdict, handler, request))

        async def awrap_tool_call(
            self, request: Any, handler: Callable[[Any], Awaitable[Any]]
        ) -> Any:
            verdict, request = _decide(checker, request)
            if not verdict.run:
                return _error(request, verdict.message)
            try:
                result = await handler(_with_args(request, verdict))
            except BaseException:
                checker.release(verdict)
                raise
            return _after(checker, verdict, request, result)

    return _CharterMiddleware()


def _decide(gate: ToolGate, request: Any) -> tuple[Verdict, Any]:
    """The verdict for the call, through as many approval rounds as the human takes."""
    from langgraph.types import interrupt

    grant: Any = None
    for _ in range(_MAX_ROUNDS):
        call = request.tool_call
        verdict = gate.check(str(call.get("name")), call.get("args"), grant)
        if not verdict.paused:
            return verdict, request
        answer = interrupt(approval_payload(verdict, call))
        kind = answer.get("type") if isinstance(answer, Mapping) else None
        if kind == "approve" and answer.get("grant"):
            grant = answer["grant"]
        elif kind == "edit" and isinstance(answer.get("edited_action"), Mapping):
            edited = answer["edited_action"]
            request = request.override(
                tool_call={
                    **call,
                    "name": edited.get("name", call.get("name")),
                    "args": dict(edited.get("args") or {}),
                }
            )
            grant = None  # an edited call is a new action: decided afresh
        else:
            message = answer.get("message") if isinstance(answer, Mapping) else None
            return _refused(gate, verdict, message or "the approver rejected the call"), request
    return _refused(gate, verdict, "too many approval rounds"), request


def _refused(gate: ToolGate, verdict: Verdict, message: str) -> Verdict:
    from charter.runtime.guard_flow import deny

    return Verdict(
        deny(gate.guard.policy, f"{message}: {verdict.message}"), verdict.request, verdict.args
    )


def _with_args(request: Any, verdict: Verdict) -> Any:
    call = request.tool_call
    if verdict.args == call.get("args"):
        return request
    return request.override(tool_call={**call, "args": verdict.args})


def _run(gate: ToolGate, verdict: Verdict, handler: Callable[[Any], Any], request: Any) -> Any:
    try:
        return handler(_with_args(request, verdict))
    except BaseException:
        gate.release(verdict)
        raise


def _after(gate: ToolGate, verdict: Verdict, request: Any, result: Any) -> Any:
    """The tool's message with its content through the `tool_result` stage."""
    from langchain_core.messages import ToolMessage

    if not isinstance(result, ToolMessage):
        return result  # a Command: graph control, not a result the model reads
    finished = gate.finish(verdict, result.content)
    if not finished.ok:
        return _error(request, finished.message)
    if finished.result is result.content:
        return result
    return result.model_copy(update={"content": finished.result})


def _error(request: Any, message: str) -> Any:
    from langchain_core.messages import ToolMessage

    call = request.tool_call
    return ToolMessage(
        content=message, tool_call_id=call.get("id") or "", name=call.get("name"), status="error"
    )
