"""The pipeline as a list of named stages (OPA's compiler stages), each timed, each with a
dump of its value:

    Source ─parse─▶ AST ─check─▶ CheckedPolicy ─lower─▶ IR ─passes─▶ IR ─plan─▶ DecisionTree
           ─emit─▶ CompiledPolicy  [─analyze─▶ findings]

`analyze` (static analysis over the IR and the tree, `charter.compiler.analysis`) runs only
when asked for (`compile_sources(..., analyze=Options())`): it is not needed to run a policy.

A stage reads what the stages before it left in the `Compilation` and stores its own value
there; the pipeline stops after the first stage that reports an error (but the parser
recovers, and its AST is still checked). `charter compile
--timings` prints `Compilation.timings`, `--dump STAGE` the stage's `dump`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from charter.compiler import dumps
from charter.compiler.emit import emit
from charter.compiler.lower import lower
from charter.compiler.passes import PASSES
from charter.engine import ir as ir_mod
from charter.engine.emit import check_rules
from charter.engine.emitcheck import EmitError
from charter.engine.plan import plan
from charter.engine.tree import CompiledPolicy, DecisionTree
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.checker import check
from charter.language.diagnostics import INTERNAL_COMPILER_ERROR
from charter.language.parser import parse
from charter.language.source import CompileError, Diagnostic, Source, Span

__all__ = ["STAGES", "Compilation", "Stage", "compile_sources"]


class Compilation(msgspec.Struct):
    """What every stage produced, and how long it took (seconds, by stage name)."""

    sources: dict[str, Source]
    modules: list[ast.Module] = msgspec.field(default_factory=list)
    checked: CheckedPolicy | None = None
    lowered: ir_mod.Policy | None = None  # the IR as lowering made it
    ir: ir_mod.Policy | None = None  # the IR after the passes: what runs
    #: (pass, changed the IR)
    passes: list[tuple[str, bool]] = msgspec.field(default_factory=list)
    tree: DecisionTree | None = None
    compiled: CompiledPolicy | None = None
    diagnostics: list[Diagnostic] = msgspec.field(default_factory=list)
    timings: dict[str, float] = msgspec.field(default_factory=dict)
    analysis: Any = None  # analysis.Options when the analyze stage is to run
    deciders: Any = None  # CompiledPolicy -> the evaluators a witness must convince
    findings: list[Any] = msgspec.field(default_factory=list)  # analysis.Finding

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def raise_for_errors(self) -> CompiledPolicy:
        if self.errors or self.compiled is None:
            raise CompileError(self.errors, self.sources)
        return self.compiled


class Stage(msgspec.Struct, frozen=True):
    """One step of the pipeline: `run` stores its value in the compilation, `dump` shows it."""

    name: str
    run: Callable[[Compilation], None]
    dump: Callable[[Compilation], str]
    internal_errors: bool = True  # an exception is a CH0500 diagnostic (parse and check
    #                               never raise; an exception there is a crash to report)
    recovers: bool = False  # its errors leave a value the next stage can still use


def _parse(comp: Compilation) -> None:
    for src in comp.sources.values():
        module, diags = parse(src)
        comp.modules.append(module)
        comp.diagnostics.extend(diags)


def _check(comp: Compilation) -> None:
    comp.checked, diags = check(comp.modules, comp.sources)
    comp.diagnostics.extend(diags)


def _lower(comp: Compilation) -> None:
    assert comp.checked is not None
    comp.lowered = comp.ir = lower(comp.checked)


def _passes(comp: Compilation) -> None:
    assert comp.ir is not None
    for p in PASSES:
        before = comp.ir
        comp.ir = p.run(before)
        comp.passes.append((p.name, comp.ir is not before))


def _plan(comp: Compilation) -> None:
    assert comp.ir is not None
    comp.tree = plan(comp.ir)


def _emit(comp: Compilation) -> None:
    assert comp.ir is not None and comp.tree is not None
    comp.diagnostics.extend(codegen_diagnostics(comp.ir.rules))
    if not comp.errors:
        comp.compiled = emit(comp.ir, comp.tree)


def _analyze(comp: Compilation) -> None:
    from charter.compiler.analysis import analyze
    from charter.compiler.analysis.locate import locator

    assert comp.ir is not None and comp.tree is not None
    deciders = comp.deciders(comp.compiled) if comp.deciders and comp.compiled else ()
    comp.findings = analyze(comp.ir, comp.tree, options=comp.analysis,
                            locator=locator(comp.checked), deciders=deciders)


def _dump_findings(comp: Compilation) -> str:
    return "\n".join(f"{f.span}: {f.severity}[{f.code}] ({f.status}): {f.message}"
                     for f in comp.findings) or "(no findings)"


#: Static analysis: after the tree is planned (and the code emitted, so that witnesses are
#: decided by the generated code too); run only when `compile_sources` is asked to.
ANALYZE = Stage("analyze", _analyze, _dump_findings)

#: The stages in order; each needs the values of those before it.
STAGES: tuple[Stage, ...] = (
    # The parser recovers: the checker still runs on what it kept, so that one compile
    # reports syntax and type errors together (DESIGN §2: all errors, not only the first).
    Stage("parse", _parse, dumps.dump_ast, internal_errors=False, recovers=True),
    Stage("check", _check, dumps.dump_checked, internal_errors=False),
    Stage("lower", _lower, dumps.dump_ir),
    Stage("passes", _passes, dumps.dump_passes),
    Stage("plan", _plan, dumps.dump_tree),
    Stage("emit", _emit, dumps.dump_code),  # also: CH0500 for code that fails its check
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def compile_sources(sources: Sequence[Source], until: str = "emit", analyze: Any = None,
                    deciders: Callable[[CompiledPolicy], Sequence[Any]] | None = None
                    ) -> Compilation:
    """Run the stages (up to and including `until`) over sources that together make one
    policy; with `analyze` (an `analysis.Options`), then the analyze stage, whose witnesses
    `deciders(compiled)` (e.g. `Policy.decide` and `Policy.interpret`) decide as well."""
    # Compiling allocates many long-lived objects and no garbage cycles; the cyclic
    # collector would otherwise rescan the growing AST again and again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        comp = _compile(sources, until)
        if analyze is not None and not comp.errors and comp.ir is not None and comp.tree:
            comp.analysis, comp.deciders = analyze, deciders
            _run(comp, ANALYZE, sources)
        return comp
    finally:
        if enabled:
            gc.enable()


def _compile(sources: Sequence[Source], until: str) -> Compilation:
    if until not in STAGE_NAMES:
        raise ValueError(f"no stage {until!r}; the stages are {', '.join(STAGE_NAMES)}")
    comp = Compilation({s.name: s for s in sources})
    for stage in STAGES:
        _run(comp, stage, sources)
        if (comp.errors and not stage.recovers) or stage.name == until:
            break
    return comp


def _run(comp: Compilation, stage: Stage, sources: Sequence[Source]) -> None:
    t0 = time.perf_counter()
    if stage.internal_errors:
        try:
            stage.run(comp)
        except Exception as exc:  # noqa: BLE001 - a compiler bug is a diagnostic, not a crash
            first = sources[0].name if sources else "<policy>"
            comp.diagnostics.append(_internal(Span(first, 1, 1, 1, 1), exc))
    else:
        stage.run(comp)
    comp.timings[stage.name] = time.perf_counter() - t0
    comp.diagnostics.sort(key=lambda d: (d.span.file, d.span.line, d.span.col))


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
    return INTERNAL_COMPILER_ERROR.at(span, f"internal compiler error: {exc!r}",
                                      "please report this with the policy that caused it")

