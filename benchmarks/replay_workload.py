"""A seeded Guard workload that writes a decision log for the replay tests and benchmark:
budgets (per session and per agent-hour), rate limits (one keyed by a masked e-mail), labels,
approvals with grants (one and two approvers), masked e-mails and card numbers in arguments,
tool objects with tags and server, session cost sent by the host or kept by the Guard,
`previously`, and equality rules on masked fields."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import charter
from charter.runtime.audit import AuditLog
from charter.runtime.guard import Guard
from charter.runtime.state import MemoryStore

POLICY = """
policy "replay-workload" version "1"
use pii
default deny

tool "email.send" (to: str, body: str) tags external
tool "refund.create" (amount: decimal, customer: str, note?: str) tags money
tool "crm.lookup" (customer: str) tags read
tool "web.fetch" (url: str)
tool "files.delete" (path: str) tags destructive

allow tool "email.send", "refund.create", "crm.lookup", "web.fetch", "files.delete"
on tool_result allow tool "**"

budget cost_usd <= 0.50 per session because "session budget of $0.50 reached"
budget cost_usd <= 2.00 per 1h per agent.id because "hourly agent budget reached"
limit calls(tool "web.fetch") <= 2 per 5m because "web.fetch rate limit"
limit calls(tool "crm.lookup") <= 4 per 1h per args.customer because "lookups per customer"

require approval from "finance" tool "refund.create" when args.amount > 50
  because "refunds over 50 need finance"
require approval from "ops" tool tagged destructive because "deletes need ops"
deny tool tagged destructive unless approved by 2 of "ops" because "deletes need two of ops"
deny tool "email.send" when args contains pii.card because "no card numbers in e-mail"
deny tool "email.send" when args.to == "ceo@corp.example" because "never e-mail the CEO"
warn tool "refund.create" when count(pii.card in args.note) > 1 because "several cards in a note"
deny tool "refund.create" unless previously call "crm.lookup" with {customer: args.customer}
  within 1h because "look the customer up first"
deny tool "web.fetch" when tool.server == "untrusted" because "untrusted MCP server"
deny tool tagged external when "saw_pii" in session.labels because "no egress after PII"
label session "emailed" when args contains pii.email
on tool_result label session "saw_pii" when result contains pii.email
on tool_result redact pii.email in result
"""

HASH_KEY = b"replay-test-operator-key-0123456789"
CARDS = ("4111 1111 1111 1111", "5555555555554444", "4012888888881881")
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def policy() -> charter.Policy:
    return charter.compile(POLICY, "workload.agentpolicy")


def _email(rng: random.Random) -> str:
    return f"{rng.choice(['ann', 'bob', 'cy', 'dee'])}{rng.randrange(6)}@example.com"


def request(rng: random.Random, session: str, agent: str) -> dict[str, Any]:
    kind = rng.choices(["email", "refund", "lookup", "fetch", "delete", "result"],
                       [5, 4, 4, 3, 1, 3])[0]
    req: dict[str, Any] = {"agent": {"id": agent, "team": "support"},
                           "session": {"id": session}}
    if rng.random() < 0.2:  # the host keeps the session's spend itself
        req["session"]["cost_usd"] = Decimal(rng.randrange(0, 60)) / 100
    if kind == "email":
        to = "ceo@corp.example" if rng.random() < 0.1 else _email(rng)
        body = rng.choice(["hello", f"card {rng.choice(CARDS)}", f"cc {_email(rng)}",
                           "see you"])
        req |= {"tool": "email.send", "args": {"to": to, "body": body}}
    elif kind == "refund":
        args: dict[str, Any] = {"amount": Decimal(rng.randrange(1, 120)),
                                "customer": _email(rng)}
        if rng.random() < 0.3:
            args["note"] = "; ".join(rng.sample(CARDS, rng.randrange(1, 3)))
        req |= {"tool": {"name": "refund.create", "tags": ["money"]}, "args": args,
                "estimate": {"cost_usd": Decimal(rng.randrange(1, 8)) / 100}}
    elif kind == "lookup":
        req |= {"tool": "crm.lookup", "args": {"customer": _email(rng)},
                "estimate": {"cost_usd": Decimal("0.01")}}
    elif kind == "fetch":
        server = rng.choice(["mcp-docs", "mcp-docs", "untrusted"])
        req |= {"tool": {"name": "web.fetch", "tags": ["external"], "server": server},
                "args": {"url": f"https://docs.example.net/{rng.randrange(50)}"}}
    elif kind == "delete":
        req |= {"tool": {"name": "files.delete", "tags": ["destructive"], "server": "fs"},
                "args": {"path": f"/tmp/{rng.randrange(9)}"}}
    else:
        result = {"customer": _email(rng)} if rng.random() < 0.1 else {"status": "ok"}
        req |= {"stage": "tool_result", "tool": "crm.lookup", "result": result}
    return req


def write_log(path: Path, records: int = 10_000, *, seed: int = 12,
              hash_key: bytes | None = HASH_KEY, log: bool = True) -> Counter[str]:
    """Run the workload under a Guard until `records` decisions are logged; returns what
    happened (by effect and by notable event) so that tests can check the mix."""
    rng = random.Random(seed)
    clock = Clock()
    seen: Counter[str] = Counter()
    audit = AuditLog(path, hash_key=hash_key) if log else None
    guard = Guard(policy(), MemoryStore(), log=audit, clock=clock, secret=b"s" * 32)
    agents = [f"agent-{i}" for i in range(6)]
    done = 0
    while done < records:
        clock.now += rng.uniform(0, 4)
        # Sessions come and go: about 25 requests each, 12 at a time.
        session = f"sess-{done // 300}-{rng.randrange(12)}"
        req = request(rng, session, rng.choice(agents))
        decision = guard.check(req)
        done += 1
        seen[decision.effect] += 1
        if decision.approvers and done < records and rng.random() < 0.7:
            grants = [guard.approve(decision, by=f"{g}-{i}", group=g)
                      for g in decision.approvers for i in range(2 if g == "ops" else 1)]
            decision = guard.check({**req, "approvals": grants})
            done += 1
            seen["granted " + decision.effect] += 1
        if decision.allowed and decision.reservation is not None:
            guard.settle(decision, cost_usd=Decimal(rng.randrange(0, 6)) / 100)
    guard.close()
    return seen
