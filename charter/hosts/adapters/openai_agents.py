"""OpenAI Agents SDK: `CharterTools`, function tools whose every call the Guard decides.

`tools.tool(fn)` is `agents.function_tool(fn)` with three hooks of the SDK's own:

- `needs_approval(ctx, params, call_id)`: True when the policy says require_approval and
  no grant is held for this call, so the run ends with `result.interruptions`;
- a tool input guardrail: decides the call (with the grant, if one was given); a deny is
  `reject_content(reasons)`, so the tool never runs and the model reads why;
- a tool output guardrail: settles the call's usage and decides its `tool_result`; a
  redaction or a withheld result replaces the output the model sees (`reject_content`).

Approving: `tools.approve(state, item, by="alice", group="finance")` mints a Charter grant
for exactly that call (ValueError when `by`/`group` may not approve it), keeps it for the
call's id and calls `state.approve(item)`; then `Runner.run(agent, state)`. The SDK runs
`needs_approval` before the input guardrail, and a call approved with `state.approve` alone
holds no grant: the input guardrail then rejects it with the reason. Grants are held in this
object (one process); a paused run restored elsewhere (`RunState.from_json`) needs its
approval given again there.

Imports the SDK lazily: this module imports without it, and `CharterTools.tool` raises
ImportError naming the extra when it is missing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from charter.hosts.adapters.gate import ToolGate, Verdict

if TYPE_CHECKING:
    from charter.runtime.guard import Guard

__all__ = ["CharterTools"]


class CharterTools:
    """Makes guarded function tools for one Guard (keyword arguments go to `ToolGate`)."""

    def __init__(self, guard: Guard, **gate: Any) -> None:
        self.gate = ToolGate(guard, **gate)
        self._grants: dict[str, str] = {}  # call id -> grant token
        self._open: dict[str, Verdict] = {}  # call id -> verdict of a call that is running
        self._lock = threading.Lock()

    def tool(
        self, fn: Callable[..., Any] | None = None, *, name: str | None = None, **options: Any
    ) -> Any:
        """`function_tool(fn, ...)` with Charter's approval check and guardrails; use as
        `@tools.tool` or `@tools.tool(name="refund_create")`."""
        try:
            from agents import function_tool
        except ImportError as err:  # pragma: no cover - exercised without the extra
            raise ImportError(
                "CharterTools needs the OpenAI Agents SDK: pip install 'charter[openai-agents]'"
            ) from err

        def make(f: Callable[..., Any]) -> Any:
            tool_name = name or f.__name__
            return function_tool(
                f,
                name_override=tool_name,
                needs_approval=self._needs_approval(tool_name),
                tool_input_guardrails=[self._input_guardrail()],
                tool_output_guardrails=[self._output_guardrail()],
                **options,
            )

        return make(fn) if fn is not None else make

    # ── approvals ────────────────────────────────────────────────────────────

    def approve(self, state: Any, item: Any, by: str, group: str, ttl: float = 300) -> str:
        """Approve the paused call `item` as `by` of `group`: mint and keep its grant, then
        `state.approve(item)`. Returns the grant token."""
        raw = item.raw_item
        call_id = str(_field(raw, "call_id"))
        verdict = self.gate.check(
            str(item.tool_name or _field(raw, "name")), _arguments(_field(raw, "arguments"))
        )
        if not verdict.paused:
            raise ValueError(f"call {call_id} does not wait for an approval: {verdict.message}")
        token = self.gate.approve(verdict, by, group, ttl)
        with self._lock:
            self._grants[call_id] = token
        state.approve(item)
        return token

    def _grant(self, call_id: str | None) -> str | None:
        with self._lock:
            return self._grants.get(call_id) if call_id else None

    def _needs_approval(self, tool_name: str) -> Callable[[Any, dict[str, Any], str], Any]:
        async def needs_approval(ctx: Any, params: dict[str, Any], call_id: str) -> bool:
            if self._grant(call_id) is not None:
                return False  # the input guardrail checks the grant against the call
            verdict = self.gate.check(tool_name, params)
            self.gate.release(verdict)  # a probe: the input guardrail decides for real
            return verdict.paused

        return needs_approval

    # ── guardrails ───────────────────────────────────────────────────────────

    def _input_guardrail(self) -> Any:
        from agents import ToolGuardrailFunctionOutput, tool_input_guardrail

        @tool_input_guardrail(name="charter")
        def charter_input(data: Any) -> Any:
            ctx = data.context
            call_id = ctx.tool_call_id
            try:
                args = _arguments(ctx.tool_arguments)
            except ValueError as err:  # nothing raises into the host: a deny naming it
                return ToolGuardrailFunctionOutput.reject_content(
                    f"denied: cannot read the arguments of {ctx.tool_name!r}: {err}"
                )
            verdict = self.gate.check(ctx.tool_name, args, self._grant(call_id))
            if not verdict.run:
                return ToolGuardrailFunctionOutput.reject_content(verdict.message)
            with self._lock:
                self._grants.pop(call_id, None)  # single use
                self._open[call_id] = verdict
            return ToolGuardrailFunctionOutput.allow()

        return charter_input

    def _output_guardrail(self) -> Any:
        from agents import ToolGuardrailFunctionOutput, tool_output_guardrail

        @tool_output_guardrail(name="charter")
        def charter_output(data: Any) -> Any:
            with self._lock:
                verdict = self._open.pop(data.context.tool_call_id, None)
            if verdict is None:
                return ToolGuardrailFunctionOutput.reject_content(
                    "result withheld: no Charter decision for this call"
                )
            finished = self.gate.finish(verdict, data.output)
            if not finished.ok:
                return ToolGuardrailFunctionOutput.reject_content(finished.message)
            if finished.result is not data.output:
                return ToolGuardrailFunctionOutput.reject_content(str(finished.result))
            return ToolGuardrailFunctionOutput.allow()

        return charter_output


def _field(raw: Any, key: str) -> Any:
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)


def _arguments(text: Any) -> dict[str, Any]:
    """The call's arguments (the SDK hands them over as a JSON string)."""
    if isinstance(text, dict):
        return text
    value = json.loads(text) if isinstance(text, str | bytes) and text else {}
    if not isinstance(value, dict):
        raise ValueError("tool arguments are not a JSON object")
    return value
