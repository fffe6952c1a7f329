"""The real Claude Code (npm `@anthropic-ai/claude-code`, 2.1.197 on Node 20) in `-p` mode
against a loopback fake of the Messages API (`fake_anthropic`), with `charter hook
claude-code` registered as its PreToolUse and PostToolUse hooks (specs/hosts.md §2.1).

Runs when Claude Code is installed in tests/hosts/npm (the README's second command runs
`npm ci` there), `CHARTER_CLAUDE_CODE` names a `claude` binary, or `claude` is on PATH:

    (cd tests/hosts/npm && npm ci)
    pytest tests/hosts/test_claude_code_e2e.py
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_anthropic import FakeAnthropic
from hookrun import ROOT

_INSTALLED = Path(__file__).parent / "npm" / "node_modules" / ".bin" / "claude"  # README's npm ci
CLAUDE = (
    os.environ.get("CHARTER_CLAUDE_CODE")
    or (str(_INSTALLED) if _INSTALLED.exists() else None)
    or shutil.which("claude")
)
pytestmark = pytest.mark.skipif(
    CLAUDE is None,
    reason="Claude Code is not installed (cd tests/hosts/npm && npm ci; or set "
    "CHARTER_CLAUDE_CODE to a `claude` binary of @anthropic-ai/claude-code 2.1.197)",
)

POLICY = """\
policy "e2e" version "1"
use pii
default deny
allow tool "shell.run"
deny tool "shell.run" when args.command like "*denied-marker*"
  because "e2e: this command is refused by policy"
require approval from "ops" tool "shell.run" when args.command like "*deploy-marker*"
  because "deploys need ops"
require approval from "user" tool "shell.run" when args.command like "*ask-marker*"
  because "the user must say yes"
