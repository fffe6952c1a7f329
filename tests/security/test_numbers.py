"""Numbers in requests are read exactly and bounded (issue 18: D3, D4, D7, D17, D18).

Every case is decided twice, by `decide` (generated code) and by `interpret` (the reference
interpreter), and the two must agree.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import pytest

import charter
from charter import Decision

HEADER = 'policy "numbers"\ndefault allow\ntool "t" (n: int, amount: decimal)\n'


def decide(rules: str, request: dict[str, Any], header: str = HEADER) -> Decision:
    policy = charter.compile(header + rules)
    compiled, reference = policy.decide(request), policy.interpret(request)
    assert compiled == reference
    return compiled


def call(tool: str = "x", **args: object) -> dict[str, Any]:
    return {"tool": tool, "args": args}


# ── D3: floats are the decimal their repr shows, untyped reads included ─────────

def test_untyped_float_meets_an_exact_threshold() -> None:
    d = decide("deny when args.discount >= 0.3", call(discount=0.3))
    assert d.effect == "deny" and not d.errors


def test_untyped_float_sum_is_exact() -> None:
    d = decide("deny when args.a + args.b == 0.3", call(a=0.1, b=0.2))
    assert d.effect == "deny" and not d.errors


def test_untyped_float_plus_decimal_literal_is_no_error() -> None:
    d = decide("deny when args.a + 0.5 > 1", call(a=0.7))
    assert d.effect == "deny" and not d.errors


def test_float_inside_a_list_and_a_map() -> None:
    assert decide("deny when 0.3 in args.rates", call(rates=[0.1, 0.3])).effect == "deny"
    d = decide('deny when args.m["k"] == 0.3', call(m={"k": 0.3}))
    assert d.effect == "deny" and not d.errors


def test_float_read_as_int_is_read_as_written() -> None:
    # 1e23 as a binary float is 99999999999999991611392; as written it is 10**23.
    d = decide('deny tool "t" when args.n == 100000000000000000000000', call("t", n=1e23))
    assert d.effect == "deny"


# ── D4: exact arithmetic, one meaning for typed and untyped reads ──────────────

def test_budget_over_by_1e_28_is_denied() -> None:
    request = {"tool": "x", "session": {"cost_usd": Decimal("2.00")},
               "estimate": {"cost_usd": Decimal("1e-28")}}
    assert decide("budget cost_usd <= 2.00 per session\n", request).effect == "deny"


@pytest.mark.parametrize("value", [10**30, Decimal("1e30"),
                                   Decimal("1000000000000000000000000000000.0")])
def test_int_and_untyped_reads_of_one_field_agree(value: object) -> None:
    rules = ('deny tool "t" when args.n > 0 and args.n + 1 == 1000000000000000000000000000001\n'
             'warn when args["n"] + 1 == 1000000000000000000000000000001 because "w"\n')
    d = decide(rules, call("t", n=value))
    assert d.effect == "deny" and d.warnings == ("w",)


def test_long_decimals_add_exactly() -> None:
    a, b = Decimal("0.1000000000000000000000000000000001"), Decimal("0.2")
    d = decide("deny when args.a + args.b == 0.3000000000000000000000000000000001", call(a=a, b=b))
    assert d.effect == "deny" and not d.errors


def test_division_is_exact() -> None:
    d = decide("deny when args.x / 3 * 3 == args.x and args.x / 4 == 0.25", call(x=1))
    assert d.effect == "deny" and not d.errors


def test_negation_does_not_round() -> None:
    d = decide("deny when -args.x < -1",
               call(x=Decimal("1.00000000000000000000000000000001")))
    assert d.effect == "deny" and not d.errors


def test_the_host_decimal_context_does_not_matter() -> None:
    request = {"tool": "x", "session": {"cost_usd": Decimal("1.99999")},
               "estimate": {"cost_usd": Decimal("0.00002")}}
    with decimal.localcontext() as ctx:
        ctx.prec = 3  # would round 2.00001 to 2.00, which passes the budget
        assert decide("budget cost_usd <= 2.00 per session\n", request).effect == "deny"


# ── D7: bounded work, a clear deny naming the field ─────────────────────────────

@pytest.mark.parametrize("body", [
    '{"tool": "t", "args": {"n": 1e400000}}',
    '{"tool": "t", "args": {"n": 1e401}}',
    '{"tool": "t", "args": {"n": 1' + "0" * 450 + "}}",
])
def test_huge_numbers_for_an_int_are_denied_naming_the_field(body: str) -> None:
    header = HEADER.replace("default allow", "default deny")
    policy = charter.compile(header + 'allow tool "t" when args.n >= 0\n')
    d = policy.decide(body)
    assert d.effect == "deny" and any("args.n" in r for r in d.reasons)


@pytest.mark.parametrize("value", [10**500, -(10**500), Decimal("1e400"), Decimal("-1e999999")])
def test_huge_numbers_are_request_errors(value: object) -> None:
    d = decide("deny when args.x > 1\n", call(x=value))
    assert d.effect == "deny" and any("args.x" in e.message for e in d.errors)


def test_arithmetic_that_would_need_huge_precision_is_an_error() -> None:
    # Exactly, 1e-400000 + 1 has 400,001 digits; it is refused, not computed or rounded.
    d = decide("allow when args.x + 1 > 1\n", call(x=Decimal("1e-400000")),
               header='policy "numbers"\ndefault deny\n')
    assert d.effect == "deny" and d.errors


def test_strings_do_not_multiply() -> None:
    # `"ab" * 3` is Python's repetition, and "a" * 10**9 a gigabyte: not the language's `*`.
    d = decide('allow when args.s * args.n == "ababab"\n', call(s="ab", n=3),
               header='policy "numbers"\ndefault deny\n')
    assert d.effect == "deny" and d.errors


# ── D17: NaN and Infinity are not numbers; usage is never negative; bytes are text ──

@pytest.mark.parametrize("value", [Decimal("-Infinity"), Decimal("Infinity"), Decimal("NaN"),
                                   Decimal("sNaN"), float("-inf"), float("nan")])
def test_nan_and_infinity_fail_the_read(value: object) -> None:
    request = {"tool": "x", "session": {"cost_usd": value}}
    d = decide("budget cost_usd <= 2.00 per session\n", request)
    assert d.effect == "deny" and any("session.cost_usd" in e.message for e in d.errors)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("-Infinity")])
def test_nan_in_an_untyped_comparison_is_an_error(value: object) -> None:
    d = decide("allow when args.x < 5\n", call(x=value), header='policy "n"\ndefault deny\n')
    assert d.effect == "deny" and any("args.x" in e.message for e in d.errors)


@pytest.mark.parametrize(("rule", "session", "estimate"), [
    ("budget cost_usd <= 2.00 per session", {"cost_usd": Decimal("1.5")}, {"cost_usd": -5}),
    ("budget cost_usd <= 2.00 per session", {"cost_usd": -3.0}, {"cost_usd": 4}),
    ("budget tokens <= 50 per session", {"tokens": 10}, {"tokens": -100}),
    ("budget tokens <= 50 per session", {"tokens": -100}, {"tokens": 120}),
])
def test_negative_usage_fails_the_budget(rule: str, session: dict[str, object],
                                         estimate: dict[str, object]) -> None:
    d = decide(rule + "\n", {"tool": "x", "session": session, "estimate": estimate})
    assert d.effect == "deny" and d.errors


def test_bytes_are_read_as_text() -> None:
    rules = "use pii\ndeny when args.body contains pii.email\n"
    d = decide(rules, call(body=b"write to bob.smith@example.com"))
    assert d.effect == "deny" and not d.errors
    d = decide('deny when args.path like "/etc/*"\n', call(path=bytearray(b"/etc/passwd")))
    assert d.effect == "deny" and not d.errors


# ── D18: a bool is not a number ─────────────────────────────────────────────────

@pytest.mark.parametrize("rule", [
    "deny when args.flag == 1", "deny when args.flag in [1, 2]", "deny when 1 in args.flags",
    "deny when args.n == true", "deny when args.flags == [1]",
])
def test_true_is_not_one(rule: str) -> None:
    d = decide(rule + "\n", call(flag=True, flags=[True], n=1))
    assert d.effect == "allow" and not d.errors


@pytest.mark.parametrize("rule", ["allow when args.flag < 2", "allow when args.flag + 1 == 2",
                                  "allow when -args.flag == -1",
                                  "allow when 1 in {args.flag, args.n}"])
def test_bools_do_not_order_or_add(rule: str) -> None:
    d = decide(rule + "\n", call(flag=True, n=1), header='policy "n"\ndefault deny\n')
    assert d.effect == "deny" and d.errors


def test_lists_compare_by_their_items() -> None:
    d = decide('deny when args.l == [1, "a", 0.5]\n', call(l=[1, "a", 0.5]))
    assert d.effect == "deny" and not d.errors
