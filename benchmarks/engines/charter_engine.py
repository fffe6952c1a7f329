"""Charter adapter: ``charter.compile(text)`` once, ``Policy.decide(request)`` per call."""

from __future__ import annotations

from typing import Any

from benchmarks.engines.base import Request


def load(source: str) -> Any:
    import charter

    return charter.compile(source)


def decide(loaded: Any, request: Request) -> str:
    effect = loaded.decide(request).effect
    # DESIGN §3 says effect is a str; tolerate an Enum so a core change does not break us.
    return effect if isinstance(effect, str) else str(effect.value)
