"""`charter test PATH...`: run the `test` and `property` blocks of policies."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from charter.cli.common import EXIT_USAGE, fail


@click.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--coverage", is_flag=True, help="List every rule and scope and whether a test "
              "exercised it.")
@click.option("--seed", type=int, default=None, help="Seed for property examples "
              "(a random seed is chosen and printed when omitted).")
@click.option("--examples", type=click.IntRange(min=1), default=200, show_default=True,
              help="Examples generated per property.")
@click.option("--min-examples", type=click.IntRange(min=0), default=None,
              help="Meaningful examples (no request error, `where` met) a property needs to "
              "pass  [default: a tenth of --examples].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def test_cmd(paths: tuple[Path, ...], coverage: bool, seed: int | None, examples: int,
             min_examples: int | None, fmt: str) -> None:
    """Run policy tests and properties; exit 1 if any fails or a policy does not compile."""
    from charter.testing import report, session

    for path in paths:
        if not path.exists():
            fail(f"{path}: no such file or directory", EXIT_USAGE)
    try:
        result = session.run(paths, seed=seed, examples=examples,
                             min_examples=min_examples)
    except OSError as err:
        fail(f"cannot read {err.filename}: {err.strerror}", EXIT_USAGE)
    except UnicodeDecodeError as err:
        fail(f"cannot read a policy file: {err}", EXIT_USAGE)
    if not result.units:
        fail("no .agentpolicy files found", EXIT_USAGE)
    if fmt == "json":
        click.echo(json.dumps(report.as_json(result, coverage), indent=2))
    else:
        click.echo(report.text(result, coverage))
    sys.exit(result.exit_code)
