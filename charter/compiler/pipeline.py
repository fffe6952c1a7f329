"""The whole pipeline, Source → IR, with each stage timed and its output kept for dumps."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from charter.compiler import ir as ir_mod
from charter.compiler.lower import lower
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.checker import check
from charter.language.parser import parse
from charter.language.source import CompileError, Diagnostic, Source

SUFFIX = ".agentpolicy"
TEST_SUFFIX = "_test.agentpolicy"


@dataclass
class Compilation:
    """What every stage produced, and how long it took (seconds)."""

    sources: dict[str, Source]
    modules: list[ast.Module] = field(default_factory=list)
    checked: CheckedPolicy | None = None
    ir: ir_mod.Policy | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def raise_for_errors(self) -> ir_mod.Policy:
        if self.errors or self.ir is None:
            raise CompileError(self.errors, self.sources)
        return self.ir


def compile_sources(sources: Sequence[Source]) -> Compilation:
    """Parse, check and lower sources that together make one policy."""
    # Compiling allocates many long-lived objects and no garbage cycles; the cyclic
    # collector would otherwise rescan the growing AST again and again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _compile(sources)
    finally:
        if enabled:
            gc.enable()


def _compile(sources: Sequence[Source]) -> Compilation:
    comp = Compilation({s.name: s for s in sources})
    t0 = time.perf_counter()
    for src in sources:
        module, diags = parse(src)
        comp.modules.append(module)
        comp.diagnostics.extend(diags)
    t1 = time.perf_counter()
    checked, diags = check(comp.modules, comp.sources)
    comp.checked = checked
    comp.diagnostics.extend(diags)
    comp.diagnostics.sort(key=lambda d: (d.span.file, d.span.line, d.span.col))
    t2 = time.perf_counter()
    comp.timings.update(parse=t1 - t0, check=t2 - t1)
    if not comp.errors:
        comp.ir = lower(checked)
        comp.timings["lower"] = time.perf_counter() - t2
    return comp


def policy_files(path: str | Path, include_tests: bool = False) -> list[Path]:
    """The `.agentpolicy` files of a file or directory (tests only when asked)."""
    p = Path(path)
    if p.is_file():
        return [p]
    files = sorted(p.rglob(f"*{SUFFIX}"))
    return [f for f in files if include_tests or not f.name.endswith(TEST_SUFFIX)]


def read_sources(paths: Sequence[Path]) -> list[Source]:
    return [Source(str(p), p.read_text(encoding="utf-8")) for p in paths]
