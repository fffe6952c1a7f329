"""CEL adapter for common-expression-language (the Rust `cel` crate): compile once, execute."""

from __future__ import annotations

from typing import Any

import cel

from benchmarks.engines import cel_common
from benchmarks.engines.base import Request


def load(source: cel_common.CelPolicy) -> cel_common.CelPlan[Any]:
    return cel_common.plan(source, cel.compile)


def decide(loaded: cel_common.CelPlan[Any], request: Request) -> str:
    data = cel_common.variables(request, loaded.decimal_fields)
    if loaded.single is not None:
        try:
            return cel_common.effect_or_deny(loaded.single.execute(data))
        except (TypeError, ValueError, RuntimeError):
            return "deny"  # evaluation errors never open the gate
    # Several programs: convert the request once into a context they all share.
    context = cel.Context(variables=data)

    def evaluate(program: Any) -> Any:
        try:
            return program.execute(context)
        except (TypeError, ValueError, RuntimeError):
            return None

    return cel_common.decide_chunked(loaded, evaluate)
