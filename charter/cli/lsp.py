"""`charter lsp`: the language server, over stdio."""

from __future__ import annotations

import sys

import click

from charter.cli.common import EXIT_USAGE


@click.command("lsp")
def lsp_cmd() -> None:
    """Run the Charter language server on stdin/stdout (for editors)."""
    try:
        from charter.lsp.server import main
    except ImportError as err:  # pygls is an optional dependency: `pip install charter[lsp]`
        click.echo(f"error: the language server needs pygls and lsprotocol ({err})", err=True)
        sys.exit(EXIT_USAGE)
    main()
