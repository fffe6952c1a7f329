"""Charter: a declarative policy language for AI agents.

    import charter
    policy = charter.load("policies/")
    decision = policy.decide({"tool": "refund.create", "args": {"amount": 250}})
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.runtime.decision import Decision, PolicyInfo, Redaction, ShadowHit
from charter.runtime.policy import Policy
from charter.runtime.snapshot import Snapshot

if TYPE_CHECKING:
    from charter.language.source import CompileError as CompileError

__all__ = [
    "CompileError", "Decision", "Policy", "PolicyInfo", "Redaction", "ShadowHit", "Snapshot",
    "compile", "load", "load_compiled",
]
__version__ = "0.1.0"


def compile(text: str, name: str = "policy.agentpolicy") -> Policy:  # noqa: A001
    """Compile policy text; raises `CompileError` listing every diagnostic."""
    from charter.compiler.pipeline import compile_sources
    from charter.language.source import Source

    return Policy(compile_sources([Source(name, text)]).raise_for_errors())


def load(path: str | Path) -> Policy:
    """Compile a `.agentpolicy` file, or every such file of a directory (tests excluded)."""
    from charter.compiler.pipeline import compile_sources, policy_files, read_sources

    files = policy_files(path)
    if not files:
        raise FileNotFoundError(f"no .agentpolicy files in {path}")
    return Policy(compile_sources(read_sources(files)).raise_for_errors())


def load_compiled(path: str | Path) -> Policy:
    """Load a policy saved with `Policy.save`; this does not import the parser or Lark."""
    return Policy.load_compiled(path)


def __getattr__(name: str) -> Any:
    if name == "CompileError":
        from charter.language.source import CompileError

        return CompileError
    raise AttributeError(name)
