"""`ToolGate`: what every framework adapter does around one tool call, in one place.

Adapters are translation layers (docs/hosts.md, "Agent frameworks"): the framework's hook
hands over a tool name, its arguments and perhaps a grant; the gate builds the Charter
request, asks the Guard, and answers with a `Verdict` the adapter turns into the host's own
"run", "reject" or "pause" object. After the tool ran, `finish` settles the reservation and
decides the `tool_result` stage, so redaction and result rules hold in every framework alike.

Nothing here raises into the host: a failure anywhere (a context callable that raises, an
argument that cannot be read) is a deny whose reason names it. A redaction of the arguments
is applied only when the adapter says its host runs rewritten input (`rewrites_args`);
otherwise the call is denied, so a redaction that cannot be applied never becomes an
unredacted allow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from charter.engine.decision import Decision
from charter.runtime.guard import Guard
from charter.runtime.guard_flow import deny

__all__ = ["Finished", "ToolGate", "Verdict"]

Context = Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None
Tags = Mapping[str, Sequence[str]] | Callable[[str], Sequence[str]] | None
Names = Mapping[str, str] | Callable[[str], str] | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The Guard's answer for one call, as an adapter needs it.

    `run`: the call may run, with `args` (redacted where the policy said so). `paused`: it
    needs an approval; `approvers`, `reasons` and `action` go into the host's pause object.
    Otherwise it is denied and `message` is what the model reads.
    """

    decision: Decision
    request: dict[str, Any]
    args: dict[str, Any]

    @property
    def run(self) -> bool:
        return self.decision.allowed

    @property
    def paused(self) -> bool:
        return self.decision.effect == "require_approval"

    def pause_info(self) -> dict[str, Any]:
        """What a host's pause object carries: approvers, reasons and the action digest the
        grant will be bound to."""
        return {
            "charter": "approval",
            "approvers": list(self.decision.approvers),
            "reasons": list(self.decision.reasons),
            "action": self.decision.action,
        }

    @property
    def message(self) -> str:
        """The reasons the model sees (with the approvers when the call waits for one)."""
        reasons = "; ".join(self.decision.reasons) or f"the policy says {self.decision.effect}"
        if self.paused and self.decision.approvers:
            return f"approval required from {' or '.join(self.decision.approvers)}: {reasons}"
        return f"denied by policy: {reasons}" if not self.run else reasons


@dataclass(frozen=True, slots=True)
class Finished:
    """The `tool_result` stage's answer: `result` (redacted where the policy said so) when
    `ok`, else `message` in its place."""

    ok: bool
    result: Any
    message: str = ""
    decision: Decision | None = field(default=None, repr=False)


class ToolGate:
    """Checks tool calls for one framework adapter.

    `context`: request parts (`agent`, `user`, `session`...) or a callable returning them,
    called per check. `names`: the policy's name for a host tool name (a mapping or a
    callable; frameworks name tools `refund_create` where policies say `refund.create`;
    names not in a mapping pass unchanged). `tags`: tool tags per policy name (a mapping or
    a callable). `cost` and
    `tokens`: the actual usage of a call from its result, for `Guard.settle` (the reserved
    estimate stays otherwise). `rewrites_args`: the host runs rewritten arguments.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        context: Context = None,
        names: Names = None,
        tags: Tags = None,
        cost: Callable[[str, Any], Decimal | float | int | None] | None = None,
        tokens: Callable[[str, Any], int | None] | None = None,
        rewrites_args: bool = True,
    ) -> None:
        self.guard = guard
        self.context = context
        self.names = names
        self.tags = tags
        self.cost = cost
        self.tokens = tokens
        self.rewrites_args = rewrites_args

    # ── before the call ──────────────────────────────────────────────────────

    def check(
        self,
        name: str,
        args: Mapping[str, Any] | None,
        grant: str | Mapping[str, Any] | None = None,
    ) -> Verdict:
        """Decide the call `name(**args)` (`name` as the host calls the tool), with `grant`
        (an approval token) attached if given."""
        try:
            request = self._request(self.policy_name(name), args)
            if grant is not None:
                request["approvals"] = [grant]
            decision = self.guard.check(request)
        except Exception as err:  # noqa: BLE001 - nothing raises into the host
            failed = deny(self.guard.policy, f"cannot check tool call {name!r}: {err}")
            return Verdict(failed, {}, {})
        call_args: dict[str, Any] = request.get("args", {})
        if decision.allowed and decision.redactions:
            if not self.rewrites_args:
                self.guard.release(decision)
                refused = deny(
                    self.guard.policy,
                    "the arguments must be redacted and this "
                    "host cannot rewrite them: " + "; ".join(decision.reasons),
                )
                return Verdict(refused, request, call_args)
            call_args = decision.redact(call_args, "args")
        return Verdict(decision, request, call_args)

    def _request(self, name: str, args: Mapping[str, Any] | None) -> dict[str, Any]:
        parts = self.context() if callable(self.context) else self.context or {}
        request: dict[str, Any] = {
            key: value
            for key, value in parts.items()
            if key not in ("stage", "tool", "args", "approvals")
        }
        tags = self._tags(name)
        request["stage"] = "tool_call"
        request["tool"] = {"name": name, "tags": list(tags)} if tags else name
        request["args"] = dict(args) if args is not None else {}
        return request

    def policy_name(self, name: str) -> str:
        """The policy's name for the host's tool `name`."""
        if self.names is None:
            return name
        if callable(self.names):
            return self.names(name)
        return self.names.get(name, name)

    def _tags(self, name: str) -> Sequence[str]:
        if self.tags is None:
            return ()
        if callable(self.tags):
            return self.tags(name)
        return self.tags.get(name, ())

    def approve(self, verdict: Verdict, by: str, group: str, ttl: float = 300) -> str:
        """A grant token for exactly this paused call, minted by `by` of `group` (see
        `Guard.approve`; raises ValueError when they may not approve it)."""
        return self.guard.approve(verdict.decision, by, group, ttl).to_token()

    # ── after the call ───────────────────────────────────────────────────────

    def finish(self, verdict: Verdict, result: Any) -> Finished:
        """Settle the call's usage and decide its result (redacted, or refused)."""
        name = verdict.request.get("tool")
        tool = name.get("name") if isinstance(name, dict) else name
        try:
            self.guard.settle(
                verdict.decision,
                cost_usd=self.cost(str(tool), result) if self.cost is not None else None,
                tokens=self.tokens(str(tool), result) if self.tokens is not None else None,
            )
            # the result belongs to the call already charged and approved: no grant again
            seen = self.guard.check(
                {
                    **{
                        k: v
                        for k, v in verdict.request.items()
                        if k not in ("estimate", "approvals")
                    },
                    "stage": "tool_result",
                    "result": result,
                }
            )
        except Exception as err:  # noqa: BLE001 - nothing raises into the host
            return Finished(False, None, f"cannot check the result of {tool!r}: {err}")
        if not seen.allowed:
            return Finished(
                False,
                None,
                "result withheld by policy: " + ("; ".join(seen.reasons) or seen.effect),
                seen,
            )
        return Finished(
            True, seen.redact(result, "result") if seen.redactions else result, decision=seen
        )

    def release(self, verdict: Verdict) -> None:
        """Give back the reservation of a call that did not run (the tool raised)."""
        if verdict.run:
            self.guard.release(verdict.decision)
