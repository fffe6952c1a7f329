"""Approval grants through the Guard: the happy path, and every way an agent might cheat."""

from __future__ import annotations

from typing import Any

import pytest
from guard_helpers import Clock

from charter import Decision, Guard, Policy
from charter.runtime.approvals import Grant, mint_grant

BIG = {"amount": 500}


def spend(args: dict[str, Any] | None = None, session: str = "s1", tool: str = "spend",
          approvals: list[Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"tool": tool, "args": BIG if args is None else args,
                           "agent": {"id": "bot-1"}, "session": {"id": session}}
    if approvals is not None:
        out["approvals"] = approvals
    return out


def approved(guard: Guard, request: dict[str, Any] | None = None) -> tuple[Decision, Grant]:
    first = guard.check(request or spend())
    assert first.effect == "require_approval"
    assert first.approvers == ("finance",)
    assert first.action is not None
    return first, guard.approve(first, by="alice", group="finance", ttl=300)


@pytest.mark.parametrize("form", ["grant", "dict", "token"])
def test_happy_path_grant_lets_exactly_that_action_through_once(guard: Guard, form: str) -> None:
    _, grant = approved(guard)
    shown = {"grant": grant, "dict": grant.to_dict(), "token": grant.to_token()}[form]
    retry = guard.check(spend(approvals=[shown]))
    assert retry.effect == "allow", retry.reasons
    assert "spends over 100 need finance" not in retry.reasons
    again = guard.check(spend(approvals=[shown]))
    assert again.effect == "require_approval"
    assert "approval rejected: grant was already used (replayed)" in again.reasons


def rejected(guard: Guard, request: dict[str, Any], reason: str) -> None:
    decision = guard.check(request)
    assert not decision.allowed
    assert any(reason in r for r in decision.reasons), decision.reasons


def test_forged_grant_signed_with_another_key(guard: Guard, clock: Clock) -> None:
    first = guard.check(spend())
    assert first.action is not None
    forged = mint_grant(b"attacker-key", first.action, "mallory", "finance", 300, clock())
    rejected(guard, spend(approvals=[forged.to_token()]), "(forged or altered)")


@pytest.mark.parametrize("change", [
    {"approver": "mallory"}, {"expires_at": 9e9}, {"digest": "0" * 64}, {"nonce": "fresh"}])
def test_altered_grant(guard: Guard, change: dict[str, Any]) -> None:
    _, grant = approved(guard)
    altered = {**grant.to_dict(), **change}
    rejected(guard, spend(approvals=[altered]), "(forged or altered)")


def test_widened_group(guard: Guard) -> None:
    # A grant from "finance" re-labelled as "ops" to open a destructive tool.
    delete = spend({"path": "/x"}, tool="files.delete")
    first = guard.check(delete)
    assert first.effect == "deny" and first.action is not None
    grant = guard.approve(first, by="bob", group="finance")
    rejected(guard, {**delete, "approvals": [grant]}, "deletes need ops")
    widened = {**grant.to_dict(), "group": "ops"}
    rejected(guard, {**delete, "approvals": [widened]}, "(forged or altered)")
    ops = guard.approve(first, by="carol", group="ops")
    assert guard.check({**delete, "approvals": [ops]}).allowed


def test_expired_grant(guard: Guard, clock: Clock) -> None:
    _, grant = approved(guard)
    clock.now += 301
    rejected(guard, spend(approvals=[grant]), "grant has expired")


def test_replayed_grant(guard: Guard) -> None:
    _, grant = approved(guard)
    assert guard.check(spend(approvals=[grant.to_token()])).allowed
    rejected(guard, spend(approvals=[grant.to_token()]), "(replayed)")


@pytest.mark.parametrize("moved", [
    spend(session="s2"), spend({"amount": 501}), spend({"amount": 500, "memo": "x"}),
    spend(tool="web.fetch", args={"url": "https://a"}),
])
def test_transplanted_grant(guard: Guard, moved: dict[str, Any]) -> None:
    _, grant = approved(guard)
    decision = guard.check({**moved, "approvals": [grant]})
    assert any("(transplanted)" in r for r in decision.reasons), decision.reasons
    # The grant was not used up by the failed attempt: it still works where it belongs.
    assert guard.check(spend(approvals=[grant])).allowed


def test_transplanted_to_another_stage(guard: Guard) -> None:
    _, grant = approved(guard)
    result = {**spend(approvals=[grant]), "stage": "tool_result", "result": 1}
    assert any("(transplanted)" in r for r in guard.check(result).reasons)


def test_junk_approvals_are_malformed_not_errors(guard: Guard) -> None:
    rejected(guard, spend(approvals=["cg1.???", 7, {"group": "finance"}]), "(malformed)")


def test_an_approval_never_opens_what_a_deny_rule_closes(guard: Guard) -> None:
    # Over the session budget: a finance grant does not lift a deny.
    request = {**spend(), "estimate": {"cost_usd": 5}}
    first = guard.check(request)
    assert first.effect == "deny" and first.approvers == ("finance",)
    grant = guard.approve(first, by="alice", group="finance")
    retry = guard.check({**request, "approvals": [grant]})
    assert retry.effect == "deny"
    assert "session budget of $1 reached" in retry.reasons


def test_grant_is_not_consumed_when_the_action_is_still_denied(guard: Guard) -> None:
    _, grant = approved(guard)
    over = {**spend(approvals=[grant]), "estimate": {"cost_usd": 5}}
    assert guard.check(over).effect == "deny"
    assert guard.check(spend(approvals=[grant])).allowed


def test_approve_checks_its_inputs(guard: Guard) -> None:
    first = guard.check(spend())
    with pytest.raises(ValueError, match="cannot approve"):
        guard.approve(first, by="alice", group="ops")
    with pytest.raises(ValueError, match="no action"):
        guard.approve(guard.check(spend({"amount": 1})), by="alice", group="finance")


def test_grants_from_another_guard_need_the_same_secret(
        policy: Policy, guard: Guard, clock: Clock) -> None:
    first, grant = approved(guard)
    stranger = Guard(policy, state=guard.store, clock=clock)
    assert not stranger.check(spend(approvals=[grant])).allowed
    twin = Guard(policy, state=guard.store, secret=guard.secret, clock=clock)
    assert twin.check(spend(approvals=[grant])).allowed
