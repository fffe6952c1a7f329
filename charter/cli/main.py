"""The `charter` command."""

from __future__ import annotations

import click

from charter.cli.approvals import approvals_cmd
from charter.cli.check import check_cmd
from charter.cli.compile import compile_cmd
from charter.cli.eval import eval_cmd
from charter.cli.explain import explain_cmd
from charter.cli.fmt import fmt_cmd
from charter.cli.hook_cmd import hook_cmd
from charter.cli.lsp import lsp_cmd
from charter.cli.mcp import mcp_cmd
from charter.cli.test import test_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="charter")
def cli() -> None:
    """Charter: policies for AI agents."""


for command in (check_cmd, eval_cmd, explain_cmd, compile_cmd, fmt_cmd, lsp_cmd):
    cli.add_command(command)

cli.add_command(test_cmd)
cli.add_command(hook_cmd)
cli.add_command(approvals_cmd)
cli.add_command(mcp_cmd)


def main() -> None:
    cli(prog_name="charter")


if __name__ == "__main__":
    main()
