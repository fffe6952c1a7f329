"""The `charter` command."""

from __future__ import annotations

import importlib

import click

#: command name -> "module:attribute". Imported when the command runs (or `--help` lists
#: them all): `charter eval` must not pay for the formatter, the LSP, the test runner
#: (Hypothesis), the MCP proxy and approvals in every fresh process (issue 11 cold start).
COMMANDS = {
    "check": "charter.cli.check:check_cmd",
    "eval": "charter.cli.eval:eval_cmd",
    "explain": "charter.cli.explain:explain_cmd",
    "compile": "charter.cli.compile:compile_cmd",
    "fmt": "charter.cli.fmt:fmt_cmd",
    "lsp": "charter.cli.lsp:lsp_cmd",
    "test": "charter.cli.test:test_cmd",
    "hook": "charter.cli.hook_cmd:hook_cmd",
    "approvals": "charter.cli.approvals:approvals_cmd",
    "mcp": "charter.cli.mcp:mcp_cmd",
    "serve": "charter.cli.serve:serve_cmd",
    "analyze": "charter.cli.analyze:analyze_cmd",
    "lint": "charter.cli.analyze:lint_cmd",
    "diff": "charter.cli.analyze:diff_cmd",
    "replay": "charter.cli.replay:replay_cmd",
    "gate": "charter.cli.live:gate_cmd",
    "kill": "charter.cli.live:kill_cmd",
    "unkill": "charter.cli.live:unkill_cmd",
    "bundle": "charter.cli.bundle:bundle_cmd",
    "push": "charter.cli.bundle:push_cmd",
    "manifest": "charter.cli.bundle:manifest_cmd",
    "status": "charter.cli.operate:status_cmd",
    "history": "charter.cli.operate:history_cmd",
    "rollback": "charter.cli.operate:rollback_cmd",
    "unpin": "charter.cli.operate:unpin_cmd",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return super().get_command(ctx, cmd_name)
        module, _, attr = where.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command), where
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="charter")
def cli() -> None:
    """Charter: policies for AI agents."""


def main() -> None:
    cli(prog_name="charter")


if __name__ == "__main__":
    main()
