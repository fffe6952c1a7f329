"""`charter hook AGENT --server ...`: the thin hook posts the event to a warm `charter serve`
and relays its answer; it imports nothing of Charter's runtime, and an unreachable server
is the host's blocking answer (or, with `--fail open`, lets the call go on)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hookrun import POLICY, ROOT, SAMPLES, Hook

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")


@pytest.fixture
def server(hook: Hook, tmp_path: Path) -> Iterator[str]:
    sock = tmp_path / "charter.sock"
    env = hook.env()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charter.cli",
            "serve",
            str(POLICY),
            "--listen",
            f"unix:{sock}",
            "--state",
            f"sqlite:{hook.home / 'state.db'}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(sock))
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "") from None
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("charter serve did not start")
    yield f"unix:{sock}"
    proc.terminate()
    proc.wait(timeout=30)


def _sample(agent: str, name: str) -> bytes:
    return (SAMPLES / agent / f"{name}.json").read_bytes()


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        ("claude-code", "pre_allow"),
        ("claude-code", "pre_deny"),
        ("claude-code", "pre_redact"),
        ("claude-code", "post_redact"),
        ("claude-code", "malformed_tool_input"),
        ("cursor", "pre_deny"),
        ("gemini", "post_redact"),
        ("codex", "pre_redact"),
        ("copilot", "pre_deny"),
    ],
)
def test_same_answer_as_the_local_hook(hook: Hook, server: str, agent: str, name: str) -> None:
    local = hook.sample(agent, name)
    remote = hook.sample(agent, name, "--server", server, policy=None)
    assert (remote.code, remote.json) == (local.code, local.json), remote.stderr


def test_approval_through_the_sidecar(hook: Hook, server: str) -> None:
    first = hook.sample("claude-code", "pre_approval", "--server", server, policy=None)
    reason = first.json["hookSpecificOutput"]["permissionDecisionReason"]
    ticket = reason.split("(ticket ")[1].split(")")[0]
    assert hook.approvals("grant", ticket, "--as", "alice", "--group", "finance").code == 0
    retry = hook.sample("claude-code", "pre_approval", "--server", server, policy=None)
    assert retry.code == 0 and retry.json == {}


@pytest.mark.parametrize("agent", ["claude-code", "cursor", "gemini", "codex", "copilot"])
def test_unreachable_server_blocks(hook: Hook, tmp_path: Path, agent: str) -> None:
    answer = hook.sample(agent, "pre_allow", "--server", f"unix:{tmp_path}/none.sock", policy=None)
    assert answer.code == 2
    assert "charter: policy server unreachable" in answer.stderr
    assert answer.json  # the host's deny form


def test_fail_open_is_explicit(hook: Hook, tmp_path: Path) -> None:
    answer = hook.sample(
        "claude-code", "pre_deny", "--server", "http://127.0.0.1:9", "--fail", "open", policy=None
    )
    assert (answer.code, answer.json) == (0, {})
    assert "--fail open: the call goes on" in answer.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--server"],
        ["--server", "ftp://x", "claude-code"],
        ["claude-code", "--server", "unix:/x", "--fail", "maybe"],
        ["claude-code", "--server", "unix:/x", "--policy", "p"],
    ],
)
def test_client_usage_errors_block(hook: Hook, argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "charter.cli", "hook", *argv],
        input=_sample("claude-code", "pre_allow"),
        capture_output=True,
        env=hook.env(),
        check=False,
    )
    assert proc.returncode == 2
    assert b"charter: " in proc.stderr


def test_thin_client_imports_no_runtime(hook: Hook, server: str) -> None:
    script = (
        "import json, sys\n"
        "from charter.cli.hook_client import run\n"
        f"out = run(['claude-code', '--server', {server!r}], "
        f"open({str(SAMPLES / 'claude-code' / 'pre_deny.json')!r}, 'rb').read())\n"
        "print(json.dumps([out[0], out[1], sorted(sys.modules)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=hook.env(),
        cwd=ROOT,
        check=True,
    )
    stdout, code, modules = json.loads(proc.stdout)
    assert code == 0 and "no rm in this project" in stdout
    charter_modules = {m for m in modules if m.startswith("charter.")}
    assert charter_modules == {"charter.cli", "charter.cli.hook_client"}, charter_modules
    assert not {"msgspec", "http.client", "ssl"} & set(modules)
