"""Fixtures of the live-control tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.control.test_live_reload import TESTS, version


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A watched policy directory at version "a", with tests that every version passes."""
    d = tmp_path / "policies"
    d.mkdir()
    (d / "policy.agentpolicy").write_text(version("a"))
    (d / "policy_test.agentpolicy").write_text(TESTS)
    return d
