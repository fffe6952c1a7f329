"""The command `charter hook install` writes: this interpreter under `-I -S`, running a small
launcher file that puts the import path of this install back by hand.

A hook is a fresh process per tool call, so interpreter start-up is paid on every call, and
`site` is most of it wherever an install carries `.pth` files (an editable install's finder,
a certificate hook, a distutils shim each run code at every start: 30 ms of a 40 ms start on
the machines this was measured on; `python -S` starts in 10). The launcher skips `site` and
names the directories `site` would have found, as they were when it was written: Charter's
own first, so the hook runs the Charter that installed it. `-I` (isolated) also keeps the
agent's environment and working directory out of the import path: a `PYTHONPATH` or a
`charter/` directory in the project the agent edits cannot replace the code that guards it.

A launcher whose Charter has moved or gone (a Python upgrade, a deleted checkout) cannot
import it, and exits 2, the code every host treats as a block, with a message saying to run
`charter hook install` again. The file's name is a digest of its text: installing twice
writes the same file and the same settings, and two interpreters get two launchers.
"""

from __future__ import annotations

import os
import sys

from charter.stdlib.digest import sha256
from charter.stdlib.files import replace_file

__all__ = ["hook_command", "launcher_dir", "launcher_text", "search_path", "write_launcher"]

#: `-I`: no PYTHON* variables, no user site, no script or working directory on the path;
#: `-S`: no `site`, so no `.pth` file runs.
FLAGS = "-IS"


def launcher_dir(env: dict[str, str] | os._Environ[str]) -> str:
    """`CHARTER_DATA_DIR/bin`, else `$XDG_DATA_HOME/charter/bin`, else
    `~/.local/share/charter/bin`: outside any project, so not among the files an agent edits."""
    if env.get("CHARTER_DATA_DIR"):
        return os.path.join(env["CHARTER_DATA_DIR"], "bin")
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "charter", "bin")


def search_path() -> list[str]:
    """The directories the launcher adds: the one this Charter is imported from, then every
    absolute entry of this process's path after the first (the first is the running script's
    directory or the working directory, which the hook must not search)."""
    import charter

    own = os.path.dirname(os.path.dirname(os.path.abspath(charter.__file__)))
    rest = [p for p in sys.path[1:] if p and os.path.isabs(p) and os.path.isdir(p)]
    return list(dict.fromkeys([own, *rest]))


def launcher_text(paths: list[str]) -> str:
    """The launcher's source: `paths` appended to the path the interpreter starts with (its
    standard library stays first), then `charter hook` with the launcher's arguments. The
    paths are literals written with `repr`."""
    return (
        "# Written by `charter hook install`: runs `charter hook ARGS` without `site` (see\n"
        "# charter/cli/hook_launcher.py). Run `charter hook install` again after moving\n"
        "# Charter or upgrading Python; this file is replaced, never edited.\n"
        "import sys\n"
        f"sys.path.extend(p for p in {paths!r} if p not in sys.path)\n"
        "try:\n"
        "    from charter.cli.entry import hook\n"
        "except BaseException as err:  # a block, never Python's exit 1 (1 lets the call run)\n"
        "    sys.stderr.write(f'charter: the hook launcher {__file__} cannot load Charter '\n"
        "                     f'({type(err).__name__}: {err}); '\n"
        "                     'run `charter hook install` again\\n')\n"
        "    sys.stderr.flush()\n"
        "    import os\n"
        "    os._exit(2)\n"
        "hook(sys.argv[1:])\n"
    )


def _file_name(text: str) -> str:
    # Ends in "hook": an entry running it reads `...-hook AGENT --policy`, as install finds them.
    return f"charter-{sha256(text.encode()).hexdigest()[:12]}-hook"


def write_launcher(directory: str, *, dry_run: bool = False) -> str:
    """The launcher of this install in `directory`, written (atomically, mode 0755) unless
    it is there already or `dry_run`; its path."""
    text = launcher_text(search_path())
    path = os.path.join(os.path.abspath(directory), _file_name(text + "\0" + sys.executable))
    if dry_run:
        return path
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return path
    except OSError:
        pass
    os.makedirs(directory, mode=0o755, exist_ok=True)
    replace_file(path, text.encode())
    os.chmod(path, 0o755)
    return path


def hook_command(launcher: str) -> list[str]:
    """The words that start the hook through `launcher` (the agent and its options follow)."""
    return [sys.executable, FLAGS, launcher]
