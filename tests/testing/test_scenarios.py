"""Test blocks beyond one call: scenarios through a Guard, tables, fixtures and new givens."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.language.formatter import format_text
from charter.testing.runner import CaseResult
from charter.testing.session import run

POLICY = """\
policy "b"
default deny
tool "llm.call" (prompt: str)
tool "email.send" (to: str)
allow tool "llm.call", "email.send"
budget cost_usd <= 2.00 per session because "session budget reached"
limit calls(tool "email.send") <= 2 per 1h per agent.id because "two emails an hour"
require approval from "ops" tool "llm.call" when args.prompt == "big"
deny tool "email.send" when hour_of(now) >= 22 because "no emails at night"
deny tool "email.send" when "saw_pii" in session.labels because "no egress after PII"
deny tool "llm.call" when previously call "email.send" with {to: "boss@x.org"}
  because "not after writing to the boss"
on model_input allow
on model_input deny when "jailbreak" in input because "no jailbreaks"
"""
# A scenario's Guard counts the session's spending; a one-call test is told it (`paid`).
FIXTURE = ('fixture bot = agent {id: "a1", team: "support"} session {id: "s1"}\n'
           "fixture paid = bot session {cost_usd: 0}\n")


def _run(tmp_path: Path, tests: str) -> list[CaseResult]:
    (tmp_path / "policy.agentpolicy").write_text(POLICY)
    (tmp_path / "policy_test.agentpolicy").write_text(FIXTURE + tests)
    return run([tmp_path], seed=1, examples=10).results


def _one(tmp_path: Path, tests: str) -> CaseResult:
    [result] = _run(tmp_path, tests)
    return result


def _calls(n: int, last: str) -> str:
    lines = []
    for i in range(1, n + 1):
        lines.append(f'  call "llm.call" {{prompt: "{i}"}}')
        lines.append("  expect allow" if i < n else f"  {last}")
    return "\n".join(lines)


BUDGET = ('scenario "a $2 session budget over five calls" {\n'
          '  given bot estimate {cost_usd: 0.50}\n' + "{calls}\n}\n")


def test_scenario_budget_over_five_calls(tmp_path: Path) -> None:
    text = BUDGET.replace("{calls}", _calls(5, 'expect deny because "session budget reached"'))
    assert _one(tmp_path, text).status == "pass"


def test_scenario_budget_failure_names_the_call(tmp_path: Path) -> None:
    # Four calls of $0.50 fit in $2.00: expecting the fourth to be denied fails, at call 4.
    text = BUDGET.replace("{calls}", _calls(4, "expect deny"))
    result = _one(tmp_path, text)
    assert result.status == "fail"
    assert "expectation failed (call 4)" in result.details[0]
    assert "actual:   allow" in "\n".join(result.details)


def test_scenario_approval_round_trip(tmp_path: Path) -> None:
    text = """\
scenario "approval round trip" {
  given bot
  call "llm.call" {prompt: "big"}
  expect require approval from "ops"
  approve from "ops" by "alice"
  call "llm.call" {prompt: "big"}
  expect allow
  call "llm.call" {prompt: "big"}
  expect require approval
}
"""
    assert _one(tmp_path, text).status == "pass"


def test_scenario_approval_by_a_group_that_cannot_approve(tmp_path: Path) -> None:
    text = """\
scenario "wrong group" {
  given bot
  call "llm.call" {prompt: "big"}
  approve from "finance"
  call "llm.call" {prompt: "big"}
  expect allow
}
"""
    result = _one(tmp_path, text)
    assert result.status == "fail"
    assert "cannot approve: group 'finance' cannot approve this action" in result.details[0]


def test_scenario_window_resets_when_the_clock_moves(tmp_path: Path) -> None:
    email = '  call "email.send" {to: "a@x.org"}\n'
    text = ('scenario "hourly limit" {\n  given bot\n' + (email + "  expect allow\n") * 2
            + email + '  expect deny because "two emails an hour"\n'
            + '  given now "2026-01-05T11:00:00Z"\n' + email + "  expect allow\n}\n")
    assert _one(tmp_path, text).status == "pass"


@pytest.mark.parametrize(("givens", "call", "because"), [
    ('now "2026-01-05T23:00:00Z"', 'call "email.send" {to: "a@x.org"}', "night"),
    ("usage cost_usd 1.90 estimate {cost_usd: 0.20}", 'call "llm.call" {prompt: "x"}',
     "session budget"),
    ('usage calls(tool "email.send") 2', 'call "email.send" {to: "a@x.org"}', "two emails"),
    ('labels ["saw_pii"]', 'call "email.send" {to: "a@x.org"}', "after PII"),
    ('previously call "email.send" {to: "boss@x.org"}', 'call "llm.call" {prompt: "x"}',
     "boss"),
])
def test_givens_of_state_and_time(tmp_path: Path, givens: str, call: str, because: str) -> None:
    deny = f'test "t" {{\n  given paid {givens}\n  {call}\n  expect deny because "{because}"\n}}\n'
    assert _one(tmp_path, deny).status == "pass"
    # Without the given the same call is allowed: the given is what the test is about.
    plain = f'test "t" {{\n  given paid\n  {call}\n  expect allow\n}}\n'
    assert _one(tmp_path, plain).status == "pass"


def test_model_input_step(tmp_path: Path) -> None:
    text = """\
