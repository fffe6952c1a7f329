"""The operating envelope of the trial (issue 21), as a 20-step agent loop through a Guard.

Five rules: read-only approved corpora; no customer-state change without a human's approval
of that action; a human checkpoint after 5 consecutive tool calls; $0.20 per agent loop
(turn) and $2 per session; no export outside approved regions. The host routes every step
— model input, model output, tool call — through the Guard, sends only the session id, and
settles each allowed step with its actual cost.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import charter
from charter.engine.decision import Decision
from charter.runtime.audit import AuditLog, read
from charter.runtime.guard_steps import BASE, CALLS
from charter.runtime.state import CounterRef, StateQuery, Store

ENVELOPE = """\
policy "trial-envelope" version "1.0"
default deny

tool "kb.search" (query: str) tags read
tool "corpus.read" (corpus: str, doc: str) tags read
tool "crm.update" (customer: str, status: str) tags customer_state
tool "s3.export" (bucket: str, key: str) tags export

const approved_corpora = {"support-kb", "product-docs"}
const region_of = {"acme-exports-eu": "eu-west-1", "acme-exports-us": "us-east-1"}
const approved_regions = {"eu-west-1", "eu-central-1"}

on model_input allow
on model_output allow

# 1. read-only approved corpora
allow tool tagged read
deny tool "corpus.read" when args.corpus not in approved_corpora
  because "only approved corpora"

# 2. no customer-state change without a human's approval of that action
allow tool tagged customer_state
require approval from "support-leads" tool tagged customer_state
  because "customer changes need a lead"

# 3. a human checkpoint after 5 consecutive tool calls
require approval from "operators" when session.tool_calls_since_checkpoint > 5
  because "checkpoint: a human looks after 5 tool calls"

# 4. $0.20 per agent loop, $2 per session (model spend included)
budget cost_usd <= 0.20 per turn because "turn budget of $0.20 reached"
budget cost_usd <= 2.00 per session because "session budget of $2 reached"

# 5. no export outside approved regions
allow tool tagged export
deny tool tagged export when region_of[args.bucket] not in approved_regions
  because "no export outside approved regions"
