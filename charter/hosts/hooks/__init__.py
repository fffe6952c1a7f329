"""Per-host hook formats (spec hosts.md §2): each module reads its host's event JSON into a
`HookEvent` and writes a `Verdict` in the host's answer format. `charter.hosts.wire` is the
only caller; hosts are looked up here by the name `charter hook` takes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from charter.hosts.wire import HookEvent, Verdict

Reader = Callable[[dict[str, Any], str, Mapping[str, str]], HookEvent | str]
Writer = Callable[[HookEvent, Verdict, bool], dict[str, Any]]
Blocker = Callable[[str, str | None, str], dict[str, Any]]

#: agent -> (module, reader, writer, blocker). A hook process answers one host: only that
#: host's module is imported (a fresh process per tool call pays for every import).
_HOSTS: dict[str, tuple[str, str, str, str]] = {
    "claude-code": ("claude", "read_claude", "write", "block"),
    "codex": ("claude", "read_codex", "write", "block"),
    "cursor": ("cursor", "read", "write", "block"),
    "gemini": ("gemini", "read", "write", "block"),
    "copilot": ("copilot", "read", "write", "block"),
}


def _host(agent: str) -> tuple[Reader, Writer, Blocker] | None:
    names = _HOSTS.get(agent)
    if names is None:
        return None
    name = f"charter.hosts.hooks.{names[0]}"
    __import__(name)  # importlib.import_module, without importing importlib (~0.2 ms a call)
    module = sys.modules[name]
    read: Reader = getattr(module, names[1])
    write: Writer = getattr(module, names[2])
    block: Blocker = getattr(module, names[3])
    return read, write, block


def reader(agent: str) -> Reader | None:
    """The event reader of `agent` (None for an unknown host)."""
    host = _host(agent)
    return host[0] if host else None


def writer(agent: str) -> Writer | None:
    """The answer writer of `agent` (None for an unknown host)."""
    host = _host(agent)
    return host[1] if host else None


def block_json(agent: str, event_name: str | None, reason: str) -> dict[str, Any]:
    """The blocking answer of `agent` (`{}` for an unknown host: exit 2 blocks anyway)."""
    host = _host(agent)
    return host[2](agent, event_name, reason) if host else {}
