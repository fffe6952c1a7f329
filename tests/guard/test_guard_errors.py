"""The Guard's own request errors are structured as the policy's are (`Decision.errors`).

A decision the policy allows can still be refused by the Guard: a counter whose key field
is missing (a `then warn` limit decides nothing on it), or an estimate that is not an
amount. Those denies carry `RuleError`s as a rule's do: the rule when one owns the counter,
and the field at fault; the reason stays the readable text.
"""

from __future__ import annotations

import msgspec
import pytest

import charter
from charter.engine.decision import RuleError

POLICY = """
policy "g"
default deny
tool "email.send" (to?: str)
allow tool "email.send"
@id("email-cap")
limit calls(tool "email.send") <= 20 per 1h per agent.id then warn
@id("spend")
budget cost_usd <= 10.00 per 1d per agent.tenant then warn
"""


@pytest.fixture
def guard() -> charter.Guard:
    return charter.Guard(charter.compile(POLICY))


def test_a_missing_counter_key_names_the_rule_and_the_field(guard: charter.Guard) -> None:
    d = guard.check({"tool": "email.send", "session": {"id": "s"}, "agent": {"tenant": "t"}})
    assert d.effect == "deny" and not d.allowed and d.reservation is None
    (error,) = d.errors
    assert error.rule == "email-cap" and error.field == "agent.id"
    assert "agent.id missing" in error.message
    assert d.reasons == (error.reason,)
    assert error.reason.startswith("request error: ") and "email-cap" in error.reason


@pytest.mark.parametrize(("estimate", "field"), [
    ({"cost_usd": "x"}, "estimate.cost_usd"),
    ({"tokens": "x"}, "estimate.tokens"),
    ([1], "estimate"),
])
def test_an_estimate_that_is_no_amount_names_the_field(guard: charter.Guard,
                                                       estimate: object, field: str) -> None:
    d = guard.check({"tool": "email.send", "session": {"id": "s"},
                     "agent": {"id": "a", "tenant": "t"}, "estimate": estimate})
    assert d.effect == "deny" and not d.allowed and d.reservation is None
    assert d.errors, d
    assert {e.field for e in d.errors} == {field}
    assert d.reasons == tuple(e.reason for e in d.errors)


def test_a_malformed_request_is_refused_as_by_the_policy(guard: charter.Guard) -> None:
    for request in ({"tool": ""}, {"tool": {"name": 3}}, {"tool": []}):
        d = guard.check(request)
        assert d == guard.policy.decide(request)
        (error,) = d.errors
        assert error.rule is None and error.field is not None


def test_guard_errors_encode_as_objects(guard: charter.Guard) -> None:
    d = guard.check({"tool": "email.send", "session": {"id": "s"}, "agent": {"tenant": "t"}})
    out = msgspec.json.decode(d.to_json())
    assert out["errors"] == [msgspec.to_builtins(e) for e in d.errors]
    assert all(set(e) == {"rule", "field", "message"} for e in out["errors"])
    assert isinstance(d.errors[0], RuleError)