"""

DIRECTORY = {"operators": ["oscar", "uma"], "support-leads": ["lena"]}
BASE_REQ: dict[str, Any] = {"agent": {"id": "bot"}, "user": {"id": "uma"},
                            "session": {"id": "s1"}}
TURN = "turn budget of $0.20 reached"
SESSION = "session budget of $2 reached"
CHECKPOINT = "checkpoint: a human looks after 5 tool calls"


def user(est: str) -> dict[str, Any]:
    return {**BASE_REQ, "stage": "model_input", "input": {"role": "user", "content": "hi"},
            "estimate": {"cost_usd": Decimal(est)}}


def model(stage: str, est: str) -> dict[str, Any]:
    return {**BASE_REQ, "stage": stage, "input": {"role": "tool", "content": "..."},
            "output": "...", "estimate": {"cost_usd": Decimal(est)}}


def tool(name: str, est: str = "0", **args: str) -> dict[str, Any]:
    return {**BASE_REQ, "tool": name, "args": args, "estimate": {"cost_usd": Decimal(est)}}


@pytest.fixture
def guard(tmp_path: Path, store: Store) -> charter.Guard:
    """The envelope over each store (memory, SQLite, Redis: the `store` fixture)."""
    policy = charter.compile(ENVELOPE, name="envelope.agentpolicy")
    return charter.Guard(policy, state=store, approvers=DIRECTORY,
                         log=AuditLog(tmp_path / "log.jsonl", mask=False))


def step(guard: charter.Guard, request: dict[str, Any], actual: str | None = None
         ) -> Decision:
    decision = guard.check(request)
    if decision.allowed:
        assert guard.settle(decision, cost_usd=Decimal(actual) if actual else None)
    return decision


def since_checkpoint(guard: charter.Guard) -> int:
    refs = (CounterRef(CALLS, "s1"), CounterRef(BASE, "s1"))
    usage = guard.store.read(StateQuery("s1", refs, (), False), 0).usage
    return int(usage.get((CALLS, "s1"), 0)) - int(usage.get((BASE, "s1"), 0))


def test_the_twenty_step_loop(guard: charter.Guard, tmp_path: Path) -> None:
    # ── turn 1: model spend fills the $0.20 turn budget ──────────────────────
    assert step(guard, user("0.02"), "0.05").allowed                      # 1  T .05
    assert step(guard, tool("kb.search", "0.01", query="q"), "0.01").allowed  # 2  T .06
    assert step(guard, model("model_input", "0.02"), "0.04").allowed      # 3  T .10
    assert step(guard, tool("corpus.read", "0.01", corpus="support-kb", doc="d"),
                "0.01").allowed                                           # 4  T .11
    assert step(guard, model("model_output", "0.02"), "0.08").allowed     # 5  T .19
    assert step(guard, tool("kb.search", "0.01", query="q"), "0.01").allowed  # 6  T .20
    seven = step(guard, model("model_input", "0.02"))                     # 7  .22 > .20
    assert seven.effect == "deny" and TURN in seven.reasons
    assert SESSION not in seven.reasons  # tool costs alone were $0.03: model spend counted

    # ── turn 2: the checkpoint counts tool calls across model steps ──────────
    assert step(guard, user("0.02"), "0.02").allowed                      # 8  new turn
    assert step(guard, tool("kb.search", query="q")).allowed              # 9   tool 1
    assert step(guard, model("model_input", "0.01"), "0.01").allowed      # 10
    assert step(guard, tool("corpus.read", corpus="product-docs", doc="d")).allowed  # 11 t2
    hr = step(guard, tool("corpus.read", corpus="hr-files", doc="d"))     # 12  tool 3
    assert hr.effect == "deny" and "only approved corpora" in hr.reasons
    assert step(guard, model("model_output", "0.01"), "0.01").allowed     # 13
    us = step(guard, tool("s3.export", bucket="acme-exports-us", key="k"))  # 14 tool 4
    assert us.effect == "deny" and "no export outside approved regions" in us.reasons
    assert step(guard, tool("s3.export", bucket="acme-exports-eu", key="k")).allowed  # 15 t5
    assert step(guard, model("model_input", "0.01"), "0.01").allowed      # 16
    search = tool("kb.search", query="q")
    sixth = step(guard, search)                                           # 17  tool 6
    assert sixth.effect == "require_approval" and sixth.approvers == ("operators",)
    assert CHECKPOINT in sixth.reasons
    with pytest.raises(ValueError, match="not a member"):
        guard.approve(sixth, by="mallory", group="operators")
    own = guard.approve(sixth, by="uma", group="operators")  # uma is the requester
    again = guard.check({**search, "approvals": [own.to_token()]})
    assert again.effect == "require_approval"
    assert "approval rejected: the approver is the requester" in again.reasons
    grant = guard.approve(sixth, by="oscar", group="operators")
    approved = guard.check({**search, "approvals": [grant.to_token()]})
    assert approved.allowed
    assert since_checkpoint(guard) == 0  # the retries did not count; the approval reset it
    crm = tool("crm.update", customer="C-1", status="closed")
    change = step(guard, crm)                                             # 18  tool 1
    assert change.effect == "require_approval" and change.approvers == ("support-leads",)
    with pytest.raises(ValueError, match="not a member"):
        guard.approve(change, by="oscar", group="support-leads")
    lead = guard.approve(change, by="lena", group="support-leads")
    assert guard.check({**crm, "approvals": [lead.to_token()]}).allowed
    assert step(guard, model("model_output", "0.01"), "1.80").allowed     # 19 a $1.80 bill

    # ── turn 3: a new turn, but the session is over $2 ───────────────────────
    twenty = step(guard, user("0.01"))                                    # 20
    assert twenty.effect == "deny"
    assert SESSION in twenty.reasons and TURN not in twenty.reasons

    records = list(read(tmp_path / "log.jsonl"))
    approvals = [r["approved_by"] for r in records if "approved_by" in r]
    assert [[(a["approver"], a["group"]) for a in r] for r in approvals] == [
        [("oscar", "operators")], [("lena", "support-leads")]]
    assert all(a["grant"] for r in approvals for a in r)
    settled = [r["cost"] for r in records if r.get("event") == "settle"]
    assert Decimal("1.80") in settled and Decimal("0.08") in settled


def test_without_an_approval_reset_the_retry_still_counts_once(tmp_path: Path) -> None:
    policy = charter.compile(ENVELOPE)
    guard = charter.Guard(policy, approvers=DIRECTORY, checkpoint_resets=("turn",))
    step(guard, user("0"))
    for _ in range(5):
        assert step(guard, tool("kb.search", query="q")).allowed
    search = tool("kb.search", query="q")
    sixth = step(guard, search)
    assert sixth.effect == "require_approval"
    grant = guard.approve(sixth, by="oscar", group="operators")
    assert guard.check({**search, "approvals": [grant.to_token()]}).allowed
    assert since_checkpoint(guard) == 6
    assert step(guard, search).effect == "require_approval"  # the 7th
    step(guard, user("0"))  # a human turn resets it
    assert step(guard, search).allowed


def test_a_settle_above_the_estimate_makes_the_next_check_deny() -> None:
    guard = charter.Guard(charter.compile(ENVELOPE))
    first = guard.check(user("0.05"))
    assert first.allowed
    assert guard.settle(first, cost_usd=Decimal("0.75"))  # $0.75 into a $0.20 turn
    nxt = guard.check(tool("kb.search", query="q"))
    assert nxt.effect == "deny" and TURN in nxt.reasons


def test_host_sent_turn_ids_key_the_turn_budget() -> None:
    guard = charter.Guard(charter.compile(ENVELOPE))
    def in_turn(request: dict[str, Any], turn: str) -> dict[str, Any]:
        return {**request, "session": {"id": "s1", "turn": turn}}
    first = guard.check(in_turn(model("model_input", "0.15"), "a"))
    assert first.allowed
    guard.settle(first)
    assert guard.check(in_turn(model("model_input", "0.15"), "a")).effect == "deny"
    assert guard.check(in_turn(model("model_input", "0.15"), "b")).allowed


@pytest.mark.parametrize("spec", ["dict", "file", "callable"])
def test_approver_directories(tmp_path: Path, spec: str) -> None:
    import json

    policy = charter.compile(ENVELOPE)
    path = tmp_path / "approvers.json"
    path.write_text(json.dumps(DIRECTORY))
    directory: Any = {"dict": DIRECTORY, "file": str(path),
                      "callable": lambda who, group: who in DIRECTORY.get(group, [])}[spec]
    guard = charter.Guard(policy, approvers=directory)
    crm = tool("crm.update", customer="C-1", status="closed")
    change = guard.check(crm)
    with pytest.raises(ValueError, match="not a member"):
        guard.approve(change, by="mallory", group="support-leads")
    grant = guard.approve(change, by="lena", group="support-leads")
    assert guard.check({**crm, "approvals": [grant]}).allowed


def test_a_grant_from_a_non_member_does_not_count() -> None:
    # Minted by a Guard without a directory, presented to one with it.
    policy = charter.compile(ENVELOPE)
    lax = charter.Guard(policy, secret=b"k" * 32)
    strict = charter.Guard(policy, secret=b"k" * 32, approvers=DIRECTORY)
    crm = tool("crm.update", customer="C-1", status="closed")
    grant = lax.approve(lax.check(crm), by="mallory", group="support-leads")
    decision = strict.check({**crm, "approvals": [grant]})
    assert decision.effect == "require_approval"
    assert "approval rejected: the approver is not a member of the group" in decision.reasons


TWO_OF = """\
tool "payments.wire" (amount: decimal) tags money
allow tool "payments.wire"
deny tool "payments.wire" when args.amount > 10000 unless approved by 2 of "finance"
  because "wires over 10k need two finance approvers"
