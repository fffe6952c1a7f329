"""The `charter` console script: `charter hook ...` goes straight to its fast path
(`charter.cli.hook`: no click, no parser, no compiler when the policy cache is warm: a hook
is a fresh process per tool call; with `--server`, `charter.cli.hook_client`, which imports
nothing of Charter's runtime); every other command goes to the click group."""

from __future__ import annotations

import gc
import os
import sys


def hook(argv: list[str]) -> None:
    """`charter hook ARGV`: the process answers the host and exits (the launcher of
    `charter.cli.hook_launcher` calls this too)."""
    # A hook process lives for one event: the cyclic collector would only rescan the
    # objects the imports create (a few milliseconds), never free anything that matters.
    gc.disable()
    if any(a == "--server" or a.startswith("--server=") for a in argv):
        from charter.cli.hook_client import main as client_main  # the standard library only

        client_main(argv)
    try:
        from charter.cli.hook_msgspec import import_msgspec

        import_msgspec()
        from charter.cli.hook import main as hook_main
    except BaseException as err:  # noqa: BLE001 - a broken install must still block
        # Exit 1 (Python's code for an uncaught exception) lets the call run in Claude Code;
        # 2 is the one code every host treats as a block.
        print(f"charter: the hook cannot load ({type(err).__name__}: {err})", file=sys.stderr)
        sys.stderr.flush()
        os._exit(2)
    hook_main(argv)


def main() -> None:
    if sys.argv[1:2] == ["hook"]:
        hook(sys.argv[2:])
    from charter.cli.main import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
