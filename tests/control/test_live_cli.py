"""`charter gate`, `charter kill`, `charter unkill` (issue 16): the gate a live host runs,
for CI; kill switches written to the Redis every attached handle follows."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

import charter
from charter.cli.main import cli
from charter.runtime.live import Live
from charter.runtime.live_redis import RedisControl

POLICY = 'policy "p"\ndefault deny\ntool "x" (n: int)\n@id("x")\nallow tool "x"\n'
TESTS = 'test "x is allowed" {\n  call "x" {n: 1}\n  expect allow\n}\n'


def test_gate_passes_a_good_directory_and_fails_a_failing_test(tmp_path: Path) -> None:
    (tmp_path / "policy.agentpolicy").write_text(POLICY)
    (tmp_path / "policy_test.agentpolicy").write_text(TESTS)
    ok = CliRunner().invoke(cli, ["gate", str(tmp_path)])
    assert ok.exit_code == 0 and "gate passed" in ok.output and "1 tests" in ok.output
    (tmp_path / "policy.agentpolicy").write_text(POLICY.replace("allow tool", "deny tool"))
    bad = CliRunner().invoke(cli, ["gate", str(tmp_path), "--format", "json"])
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert data["stage_failed"] == "tests" and data["tests"] == {"passed": 0, "failed": 1}


def test_kill_and_unkill_reach_an_attached_handle(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    live = Live(charter.compile(POLICY))
    control = RedisControl(redis_url, prefix=prefix, poll_interval_s=0.2).attach(live)
    assert control.synced.wait(20)
    base = ["--redis", redis_url, "--prefix", prefix]
    out = CliRunner().invoke(cli, ["kill", "x", "--reason", "incident", "--actor", "oncall", *base])
    assert out.exit_code == 0, out.output
    sid = out.output.strip()

    def wait(cond: object) -> None:
        end = time.monotonic() + 20
        while not cond():  # type: ignore[operator]
            if time.monotonic() > end:
                pytest.fail("the switch never arrived")
            time.sleep(0.01)

    wait(lambda: live.decide({"tool": "x", "args": {"n": 1}}).rules == (f"kill:{sid}",))
    listed = json.loads(CliRunner().invoke(cli, ["kill", "--list", *base]).output)
    assert [s["id"] for s in listed["switches"]] == [sid]
    assert listed["switches"][0]["actor"] == "oncall"
    assert CliRunner().invoke(cli, ["unkill", sid, *base]).exit_code == 0
    wait(lambda: live.decide({"tool": "x", "args": {"n": 1}}).allowed)
    assert CliRunner().invoke(cli, ["kill", *base]).exit_code == 2  # no tool named
    live.close()
