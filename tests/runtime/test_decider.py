"""`Policy.decider(stage, name, tags)` decides as `Policy.decide` for requests of that kind."""

from __future__ import annotations

from typing import Any

import charter
from charter.engine.snapshot import Snapshot
from charter.runtime.request import read

POLICY = """
policy "decider"
use secrets
default deny
tool "pay" (amount: decimal) tags money
allow tool "pay", "web.*"
require approval from "finance" tool "pay" when args.amount > 100 because "big"
deny tool tagged external when args contains secrets.any because "no secrets out"
deny tool tagged money when "frozen" in session.labels because "frozen"
limit calls(tool "pay") <= 2 per 1h because "pay limit"
"""
REQUESTS: list[dict[str, Any]] = [
    {"tool": "pay", "args": {"amount": 5}},
    {"tool": "pay", "args": {"amount": 500}},
    {"tool": "pay", "args": {}},  # a request error
    {"tool": "pay", "args": {"amount": "lots"}},
    {"tool": {"name": "web.get", "tags": ["external"], "server": "s"},
     "args": {"q": "AKIAIOSFODNN7EXAMPLE"}},
    {"tool": {"name": "web.get", "tags": ["external"]}, "args": {"q": "fine"}},
    {"stage": "model_input", "input": "hi"},
]
STATES = [None, Snapshot(labels=frozenset({"frozen"})),
          Snapshot(approved_groups=frozenset({"finance"})), Snapshot(counters={})]


def test_decider_answers_as_decide() -> None:
    policy = charter.compile(POLICY, "decider.agentpolicy")
    for request in REQUESTS:
        call = read(request, policy.info)
        assert not isinstance(call, charter.Decision)
        decide = policy.decider(call.stage, call.name, call.tags)
        for state in STATES:
            for _ in range(2):  # cold, then from the entry's cache
                assert decide(call.req, state) == policy.decide(request, state), (request, state)
