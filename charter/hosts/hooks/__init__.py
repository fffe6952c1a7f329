"""Per-host hook formats (spec hosts.md §2): each module reads its host's event JSON into a
`HookEvent` and writes a `Verdict` in the host's answer format. `charter.hosts.wire` is the
only caller; hosts are looked up here by the name `charter hook` takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from charter.hosts.hooks import claude, copilot, cursor, gemini
from charter.hosts.wire import HookEvent, Verdict

Reader = Callable[[dict[str, Any], str, Mapping[str, str]], HookEvent | str]
Writer = Callable[[HookEvent, Verdict, bool], dict[str, Any]]
Blocker = Callable[[str, str | None, str], dict[str, Any]]

_HOSTS: dict[str, tuple[Reader, Writer, Blocker]] = {
    "claude-code": (claude.read_claude, claude.write, claude.block),
    "codex": (claude.read_codex, claude.write, claude.block),
    "cursor": (cursor.read, cursor.write, cursor.block),
    "gemini": (gemini.read, gemini.write, gemini.block),
    "copilot": (copilot.read, copilot.write, copilot.block),
}


def reader(agent: str) -> Reader | None:
    host = _HOSTS.get(agent)
    return host[0] if host else None


def writer(agent: str) -> Writer | None:
    host = _HOSTS.get(agent)
    return host[1] if host else None


def block_json(agent: str, event_name: str | None, reason: str) -> dict[str, Any]:
    host = _HOSTS.get(agent)
    return host[2](agent, event_name, reason) if host else {}
