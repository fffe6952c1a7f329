"""Compiling what `charter test` runs.

A *unit* is one policy with its tests: the non-test `.agentpolicy` files of a directory plus
its test files (by convention `*_test.agentpolicy`; any file may hold `test` and `property`
blocks). A test file sees its directory's policy without an import because they are compiled
together. Which units a path holds is `charter.compiler.sources.units`, shared with
`charter check`, the pytest plugin and the language server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from charter.compiler.pipeline import Compilation, compile_sources
from charter.compiler.sources import read_sources
from charter.language import ast
from charter.language.source import Diagnostic, Source, Span
from charter.runtime.policy import Policy
from charter.testing.biases import Biases, collect
from charter.testing.properties import Where

WHERE_ID = "__charter_where_{}"


@dataclass
class Unit:
    """One compiled policy and the tests selected to run against it."""

    files: list[Path]
    selected: frozenset[str] | None  # run only tests from these files (None: all)
    comp: Compilation
    policy: Policy | None = None
    where: dict[int, Where] = field(default_factory=dict)  # id(property) -> its where clause
    where_diagnostics: list[Diagnostic] = field(default_factory=list)
    _biases: Biases | None = None

    def biases(self) -> Biases:
        """The policy's constants for generating requests, computed once per unit."""
        if self._biases is None:
            assert self.policy is not None
            self._biases = collect(self.policy.ir)
        return self._biases

    @property
    def errors(self) -> list[Diagnostic]:
        return self.comp.errors

    def tests(self) -> list[ast.Test]:
        checked = self.comp.checked
        return [t for t in (checked.tests if checked else []) if self._wanted(t.span)]

    def properties(self) -> list[ast.Property]:
        checked = self.comp.checked
        return [p for p in (checked.properties if checked else []) if self._wanted(p.span)]

    def _wanted(self, span: Span) -> bool:
        return self.selected is None or span.file in self.selected


def load(files: Sequence[Path], selected: frozenset[str] | None = None) -> Unit:
    """Compile one unit, and the `where` clauses of its properties."""
    return load_sources(list(files), read_sources(files), selected)


def load_sources(files: Sequence[Path], sources: Sequence[Source],
                 selected: frozenset[str] | None = None) -> Unit:
    """`load` from texts already read (a live reload's snapshot: bytes first, then
    compile, so a file changing meanwhile is never mixed in)."""
    unit = Unit(list(files), selected, compile_sources(sources))
    if unit.comp.ir is None or unit.errors:
        return unit
    unit.policy = Policy(unit.comp.ir)
    _compile_where(unit)
    return unit


def _compile_where(unit: Unit) -> None:
    """Lower each `where` as the condition of a `warn` rule compiled beside the policy.

    The checker does not look inside properties, so checking the clause as a rule condition
    is what gives it names, types and diagnostics with the clause's own positions.
    """
    from charter.compiler.lower import lower
    from charter.language.checker import check

    props = [p for p in unit.properties() if p.where is not None]
    if not props:
        return
    checked = unit.comp.checked
    assert checked is not None
    rules: list[ast.Item] = []
    for i, prop in enumerate(props):
        where = prop.where
        assert where is not None
        rules.append(ast.Rule(
            annotations=(ast.Annotation("id", WHERE_ID.format(i), prop.span),), stage=None,
            effect=ast.Effect("warn", prop.span), target=prop.target,
            conditions=(ast.Condition(False, where, where.span),), because=None,
            span=where.span))
    synthetic = ast.Module("<where>", tuple(rules), props[0].span)
    extended, diags = check([*checked.modules, synthetic], checked.sources)
    spans = [p.where.span for p in props if p.where is not None]
    unit.where_diagnostics = [d for d in diags if any(_inside(d.span, s) for s in spans)]
    if any(d.severity == "error" for d in diags):
        return
    policy = Policy(lower(extended))
    by_id = {r.id: r for r in policy.rules}
    for i, prop in enumerate(props):
        unit.where[id(prop)] = Where(by_id[WHERE_ID.format(i)], policy)


def _inside(inner: Span, outer: Span) -> bool:
    return inner.file == outer.file and outer.start <= inner.start and inner.end <= outer.end
