"""The test runner: expectations, `because`, diagnostics in test records, and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from charter.cli.test import test_cmd as charter_test
from charter.testing.session import run

POLICY = """\
policy "pay"
default deny
tool "refund.create" (amount: decimal, currency: str) tags money
scope agent.team == "support" {
  allow tool "refund.create"
  require approval from "finance" tool "refund.create" when args.amount > 100
    because "refunds over $100 need finance sign-off"
}
"""
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _dir(tmp_path: Path, tests: str, policy: str = POLICY) -> Path:
    (tmp_path / "policy.agentpolicy").write_text(policy)
    (tmp_path / "policy_test.agentpolicy").write_text(tests)
    return tmp_path


def _only(tmp_path: Path, tests: str):  # type: ignore[no-untyped-def]
    report = run([_dir(tmp_path, tests)], seed=1, examples=50)
    [result] = report.results
    return report, result


CALL = ('given agent {id: "a", team: "support"}\n'
        '  call "refund.create" {amount: 400, currency: "USD"}')


def test_passing_test(tmp_path: Path) -> None:
    report, r = _only(tmp_path, f'test "t" {{\n  {CALL}\n  expect require approval from '
                                f'"finance" because "finance sign-off"\n}}\n')
    assert r.status == "pass" and report.exit_code == 0


def test_failing_expectation_shows_expected_actual_and_rules(tmp_path: Path) -> None:
    report, r = _only(tmp_path, f'test "t" {{\n  {CALL}\n  expect allow\n}}\n')
    assert r.status == "fail" and report.exit_code == 1
    text = "\n".join(r.details)
    assert "expected: allow" in text
    assert 'actual:   require approval from "finance"' in text
    assert "matched rules: policy.agentpolicy:5, policy.agentpolicy:6" in text


def test_a_failure_shows_the_request_error_no_reason_carries(tmp_path: Path) -> None:
    policy = ('policy "p"\ndefault deny\ntool "t" (n?: int)\n@id("small")\n'
              'allow tool "t" when args.n < 10\n@id("any")\nallow tool "t"\n')
    _, r = _only_in(tmp_path, 'test "t" {\n  call "t" {}\n  expect deny\n}\n', policy)
    assert r.status == "fail"
    # The erring allow rule decided nothing; its error still shows, with rule and field.
    assert "    error: request error: args.n missing (rule small)" in r.details


def _only_in(tmp_path: Path, tests: str, policy: str):  # type: ignore[no-untyped-def]
    report = run([_dir(tmp_path, tests, policy)], seed=1, examples=50)
    [result] = report.results
    return report, result


def test_wrong_because_fails(tmp_path: Path) -> None:
    _, r = _only(tmp_path, f'test "t" {{\n  {CALL}\n  expect require approval because "nope"\n}}\n')
    assert r.status == "fail"
    assert 'expected: require approval because "nope"' in "\n".join(r.details)


def test_wrong_approver_group_fails(tmp_path: Path) -> None:
    _, r = _only(tmp_path, f'test "t" {{\n  {CALL}\n  expect require approval from "cfo"\n}}\n')
    assert r.status == "fail"


def test_negated_expectation(tmp_path: Path) -> None:
    _, r = _only(tmp_path, f'test "t" {{\n  {CALL}\n  expect not allow\n  expect not deny\n}}\n')
    assert r.status == "pass"


def test_bare_approved_satisfies_any_approval_rule(tmp_path: Path) -> None:
    _, r = _only(tmp_path, 'test "t" {\n  given agent {id: "a", team: "support"} approved\n'
                 '  call "refund.create" {amount: 400, currency: "USD"}\n  expect allow\n}\n')
    assert r.status == "pass"


def test_unknown_tool_is_a_diagnostic(tmp_path: Path) -> None:
    _, r = _only(tmp_path, 'test "t" {\n  call "refund.crate" {amount: 1}\n  expect deny\n}\n')
    assert r.status == "error"
    assert re.search(r"policy_test.agentpolicy:2:3: error\[CH0401\]", r.details[0])
    assert 'did you mean "refund.create"?' in r.details[0]


def test_type_error_in_test_record_has_line_and_column(tmp_path: Path) -> None:
    _, r = _only(tmp_path, 'test "t" {\n  given agent {team: 7}\n'
                 '  call "refund.create" {amount: "400", currency: "USD"}\n  expect deny\n}\n')
    assert r.status == "error"
    text = "\n".join(r.details)
    assert re.search(r"policy_test.agentpolicy:2:22: error\[CH0402\]: agent.team is a str", text)
    assert re.search(r"policy_test.agentpolicy:3:33: error\[CH0402\]: args.amount is a decimal",
                     text)
    assert "write the number without quotes" in text


def test_unknown_field_and_missing_argument(tmp_path: Path) -> None:
    _, r = _only(tmp_path, 'test "t" {\n  given session {cost: 1}\n'
                 '  call "refund.create" {amount: 4}\n  expect deny\n}\n')
    text = "\n".join(r.details)
    assert "error[CH0403]: session has no field `cost`" in text
    assert "did you mean `cost_usd`?" in text
    assert "error[CH0404]: call to \"refund.create\" lacks required argument(s) `currency`" in text


def test_non_literal_value(tmp_path: Path) -> None:
    _, r = _only(tmp_path, 'test "t" {\n  call "refund.create" {amount: 1, currency: usd}\n'
                 '  expect deny\n}\n')
    assert "error[CH0405]" in "\n".join(r.details)


def test_where_clause_type_error_is_reported(tmp_path: Path) -> None:
    _, r = _only(tmp_path, 'property "p" {\n  for all calls to tool "refund.create" '
                 'where args.amont > 1\n  expect not allow\n}\n')
    assert r.status == "error"
    assert "policy_test.agentpolicy:2:" in r.details[0] and "amount" in r.details[0]


def test_property_without_target_tools(tmp_path: Path) -> None:
    _, r = _only(tmp_path, 'property "p" {\n  for all calls to tool tagged nothing\n'
                 '  expect not allow\n}\n')
    assert r.status == "error" and "CH0407" in r.details[0]


def test_cli_examples_pass_with_full_coverage() -> None:
    result = CliRunner().invoke(charter_test, [str(EXAMPLES), "--coverage", "--seed", "7",
                                           "--examples", "30"])
    assert result.exit_code == 0, result.output
    assert result.output.count("100.0%") == 3
    assert "FAIL" not in result.output


def test_cli_json_and_usage_errors(tmp_path: Path) -> None:
    _dir(tmp_path, f'test "t" {{\n  {CALL}\n  expect allow\n}}\n')
    result = CliRunner().invoke(charter_test, [str(tmp_path), "--format", "json", "--coverage"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["failed"] == 1 and data["units"][0]["results"][0]["status"] == "fail"
    assert data["units"][0]["coverage"]["percent"] == 100.0
    missing = CliRunner().invoke(charter_test, [str(tmp_path / "nope")])
    assert missing.exit_code == 2


def test_compile_errors_fail_the_run(tmp_path: Path) -> None:
    report = run([_dir(tmp_path, 'test "t" { call "x" {} expect deny }\n',
                       policy="policy \"p\"\nallow tool \"x\" when args.a = 1\n")])
    assert report.exit_code == 1 and report.units[0].errors
