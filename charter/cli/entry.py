"""The `charter` console script: `charter hook ...` goes straight to its fast path
(`charter.cli.hook`: no click, no parser, no compiler when the policy cache is warm: a hook
is a fresh process per tool call; with `--server`, `charter.cli.hook_client`, which imports
nothing of Charter's runtime); every other command goes to the click group."""

from __future__ import annotations

import gc
import os
import sys


def _msgspec_without_typing_extensions() -> None:
    """Import msgspec with `typing_extensions` hidden. msgspec's `_core` imports
    `msgspec._utils` when it loads, which takes `get_type_hints`, `Required` and
    `NotRequired` from typing_extensions if it can (a third of a warm hook call's imports:
    typing_extensions imports `inspect`, `ast`, `dis`, `tokenize`) and from `typing`
    otherwise. msgspec uses them only for TypedDict types, which nothing a hook decodes
    is; Struct annotations go through msgspec's own resolver either way. Only the hook
    process does this: it runs no code but Charter's."""
    if "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # import: ImportError
    try:
        import msgspec  # noqa: F401
    finally:
        del sys.modules["typing_extensions"]


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
        _msgspec_without_typing_extensions()
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
