"""Exceptions a guarded tool raises when the policy blocks a call (`Guard.tool`)."""

from __future__ import annotations

from charter.engine.decision import Decision

__all__ = ["ApprovalRequired", "Denied"]


class Denied(Exception):
    """The policy did not allow the call; `decision` says why.

    `ApprovalRequired` is a subclass, so a host that only catches `Denied` never runs a call
    that is waiting for approval.
    """

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__("; ".join(decision.reasons) or decision.effect)

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons of every matched rule (guidance for the agent)."""
        return self.decision.reasons

    @property
    def approvers(self) -> tuple[str, ...]:
        """Groups any one of which may approve the call (empty for a plain deny)."""
        return self.decision.approvers


class ApprovalRequired(Denied):
    """The call needs a human approval first: pass `decision` to `Guard.approve`, then retry
    the same call with the grant (`with guard.context(approvals=[grant]): ...`)."""