redact pii.email in args
on tool_result allow tool "**"
on tool_result redact pii.card in result
"""


def _claude(
    tmp: Path,
    command: str | list[str],
    policy: Path,
    *hook_args: str,
    before_turn: Callable[[FakeAnthropic, int], None] | None = None,
    http: str | None = None,
    claude_args: tuple[str, ...] = (),
    installed: bool = False,
) -> tuple[dict[str, Any], FakeAnthropic]:
    """Claude Code running `command` (one Bash call per item) with Charter as its hook:
    the `charter hook` command, or with `http` a `type: "http"` hook posting to that URL."""
    project, home = tmp / "project", tmp / "home"
    (project / ".claude").mkdir(parents=True, exist_ok=True)
    home.mkdir(exist_ok=True)
    if installed:  # the settings `charter hook install` writes, launcher and all
        subprocess.run(
            [
                sys.executable,
                "-m",
                "charter.cli",
                "hook",
                "install",
                "claude-code",
                "--policy",
                str(policy),
                "--project",
                str(project),
                "--hook-args=" + shlex.join(["--authoritative", *hook_args]),
            ],
            env=_env(tmp),
            check=True,
            capture_output=True,
            timeout=60,
        )
    else:
        hook = " ".join(
            [
                sys.executable,
                "-m",
                "charter.cli",
                "hook",
                "claude-code",
                "--authoritative",
                "--policy",
                str(policy),
                *hook_args,
            ]
        )
        handler = (
            {"type": "command", "command": hook} if http is None else {"type": "http", "url": http}
        )
        entry = [{"matcher": "Bash", "hooks": [handler]}]
        (project / ".claude" / "settings.json").write_text(
            json.dumps({"hooks": {"PreToolUse": entry, "PostToolUse": entry}})
        )
    commands = [command] if isinstance(command, str) else command
    script = [{"command": c, "description": "run"} for c in commands]
    env = _env(tmp)
    with FakeAnthropic("Bash", *script, before_turn=before_turn) as fake:
        env["ANTHROPIC_BASE_URL"] = fake.url
        proc = subprocess.run(
            [str(CLAUDE), "-p", "run it", "--output-format", "json", *claude_args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result, fake


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHARTER_", "ANTHROPIC_"))}
    env.update(
        HOME=str(tmp / "home"),
        ANTHROPIC_API_KEY="sk-test",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        PYTHONPATH=str(ROOT),
        CHARTER_CACHE_DIR=str(tmp / "cache"),
        CHARTER_STATE=str(tmp / "state.db"),
    )
    return env


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    directory = tmp_path / "policy"
    directory.mkdir()
    (directory / "e2e.agentpolicy").write_text(POLICY)
    return directory


def test_denied_bash_call_never_runs(tmp_path: Path, policy: Path) -> None:
    result, fake = _claude(tmp_path, "echo ran > denied-marker.txt", policy)
    assert not (tmp_path / "project" / "denied-marker.txt").exists()
    (tool_result,) = fake.tool_results()
    assert tool_result["is_error"] is True
    assert tool_result["content"] == "e2e: this command is refused by policy"
    assert [d["tool_name"] for d in result["permission_denials"]] == ["Bash"]


def test_installed_hook_blocks_the_denied_call_and_runs_the_allowed_one(
    tmp_path: Path, policy: Path
) -> None:
    """What `charter hook install claude-code` writes (every event, through the -I -S
    launcher) in front of the real Claude Code: the denied call never runs, the next runs."""
    commands = ["echo ran > denied-marker.txt", "echo ran > allowed-marker.txt"]
    with (policy / "e2e.agentpolicy").open("a") as f:
        f.write("on model_input allow\n")  # install hooks UserPromptSubmit too
    result, fake = _claude(tmp_path, commands, policy, installed=True)
    settings = json.loads((tmp_path / "project" / ".claude" / "settings.json").read_text())
    assert "-IS" in settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert not (tmp_path / "project" / "denied-marker.txt").exists()
    assert (tmp_path / "project" / "allowed-marker.txt").read_text() == "ran\n"
    denied, allowed = fake.tool_results()
    assert denied["is_error"] is True
    assert denied["content"] == "e2e: this command is refused by policy"
    assert allowed["is_error"] is False
    assert [d["tool_name"] for d in result["permission_denials"]] == ["Bash"]


def test_missing_policy_blocks_with_exit_2(tmp_path: Path) -> None:
    _, fake = _claude(tmp_path, "echo ran > marker.txt", tmp_path / "no-such-policy")
    assert not (tmp_path / "project" / "marker.txt").exists()
    (tool_result,) = fake.tool_results()
    assert tool_result["is_error"] is True
    assert "no policy, so nothing is allowed" in str(tool_result["content"])


def test_allowed_call_runs(tmp_path: Path, policy: Path) -> None:
    _, fake = _claude(tmp_path, "echo ran > allowed-marker.txt", policy)
    assert (tmp_path / "project" / "allowed-marker.txt").read_text() == "ran\n"
    (tool_result,) = fake.tool_results()
    assert tool_result["is_error"] is False


def test_redacted_input_is_what_runs(tmp_path: Path, policy: Path) -> None:
    _claude(tmp_path, "echo mail a@b.co > out.txt", policy)
    assert (tmp_path / "project" / "out.txt").read_text() == "mail [EMAIL]\n"


def test_redacted_output_is_what_the_model_reads(tmp_path: Path, policy: Path) -> None:
    _, fake = _claude(tmp_path, "echo card 4111 1111 1111 1111", policy)
    (tool_result,) = fake.tool_results()
    assert "card [CARD]" in str(tool_result["content"])
    assert "4111" not in str(tool_result["content"])


def test_ask_in_headless_mode_is_a_refusal(tmp_path: Path, policy: Path) -> None:
    _, fake = _claude(tmp_path, "echo ran > ask-marker.txt", policy, "--ask-group", "user")
    assert not (tmp_path / "project" / "ask-marker.txt").exists()
    (tool_result,) = fake.tool_results()
    assert tool_result["is_error"] is True
    assert "the user must say yes" in str(tool_result["content"])


def test_approval_round_trip(tmp_path: Path, policy: Path) -> None:
    """Deny with a ticket; a person grants it; the model repeats the identical call, which
    runs once; the same call again needs a new approval."""
    command = "echo ran >> deploy-marker.txt"
    granted: list[str] = []

    def human(fake: FakeAnthropic, turn: int) -> None:
        if turn != 1:
            return
        (first,) = fake.tool_results()
        found = re.search(r"ticket ([0-9a-f]{12})", str(first["content"]))
        assert found is not None, first
        grant = subprocess.run(
            [
                sys.executable,
                "-m",
                "charter.cli",
                "approvals",
                "grant",
                found.group(1),
                "--as",
                "alice",
                "--group",
                "ops",
            ],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            check=False,
        )
        assert grant.returncode == 0, grant.stderr
        granted.append(found.group(1))

    result, fake = _claude(tmp_path, [command, command, command], policy, before_turn=human)
    assert granted, (result, fake.requests[-1]["messages"][-1])
    first, second, third = fake.tool_results()
    assert first["is_error"] is True and "approval required from ops" in str(first["content"])
    assert second["is_error"] is False
    assert third["is_error"] is True and "approval required from ops" in str(third["content"])
    assert granted[0] not in str(third["content"])  # a new ticket: the grant was single use
    assert (tmp_path / "project" / "deploy-marker.txt").read_text() == "ran\n"


# ── the same through `charter serve`, as a `type: "http"` hook ───────────────


@pytest.fixture
def served(tmp_path: Path, policy: Path) -> Iterator[str]:
    """A real `charter serve` of the e2e policy on a free loopback port: its hook URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charter.cli",
            "serve",
            str(policy),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1/hooks/claude-code?authoritative=1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_http_hook_denied_bash_call_never_runs(tmp_path: Path, policy: Path, served: str) -> None:
    result, fake = _claude(tmp_path, "echo ran > denied-marker.txt", policy, http=served)
    assert not (tmp_path / "project" / "denied-marker.txt").exists()
    (tool_result,) = fake.tool_results()
    assert tool_result["is_error"] is True
    assert tool_result["content"] == "e2e: this command is refused by policy"
    assert [d["tool_name"] for d in result["permission_denials"]] == ["Bash"]


def test_http_hook_allowed_and_redacted_calls_run(
    tmp_path: Path, policy: Path, served: str
) -> None:
    _, fake = _claude(
        tmp_path,
        ["echo mail a@b.co > out.txt", "echo card 4111 1111 1111 1111"],
        policy,
        http=served,
    )
    assert (tmp_path / "project" / "out.txt").read_text() == "mail [EMAIL]\n"
    first, second = fake.tool_results()
    assert first["is_error"] is False
    assert "card [CARD]" in str(second["content"]) and "4111" not in str(second["content"])


def test_http_hook_server_gone_lets_the_call_run(tmp_path: Path, policy: Path) -> None:
    """Nothing listens at the URL: to Claude Code that is a non-blocking error, and its own
    permission rules decide (here `--allowedTools Bash`: the call runs). What the docs say
    follows from it: where an outage must block, use the thin command hook (`charter hook
    --server`, exit 2 when the server is unreachable) instead of an HTTP hook."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _claude(
        tmp_path,
        "echo ran > gone-marker.txt",
        policy,
        http=f"http://127.0.0.1:{port}/v1/hooks/claude-code",
        claude_args=("--allowedTools", "Bash"),
    )
    assert (tmp_path / "project" / "gone-marker.txt").read_text() == "ran\n"
