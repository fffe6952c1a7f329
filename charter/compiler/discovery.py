"""The files of one policy, found with `os` alone: `charter.compiler.sources` is the whole
discovery (docs/language.md, "Which files make a policy"); this is the part the hook's
compiled-policy cache key needs in every fresh process. It is its own module because
`sources` defines `Unit`, a NamedTuple whose string annotations `typing` compiles when the
class is made: ~1.5 ms of a hook call that never walks a tree.
"""

from __future__ import annotations

import os

SUFFIX = ".agentpolicy"
TEST_SUFFIX = "_test.agentpolicy"

__all__ = ["SUFFIX", "TEST_SUFFIX", "discover_files", "listed"]


def listed(name: str) -> bool:
    """Whether a directory entry of this name is a policy file of its directory."""
    return name.endswith(SUFFIX) and not name.startswith(".")


def discover_files(path: str | os.PathLike[str], include_tests: bool = False) -> list[str]:
    """`sources.discover`, as the paths' text (`os.path.join` of `path` and each name),
    without importing pathlib (with what it imports, ~3 ms of a fresh process: the hook's)."""
    p = os.fspath(path) or "."  # as `Path("")` is the current directory
    if os.path.isfile(p):
        return [p]
    if not os.path.isdir(p):
        return []
    with os.scandir(p) as entries:
        names = sorted(e.name for e in entries if listed(e.name) and not e.is_dir())
    return [os.path.join(p, n) for n in names if include_tests or not n.endswith(TEST_SUFFIX)]
