"""The `charter` console script: `charter hook ...` goes straight to its fast path
(`charter.cli.hook`: no click, no parser, no compiler when the policy cache is warm: a hook
is a fresh process per tool call); every other command goes to the click group."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["hook"]:
        from charter.cli.hook import main as hook_main

        hook_main(sys.argv[2:])
    from charter.cli.main import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
