"""Google ADK: `CharterPlugin`, a runner-wide plugin that enforces a Guard on tool calls.

`before_tool_callback` decides each call before its tool runs:

- allow: the tool runs (with redacted arguments where the policy says so: the arguments
  dict is rewritten in place, which ADK passes on to the tool);
- deny: returns `{"error": reasons}`, which ADK uses as the tool's response, so the tool
  never runs and the model reads why;
- require_approval: `tool_context.request_confirmation(hint=reasons, payload={"charter":
  "approval", "approvers", "reasons", "action"})`, so the run yields an
  `adk_request_confirmation` call. Resume with a `FunctionResponse(name=
  "adk_request_confirmation", id=..., response={"confirmed": True, "payload": {"grant":
  TOKEN}})`: ADK runs the tool again with `tool_context.tool_confirmation`, and the plugin
  re-checks the call with that grant; a confirmation without a valid grant for exactly this
  call is refused with the reason.

`after_tool_callback` settles the call's usage and decides its `tool_result`: a redacted
result replaces the tool's response dict, a withheld one becomes `{"error": ...}`.

Imports ADK lazily; `CharterPlugin` raises ImportError naming the extra when it is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from charter.hosts.adapters.gate import ToolGate, Verdict

if TYPE_CHECKING:
    from charter.runtime.guard import Guard

__all__ = ["CharterPlugin", "confirmation_payload"]


def confirmation_payload(token: str) -> dict[str, Any]:
    """The `payload` of a confirming `adk_request_confirmation` response: the grant."""
    return {"grant": token}


def CharterPlugin(guard: Guard, **gate: Any) -> Any:  # noqa: N802 - a class to its users
    """An ADK `BasePlugin` enforcing `guard`'s policy on every tool call of the runner.

    Keyword arguments go to `ToolGate` (`context`, `names`, `tags`, `cost`, `tokens`).
    """
    try:
        from google.adk.plugins.base_plugin import BasePlugin
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError("CharterPlugin needs Google ADK: pip install 'charter[adk]'") from err
    checker = ToolGate(guard, **gate)
    running: dict[str, Verdict] = {}  # function call id -> verdict of a call that runs
    lock = threading.Lock()

    class _CharterPlugin(BasePlugin):
        def __init__(self) -> None:
            super().__init__(name="charter")

        async def before_tool_callback(
            self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any
        ) -> dict[str, Any] | None:
            confirmation = getattr(tool_context, "tool_confirmation", None)
            verdict = checker.check(tool.name, tool_args, _grant(confirmation))
            if verdict.paused:
                if confirmation is not None and confirmation.confirmed:
                    return {"error": "approval not valid for this call: " + verdict.message}
                tool_context.request_confirmation(
                    hint=verdict.message, payload=verdict.pause_info()
                )
                return {"error": verdict.message}
            if not verdict.run:
                return {"error": verdict.message}
            if verdict.args != tool_args:
                tool_args.clear()
                tool_args.update(verdict.args)
            with lock:
                running[str(tool_context.function_call_id)] = verdict
            return None

        async def after_tool_callback(
            self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any, result: dict[str, Any]
        ) -> dict[str, Any] | None:
            with lock:
                verdict = running.pop(str(tool_context.function_call_id), None)
            if verdict is None:
                return None  # the plugin answered this call itself (a deny or a pause)
            finished = checker.finish(verdict, result)
            if not finished.ok:
                return {"error": finished.message}
            if finished.result is result:
                return None
            out = finished.result
            return dict(out) if isinstance(out, Mapping) else {"result": out}

        async def on_tool_error_callback(
            self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any, error: Exception
        ) -> dict[str, Any] | None:
            with lock:
                verdict = running.pop(str(tool_context.function_call_id), None)
            if verdict is not None:
                checker.release(verdict)  # the call did not run to the end: not charged
            return None  # the error itself goes on as ADK handles it

    return _CharterPlugin()


def _grant(confirmation: Any) -> Any:
    if confirmation is None or not getattr(confirmation, "confirmed", False):
        return None
    payload = getattr(confirmation, "payload", None)
    return payload.get("grant") if isinstance(payload, Mapping) else None
