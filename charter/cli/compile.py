"""`charter compile POLICY -o OUT [--dump STAGE]`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from pprint import pformat

import click

from charter.cli.common import EXIT_FAILED, EXIT_OK, fail

STAGES = ("ast", "check", "ir", "plan", "code")


@click.command("compile")
@click.argument("policy", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the compiled policy.")
@click.option("--dump", type=click.Choice(STAGES), help="Print one stage's output.")
@click.option("--timings", is_flag=True, help="Print how long each stage took.")
def compile_cmd(policy: Path, output: Path | None, dump: str | None, timings: bool) -> None:
    """Compile a policy; save it for `charter.load_compiled`, or dump a stage."""
    from charter.compiler.pipeline import compile_sources, read_sources
    from charter.compiler.sources import discover
    from charter.runtime.policy import Policy

    files = discover(policy)
    if not files:
        fail(f"{policy}: no .agentpolicy files")
    comp = compile_sources(read_sources(files))
    for d in comp.diagnostics:
        click.echo(d.render(comp.sources.get(d.span.file)), err=True)
    if comp.errors or comp.ir is None:
        sys.exit(EXIT_FAILED)
    t0 = time.perf_counter()
    compiled = Policy(comp.ir)
    comp.timings["plan"] = time.perf_counter() - t0
    if dump == "ast":
        click.echo(pformat(comp.modules, width=100))
    elif dump == "check":
        assert comp.checked is not None
        click.echo(pformat({"tools": comp.checked.tools, "consts": comp.checked.consts,
                            "rules": comp.checked.rules}, width=100))
    elif dump == "ir":
        click.echo(pformat(comp.ir, width=100))
    elif dump == "plan":
        for stage, idx in compiled.plan.stages.items():
            click.echo(f"{stage}: {len(idx.exact)} exact names, {len(idx.globs)} globs, "
                       f"{len(idx.tagged)} tags, {len(idx.untargeted)} untargeted rules")
    elif dump == "code":
        _dump_code(compiled)
    if output is not None:
        compiled.save(output)
        click.echo(f"wrote {output}", err=True)
    if timings:
        for stage, secs in comp.timings.items():
            click.echo(f"{stage:8} {secs * 1000:9.2f} ms", err=True)
    sys.exit(EXIT_OK)


def _dump_code(policy: object) -> None:
    from charter.runtime.policy import Policy

    assert isinstance(policy, Policy)
    names = set(policy.ir.tools)
    for idx in policy.plan.stages.values():
        names.update(idx.exact)
    for name in sorted(names):
        bucket = policy.bucket_for({"tool": name})
        if bucket is None:
            continue
        click.echo(f"# tool {name!r}: {len(bucket.rules)} candidate rule(s)")
        click.echo(bucket.source or "# (no conditions: a prebuilt constant decision)\n")
