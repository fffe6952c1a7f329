"""`charter check PATH...`: report every diagnostic of every policy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import msgspec

from charter.cli.common import EXIT_FAILED, EXIT_OK, fail, policy_units, read_text
from charter.language.source import Diagnostic


@click.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--strict", is_flag=True,
              help="Treat every warning as an error (for CI: nothing passes half-checked).")
@click.option("--explain", metavar="CODE",
              help="Explain a diagnostic code (such as CH0203) with an example, and exit.")
def check_cmd(paths: tuple[Path, ...], fmt: str, strict: bool, explain: str | None) -> None:
    """Parse and type-check policies; exit 1 if any has an error (or, with --strict, any
    warning)."""
    if explain is not None:
        click.echo(_explained(explain))
        sys.exit(EXIT_OK)
    if not paths:
        fail("give at least one PATH (or --explain CODE)")
    from charter.compiler.units import compile_unit
    from charter.language.source import Source

    found: list[tuple[Diagnostic, Source | None]] = []
    files = 0
    for unit in policy_units(paths):
        files += len(unit.files)
        comp = compile_unit(unit.files, read_text)
        found.extend((_promoted(d) if strict else d, comp.sources.get(d.span.file))
                     for d in comp.diagnostics)
    errors = sum(d.severity == "error" for d, _ in found)
    warnings = len(found) - errors
    if fmt == "json":
        click.echo(json.dumps({"files": files, "errors": errors, "warnings": warnings,
                               "diagnostics": [d.to_json() for d, _ in found]}, indent=2))
    else:
        for d, src in found:
            click.echo(d.render(src) + "\n", err=d.severity == "error")
        summary = f"checked {files} file(s): {errors} error(s), {warnings} warning(s)"
        click.echo(summary, err=bool(errors))
    sys.exit(EXIT_FAILED if errors else EXIT_OK)


def _promoted(d: Diagnostic) -> Diagnostic:
    """A warning reported as an error (same code, so docs/errors.md still explains it)."""
    return msgspec.structs.replace(d, severity="error") if d.severity == "warning" else d


def _explained(name: str) -> str:
    """What `docs/errors.md` says about one code, for the terminal (`rustc --explain`)."""
    import textwrap

    from charter.language.diagnostics import REGISTRY
    from charter.language.suggest import did_you_mean

    entry = REGISTRY.get(name.strip().upper())
    if entry is None:
        hint = did_you_mean(name.strip().upper(), REGISTRY)
        fail(f"no diagnostic code `{name}`" + (f"; {hint}" if hint else "")
             + " (docs/errors.md lists them)")
    out = [f"{entry.code}: {entry.title} ({entry.severity})", "",
           textwrap.fill(entry.explanation, 92), ""]
    if entry.example is None:
        out.append(f"No example policy: {entry.no_example}.")
    else:
        out.append("For example:" if not entry.code.startswith("CH04") else
                   "For example (reported by `charter test`):")
        lines = [x if len(x) <= 160 else f"{x[:120]} … {x[-30:]}"
                 for x in entry.example.rstrip("\n").splitlines()]
        out += ["", *("    " + x for x in lines), ""]
        if entry.help:
            out.append(f"reports it with the help: {entry.help}")
    return "\n".join(out).rstrip("\n")
