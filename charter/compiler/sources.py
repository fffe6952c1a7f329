"""Which policy files make a policy: the one discovery `charter.load`, the CLI, policy tests,
the pytest plugin and the language server share.

A policy is a file given by name, or the `.agentpolicy` files directly in one directory, in
sorted order; `*_test.agentpolicy` files are tests, compiled with their directory's policy
only when tests run. Subdirectories are policies of their own (a directory is a unit, like a
Go package), so `charter.load(dir)`, `charter eval dir` and `charter check dir` decide with
the same rules; commands that walk a tree (`check`, `test`, `fmt`) visit each directory.
"""

from __future__ import annotations

from pathlib import Path

SUFFIX = ".agentpolicy"
TEST_SUFFIX = "_test.agentpolicy"

__all__ = ["SUFFIX", "TEST_SUFFIX", "discover", "is_test_file", "unit_dirs"]


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIX)


def discover(path: str | Path, include_tests: bool = False) -> list[Path]:
    """The files of the policy at `path`: the file itself, or a directory's own policy files
    (tests only when asked), sorted."""
    p = Path(path)
    if p.is_file():
        return [p]
    files = sorted(f for f in p.glob(f"*{SUFFIX}") if f.is_file())
    return [f for f in files if include_tests or not is_test_file(f)]


def unit_dirs(path: str | Path) -> list[Path]:
    """Every directory at or under `path` that holds policy files, sorted."""
    return sorted({f.parent for f in Path(path).rglob(f"*{SUFFIX}") if f.is_file()})
