"""CEL adapter for cel-expr-python (Google's C++ CEL runtime): compile once, eval per call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]

from benchmarks.engines import cel_common
from benchmarks.engines.base import Request


@dataclass(frozen=True)
class LoadedCelCpp:
    env: Any
    plan: cel_common.CelPlan[Any]


def load(source: cel_common.CelPolicy) -> LoadedCelCpp:
    declared = {name: cel.Type.DYN for name in cel_common.SECTIONS}
    declared["tool"] = cel.Type.STRING
    env = cel.NewEnv(variables=declared)
    return LoadedCelCpp(env, cel_common.plan(source, env.compile))


def decide(loaded: LoadedCelCpp, request: Request) -> str:
    plan = loaded.plan
    data = cel_common.variables(request, plan.decimal_fields)
    # cel-cpp returns evaluation errors as values; effect_or_deny / `is True` treat them as deny.
    if plan.single is not None:
        return cel_common.effect_or_deny(plan.single.eval(data=data).value())
    # Several programs: convert the request once into an activation they all share.
    activation = loaded.env.Activation(data)
    return cel_common.decide_chunked(plan, lambda p: p.eval(activation).value())
