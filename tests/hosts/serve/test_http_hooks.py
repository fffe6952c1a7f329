"""`POST /v1/hooks/{agent}` as a Claude Code `type: "http"` hook reads it (specs/hosts.md
§2.1): the body is the hook's JSON answer, the same as a command hook's stdout, and the
status is always 200 — a non-2xx answer is a non-blocking error, after which Claude Code
runs the call, so every failure is a blocking answer in the body instead. Against the real
server (uvicorn on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servekit import serving

import charter
from charter.hosts.serve import Sidecar
from charter.runtime.guard import Guard

HOSTS = Path(__file__).resolve().parents[1]
SAMPLES = HOSTS / "samples" / "claude-code"
LIMITED = """\
policy "http-hooks" version "1"
default deny
allow tool "shell.run"
limit calls(tool "shell.run") <= 2 per session because "two calls per session"
on tool_result allow tool "shell.run"
"""


@pytest.fixture
def hooks() -> Iterator[httpx.Client]:
    guard = Guard(charter.load(HOSTS / "policy"))
    with serving(Sidecar(guard, max_body=4096).app()) as url, httpx.Client(base_url=url) as http:
        yield http


def _post(http: httpx.Client, body: bytes, path: str = "/v1/hooks/claude-code") -> Any:
    r = http.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def _denied(answer: Any, reason: str) -> None:
    hso = answer["hookSpecificOutput"]
    assert hso["hookEventName"] == "PreToolUse"
    assert hso["permissionDecision"] == "deny"
    assert reason in hso["permissionDecisionReason"], hso


def test_answers_are_the_hook_json_itself(hooks: httpx.Client) -> None:
    _denied(_post(hooks, (SAMPLES / "pre_deny.json").read_bytes()), "no rm in this project")
    assert _post(hooks, (SAMPLES / "pre_allow.json").read_bytes()) == {}  # own rules apply
    redacted = _post(hooks, (SAMPLES / "pre_redact.json").read_bytes())["hookSpecificOutput"]
    assert redacted["permissionDecision"] == "allow"
    assert redacted["updatedInput"]["command"] == "echo mail [EMAIL]"
    post = _post(hooks, (SAMPLES / "post_redact.json").read_bytes())["hookSpecificOutput"]
    assert "4111" not in json.dumps(post["updatedToolOutput"])
    blocked = _post(hooks, (SAMPLES / "prompt_deny.json").read_bytes())
    assert blocked["decision"] == "block" and "no credentials in prompts" in blocked["reason"]
    assert _post(hooks, (SAMPLES / "session_start.json").read_bytes()) == {}


def test_every_failure_is_a_blocking_200(hooks: httpx.Client) -> None:
    _denied(_post(hooks, b"{broken"), "not valid JSON")
    _denied(_post(hooks, b"[1, 2]"), "must be a JSON object")
    too_big = json.dumps({"hook_event_name": "PreToolUse", "pad": "x" * 8192}).encode()
    _denied(_post(hooks, too_big), "larger than 4096 bytes")
    r = hooks.post(
        "/v1/hooks/claude-code",
        content=(SAMPLES / "pre_allow.json").read_bytes(),
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 200
    _denied(r.json(), "content-type must be application/json")
    # A URL naming no agent Charter knows: Claude Code's deny, never an empty allow.
    _denied(
        _post(hooks, (SAMPLES / "pre_allow.json").read_bytes(), "/v1/hooks/claude"),
        "unknown agent 'claude'",
    )
    late = _post(hooks, (SAMPLES / "post_redact.json").read_bytes(), "/v1/hooks/nobody")
    assert late == {"decision": "block", "reason": late["reason"]}
    assert "unknown agent" in late["reason"]


def test_a_missing_tool_field_is_a_deny_naming_it(hooks: httpx.Client) -> None:
    event = json.loads((SAMPLES / "pre_allow.json").read_bytes())
    del event["tool_name"]
    _denied(_post(hooks, json.dumps(event).encode()), "tool_name missing")


def test_http_hooks_settle_budgets(tmp_path: Path) -> None:
    (tmp_path / "p.agentpolicy").write_text(LIMITED)
    guard = Guard(charter.load(tmp_path))
    pre = json.loads((SAMPLES / "pre_allow.json").read_bytes())
    with serving(Sidecar(guard).app()) as url, httpx.Client(base_url=url) as http:
        for n in range(4):  # 0 and 2 fail (given back), 1 and 3 run
            event = {**pre, "tool_use_id": f"toolu_{n}"}
            assert _post(http, json.dumps(event).encode()) == {}
            name = "PostToolUse" if n % 2 else "PostToolUseFailure"
            post = {**event, "hook_event_name": name, "tool_response": {"stdout": ""}}
            assert _post(http, json.dumps(post).encode()) == {}
        _denied(
            _post(http, json.dumps({**pre, "tool_use_id": "toolu_9"}).encode()),
            "two calls per session",
        )
