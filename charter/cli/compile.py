"""`charter compile POLICY [-o OUT] [--dump STAGE] [--timings]`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from charter.cli.common import EXIT_FAILED, EXIT_OK, policy_sources

#: What `--dump` accepts: each stage by name, and by the name of the value it makes.
DUMPS = {
    "parse": "parse", "ast": "parse",
    "check": "check",
    "lower": "lower", "ir": "lower",
    "passes": "passes",
    "plan": "plan", "tree": "plan",
    "emit": "emit", "code": "emit",
}


@click.command("compile")
@click.argument("policy", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the compiled policy.")
@click.option("--dump", type=click.Choice(list(DUMPS)),
              help="Print one stage's value: ast, check, ir, passes, tree or code "
                   "(or the stage's name: parse, lower, plan, emit).")
@click.option("--timings", is_flag=True, help="Print how long each stage took.")
def compile_cmd(policy: Path, output: Path | None, dump: str | None, timings: bool) -> None:
    """Compile a policy; save it for `charter.load_compiled`, or dump a stage."""
    from charter.compiler.pipeline import STAGES, compile_sources

    stage = DUMPS[dump] if dump else None
    t0 = time.perf_counter()
    sources = policy_sources(policy)
    read = time.perf_counter() - t0
    comp = compile_sources(sources, until="emit" if output or not stage else stage)
    for d in comp.diagnostics:
        click.echo(d.render(comp.sources.get(d.span.file)), err=True)
    if stage is not None and stage in comp.timings and not comp.errors:
        click.echo(next(s for s in STAGES if s.name == stage).dump(comp))
    saved = None
    if output is not None and comp.compiled is not None and not comp.errors:
        from charter.engine.tree import dumps

        t1 = time.perf_counter()
        output.write_bytes(dumps(comp.compiled))
        saved = time.perf_counter() - t1
        click.echo(f"wrote {output}", err=True)
    if timings:
        rows = {"read": read, **comp.timings, **({"save": saved} if saved is not None else {})}
        for name, secs in rows.items():
            click.echo(f"{name:8} {secs * 1000:9.2f} ms", err=True)
        click.echo(f"{'total':8} {sum(rows.values()) * 1000:9.2f} ms", err=True)
    sys.exit(EXIT_FAILED if comp.errors else EXIT_OK)
