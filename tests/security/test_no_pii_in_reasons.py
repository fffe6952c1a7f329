"""No request value in a reason, and no PII in the decision log (issue 18, D6).

Reasons and `Decision.errors` name the field and the expected shape, and at most the found
type and size; they never quote the value. The log masks reasons, ids and every value with
the stdlib PII and secret matchers plus the policy's own `matcher` declarations, and does
not log bytes undecoded or reprs of arbitrary objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import charter
from charter.engine.decision import Decision
from charter.runtime import audit
from charter.runtime.audit import AuditLog

EMAIL = "alice.smith@example.com"
CARD = "4111111111111111"

POLICY = """
policy "pii-reasons" version "1"
default deny
matcher employee_id = r"EMP-[0-9]{6}"
matcher badge = r"BADGE-[A-Z]{4}"
tool "t" (at?: time, wait?: duration, url?: str, ip?: str, meta?: map<str, str>, k?: str,
          note?: str, x?: any)
allow tool "t"
deny tool "t" when args.at < now because "no backdating"
deny tool "t" when args.wait > 1h because "too long"
deny tool "t" when url_host(args.url) == "evil.example" because "evil"
deny tool "t" when cidr_contains("10.0.0.0/8", args.ip) because "internal"
deny tool "t" when args.meta[args.k] == "x" because "meta"
deny tool "t" when args.note contains employee_id because "employee ids stay inside"
"""


@pytest.fixture(scope="module")
def policy() -> charter.Policy:
    return charter.compile(POLICY)


def _texts(decision: Decision) -> str:
    errors = (e.message for e in decision.errors)
    return "\n".join((*decision.reasons, *errors, *decision.warnings))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"at": EMAIL}, "args.at: expected an ISO-8601 time, found a string of 23 characters"),
        ({"wait": EMAIL}, "args.wait: expected a duration, found a string of 23 characters"),
        # (`http:///` + an email is a URL to WHATWG clients: host after the `@`)
        ({"url": f"http://{EMAIL}:port"},
         "url_host(args.url (string)): expected a URL, found a string of 35 characters"),
        ({"ip": EMAIL}, "expected an IP address, found a string of 23 characters"),
        ({"meta": {"a": "b"}, "k": EMAIL}, "a string of 23 characters missing in args.meta"),
    ],
)
def test_request_errors_describe_the_value_without_quoting_it(
    policy: charter.Policy, args: dict[str, Any], expected: str
) -> None:
    for decide in (policy.decide, policy.interpret):
        decision = decide({"tool": "t", "args": args, "now": "2026-01-01T00:00:00Z"})
        assert decision.effect == "deny"
        text = _texts(decision)
        assert EMAIL not in text and "alice" not in text
        assert expected in text, text
        assert decision.errors and all(e.rule is not None for e in decision.errors)
        assert all(e.reason.startswith("request error:") for e in decision.errors)


def test_a_bad_stage_is_described_not_quoted(policy: charter.Policy) -> None:
    decision = policy.decide({"stage": EMAIL, "tool": "t"})
    assert decision.effect == "deny"
    assert EMAIL not in _texts(decision)
    assert "found a string of 23 characters" in decision.reasons[0]


def test_a_bad_now_is_described_not_quoted(policy: charter.Policy) -> None:
    decision = policy.decide({"tool": "t", "args": {"at": "2026-01-01T00:00:00Z"},
                              "now": EMAIL})
    assert EMAIL not in _texts(decision)
    assert "now: expected an ISO-8601 time, found a string of 23 characters" in _texts(decision)


class _Leaky(Mapping[str, object]):
    """A request mapping whose reads fail with the value in the exception."""

    def __getitem__(self, key: str) -> object:
        raise KeyError(EMAIL)

    def __iter__(self) -> Iterator[str]:
        return iter(["tool"])

    def __len__(self) -> int:
        return 1


def test_internal_errors_name_the_exception_type_only(policy: charter.Policy) -> None:
    decision = policy.decide(_Leaky())
    assert decision.effect == "deny"
    assert EMAIL not in _texts(decision)
    assert "KeyError" in decision.reasons[0]


def test_guard_estimate_errors_do_not_echo_the_amount() -> None:
    guard = charter.Guard(charter.compile("""
