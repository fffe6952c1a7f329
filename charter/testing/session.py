"""A whole `charter test` run: every unit, every block, coverage, and the exit code."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from charter.compiler.sources import units
from charter.language.source import Diagnostic, Source
from charter.testing import coverage as cov
from charter.testing.runner import DEFAULT_EXAMPLES, CaseResult, run_property, run_test
from charter.testing.suite import load

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass
class UnitReport:
    """The results for one policy; `errors` are compile errors (then nothing ran)."""

    files: list[str]
    errors: list[tuple[Diagnostic, Source | None]] = field(default_factory=list)
    results: list[CaseResult] = field(default_factory=list)
    coverage: cov.Coverage | None = None


@dataclass
class SessionReport:
    seed: int
    examples: int
    units: list[UnitReport] = field(default_factory=list)

    @property
    def results(self) -> list[CaseResult]:
        return [r for u in self.units for r in u.results]

    @property
    def failed(self) -> bool:
        return any(u.errors for u in self.units) or any(
            r.status != "pass" for r in self.results)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed else EXIT_OK


def new_seed() -> int:
    return random.SystemRandom().randrange(2**32)


def run(paths: Iterable[Path], seed: int | None = None, examples: int = DEFAULT_EXAMPLES,
        min_examples: int | None = None) -> SessionReport:
    """Run every test and property under `paths`. Raises FileNotFoundError for a bad path.

    `min_examples`: meaningful examples each property needs (default a tenth of `examples`).
    """
    from charter.testing.cache import hypothesis_in_cache

    report = SessionReport(seed if seed is not None else new_seed(), examples)
    with hypothesis_in_cache():
        for found in units(paths):
            selected = None if found.selected is None else frozenset(map(str, found.selected))
            report.units.append(_run_unit(list(found.files), selected, report, min_examples))
    return report


def _run_unit(files: list[Path], selected: frozenset[str] | None, report: SessionReport,
              min_examples: int | None) -> UnitReport:
    unit = load(files, selected)
    ur = UnitReport([str(f) for f in files])
    if unit.errors or unit.policy is None:
        ur.errors = [(d, unit.comp.sources.get(d.span.file)) for d in unit.errors]
        return ur
    for test in unit.tests():
        ur.results.append(run_test(unit, test))
    for prop in unit.properties():
        ur.results.append(run_property(unit, prop, report.seed, report.examples,
                                       unit.biases(), min_examples))
    matched = {i for r in ur.results for i in r.matched}
    reached = {i for r in ur.results for i in r.reached}
    checked = unit.comp.checked
    modules = checked.modules if checked else []
    ur.coverage = cov.compute(unit.policy.ir, modules, matched, reached)
    return ur
