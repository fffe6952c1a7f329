"""Properties: counterexamples are shrunk, printed as test blocks, and fail when pasted."""

from __future__ import annotations

from pathlib import Path

from charter.testing.session import run

# Planted bug: the top-level allow opens refunds to every team, so the approval rule, scoped
# to the support team, no longer guards refunds above the threshold.
BUGGY = """\
policy "pay"
default deny
tool "refund.create" (amount: decimal, currency: str) tags money
allow tool "refund.create" when args.currency in {"USD", "EUR"}
scope agent.team == "support" {
  require approval from "finance" tool "refund.create" when args.amount > 100
    because "refunds over $100 need finance sign-off"
}
"""
PROPERTY = """\
property "no big refund without approval" {
  for all calls to tool "refund.create" where args.amount > 100
  expect not allow
}
"""


def _write(d: Path, tests: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "policy.agentpolicy").write_text(BUGGY)
    (d / "policy_test.agentpolicy").write_text(tests)
    return d


def test_counterexample_round_trip(tmp_path: Path) -> None:
    report = run([_write(tmp_path / "prop", PROPERTY)], seed=1, examples=200)
    assert report.exit_code == 1
    [result] = report.results
    assert result.status == "fail"
    block = result.counterexample
    assert block is not None and block.startswith('test "no big refund without approval')
    assert "expect not allow" in block
    # Pasted into a test file beside the same policy, it fails the same way.
    pasted = run([_write(tmp_path / "pasted", block + "\n")], seed=1)
    assert pasted.exit_code == 1
    [again] = pasted.results
    assert again.kind == "test" and again.status == "fail"
    assert "actual:   allow" in "\n".join(again.details)
    assert [x for x in result.details if "actual" in x] == \
        [x for x in again.details if "actual" in x]


def test_same_seed_same_counterexample(tmp_path: Path) -> None:
    d = _write(tmp_path, PROPERTY)
    first = run([d], seed=5, examples=100).results[0].counterexample
    second = run([d], seed=5, examples=100).results[0].counterexample
    assert first is not None and first == second


def test_threshold_boundary_is_found(tmp_path: Path) -> None:
    # Only amounts in (100, 100.01] break this property: biased generation must try them.
    policy_bug = BUGGY.replace('when args.currency in {"USD", "EUR"}', "")
    d = tmp_path / "b"
    d.mkdir()
    (d / "policy.agentpolicy").write_text(
        'policy "p"\ndefault deny\ntool "t" (amount: decimal)\n'
        'allow tool "t" when args.amount > 100 and args.amount <= 100.01\n')
    (d / "policy_test.agentpolicy").write_text(
        'property "p" {\n  for all calls to tool "t"\n  expect not allow\n}\n')
    assert policy_bug  # the planted policy above is unrelated; keep the variable used
    report = run([d], seed=3, examples=200)
    block = report.results[0].counterexample
    assert block is not None and "amount: 100.01" in block


def test_where_narrows_generation(tmp_path: Path) -> None:
    # Without `has(agent.team)`, a request lacking the team makes the scoped approval rule
    # error, which counts as matched: the property would (rightly) fail.
    narrowed = "args.amount <= 100 and has(agent.team)"
    d = _write(tmp_path, PROPERTY.replace("args.amount > 100", narrowed)
               .replace("expect not allow", "expect not require approval"))
    assert run([d], seed=2, examples=100).exit_code == 0