policy "b" version "1"
default deny
tool "t" (x?: any)
allow tool "t"
budget cost_usd <= 10.00 per session because "budget"
"""))
    decision = guard.check({"tool": "t", "session": {"id": "s"},
                            "estimate": {"cost_usd": Decimal("-" + CARD)}})
    assert decision.effect == "deny"
    assert CARD not in _texts(decision)
    # `decide` itself refuses a negative usage now (issue 18, D17), naming the field.
    assert "estimate.cost_usd: must not be negative" in _texts(decision)


# ── the decision log ───────────────────────────────────────────────────────────


def _logged(tmp_path: Path, policy: charter.Policy, request: dict[str, Any]) -> str:
    path = tmp_path / "decisions.jsonl"
    guard = charter.Guard(policy, log=path)
    guard.check(request)
    guard.close()
    (record,) = audit.read(path)
    return path.read_text(encoding="utf-8") + repr(record)


class _Customer:
    def __repr__(self) -> str:
        return f"Customer(email={EMAIL!r})"

    __str__ = __repr__


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("bytes_base64_form", EMAIL.encode(), "YWxpY2Uuc21pdGhAZXhhbXBsZS5jb20"),
        ("object_repr", _Customer(), EMAIL),
        ("decimal_card", Decimal(CARD), CARD),
        ("float_card", float(CARD), CARD),
        ("negative_decimal_card", Decimal("-" + CARD), CARD),
        ("exponent_decimal_card", Decimal("4.111111111111111E+15"), CARD),
        ("user_matcher", "ticket for EMP-123456", "EMP-123456"),
        ("unused_user_matcher", "ticket for BADGE-ABCD", "BADGE-ABCD"),
        ("user_matcher_in_key", {"EMP-654321": 1}, "EMP-654321"),
    ],
)
def test_values_are_masked_in_the_log(
    tmp_path: Path, policy: charter.Policy, name: str, value: object, secret: str
) -> None:
    text = _logged(tmp_path, policy, {"tool": "t", "args": {"x": value}})
    assert secret not in text


def test_utf8_bytes_are_logged_as_masked_text(tmp_path: Path, policy: charter.Policy) -> None:
    text = _logged(tmp_path, policy, {"tool": "t", "args": {"x": f"to {EMAIL}".encode()}})
    assert "{'$bytes': 'to [EMAIL]'}" in text


def test_user_matcher_hits_become_their_placeholder(tmp_path: Path,
                                                    policy: charter.Policy) -> None:
    text = _logged(tmp_path, policy, {"tool": "t", "args": {"x": "ticket for EMP-123456"}})
    assert "[EMPLOYEE_ID]" in text


def test_ids_and_reasons_are_masked_in_the_log(tmp_path: Path, policy: charter.Policy) -> None:
    text = _logged(tmp_path, policy, {"tool": "t", "agent": {"id": EMAIL},
                                      "trace_id": f"trace-{EMAIL}", "args": {"at": 1}})
    assert EMAIL not in text
    assert "[EMAIL]" in text


def test_reasons_and_warnings_written_directly_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    with AuditLog(path) as log:
        log.write({"effect": "deny", "reasons": [f"found {EMAIL}"],
                   "warnings": [f"card {CARD}"], "rules": ["r1"]})
    (record,) = audit.read(path)
    assert record["reasons"] == ["found [EMAIL]"]
    assert CARD not in repr(record["warnings"])
    assert record["rules"] == ["r1"]


def test_user_matchers_passed_to_write_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    with AuditLog(path) as log:
        log.write({"effect": "deny", "args": {"n": "EMP-123456"}},
                  matchers={"employee_id": r"EMP-[0-9]{6}"})
    (record,) = audit.read(path)
    assert record["args"] == {"n": "[EMPLOYEE_ID]"}
