"""Static analysis of policies (docs/analysis.md): findings and semantic diffs.

    from charter import analysis
    findings = analysis.analyze("policies/")        # list[analysis.Finding]
    diff = analysis.diff("old/", "new/")            # analysis.SemanticDiff

Every witness is decided again by `Policy.decide` (the generated code) and
`Policy.interpret` (the reference interpreter) before a finding is reported with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.compiler.analysis import (
    RISK_TAGS,
    CellDiff,
    Decider,
    Finding,
    Options,
    Related,
    SemanticDiff,
    Witness,
)

if TYPE_CHECKING:
    from charter.compiler.pipeline import Compilation
    from charter.engine.tree import CompiledPolicy
    from charter.language.source import Source

__all__ = [
    "RISK_TAGS", "Analyzed", "CellDiff", "Finding", "Options", "Related", "SemanticDiff",
    "Witness", "analyze", "analyze_sources", "deciders", "diff",
]


def deciders(compiled: CompiledPolicy) -> tuple[Decider, ...]:
    """The two evaluators a witness must convince: generated code and the interpreter."""
    from charter.runtime.policy import Policy

    policy = Policy(compiled)
    return (policy.decide, policy.interpret)


@dataclass
class Analyzed:
    """One policy's findings, with the compilation they came from (sources for spans)."""

    compilation: Compilation
    findings: list[Finding]

    @property
    def sources(self) -> dict[str, Source]:
        return self.compilation.sources


def analyze_sources(sources: Sequence[Source], options: Options | None = None,
                    style: bool = False) -> Analyzed:
    """Compile `sources` as one policy and analyze it; with `style`, the W06xx rules too.
    A policy with errors gets no findings (its diagnostics are in the compilation)."""
    from charter.compiler.analysis import lint
    from charter.compiler.pipeline import compile_sources

    comp = compile_sources(sources, analyze=options or Options(), deciders=deciders)
    found = list(comp.findings)
    opts = options or Options()
    if style and comp.checked is not None and not comp.errors:
        found.extend(f for f in lint.style(comp.checked) if opts.wants(f.code))
    found = lint.apply(found, lint.suppressions(comp.checked))
    found.sort(key=lambda f: (f.span.file, f.span.line, f.span.col, f.code))
    return Analyzed(comp, found)


def analyze(path: str | Path, options: Options | None = None, style: bool = False
            ) -> list[Finding]:
    """The findings of the policy at `path` (a file or a directory's policy files); raises
    `CompileError` when it does not compile."""
    result = analyze_sources(_sources(path), options, style)
    result.compilation.raise_for_errors()
    return result.findings


def diff(old: str | Path | Any, new: str | Path | Any, only: Sequence[str] = ()
         ) -> SemanticDiff:
    """The semantic diff of two policies (paths, or `charter.Policy` objects)."""
    from charter.compiler.analysis import semantic_diff

    a, b = _compiled(old), _compiled(new)
    return semantic_diff((a.ir, a.tree), (b.ir, b.tree), (deciders(a), deciders(b)), only)


def _compiled(policy: str | Path | Any) -> CompiledPolicy:
    from charter.compiler.pipeline import compile_sources

    if isinstance(policy, str | Path):
        return compile_sources(_sources(policy)).raise_for_errors()
    compiled: CompiledPolicy = policy.compiled
    return compiled


def _sources(path: str | Path) -> list[Source]:
    from charter.compiler.sources import discover, nothing_found, read_sources

    files = discover(path)
    if not files:
        raise FileNotFoundError(nothing_found(path))
    return read_sources(files)
