"""An agent loop under a Charter `Guard`, with state in SQLite (a temporary file).

    python examples/agent_loop.py

A scripted "agent" makes tool calls; the Guard decides each one against
examples/agent_loop.agentpolicy and prints it. The run shows a rate limit, an approval
round trip, a label that blocks egress after the agent read PII, and a budget running out.
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import charter
from charter import ApprovalRequired, Denied, Guard, SQLiteStore
from charter.runtime import audit

HERE = Path(__file__).resolve().parent


class StepClock:
    """Simulated time: one second per call, so the run is the same every time."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def show(step: str, decision: charter.Decision) -> None:
    why = "; ".join(decision.reasons)
    print(f"{step:<44} {decision.effect:<17} {why}")


def main() -> None:
    policy = charter.load(HERE / "agent_loop.agentpolicy")
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "state.db")
        clock = StepClock()
        guard = Guard(policy, state=store, log=Path(tmp) / "decisions.jsonl", clock=clock)
        session = {"agent": {"id": "researcher"}, "session": {"id": "run-1"}}

        def call(tool: str, args: dict[str, Any], cost: str = "0.02") -> charter.Decision:
            return guard.check({"tool": tool, "args": args, "estimate":
                                {"cost_usd": Decimal(cost)}, **session})

        print("-- rate limit: web.fetch <= 2 per minute")
        for i in range(3):
            d = call("web.fetch", {"url": f"https://docs.example.com/{i}"})
            show(f"web.fetch docs/{i}", d)
            guard.settle(d, cost_usd=Decimal("0.01"))

        print("-- approval round trip")
        refund = {"amount": 80, "customer": "C-17"}
        d = call("refund.create", refund)
        show("refund.create 80", d)
        grant = guard.approve(d, by="alice", group="finance", ttl=600)
        print(f"{'  finance approves (alice)':<44} grant for action {grant.digest[:12]}...")
        # The retry is the same request plus the grant: the grant binds its args, estimate,
        # agent and session, so any other request would not match it.
        retry_request = {"tool": "refund.create", "args": refund, "approvals":
                         [grant.to_token()], "estimate": {"cost_usd": Decimal("0.02")},
                         **session}
        retry = guard.check(retry_request)
        show("refund.create 80 + grant", retry)
        guard.settle(retry)
        show("refund.create 80 + same grant again", guard.check(retry_request))

        print("-- a minute later: a guarded Python tool reads PII; egress is then blocked")
        clock.now += 60
        d = call("web.fetch", {"url": "https://x.example.net"})
        show("web.fetch before PII", d)
        guard.settle(d, cost_usd=0)  # served from cache: it cost nothing

        @guard.tool("crm.lookup", context=session, estimate={"cost_usd": Decimal("0.02")})
        def crm_lookup(customer: str) -> dict[str, str]:
            return {"customer": customer, "email": "ann@example.com"}

        print(f"{'crm.lookup C-17 (result redacted)':<44} {crm_lookup('C-17')}")
        show("web.fetch after PII", call("web.fetch", {"url": "https://x.example.net"}))

        print("-- budget: $0.10 per session (spent so far: $0.06)")
        for i in range(3):
            d = call("search", {"query": f"q{i}"}, cost="0.02")
            show(f"search q{i} (est $0.02)", d)
            if d.allowed:
                guard.settle(d, cost_usd=Decimal("0.02"))

        @guard.tool("search", context=session, estimate={"cost_usd": Decimal("0.02")})
        def search(query: str) -> list[str]:
            return [query]

        try:
            search("one more")
        except ApprovalRequired as exc:
            print("approval required:", exc.approvers)
        except Denied as exc:
            print(f"{'guarded search raises Denied':<44} {'; '.join(exc.reasons)}")
        guard.close()
        records = list(audit.read(Path(tmp) / "decisions.jsonl"))
        settled = sum(1 for r in records if r.get("event") == "settle")
        print(f"-- {len(records) - settled} decisions and {settled} settlements "
              "in the decision log")
        store.close()


if __name__ == "__main__":
    main()
