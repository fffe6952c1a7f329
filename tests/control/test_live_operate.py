"""`charter status / history / rollback / unpin` against a live host running in another
process (issue 16, L-K3, L-H1, L-U1): the real CLI writes to the host's state dir, the
host's watcher thread applies it, and its decisions prove which version serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner

from charter.cli.main import cli
from charter.control.commands import read_command, write_command
from charter.runtime.changes import read_changes
from tests.control.test_live_reload import X, put, version, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Host:
    """`tests/control/livehost.py` in a subprocess: one request line in, one answer out."""

    def __init__(self, policy_dir: Path, state_dir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.control.livehost", str(policy_dir), str(state_dir)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = json.loads(self._line())["ready"]

    def _line(self) -> str:
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        line = out.readline()
        assert line, "the host exited"
        return line

    def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        return answer

    def kill(self) -> None:
        """`kill -9`: no last status written."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def host(policy_dir: Path, tmp_path: Path) -> Iterator[Host]:
    h = Host(policy_dir, tmp_path / "state")
    yield h
    h.stop()


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def status_json(state: Path) -> dict[str, Any]:
    out = run("status", "--state-dir", str(state), "--format", "json")
    assert out.exit_code in (0, 1), out.output
    data: dict[str, Any] = json.loads(out.output)
    return data


def test_rollback_and_unpin_from_the_cli_reach_a_running_host(
    host: Host, policy_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = host.ready
    assert host.decide(X)["rules"] == ["a-x", "a-w"]
    put(policy_dir / "policy.agentpolicy", version("b"))
    wait_for(lambda: host.decide(X)["rules"] == ["b-x", "b-w"], "the edit active in the host")
    second = host.decide(X)["digest"]

    shown = run("status", "--state-dir", str(state))
    assert shown.exit_code == 0, shown.output
    assert "state      READY" in shown.output and f"active     {second}" in shown.output
    listed = run("history", "--state-dir", str(state))
    assert listed.exit_code == 0
    rows = listed.output.splitlines()[1:]
    assert [r[2:].split()[1] for r in rows] == [first, second] and rows[1].startswith("*")

    back = run("rollback", "--state-dir", str(state), "--reason", "bad deploy", "--actor", "ops")
    assert back.exit_code == 0, back.output
    assert f"rolled back: {first} active" in back.output  # reported once the host applied it
    answer = host.decide(X)
    assert answer["digest"] == first and answer["rules"] == ["a-x", "a-w"]
    status = status_json(state)
    assert status["pinned"] == first and status["state"] == "READY"
    assert "pinned" in run("history", "--state-dir", str(state)).output

    un = run("unpin", "--state-dir", str(state), "--actor", "ops")
    assert un.exit_code == 0, un.output
    assert f"unpinned: {second} active" in un.output
    assert host.decide(X)["digest"] == second  # the newest source active again
    assert status_json(state)["pinned"] is None

    # A prefix names a kept version; a digest that is not kept is refused before writing.
    again = run("rollback", "--state-dir", str(state), "--to", first[:6], "--actor", "ops")
    assert again.exit_code == 0, again.output
    assert host.decide(X)["digest"] == first
    seq = read_command(state)
    assert seq is not None and seq.seq == 3
    bad = run("rollback", "--state-dir", str(state), "--to", "ffffffffffffffff")
    assert bad.exit_code == 2 and "no kept version" in bad.output
    assert read_command(state) == seq  # nothing written

    host.stop()
    actions = [(c["action"], c.get("actor")) for c in read_changes(state / "changes.jsonl")]
    src = f"file:{policy_dir}"
    assert actions == [
        ("activate", src),
        ("activate", src),
        ("rollback", "ops"),
        ("unpin", "ops"),
        ("activate", src),
        ("rollback", "ops"),
    ]
    rolled = [c for c in read_changes(state / "changes.jsonl") if c["action"] == "rollback"]
    assert rolled[0]["reason"] == "bad deploy" and rolled[0]["to_digest"] == first
    assert rolled[0]["from_digest"] == second


def test_a_pin_holds_across_a_restart_until_the_source_changes(
    policy_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    h = Host(policy_dir, state)
    first = h.ready
    put(policy_dir / "policy.agentpolicy", version("b"))
    wait_for(lambda: h.decide(X)["rules"] == ["b-x", "b-w"], "the edit active")
    assert run("rollback", "--state-dir", str(state)).exit_code == 0
    h.stop()
    h = Host(policy_dir, state)  # the source is still the one rolled back from
    assert h.decide(X)["digest"] == first and status_json(state)["pinned"] == first
    put(policy_dir / "policy.agentpolicy", version("c"))
    wait_for(lambda: h.decide(X)["rules"] == ["c-x", "c-w"], "a changed source ends the pin")
    h.stop()


def test_status_of_a_stopped_host_is_stale_and_of_no_host_not_ready(
    policy_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    none = run("status", "--state-dir", str(empty))
    assert none.exit_code == 1 and "NOT_READY" in none.output
    state = tmp_path / "state"
    h = Host(policy_dir, state)
    wait_for(lambda: (state / "status.json").exists(), "the first status")
    h.stop()
    stopped = run("status", "--state-dir", str(state))
    assert stopped.exit_code == 1 and "state      NOT_READY" in stopped.output  # stopped cleanly
    h = Host(policy_dir, state)
    wait_for(lambda: status_json(state)["state"] == "READY", "the restarted host's status")
    h.kill()
    data = json.loads((state / "status.json").read_text())
    data["updated_at"] -= data["stale_after_s"] + 1  # as if the host died that long ago
    (state / "status.json").write_text(json.dumps(data))
    shown = run("status", "--state-dir", str(state))
    assert shown.exit_code == 1 and "state      STALE" in shown.output
    assert "has not updated" in shown.output
    # Nobody applies a command: the CLI says so (exit 1) instead of claiming a rollback.
    late = run("rollback", "--state-dir", str(state), "--wait", "0.3")
    assert late.exit_code == 1 and "no running host applied it" in late.output


def test_a_refused_command_is_reported_and_recorded(host: Host, tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = run("rollback", "--state-dir", str(state))  # only one version kept: nothing older
    assert out.exit_code == 1 and "refused" in out.output and "no kept version" in out.output
    (state / "pin.json").write_text("{torn")
    wait_for(
        lambda: any(
            c["action"] == "command_rejected" and "not a command" in c["reason"]
            for c in read_changes(state / "changes.jsonl")
        ),
        "the torn command recorded",
    )
    # The next well-formed command still goes through: its seq is above the applied one.
    cmd = write_command(state, "unpin", actor="ops")
    wait_for(lambda: status_json(state)["command_seq"] == cmd.seq, "the next command applied")
    assert host.decide(X)["rules"] == ["a-x", "a-w"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("status").exit_code == 2
    assert run("status", "--state-dir", str(tmp_path), "--url", "http://x").exit_code == 2
    assert run("status", "--state-dir", str(tmp_path / "missing")).exit_code == 2
    assert run("status", "--url", "http://127.0.0.1:9").exit_code == 2  # nothing listens
    assert run("rollback", "--state-dir", str(tmp_path / "missing")).exit_code == 2
