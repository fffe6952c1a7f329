"""Static analysis over the IR and the decision tree (docs/analysis.md, spec B).

    findings = analyze(ir_policy, tree)            # list[Finding]
    result = semantic_diff(old, new)               # per (stage, tool): equivalent ...

Findings are proved on the exact fragment or shown by a witness request that the given
evaluators decide as the finding says (`charter.analysis` passes `Policy.decide` and
`Policy.interpret`; here the reference interpreter always checks it). The package imports
the engine only, and the language for spans.
"""

from __future__ import annotations

from collections.abc import Sequence

from charter.compiler.analysis.diff import CellDiff, SemanticDiff, semantic_diff
from charter.compiler.analysis.findings import RISK_TAGS, Decider, Locator, Options
from charter.compiler.analysis.model import Finding, Related, Witness
from charter.engine import ir
from charter.engine.tree import DecisionTree

__all__ = [
    "RISK_TAGS", "CellDiff", "Decider", "Finding", "Locator", "Options", "Related",
    "SemanticDiff", "Witness", "analyze", "semantic_diff",
]


def analyze(policy: ir.Policy, tree: DecisionTree, *, options: Options | None = None,
            locator: Locator | None = None, deciders: Sequence[Decider] = ()) -> list[Finding]:
    """The findings of one compiled policy (see `Options` for what is looked for)."""
    from charter.compiler.analysis.findings import Analysis
    from charter.compiler.analysis.regions import Regions

    analysis = Analysis(Regions(policy, tree), locator or Locator(), options or Options(),
                        deciders)
    return analysis.findings()
