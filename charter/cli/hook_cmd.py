"""`charter hook` as a click command, for `charter --help` and a console script that enters
through the click group; it hands its arguments to the fast path (`charter.cli.hook`)."""

from __future__ import annotations

import click


@click.command(
    "hook",
    add_help_option=False,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook_cmd(args: tuple[str, ...]) -> None:
    """Answer a coding-agent hook event (stdin JSON -> host answer); `hook install AGENT`."""
    from charter.cli.hook import main

    main(list(args))
