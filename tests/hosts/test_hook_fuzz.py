"""Whatever a host sends, the hook answers in the host's form and never fails open.

Hook events are generated from each host's real shape with any field replaced by any JSON
value (or dropped), and run through the whole hook flow in process (`run_hook`, a Guard
over the test policy). Every answer is JSON with exit code 0 or 2; a tool call whose
command the policy denies is never answered with an allow; an event that cannot be read
is exit 2. CI runs a fixed set; `CHARTER_FUZZ_EXAMPLES=N` runs N random ones.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hookrun import POLICY, SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter.hosts.approvals import PendingApprovals
from charter.hosts.held import MemoryHeld
from charter.hosts.hook import HookOptions, run_hook
from charter.runtime.guard import Guard

EXAMPLES = int(os.environ.get("CHARTER_FUZZ_EXAMPLES", "60"))
DERANDOMIZE = "CHARTER_FUZZ_EXAMPLES" not in os.environ
AGENTS = ["claude-code", "cursor", "gemini", "codex", "copilot"]
_POLICY = charter.load(POLICY)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _base(agent: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / agent / "pre_deny.json").read_text())
    return loaded


@st.composite
def events(draw: st.DrawFn) -> tuple[str, dict[str, Any], bool]:
    """(agent, event, still the denied call): a recorded `rm` call with fields changed."""
    agent = draw(st.sampled_from(AGENTS))
    event = _base(agent)
    intact = True
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del event[key]
        else:
            event[key] = draw(json_values)
        intact = False
    return agent, event, intact


def _allowed(agent: str, out: dict[str, Any]) -> bool:
    """Whether the answer lets a pre-tool call run (beyond "no opinion")."""
    hso = out.get("hookSpecificOutput") or {}
    return (
        hso.get("permissionDecision") == "allow"
        or out.get("permission") == "allow"
        or out.get("decision") == "allow"
        or out.get("permissionDecision") == "allow"
    )


def _denied(agent: str, out: dict[str, Any]) -> bool:
    hso = out.get("hookSpecificOutput") or {}
    return "deny" in (
        hso.get("permissionDecision"),
        out.get("permission"),
        out.get("decision"),
        out.get("permissionDecision"),
    )


@pytest.mark.parametrize("authoritative", [False, True])
@settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=events(), raw_bytes=st.none() | st.binary(max_size=40))
def test_any_event_is_answered_and_never_fails_open(
    authoritative: bool, case: tuple[str, dict[str, Any], bool], raw_bytes: bytes | None
) -> None:
    agent, event, intact = case
    guard = Guard(_POLICY, secret=b"k" * 32)
    opts = HookOptions(agent, authoritative=authoritative, env={"CHARTER_SESSION": "fuzz"})
    raw = raw_bytes if raw_bytes is not None else json.dumps(event).encode()
    answer = run_hook(opts, raw, lambda: (guard, PendingApprovals(guard), MemoryHeld()))
    assert answer.code in (0, 2)
    out = json.loads(answer.stdout)
    assert isinstance(out, dict)
    if answer.code == 2:
        assert answer.stderr.startswith("charter: ")
    if raw_bytes is None and intact:
        assert answer.code == 0 and _denied(agent, out), out
    assert not _allowed(agent, out) or answer.code == 0
    if raw_bytes is None:
        command = event.get("tool_input", {}) if isinstance(event.get("tool_input"), dict) else {}
        if str(command.get("command", "")).startswith("rm "):
            assert not _allowed(agent, out), out
