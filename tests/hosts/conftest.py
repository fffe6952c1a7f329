"""The `hook` fixture: the real `charter hook` process with its own state, one shared cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from hookrun import Hook


@pytest.fixture(scope="session")
def policy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled-policy cache for the session: the first hook compiles, the rest load."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def hook(tmp_path: Path, policy_cache: Path) -> Hook:
    home = tmp_path / "home"
    home.mkdir()
    return Hook(home, policy_cache)