"""


def test_two_different_people_of_a_group() -> None:
    guard = charter.Guard(charter.compile(TWO_OF),
                          approvers={"finance": ["fay", "fred", "fin"]})
    wire = {"tool": "payments.wire", "args": {"amount": 20000}, "user": {"id": "fin"},
            "session": {"id": "s9"}}
    first = guard.check(wire)
    assert first.effect == "deny" and first.action is not None
    fay = guard.approve(first, by="fay", group="finance")
    fay2 = guard.approve(first, by="fay", group="finance")
    fin = guard.approve(first, by="fin", group="finance")  # the requester
    assert guard.check({**wire, "approvals": [fay]}).effect == "deny"
    assert guard.check({**wire, "approvals": [fay, fay2]}).effect == "deny"  # one person
    assert guard.check({**wire, "approvals": [fay, fin]}).effect == "deny"   # self-approval
    fred = guard.approve(first, by="fred", group="finance")
    assert guard.check({**wire, "approvals": [fay, fred]}).allowed


def test_a_call_limit_per_turn() -> None:
    policy = charter.compile(
        'tool "kb.search" (query: str) tags read\n'
        'allow tool "kb.search"\n'
        'on model_input allow\n'
        'limit calls(tool "kb.search") <= 2 per turn because "two searches a turn"\n')
    guard = charter.Guard(policy)
    turn = {"session": {"id": "s"}, "stage": "model_input", "input": {"role": "user"}}
    search = {"session": {"id": "s"}, "tool": "kb.search", "args": {"query": "q"}}
    effects = [guard.check(r).effect for r in (turn, search, search, search,
                                               turn, search, search, search)]
    assert effects == ["allow", "allow", "allow", "deny", "allow", "allow", "allow", "deny"]


def test_approved_by_none_of_a_group_is_an_error() -> None:
    with pytest.raises(charter.CompileError, match="needs N of at least 1"):
        charter.compile('allow when approved by 0 of "ops"\n')
