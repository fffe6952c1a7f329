"""The `charter` console script: `charter hook ...` goes straight to its fast path
(`charter.cli.hook`: no click, no parser, no compiler when the policy cache is warm: a hook
is a fresh process per tool call; with `--server`, `charter.cli.hook_client`, which imports
nothing of Charter's runtime); every other command goes to the click group."""

from __future__ import annotations

import gc
import sys


def main() -> None:
    if sys.argv[1:2] == ["hook"]:
        # A hook process lives for one event: the cyclic collector would only rescan the
        # objects the imports create (a few milliseconds), never free anything that matters.
        gc.disable()
        argv = sys.argv[2:]
        if any(a == "--server" or a.startswith("--server=") for a in argv):
            from charter.cli.hook_client import main as client_main  # the standard library only

            client_main(argv)
        from charter.cli.hook import main as hook_main

        hook_main(argv)
    from charter.cli.main import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
