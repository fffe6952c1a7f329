"""What every framework adapter test shares: the policy, a Guard with a known secret, the
three tools (allowed, denied, needing approval) and a record of which tool bodies ran."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import charter
from charter import Guard

POLICY = Path(__file__).with_name("fw_policy.agentpolicy")
NAMES = {"kb_read": "kb.read", "shell_run": "shell.run", "refund_create": "refund.create"}
SESSION = {"id": "s-fw"}
REFUND_COST = Decimal("6.00")  # of the $10 session budget: a second $5 call no longer fits


@dataclass
class Ran:
    """Which tool bodies ran, with their arguments."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def make_guard() -> Guard:
    return Guard(charter.load(POLICY), secret=b"k" * 32)


def fits(guard: Guard, usd: str) -> bool:
    """Whether a call estimated at `usd` still fits the session budget (the probe's own
    reservation is given back): how a test sees what the adapter settled."""
    decision = guard.check(
        {
            "tool": "kb.read",
            "args": {"q": "probe"},
            "session": SESSION,
            "estimate": {"cost_usd": Decimal(usd)},
        }
    )
    guard.release(decision)
    return decision.allowed


def cost(name: str, result: Any) -> Decimal | None:
    return REFUND_COST if name == "refund.create" else None


def gate_options() -> dict[str, Any]:
    return {"context": {"session": SESSION, "agent": {"id": "a1"}}, "names": NAMES, "cost": cost}
