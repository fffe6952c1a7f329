"""Rego adapter (regopy / rego-cpp): the module is built into a bundle once and queried per call.

The policy exposes a ``decision`` document computed from ``deny``/``approval`` sets and an
``allowed`` rule (see benchmarks/reference/policy.rego).
"""

from __future__ import annotations

from dataclasses import dataclass

import regopy  # type: ignore[import-untyped]

from benchmarks.engines.base import EFFECTS, Request


@dataclass(frozen=True)
class RegoSource:
    module: str
    # The document holding the effect string, e.g. "data.charter.reference.decision".
    decision: str


@dataclass(frozen=True)
class LoadedRego:
    interpreter: regopy.Interpreter
    bundle: regopy.Bundle


def load(source: RegoSource) -> LoadedRego:
    interpreter = regopy.Interpreter()
    interpreter.add_module("policy.rego", source.module)
    bundle = interpreter.build(f"effect = {source.decision}")
    if not bundle.ok():
        raise RuntimeError(f"rego bundle failed to build: {bundle.node}")
    return LoadedRego(interpreter, bundle)


def decide(loaded: LoadedRego, request: Request) -> str:
    loaded.interpreter.set_input(regopy.Input(request))
    # Keep the Output alive while reading the binding: the Node points into its memory.
    output = loaded.interpreter.query_bundle(loaded.bundle)
    if not output.ok():
        return "deny"
    effect = output.binding("effect").value
    return effect if effect in EFFECTS else "deny"
