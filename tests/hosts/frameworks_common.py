"""What every framework adapter test shares: the policy, a Guard with a known secret, the
three tools (allowed, denied, needing approval) and a record of which tool bodies ran."""

from __future__ import annotations

from collections.abc import Callable
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


def grant(guard: Guard, amount: int) -> str:
    """A finance grant for exactly the refund of `amount` the scripted model asks for."""
    decision = guard.check(
        {
            "tool": "refund.create",
            "session": SESSION,
            "agent": {"id": "a1"},
            "args": {"amount": amount, "customer": "cus_1"},
        }
    )
    assert decision.effect == "require_approval"
    token: str = guard.approve(decision, "alice", "finance").to_token()
    return token


def tool_functions(ran: Ran) -> list[Callable[..., str]]:
    """The three tools' bodies (allowed, denied, needing approval), recording each run."""

    def kb_read(q: str) -> str:
        ran.calls.append(("kb_read", {"q": q}))
        return f"article for {q}: write to help@example.com"

    def shell_run(cmd: str) -> str:
        ran.calls.append(("shell_run", {"cmd": cmd}))
        return "ran"

    def refund_create(amount: int, customer: str) -> str:
        ran.calls.append(("refund_create", {"amount": amount, "customer": customer}))
        return f"refunded {amount} to {customer}"

    return [kb_read, shell_run, refund_create]
