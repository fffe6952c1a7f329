"""Emit: IR + DecisionTree → CompiledPolicy, with the generated code of every bucket a call
naming a known tool (or none) reaches.

The code is text, checked and compiled when a call first needs it (`charter.engine.emit.load`),
whether it was emitted in this process or read from a saved file. Buckets beyond
`MAX_BUCKETS` (a policy over thousands of tools), and those of tool names or tags seen only
at run time, are generated when first needed, as the engine always can.
"""

from __future__ import annotations

from collections.abc import Iterator

from charter.engine import ir
from charter.engine.emit import emit_code, emitter_id
from charter.engine.tree import BucketCode, CompiledPolicy, DecisionTree

#: The most buckets emitted ahead of time: about 0.1-0.3 ms each, so a policy over 10,000
#: tools does not pay seconds of compile time for code most calls never reach.
MAX_BUCKETS = 512


def emit(policy: ir.Policy, tree: DecisionTree, limit: int = MAX_BUCKETS) -> CompiledPolicy:
    """The compiled policy: IR, tree, and the code of the first `limit` reachable buckets."""
    code: list[BucketCode] = []
    for indices in reachable(tree):
        if len(code) >= limit:
            break
        code.append(emit_code([policy.rules[i] for i in indices]))
    return CompiledPolicy(policy, tree, tuple(code), emitter_id() if code else "")


def reachable(tree: DecisionTree) -> Iterator[tuple[int, ...]]:
    """Each distinct non-empty bucket of a named tool, then of a call that names no tool (or
    an unknown one matching no glob), stage by stage."""
    seen: set[tuple[int, ...]] = {()}
    for stage in tree.stages.values():
        for indices in (*stage.tools.values(), stage.untargeted):
            if indices not in seen:
                seen.add(indices)
                yield indices
