"""Charter adapter: ``charter.compile(text)`` once, ``Policy.decide(request)`` per call."""

from __future__ import annotations

from typing import Any

from benchmarks.engines.base import Request


def load(source: str) -> Any:
    import charter

    return charter.compile(source)


def decide(loaded: Any, request: Request) -> str:
    # DESIGN §3: `effect` is already "allow" | "deny" | "require_approval".
    effect: str = loaded.decide(request).effect
    return effect
