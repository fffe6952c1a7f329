"""Charter: a declarative policy language for AI agents.

    import charter
    policy = charter.load("policies/")
    decision = policy.decide({"tool": "refund.create", "args": {"amount": 250}})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from charter.engine.decision import Decision as Decision
    from charter.engine.decision import PolicyInfo as PolicyInfo
    from charter.engine.decision import Redaction as Redaction
    from charter.engine.decision import RuleError as RuleError
    from charter.engine.decision import ShadowHit as ShadowHit
    from charter.engine.snapshot import Snapshot as Snapshot
    from charter.language.source import CompileError as CompileError
    from charter.runtime.errors import ApprovalRequired as ApprovalRequired
    from charter.runtime.errors import Denied as Denied
    from charter.runtime.guard import Guard as Guard
    from charter.runtime.live import Live as Live
    from charter.runtime.live_status import LiveEvent as LiveEvent
    from charter.runtime.live_status import LiveStatus as LiveStatus
    from charter.runtime.policy import Policy as Policy
    from charter.runtime.state import MemoryStore as MemoryStore
    from charter.runtime.state import RedisStore as RedisStore
    from charter.runtime.state import SQLiteStore as SQLiteStore

__all__ = [
    "ApprovalRequired", "CompileError", "Decision", "Denied", "Guard", "Live", "LiveEvent",
    "LiveStatus", "MemoryStore",
    "Policy",
    "PolicyInfo", "RedisStore", "Redaction", "RuleError", "SQLiteStore", "ShadowHit", "Snapshot",
    "compile", "load", "load_compiled",
]

# Imported on first use, so that `import charter` stays cheap (no Lark, no redis client).
_LAZY = {
    "Decision": "charter.engine.decision",
    "PolicyInfo": "charter.engine.decision",
    "Redaction": "charter.engine.decision",
    "RuleError": "charter.engine.decision",
    "ShadowHit": "charter.engine.decision",
    "Snapshot": "charter.engine.snapshot",
    "Policy": "charter.runtime.policy",
    "CompileError": "charter.language.source",
    "Guard": "charter.runtime.guard",
    "Live": "charter.runtime.live",
    "LiveEvent": "charter.runtime.live_status",
    "LiveStatus": "charter.runtime.live_status",
    "Denied": "charter.runtime.errors",
    "ApprovalRequired": "charter.runtime.errors",
    "MemoryStore": "charter.runtime.state",
    "SQLiteStore": "charter.runtime.state",
    "RedisStore": "charter.runtime.state",
}
__version__ = "0.1.0"


def compile(text: str, name: str = "policy.agentpolicy") -> Policy:  # noqa: A001
    """Compile policy text; raises `CompileError` listing every diagnostic."""
    from charter.compiler.pipeline import compile_sources
    from charter.language.source import Source
    from charter.runtime.policy import Policy

    return Policy(compile_sources([Source(name, text)]).raise_for_errors())


def load(path: str | Path) -> Policy:
    """Compile a `.agentpolicy` file, or the policy files directly in a directory (tests,
    hidden files and subdirectories left out: a subdirectory is a policy of its own); the
    same files `charter eval` and `charter check` read (docs/language.md)."""
    from charter.compiler.pipeline import compile_sources
    from charter.compiler.sources import discover, nothing_found, read_sources
    from charter.runtime.policy import Policy

    files = discover(path)
    if not files:
        raise FileNotFoundError(nothing_found(path))
    return Policy(compile_sources(read_sources(files)).raise_for_errors())


def load_compiled(path: str | Path) -> Policy:
    """Load a policy saved with `Policy.save`; this does not import the parser or Lark."""
    from charter.runtime.policy import Policy

    return Policy.load_compiled(path)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module), name)
    raise AttributeError(name)
