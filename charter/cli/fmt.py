"""`charter fmt PATH... [--check]`: rewrite policies in the canonical layout."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from charter.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE


@click.command("fmt")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file would change.")
def fmt_cmd(paths: tuple[Path, ...], check: bool) -> None:
    """Format .agentpolicy files in place (`-` formats stdin to stdout).

    A file with syntax errors is left alone and its errors are printed. Exit 1 if any file
    has errors or, with --check, would be reformatted.
    """
    from charter.compiler.sources import all_files
    from charter.language.formatter import FormatError, format_source
    from charter.language.source import Source

    if paths == (Path("-"),):
        _stdin(check)
    failed = False
    changed: list[Path] = []
    for path in paths:
        if not path.exists():
            click.echo(f"error: {path}: no such file or directory", err=True)
            sys.exit(EXIT_USAGE)
        for file in all_files(path):
            try:
                source = Source(str(file), file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as err:
                click.echo(f"error: cannot read {file}: {err}", err=True)
                sys.exit(EXIT_USAGE)
            try:
                result = format_source(source)
            except FormatError as err:
                click.echo(f"error: {err}; file left unchanged", err=True)
                failed = True
                continue
            if result.text is None:
                for d in result.diagnostics:
                    click.echo(d.render(source) + "\n", err=True)
                click.echo(f"{file}: not formatted: syntax errors", err=True)
                failed = True
            elif result.changed:
                changed.append(file)
                if check:
                    click.echo(f"would reformat {file}")
                else:
                    file.write_text(result.text, encoding="utf-8")
                    click.echo(f"reformatted {file}")
    if check and changed:
        click.echo(f"{len(changed)} file(s) would be reformatted", err=True)
    sys.exit(EXIT_FAILED if failed or (check and changed) else EXIT_OK)


def _stdin(check: bool) -> None:
    from charter.language.formatter import FormatError, format_source
    from charter.language.source import Source

    source = Source("<stdin>", sys.stdin.read())
    try:
        result = format_source(source)
    except FormatError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_FAILED)
    if result.text is None:
        for d in result.diagnostics:
            click.echo(d.render(source) + "\n", err=True)
        sys.exit(EXIT_FAILED)
    if not check:
        click.echo(result.text, nl=False)
    sys.exit(EXIT_FAILED if check and result.changed else EXIT_OK)
