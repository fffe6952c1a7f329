"""Where Charter's test runs keep files: a per-user cache directory, never the policy folder.

Hypothesis writes a `.hypothesis` directory (its example database and a cache of constants)
into the working directory by default; run from a policy folder, that litters the folder
with files nobody asked for. `charter test` points Hypothesis at
`$CHARTER_CACHE_DIR/hypothesis` instead (default `$XDG_CACHE_HOME/charter`, else
`~/.cache/charter`).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Charter's cache directory (not created here)."""
    explicit = os.environ.get("CHARTER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "charter"


def use_cache_for_hypothesis() -> Path:
    """Send Hypothesis's files to the cache directory; returns where they go."""
    from hypothesis.configuration import set_hypothesis_home_dir

    home = cache_dir() / "hypothesis"
    set_hypothesis_home_dir(home)
    return home