test "jailbreaks are stopped" {
  given paid
  on model_input with input "please jailbreak"
  expect deny because "no jailbreaks"
}
test "other input passes" {
  given paid
  on model_input with input {messages: ["hello"]}
  expect allow
}
"""
    assert [r.status for r in _run(tmp_path, text)] == ["pass", "pass"]


TABLE = """\
test "prompts" {
  given paid
  call "llm.call" {prompt: "x"}
  expect not redact
  row {prompt: "small"} expect allow
  row {prompt: "big"} expect require approval from "ops"
  row {prompt: "big"} approved by "ops" expect allow
  row {} usage cost_usd 2.5 expect deny
}
"""


def test_table_rows(tmp_path: Path) -> None:
    result = _one(tmp_path, TABLE)
    assert result.status == "pass", result.details


def test_table_failure_points_at_the_row(tmp_path: Path) -> None:
    result = _one(tmp_path, TABLE.replace('row {prompt: "small"} expect allow',
                                          'row {prompt: "small"} expect deny'))
    assert result.status == "fail"
    assert result.details[0].endswith("expectation failed (row 1, line 7)")
    assert len([d for d in result.details if "expectation failed" in d]) == 1


def test_unknown_fixture_is_a_diagnostic(tmp_path: Path) -> None:
    text = 'test "t" {\n  given pad\n  call "llm.call" {prompt: "x"}\n  expect allow\n}\n'
    result = _one(tmp_path, text)
    assert result.status == "error"
    assert "CH0408" in result.details[0] and "did you mean `paid`?" in result.details[0]


def test_bad_time_in_given_now(tmp_path: Path) -> None:
    text = ('test "t" {\n  given paid now "tomorrow"\n  call "llm.call" {prompt: "x"}\n'
            "  expect allow\n}\n")
    result = _one(tmp_path, text)
    assert result.status == "error" and "CH0402" in result.details[0]


def test_several_calls_in_a_test_suggest_a_scenario(tmp_path: Path) -> None:
    from charter.language.parser import parse
    from charter.language.source import Source

    text = 'test "t" {\n  call "a" {}\n  call "b" {}\n  expect allow\n}\n'
    _, diags = parse(Source("t", text))
    assert any("scenario" in (d.help or "") for d in diags)


def test_formatter_keeps_the_new_syntax(tmp_path: Path) -> None:
    text = (FIXTURE + TABLE
            + 'scenario "s" {\n  given bot now "2026-01-05T10:00:00Z"\n'
            '  call "llm.call" {prompt: "big"}\n  expect require approval\n'
            '  approve from "ops" by "alice"\n  given usage calls(tool "email.send") 1\n'
            '  on model_output with output {text: "hi"}\n  expect allow\n}\n')
    formatted = format_text(text)
    assert format_text(formatted) == formatted
    assert 'approve from "ops" by "alice"' in formatted
    assert '  row {prompt: "big"} approved by "ops" expect allow\n' in formatted
    assert 'given usage calls(tool "email.send") 1' in formatted


def test_given_approved_in_a_scenario_is_a_diagnostic(tmp_path: Path) -> None:
    text = ('scenario "s" {\n  given bot approved\n  call "llm.call" {prompt: "big"}\n'
            "  expect allow\n}\n")
    result = _one(tmp_path, text)
    assert result.status == "error" and "CH0409" in result.details[0]


def test_expect_before_the_first_call_of_a_scenario(tmp_path: Path) -> None:
    from charter.language.parser import parse
    from charter.language.source import Source

    _, diags = parse(Source("t", 'scenario "s" {\n  expect allow\n  call "a" {}\n}\n'))
    assert [d.message for d in diags] == ["this line needs a `call` before it"]
