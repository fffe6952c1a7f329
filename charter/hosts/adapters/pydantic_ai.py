"""Pydantic AI: `CharterCapability`, a capability that enforces a Guard on every tool call.

Its `wrap_tool_execute` decides each call before the tool runs:

- allow: the tool runs (with redacted arguments where the policy says so); its usage is
  settled and its result goes through the `tool_result` stage (redacted or withheld);
- deny: `SkipToolExecution(message)`: the tool never runs and the model reads the reasons;
- require_approval: `ApprovalRequired(metadata={"charter": "approval", "approvers",
  "reasons", "action"})`, so a run with `output_type=[..., DeferredToolRequests]` ends with
  the call pending. Resume with `DeferredToolResults(approvals={id: ToolApproved()},
  metadata={id: {"charter_grant": TOKEN}})`: the capability re-checks the call with the
  grant. Pydantic AI records who answered but does not check it; Charter does, so a call
  approved without a valid grant for exactly its arguments (`ToolApproved(override_args=)`
  makes another action) is refused with the reason, never run.

Imports Pydantic AI lazily; `CharterCapability` raises ImportError naming the extra when it
is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from charter.hosts.adapters.gate import ToolGate

if TYPE_CHECKING:
    from charter.runtime.guard import Guard

__all__ = ["GRANT_KEY", "CharterCapability", "grant_metadata"]

GRANT_KEY = "charter_grant"


def grant_metadata(token: str) -> dict[str, Any]:
    """The `DeferredToolResults.metadata[tool_call_id]` entry that carries a grant."""
    return {GRANT_KEY: token}


def CharterCapability(guard: Guard, **gate: Any) -> Any:  # noqa: N802 - a class to its users
    """A Pydantic AI capability enforcing `guard`'s policy on the agent's tool calls.

    Keyword arguments go to `ToolGate` (`context`, `names`, `tags`, `cost`, `tokens`).
    """
    try:
        from pydantic_ai.capabilities import AbstractCapability
        from pydantic_ai.exceptions import ApprovalRequired, SkipToolExecution
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "CharterCapability needs Pydantic AI: pip install 'charter[pydantic-ai]'"
        ) from err
    checker = ToolGate(guard, **gate)

    class _CharterCapability(AbstractCapability[Any]):
        async def wrap_tool_execute(
            self, ctx: Any, *, call: Any, tool_def: Any, args: Any, handler: Any
        ) -> Any:
            grant = _grant(ctx)
            verdict = checker.check(
                call.tool_name, args if isinstance(args, Mapping) else {}, grant
            )
            if verdict.paused:
                if ctx.tool_call_approved:
                    # approved in the host, but not by a grant for exactly this call
                    raise SkipToolExecution("approval not valid for this call: " + verdict.message)
                raise ApprovalRequired(metadata={**verdict.pause_info(), "args": verdict.args})
            if not verdict.run:
                raise SkipToolExecution(verdict.message)
            try:
                result = await handler(verdict.args)
            except BaseException:
                checker.release(verdict)
                raise
            finished = checker.finish(verdict, result)
            return finished.result if finished.ok else finished.message

    return _CharterCapability()


def _grant(ctx: Any) -> Any:
    if not getattr(ctx, "tool_call_approved", False):
        return None
    metadata = getattr(ctx, "tool_call_metadata", None)
    return metadata.get(GRANT_KEY) if isinstance(metadata, Mapping) else None
