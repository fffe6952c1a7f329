"""The pytest plugin collects `*_test.agentpolicy` files and reports like `charter test`."""

from __future__ import annotations

import pytest

POLICY = """\
policy "pay"
default deny
tool "refund.create" (amount: decimal, currency: str) tags money
allow tool "refund.create"
require approval from "finance" tool "refund.create" when args.amount > 100
"""
TESTS = """\
test "small refunds pass" {
  call "refund.create" {amount: 10, currency: "USD"}
  expect allow
}
test "big refunds pass (wrong)" {
  call "refund.create" {amount: 400, currency: "USD"}
  expect allow
}
property "big refunds never pass" {
  for all calls to tool "refund.create" where args.amount > 100
  expect not allow
}
"""


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    # The inner run has no pyproject.toml; set what ours sets so pytest-asyncio stays quiet.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def test_pytest_collects_policy_tests(pytester: pytest.Pytester) -> None:
    pytester.makefile(".agentpolicy", policy=POLICY, policy_test=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--charter-seed", "1",
                                "--charter-examples", "30")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "charter: property seed 1*",
        "*policy_test.agentpolicy:5: test \"big refunds pass (wrong)\" failed*",
        "*expected: allow*",
        "*actual:   require approval from \"finance\"*",
    ])


def test_compile_errors_become_a_failing_item(pytester: pytest.Pytester) -> None:
    pytester.makefile(".agentpolicy", policy=POLICY + "allow tool \"x\" when args.a = 1\n",
                      policy_test=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*error[CH*"])


def test_scenarios_tables_and_the_cache(pytester: pytest.Pytester,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A subprocess: Hypothesis writes its caches once per process, so only a fresh one shows
    # where they go.
    monkeypatch.setenv("CHARTER_CACHE_DIR", str(pytester.path / "cache"))
    tests = TESTS + """\
scenario "approve once" {
  call "refund.create" {amount: 400, currency: "USD"}
  expect require approval from "finance"
  approve from "finance"
  call "refund.create" {amount: 400, currency: "USD"}
  expect allow
}
test "table" {
  call "refund.create" {amount: 1, currency: "USD"}
  row {} expect allow
  row {amount: 101} expect require approval
}
"""
    pytester.makefile(".agentpolicy", policy=POLICY, policy_test=tests)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--charter-seed", "1",
                                           "--charter-examples", "30")
    result.assert_outcomes(passed=4, failed=1)
    assert not (pytester.path / ".hypothesis").exists()
    assert (pytester.path / "cache" / "hypothesis").is_dir()
