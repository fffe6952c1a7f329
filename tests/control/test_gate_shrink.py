"""The shrink guard of the reload gate (issue 16, L-G4): a version enforcing far fewer
rules than the active one is rejected unless the change says the shrink is intended."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.main import cli
from charter.control import watch
from charter.control.gate import ALLOW_SHRINK_FILE, run_gate
from tests.waiting import wait_for

HEAD = 'policy "p"\ndefault deny\ntool "a" (n: int)\ntool "b" (n: int)\ntool "c" (n: int)\n'
FULL = HEAD + (
    'allow tool "a"\ndeny tool "b" because "no b"\ndeny tool "c" because "no c"\n'
    '@shadow\ndeny tool "a" because "just looking"\n'
)
HALF = HEAD + 'allow tool "a"\n'  # the two denies gone: default deny still denies, but
# a deploy that lost the file holding the denies would compile all the same
B = {"tool": "b", "args": {"n": 1}}


def write(d: Path, text: str) -> None:
    tmp = d / ".policy.tmp"
    tmp.write_text(text)
    os.replace(tmp, d / "policy.agentpolicy")


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    write(old, FULL)
    write(new, HALF)
    return old, new


def test_run_gate_rejects_a_shrink_beyond_the_limit(dirs: tuple[Path, Path]) -> None:
    old, new = dirs
    active = run_gate(old, tests=False, properties=0).policy
    assert active is not None
    result = run_gate(new, tests=False, properties=0, against=active, max_rule_drop=0.5)
    assert not result.ok and result.stage_failed == "shrink"
    # three enforced rules (the @shadow one only logs) down to one: 67 % fewer
    assert "from 3" in result.diagnostics[0] and "to 1" in result.diagnostics[0]
    assert "67%" in result.diagnostics[0]


def test_within_the_limit_intended_or_unset_it_passes(dirs: tuple[Path, Path]) -> None:
    old, new = dirs
    active = run_gate(old, tests=False, properties=0).policy
    assert active is not None
    assert run_gate(new, tests=False, properties=0, against=active, max_rule_drop=0.7).ok
    assert run_gate(new, tests=False, properties=0, against=active).ok  # off by default
    assert run_gate(
        new, tests=False, properties=0, against=active, max_rule_drop=0.5, allow_shrink=True
    ).ok
    assert run_gate(new, tests=False, properties=0, max_rule_drop=0.5).ok  # nothing to compare


def test_charter_gate_cli(dirs: tuple[Path, Path]) -> None:
    old, new = dirs
    run = CliRunner().invoke
    failed = run(cli, ["gate", str(new), "--against", str(old), "--max-rule-drop", "50"])
    assert failed.exit_code == 1
    assert "gate failed at shrink" in failed.output and "--allow-shrink" in failed.output
    ok = run(
        cli, ["gate", str(new), "--against", str(old), "--max-rule-drop", "50", "--allow-shrink"]
    )
    assert ok.exit_code == 0, ok.output
    usage = run(cli, ["gate", str(new), "--max-rule-drop", "50"])
    assert usage.exit_code == 2 and "go together" in usage.output


def test_a_watched_directory_keeps_serving_until_the_shrink_is_allowed(
    tmp_path: Path,
) -> None:
    d = tmp_path / "policies"
    d.mkdir()
    write(d, FULL)
    with watch(
        d,
        state_dir=tmp_path / "state",
        properties=0,
        step_ms=10,
        debounce_ms=200,
        poll_interval_s=0.2,
        max_rule_drop=0.5,
    ) as live:
        full = live.policy.digest
        write(d, HALF)
        wait_for(lambda: live.watcher.last is not None and not live.watcher.last.ok, "a reject")
        assert live.watcher.last.stage_failed == "shrink"
        assert live.policy.digest == full
        assert live.decide(B).reasons == ("no b",)  # the full version still decides
        # the same sources, now said to be intended: gated again, and allowed
        (d / ALLOW_SHRINK_FILE).write_text("dropping b and c on purpose\n")
        wait_for(lambda: live.policy.digest != full, "the intended shrink activates")
        assert live.decide(B).rules == ()
