"""Hand-written Python adapter: the source is already a ``decide(request) -> str`` function."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.engines.base import Request

Decider = Callable[[Request], str]


def load(source: Decider) -> Decider:
    return source


def decide(loaded: Decider, request: Request) -> str:
    return loaded(request)
