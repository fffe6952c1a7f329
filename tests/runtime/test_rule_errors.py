"""`Decision.errors` is structured: each entry a `RuleError(rule, field, message)`.

A rule that cannot be evaluated on a request names itself and the field at fault; the
generated code and the reference interpreter report the same errors; the reasons keep the
readable text (`request error: MESSAGE (rule ID)`); and the whole decision, errors included,
encodes to plain JSON.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

import charter
from charter.engine.decision import Decision, PolicyInfo, RuleError

POLICY = """
policy "errs" version "1"
default deny
strict args
tool "pay" (amount: int, to: str)
tool "kb.read" (q?: str)
tool "ticket.open" (meta?: any, size?: any)

@id("pay-ok")
allow tool "pay" when args.amount <= 100

@id("pay-big")
require approval from "finance" tool "pay" when args.amount > 100

@id("pay-to")
deny tool "pay" when args.to like "*@evil.com" because "no evil"

@id("kb")
allow tool "kb.read"

@id("ticket-open")
allow tool "ticket.open" when args.meta.owner == user.id

@id("ticket-size")
warn tool "ticket.open" when args.size + 1 > 10 because "big ticket"
"""


@pytest.fixture(scope="module")
def policy() -> charter.Policy:
    return charter.compile(POLICY)


def both(policy: charter.Policy, request: dict[str, Any]) -> Decision:
    """The decision, after checking that the generated code and the interpreter agree."""
    decided, interpreted = policy.decide(request), policy.interpret(request)
    assert decided == interpreted
    return decided


def test_a_missing_field_names_the_rule_and_the_field(policy: charter.Policy) -> None:
    d = both(policy, {"tool": "pay", "args": {"to": "bob@corp.com"}})
    assert d.effect == "deny"
    by_rule = {e.rule: e for e in d.errors}
    assert by_rule["pay-ok"] == RuleError("pay-ok", "args.amount", "args.amount missing")
    assert by_rule["pay-big"] == RuleError("pay-big", "args.amount", "args.amount missing")
    strict = by_rule["strict-args:pay"]
    assert strict.field == "args.amount" and strict.message == "args.amount missing"
    # The readable reason is unchanged: it carries the message and the rule id.
    assert "request error: args.amount missing (rule pay-big)" in d.reasons
    assert all(e.reason == f"request error: {e.message} (rule {e.rule})" for e in d.errors)


def test_a_request_without_args_names_each_field_a_rule_needs(policy: charter.Policy) -> None:
    d = both(policy, {"tool": "pay"})
    assert d.effect == "deny"
    assert {(e.rule, e.field) for e in d.errors} == {
        ("pay-ok", "args.amount"), ("pay-big", "args.amount"), ("pay-to", "args.to"),
        ("strict-args:pay", "args.amount")}
    assert all(e.message == f"{e.field} missing" for e in d.errors)


def test_a_wrong_type_names_the_field(policy: charter.Policy) -> None:
    d = both(policy, {"tool": "pay", "args": {"amount": "lots", "to": "bob@corp.com"}})
    assert d.effect == "deny"
    assert {e.field for e in d.errors} == {"args.amount"}
    assert all(e.rule is not None for e in d.errors)
    assert {e.message for e in d.errors} == {"args.amount: expected an int, found string"}


def test_an_undeclared_parameter_names_it(policy: charter.Policy) -> None:
    d = both(policy, {"tool": "kb.read", "args": {"q": "x", "extra": 1}})
    assert d.effect == "deny"
    assert d.errors == (RuleError("strict-args:kb.read", "args.extra",
                                  'args.extra is not a parameter of tool "kb.read"'),)


def test_args_of_the_wrong_type_name_args(policy: charter.Policy) -> None:
    d = both(policy, {"tool": "kb.read", "args": [1, 2]})
    assert d.effect == "deny"
    (error,) = d.errors
    assert error.rule == "strict-args:kb.read" and error.field == "args"


def test_a_nested_field_and_an_operator_error_name_their_fields(policy: charter.Policy) -> None:
    d = both(policy, {"tool": "ticket.open", "user": {"id": "u"},
                      "args": {"meta": {}, "size": "x"}})
    assert d.effect == "deny"  # the erring allow rule does not match: default deny
    by_rule = {e.rule: e for e in d.errors}
    assert by_rule["ticket-open"].field == "args.meta.owner"
    assert by_rule["ticket-size"].field == "args.size"
    assert by_rule["ticket-size"].message.startswith("cannot compute args.size")
    # An erroring warn rule counts as matched, and its reason is the error's.
    assert by_rule["ticket-size"].reason in d.warnings


def test_no_error_no_errors(policy: charter.Policy) -> None:
    d = both(policy, {"tool": "pay", "args": {"amount": 5, "to": "bob@corp.com"}})
    assert d.effect == "allow" and d.errors == ()


@pytest.mark.parametrize("request_", [
    {"tool": ""}, {"tool": {}}, {"tool": {"name": ""}}, {"tool": ["pay"]}, {"tool": 3},
    {"args": {"amount": 1}}, {"tool": {"name": "pay", "tags": [1]}},
])
def test_malformed_requests_name_the_field_and_no_rule(policy: charter.Policy,
                                                       request_: dict[str, Any]) -> None:
    d = both(policy, request_)
    assert d.effect == "deny" and not d.allowed and d.rules == ()
    (error,) = d.errors
    assert error.rule is None and error.field is not None
    assert error.field.startswith("tool")
    assert d.reasons == (f"malformed request: {error.message}",)


def test_errors_encode_as_objects(policy: charter.Policy) -> None:
    d = both(policy, {"tool": "kb.read", "args": {"extra": 1}})
    out = msgspec.json.decode(d.to_json())
    assert out["errors"] == [{"rule": "strict-args:kb.read", "field": "args.extra",
                              "message": 'args.extra is not a parameter of tool "kb.read"'}]
    assert msgspec.json.decode(d.to_json(), type=Decision) == d
    assert list(d.to_dict()["errors"]) == out["errors"]


def test_refused_is_the_one_error_deny() -> None:
    info = PolicyInfo("p", None, "d")
    errors = (RuleError(None, "tool", "tool missing"), RuleError("r", "args.x", "args.x missing"))
    d = Decision.refused(info, *errors)
    assert d.effect == "deny" and not d.allowed and d.policy == info
    assert d.errors == errors
    assert d.reasons == ("malformed request: tool missing",
                         "request error: args.x missing (rule r)")


def test_a_redaction_that_cannot_scan_names_its_rule_and_field() -> None:
    policy = charter.compile('policy "r"\ndefault allow\nuse pii\n'
                             '@id("mask")\non tool_result redact pii.email in result\n')
    deep: Any = "a@b.com"
    for _ in range(2000):  # deeper than the scanner goes
        deep = [deep]
    d = both(policy, {"tool": "t", "stage": "tool_result", "result": deep})
    assert d.effect == "deny"  # a value that cannot be scanned is never let through
    (error,) = d.errors
    assert error.rule == "mask" and error.field == "result"
    assert error.message.startswith("result: cannot scan for redaction")
    assert d.reasons == (error.reason,)
