"""The `charter` group imports a subcommand only when it runs (cold start, issue 11); every
name it lists must still resolve, and `--help` must still list them all."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from charter.cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_listed_command_resolves_to_itself(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_help_lists_every_command_in_order() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.split("Commands:\n", 1)[1].splitlines()
              if line.strip()]
    assert listed == sorted(COMMANDS)


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["evl"])
    assert result.exit_code == 2
    assert "No such command 'evl'" in result.output


def test_one_command_does_not_import_the_others() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom charter.cli.main import cli\n"
        "CliRunner().invoke(cli, ['eval', '--help'])\n"
        "print(sorted(m for m in ('charter.cli.fmt', 'charter.cli.lsp', 'charter.cli.test',"
        " 'charter.cli.mcp', 'charter.cli.approvals', 'charter.cli.eval') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['charter.cli.eval']"


def test_stdlib_names_load_on_first_use() -> None:
    import charter.stdlib as stdlib

    assert stdlib.Scanner.__name__ == "Scanner"
    assert callable(stdlib.resolve)
    with pytest.raises(AttributeError):
        stdlib.no_such_name  # noqa: B018
