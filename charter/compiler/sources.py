"""Which policy files make a policy: the one discovery that `charter.load`, every CLI command,
`charter test`, the pytest plugin and the language server share (docs/language.md, "Which
files make a policy").

- **A policy** is a file given by name, or the `.agentpolicy` files *directly* in one
  directory, in sorted name order. A subdirectory is a policy of its own (as a Go package
  is), so `charter.load(dir)`, `charter eval dir`, `charter compile dir` and the language
  server all compile the same files for `dir`.
- **Test files** are `*_test.agentpolicy`. Deciding (`load`, `eval`, `explain`, `compile`)
  leaves them out; checking and testing compile them with their directory's policy (a
  *unit*). A test file named on its own is compiled with its directory's policy too.
- **Walking a tree** (`charter check DIR`, `charter test DIR`, `charter fmt DIR`, the pytest
  plugin) visits `DIR` and every directory below it, depth first in sorted order; each
  directory holding policy files is one unit. Below the path given, it skips hidden
  directories (`.git`, `.venv`, Kubernetes' `..data`), `__pycache__`, `node_modules`, virtual
  environments (a directory holding `pyvenv.cfg`) and symbolic links to directories (no
  loops, no directory counted twice).
- **Files.** Hidden files (`.#policy.agentpolicy`, an editor's lock file) are not policy
  files. A symbolic link to a file is the file it points to; a dangling one is kept, so that
  reading it fails loudly instead of a policy silently losing its rules.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from charter.compiler.discovery import SUFFIX, TEST_SUFFIX, discover_files
from charter.compiler.discovery import listed as _listed

if TYPE_CHECKING:
    # pathlib is imported where a Path is made: the hook's cache key (`discover_files`,
    # in every fresh process) reads the directory with `os` alone.
    from pathlib import Path

    # Only `read_sources` makes Sources: discovery alone (the hook's compiled-policy cache
    # key, a fresh process per tool call) does not pay for importing the language package.
    from charter.language.source import Source

#: Directory names a walk never enters (besides hidden ones and virtual environments).
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})

__all__ = ["SKIPPED_DIRS", "SUFFIX", "TEST_SUFFIX", "Unit", "all_files", "discover",
           "discover_files", "is_test_file", "nothing_found", "read_sources", "unit_dirs",
           "unit_of", "units", "walked"]


class Unit(NamedTuple):
    """Files compiled together (in this order), and the files whose tests run (None: all).
    (A NamedTuple, not a dataclass: the hook's policy cache imports this module in every
    fresh process, and making a dataclass costs about half a millisecond.)"""

    files: tuple[Path, ...]
    selected: frozenset[Path] | None = None


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIX)


def discover(path: str | Path, include_tests: bool = False) -> list[Path]:
    """The files of the policy at `path`: the file itself, or the policy files directly in
    the directory (tests only when asked), sorted by name. Nothing for a missing path."""
    from pathlib import Path

    return [Path(f) for f in discover_files(path, include_tests)]


def _skipped(directory: Path) -> bool:
    """Whether a walk leaves out this directory found below the path it was given."""
    name = directory.name
    return (name.startswith(".") or name in SKIPPED_DIRS or directory.is_symlink()
            or (directory / "pyvenv.cfg").is_file())


def _walk(directory: Path) -> Iterator[Path]:
    yield directory
    with os.scandir(directory) as entries:
        subdirs = sorted(e.name for e in entries if e.is_dir())
    for name in subdirs:
        sub = directory / name
        if not _skipped(sub):
            yield from _walk(sub)


def unit_dirs(path: str | Path) -> list[Path]:
    """`path` and the directories below it that a walk visits and that hold policy files,
    depth first in sorted order (a parent before its subdirectories)."""
    from pathlib import Path

    p = Path(path)
    if not p.is_dir():
        return []
    return [d for d in _walk(p) if discover(d, include_tests=True)]


def all_files(path: str | Path) -> list[Path]:
    """Every policy file a walk of `path` finds, tests included (a file: itself)."""
    from pathlib import Path

    p = Path(path)
    if p.is_file():
        return [p]
    return [f for d in unit_dirs(p) for f in discover(d, include_tests=True)]


def units(paths: Iterable[str | Path]) -> list[Unit]:
    """The units under `paths`, for `charter check` and `charter test`: one per directory a
    walk visits; a test file with its directory's policy (only its own tests run); any other
    file alone. A unit reached twice is listed once. Raises FileNotFoundError for a path that
    does not exist."""
    from pathlib import Path

    found: dict[tuple[Path, ...], frozenset[Path] | None] = {}

    def add(files: Sequence[Path], selected: frozenset[Path] | None) -> None:
        key = tuple(files)
        if key in found:
            before = found[key]
            selected = None if before is None or selected is None else before | selected
        found[key] = selected

    for path in map(Path, paths):
        if path.is_dir():
            for d in unit_dirs(path):
                add(discover(d, include_tests=True), None)
        elif path.is_file() and is_test_file(path):
            add(_with(discover(path.parent), path), frozenset({path}))
        elif path.is_file():
            add([path], None)
        else:
            raise FileNotFoundError(str(path))
    return [Unit(files, selected) for files, selected in found.items()]


def unit_of(path: Path) -> list[Path]:
    """The unit an editor compiles the file `path` in: its directory's policy files, tests
    included, and the file itself even when it is not saved yet (or hidden), sorted."""
    return _with(discover(path.parent, include_tests=True), path)


def _with(files: list[Path], path: Path) -> list[Path]:
    return files if path in files else sorted([*files, path])


def walked(path: Path, roots: Iterable[Path]) -> bool:
    """Whether walking one of `roots` finds the policy file `path` (a root itself counts);
    for a path under none of them, whether its name is a policy file's. This is how the
    pytest plugin, which pytest hands every file it visits, keeps to the files `charter test`
    runs. Paths are compared as given (absolute, symbolic links unresolved)."""
    under = [r for r in roots if r == path or r in path.parents]
    return any(_finds(r, path) for r in under) if under else _listed(path.name)


def _finds(root: Path, path: Path) -> bool:
    if path == root:
        return True
    d = root
    for part in path.parent.relative_to(root).parts:
        d = d / part
        if _skipped(d):
            return False
    return _listed(path.name)


def read_sources(paths: Sequence[Path]) -> list[Source]:
    """The files' text, in order. OSError propagates (it names the file), and so does
    UnicodeDecodeError, its reason naming the file."""
    from charter.language.source import Source

    out = []
    for p in paths:
        try:
            out.append(Source(str(p), p.read_text(encoding="utf-8")))
        except UnicodeDecodeError as err:
            raise UnicodeDecodeError(err.encoding, err.object, err.start, err.end,
                                     f"{err.reason} (in {p})") from None
    return out


def nothing_found(path: str | Path) -> str:
    """The error for a directory without a policy of its own, naming the subdirectories that
    hold policies (they are not merged into it)."""
    from pathlib import Path

    inner = [str(d) for d in unit_dirs(path) if d != Path(path)]
    more = f" (subdirectories are policies of their own: {', '.join(inner[:3])}" + (
        ", …)" if len(inner) > 3 else ")")
    return f"no .agentpolicy files in {path}" + (more if inner else "")
