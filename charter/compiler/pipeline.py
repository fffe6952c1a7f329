"""The whole pipeline, Source → IR, with each stage timed and its output kept for dumps."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from charter.compiler.lower import lower
from charter.compiler.sources import SUFFIX, TEST_SUFFIX, discover, unit_dirs
from charter.engine import ir as ir_mod
from charter.engine.emit import check_rules
from charter.engine.emitcheck import EmitError
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.checker import check
from charter.language.parser import parse
from charter.language.source import CompileError, Diagnostic, Source, Span

__all__ = ["SUFFIX", "TEST_SUFFIX", "Compilation", "compile_sources", "policy_files",
           "read_sources"]


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
        try:
            policy = lower(checked)
            generated = codegen_diagnostics(policy.rules)
        except Exception as exc:  # noqa: BLE001 - a compiler bug is a diagnostic, not a crash
            first = sources[0].name if sources else "<policy>"
            comp.diagnostics.append(_internal(Span(first, 1, 1, 1, 1), exc))
            return comp
        comp.diagnostics.extend(generated)
        comp.ir = None if generated else policy
        comp.timings["lower"] = time.perf_counter() - t2
    return comp


def codegen_diagnostics(rules: Sequence[ir_mod.Rule]) -> list[Diagnostic]:
    """A CH0500 for each rule whose generated code fails its check or does not compile.

    The runtime generates code lazily, per tool; doing it here for every rule means a policy
    that checks clean never turns into "internal error" denials at run time. Rules are
    emitted in small groups (buckets are small too: the emitter is not built for thousands
    of rules in one function), one by one when a group fails, to name the rule."""
    out: list[Diagnostic] = []
    for i in range(0, len(rules), _CHECK_GROUP):
        group = rules[i : i + _CHECK_GROUP]
        whole = _codegen_error(group)
        if whole is None:
            continue
        found = [(rule, _codegen_error([rule])) for rule in group]
        failed = [(rule, exc) for rule, exc in found if exc is not None]
        # Only the rules together fail: name the first one.
        for rule, exc in failed or [(group[0], whole)]:
            out.append(_internal(_rule_span(rule), exc))
    return out


_CHECK_GROUP = 32


def _codegen_error(rules: Sequence[ir_mod.Rule]) -> Exception | None:
    try:
        check_rules(rules)
    except (EmitError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return exc
    return None


def _rule_span(rule: ir_mod.Rule) -> Span:
    return Span(rule.file, rule.line, rule.col, rule.line, rule.col + 1)


def _internal(span: Span, exc: Exception) -> Diagnostic:
    return Diagnostic("CH0500", "error", span, f"internal compiler error: {exc!r}",
                      "please report this with the policy that caused it")


def policy_files(path: str | Path, include_tests: bool = False) -> list[Path]:
    """Every `.agentpolicy` file at or under `path`, directory by directory (tests only when
    asked); a policy is one directory's files, see `charter.compiler.sources.discover`."""
    if Path(path).is_file():
        return [Path(path)]
    return [f for d in unit_dirs(path) for f in discover(d, include_tests)]


def read_sources(paths: Sequence[Path]) -> list[Source]:
    return [Source(str(p), p.read_text(encoding="utf-8")) for p in paths]
