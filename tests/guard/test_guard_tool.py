"""`@guard.tool`, `guard.context`, the decision log, and the cheap `import charter`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from guard_helpers import guard_counter

from charter import ApprovalRequired, Denied, Guard, Policy
from charter.runtime import audit
from charter.runtime.state import CounterRef, StateQuery, Store

CTX = {"agent": {"id": "bot-1"}, "session": {"id": "s1"}}


def daily_cost(store: Store) -> Decimal:
    ref = CounterRef(guard_counter("cost_usd:1d"), "bot-1", 86400)
    return store.read(StateQuery("x", (ref,)), 1_800_000_600.0).usage[(ref.counter_id, "bot-1")]


def test_allowed_call_runs_and_its_result_is_redacted(guard: Guard) -> None:
    @guard.tool("kb.read", context=CTX)
    def kb_read(query: str) -> dict[str, str]:
        return {"answer": f"ask ann@example.com about {query}"}

    @guard.tool("spend", context=CTX)
    def spend(amount: int) -> str:
        return "ok"

    with pytest.raises(Denied) as denied:
        kb_read("q")
    assert denied.value.reasons == ("read only after a $5 spend",)
    assert not isinstance(denied.value, ApprovalRequired)
    assert spend(5) == "ok"
    assert kb_read(query="refunds") == {"answer": "ask [EMAIL] about refunds"}


def test_approval_round_trip_with_context(guard: Guard) -> None:
    runs: list[int] = []

    @guard.tool("spend")
    def spend(amount: int, memo: str = "") -> str:
        runs.append(amount)
        return "paid"

    with guard.context(**CTX):
        with pytest.raises(ApprovalRequired) as exc:
            spend(500)
        assert exc.value.approvers == ("finance",)
        assert runs == []
        grant = guard.approve(exc.value.decision, by="alice", group="finance")
        with guard.context(approvals=[grant.to_token()]):
            assert spend(500) == "paid"
            with pytest.raises(ApprovalRequired):
                spend(500)  # single use
            with pytest.raises(ApprovalRequired):
                spend(501)  # for that exact action only
    assert runs == [500]


def test_cost_is_settled_from_the_result(guard: Guard, store: Store) -> None:
    @guard.tool("spend", context=CTX, estimate={"cost_usd": Decimal("0.9")},
                cost=lambda result: result["cost"])
    def spend(amount: int) -> dict[str, Any]:
        assert daily_cost(store) == Decimal("0.9")  # the estimate is held while it runs
        return {"cost": Decimal("0.1")}

    spend(1)
    assert daily_cost(store) == Decimal("0.1")


def test_a_failing_tool_releases_its_reservation(guard: Guard, store: Store) -> None:
    @guard.tool("spend", context=CTX, estimate=lambda args: {"cost_usd": args["amount"] / 10})
    def spend(amount: int) -> None:
        raise RuntimeError("payment service down")

    with pytest.raises(RuntimeError):
        spend(5)
    assert daily_cost(store) == 0


def test_context_blocks_nest_and_merge(guard: Guard) -> None:
    seen: list[str] = []

    @guard.tool("web.fetch", tags=["external"])
    def fetch(url: str) -> str:
        seen.append(url)
        return "page"

    with guard.context(agent={"id": "bot-1"}), guard.context(session={"id": "s9"}):
        assert fetch("https://a") == "page"
    with pytest.raises(Denied) as exc:
        fetch("https://b")  # no session, no agent: the rate limit's key is missing
    assert any("session.id" in r for r in exc.value.reasons)
    assert seen == ["https://a"]


def test_async_tools(guard: Guard) -> None:
    @guard.tool("spend", context=CTX)
    async def spend(amount: int) -> str:
        return "paid"

    assert asyncio.run(spend(1)) == "paid"
    with pytest.raises(ApprovalRequired):
        asyncio.run(spend(1000))


def test_decision_log_lines(policy: Policy, tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    guard = Guard(policy, log=path, clock=lambda: 1_800_000_600.0)
    guard.check({"tool": "spend", "args": {"amount": 500, "memo": "for ann@example.com"},
                 "trace_id": "t-1", "estimate": {"cost_usd": Decimal("0.25")}, **CTX})
    guard.check({"tool": "nope"})
    guard.close()
    first, second = list(audit.read(path))
    assert first["trace_id"] == "t-1"
    assert first["agent_id"] == "bot-1" and first["session_id"] == "s1"
    assert first["stage"] == "tool_call" and first["tool"] == "spend"
    assert first["effect"] == "require_approval"
    assert first["reasons"] == ["spends over 100 need finance"]
    assert first["args"] == {"amount": 500, "memo": "for [EMAIL]"}
    assert first["policy_digest"] == policy.digest
    assert first["cost"] == Decimal("0.25")
    assert isinstance(first["latency_us"], int)
    assert second["effect"] == "deny" and second["trace_id"]


def test_import_charter_stays_cheap() -> None:
    code = ("import sys, charter; charter.Guard; charter.Denied; charter.SQLiteStore; "
            "bad = [m for m in sys.modules if m.startswith(('lark', 'redis', "
            "'charter.language'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
