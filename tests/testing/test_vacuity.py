"""Properties that really test: vacuous examples are counted, and too few meaningful fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.testing.session import run

# A CRM policy whose approval rule only fires on PII: every CRM note without PII goes through
# unapproved. Requests lacking `agent.team` or `session.cost_usd` end in a request error, and
# the erroring deny rules made those count as passes: seeds 1 and 16 passed before.
CRM = """\
policy "crm"
default deny
use pii
tool "crm.note" (customer_id: str, text: str)
tool "crm.lookup" (customer_id: str)
allow tool "crm.*"
deny tool "crm.*" when agent.team != "support" because "support only"
deny tool "crm.*" when session.cost_usd > 5 because "budget"
require approval from "lead" tool "crm.note" when args.text contains pii.email
"""
CRM_PROPERTY = """\
property "crm notes need approval" {
  for all calls to tool "crm.note"
  expect not allow
}
"""
# Every request errors (division by zero), so the deny rule always "matches".
ALWAYS_ERRORS = """\
policy "z"
default deny
tool "t" (n: int)
allow tool "t"
deny tool "t" when args.n / (args.n - args.n) > 1 because "never true"
"""
NEVER_ALLOWED = """\
property "t is never allowed" {
  for all calls to tool "t"
  expect not allow
}
"""


def _unit(d: Path, policy: str, tests: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "policy.agentpolicy").write_text(policy)
    (d / "policy_test.agentpolicy").write_text(tests)
    return d


@pytest.mark.parametrize("seed", [1, 16])
def test_crm_bug_is_found_on_seeds_that_passed_vacuously(tmp_path: Path, seed: int) -> None:
    report = run([_unit(tmp_path, CRM, CRM_PROPERTY)], seed=seed, examples=200)
    [result] = report.results
    assert result.status == "fail"
    assert result.counterexample is not None and 'call "crm.note"' in result.counterexample


def test_only_vacuous_examples_fail_the_property(tmp_path: Path) -> None:
    report = run([_unit(tmp_path, ALWAYS_ERRORS, NEVER_ALLOWED)], seed=1, examples=50)
    [result] = report.results
    assert result.status == "fail"
    assert result.examples == 50 and result.meaningful == 0 and result.vacuous == (50, 0)
    text = "\n".join(result.details)
    assert "vacuous: only 0 of 50 examples were meaningful (at least 5 needed)" in text
    assert "division by zero" in text and "--min-examples" in text


def test_floor_can_be_lowered(tmp_path: Path) -> None:
    report = run([_unit(tmp_path, ALWAYS_ERRORS, NEVER_ALLOWED)], seed=1, examples=50,
                 min_examples=0)
    assert report.exit_code == 0


def test_where_rejections_are_vacuous(tmp_path: Path) -> None:
    policy = 'policy "p"\ndefault deny\ntool "t" (s: str)\n'
    # `len(...)` is not steered: the clause can only filter, and rejects most requests.
    prop = ('property "p" {\n  for all calls to tool "t" where len(args.s) == 7\n'
            "  expect deny\n}\n")
    report = run([_unit(tmp_path, policy, prop)], seed=1, examples=50)
    [result] = report.results
    errors, rejected = result.vacuous
    assert errors == 0 and rejected > 0
    assert result.status == ("pass" if result.meaningful >= 5 else "fail")


def test_report_prints_the_counts(tmp_path: Path) -> None:
    from charter.testing.report import as_json, text

    report = run([_unit(tmp_path, ALWAYS_ERRORS, NEVER_ALLOWED)], seed=1, examples=20)
    assert ("(20 examples, 0 meaningful; vacuous: 20 request errors, 0 `where` rejections)"
            in text(report))
    [row] = as_json(report)["units"][0]["results"]
    assert (row["meaningful"], row["request_errors"], row["where_rejections"]) == (0, 20, 0)


def test_hypothesis_files_go_to_the_cache_not_the_policy_folder(tmp_path: Path) -> None:
    # A fresh process: Hypothesis writes its caches once per process.
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    policy_dir = _unit(tmp_path / "policy", CRM, CRM_PROPERTY)
    env = {**os.environ, "PYTHONPATH": str(root), "CHARTER_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-m", "charter.cli.main", "test", ".", "--seed", "1",
                    "--examples", "20"], cwd=policy_dir, env=env, capture_output=True,
                   check=False, timeout=120)
    assert not (policy_dir / ".hypothesis").exists()
    assert (tmp_path / "cache" / "hypothesis").is_dir()


def test_hypothesis_home_is_restored_after_a_run(tmp_path: Path) -> None:
    from hypothesis import configuration

    before = vars(configuration).get("__hypothesis_home_directory")
    run([_unit(tmp_path, CRM, CRM_PROPERTY)], seed=1, examples=5)
    assert vars(configuration).get("__hypothesis_home_directory") == before
