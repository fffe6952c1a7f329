"""Where Charter's test runs keep files: a per-user cache directory, never the policy folder.

Hypothesis writes a `.hypothesis` directory (its example database and a cache of constants)
into the working directory by default; run from a policy folder, that litters the folder
with files nobody asked for. `charter test` points Hypothesis at
`$CHARTER_CACHE_DIR/hypothesis` instead (default `$XDG_CACHE_HOME/charter`, else
`~/.cache/charter`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_dir() -> Path:
    """Charter's cache directory (not created here)."""
    explicit = os.environ.get("CHARTER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "charter"


@contextmanager
def hypothesis_in_cache() -> Iterator[Path]:
    """Within the block, Hypothesis keeps its files in the cache directory; the previous
    location is restored after, so a host's own Hypothesis tests are not moved."""
    from hypothesis import configuration

    previous = vars(configuration).get("__hypothesis_home_directory")
    home = cache_dir() / "hypothesis"
    configuration.set_hypothesis_home_dir(home)
    try:
        yield home
    finally:
        configuration.set_hypothesis_home_dir(previous)
