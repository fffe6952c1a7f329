"""`charter analyze`, `charter lint` and `charter diff --semantic` (docs/analysis.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from charter.cli.common import EXIT_FAILED, EXIT_OK, fail, policy_units, read_text

if TYPE_CHECKING:
    from charter.compiler.analysis import Finding
    from charter.language.source import Source


def _codes(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _run(paths: tuple[Path, ...], fmt: str, strict: bool, conflicts: bool, risk_tags: str,
         select: str, ignore: str, style: bool, solver: str, timeout_ms: int) -> None:
    from charter.analysis import Options, analyze_sources
    from charter.language.source import Source

    if solver == "z3":
        from charter.compiler.analysis import smt

        if not smt.available():
            fail("--solver z3 needs the z3 solver: pip install z3-solver (or charter[smt])")
    options = Options(risk_tags=_codes(risk_tags), conflicts=conflicts, select=_codes(select),
                      ignore=_codes(ignore), solver=solver, timeout_ms=timeout_ms)
    found: list[tuple[Finding, dict[str, Source]]] = []
    errors = 0
    for unit in policy_units(paths):
        sources = [Source(str(f), read_text(f)) for f in unit.files]
        result = analyze_sources(sources, options, style=style)
        for d in result.compilation.errors:
            errors += 1
            click.echo(d.render(result.sources.get(d.span.file)) + "\n", err=True)
        found.extend((f, result.sources) for f in result.findings)
    findings = [f for f, _ in found]
    failing = errors + sum(f.severity == "error" or (strict and f.severity == "warning")
                           for f in findings)
    _print(found, fmt)
    sys.exit(EXIT_FAILED if failing else EXIT_OK)


def _print(found: Sequence[tuple[Finding, dict[str, Source]]], fmt: str) -> None:
    from charter.compiler.analysis import render

    findings = [f for f, _ in found]
    if fmt == "json":
        click.echo(json.dumps({"findings": render.to_json(findings, test_block)}, indent=2))
        return
    if fmt == "sarif":
        click.echo(json.dumps(render.sarif(findings, _titles()), indent=2))
        return
    for f, sources in found:
        click.echo(render.render_one(f, sources, test_block) + "\n")
    warnings = sum(f.severity == "warning" for f in findings)
    click.echo(f"{len(findings)} finding(s): {warnings} warning(s), "
               f"{len(findings) - warnings} info")


def _titles() -> dict[str, str]:
    from charter.compiler.analysis.codes import TITLES

    return TITLES


def test_block(f: Finding) -> str | None:
    """A pasteable `test` block pinning the witness's decision (None when the witness
    needs state a test cannot give, or tags a call cannot send)."""
    from charter.language import ast
    from charter.language.source import NOWHERE
    from charter.testing.render import test_block as block

    w = f.witness
    if w is None or w.needs_state or isinstance(w.request.get("tool"), dict) or not w.effect:
        return None
    if "args" in w.request and not isinstance(w.request["args"], dict):
        return None
    expect = ast.Expect(False, w.effect, None, None, NOWHERE)  # type: ignore[arg-type]
    try:
        return block(f"{f.code} {f.rule or ''}".strip(), w.request, expect)
    except (ValueError, TypeError):
        return None


_COMMON = [
    click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path)),
    click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]),
                 default="text"),
    click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1)."),
    click.option("--conflicts", is_flag=True, help="Also report partial allow/deny overlaps "
                 "(W0507, info)."),
    click.option("--risk-tags", default=",".join(("destructive", "money", "external")),
                 show_default=True, help="Tags whose tools W0510 wants guarded."),
    click.option("--select", default="", help="Only these codes (or prefixes), comma-separated."),
    click.option("--ignore", default="", help="Drop these codes, comma-separated."),
    click.option("--solver", type=click.Choice(["auto", "none", "z3"]), default="none",
                 show_default=True, help="SMT back end for atoms outside the exact fragment."),
    click.option("--timeout-ms", type=click.IntRange(min=1), default=2000, show_default=True,
                 help="Per-query solver timeout."),
]


def _options(fn: Any) -> Any:
    for deco in reversed(_COMMON):
        fn = deco(fn)
    return fn


@click.command("analyze")
@_options
def analyze_cmd(paths: tuple[Path, ...], fmt: str, strict: bool, conflicts: bool,
                risk_tags: str, select: str, ignore: str, solver: str, timeout_ms: int) -> None:
    """Find rules that never fire, are overridden, redundant or conflicting, and risky
    allows (W05xx); each proved or shown by a request. Exit 1 on errors (--strict: on
    warnings)."""
    _run(paths, fmt, strict, conflicts, risk_tags, select, ignore, False, solver, timeout_ms)


@click.command("lint")
@_options
def lint_cmd(paths: tuple[Path, ...], fmt: str, strict: bool, conflicts: bool,
             risk_tags: str, select: str, ignore: str, solver: str, timeout_ms: int) -> None:
    """`charter analyze` plus the style rules (W06xx: deny without `because`, rules
    without `@id` in large policies, consts named like functions)."""
    _run(paths, fmt, strict, conflicts, risk_tags, select, ignore, True, solver, timeout_ms)


@click.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--semantic", is_flag=True, help="Compare decisions per (stage, tool), with "
              "a witness request for each change (without it: rules added, removed, changed).")
@click.option("--only", multiple=True, help='Restrict to a tool name or "tagged TAG".')
@click.option("--allow-loosen", is_flag=True, help="Exit 0 even when NEW loosens OLD.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def diff_cmd(old: Path, new: Path, semantic: bool, only: tuple[str, ...], allow_loosen: bool,
             fmt: str) -> None:
    """Compare two policies; exit 1 when NEW allows something OLD did not (--semantic)."""
    from charter.analysis import diff
    from charter.language.source import CompileError

    for path in (old, new):
        if not path.exists():
            fail(f"{path}: no such file or directory")
    try:
        result = diff(old, new, only)
    except CompileError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_FAILED)
    if fmt == "json":
        data = result.to_json()
        if not semantic:
            data.pop("cells")
        click.echo(json.dumps(data, indent=2))
    else:
        for label, ids in (("added", result.rules_added), ("removed", result.rules_removed),
                           ("changed", result.rules_changed)):
            if ids:
                click.echo(f"rules {label}: {', '.join(ids)}")
        if result.counters_reset:
            click.echo(f"counters reset: {', '.join(result.counters_reset)}")
        if semantic:
            _print_cells(result)
    sys.exit(EXIT_FAILED if semantic and result.loosens and not allow_loosen else EXIT_OK)


def _print_cells(result: Any) -> None:
    from charter.compiler.analysis.model import jsonable

    changed = [c for c in result.cells if c.verdict != "equivalent"]
    click.echo(f"{len(result.cells)} cell(s): {len(result.cells) - len(changed)} equivalent, "
               f"{len(changed)} changed")
    for c in changed:
        where = f'{c.stage} "{c.tool}"' if c.tool else c.stage
        click.echo(f"  {where}: {c.verdict}{'' if c.status == 'proved' else ' (sampled)'}")
        for label, w in (("NEW allows more", c.loosen), ("NEW allows less", c.tighten)):
            if w is not None:
                click.echo(f"    {label}: {json.dumps(jsonable(w.request))}: {w.old} -> {w.new}")
