"""Fixtures of the sidecar tests (helpers in servekit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servekit import EXAMPLES, approvers, serving

import charter
from charter.hosts.serve import Sidecar
from charter.runtime.guard import Guard


@pytest.fixture
def support(tmp_path: Path) -> Iterator[tuple[str, Sidecar]]:
    """The support example served with a Guard in memory and two approvers."""
    policy = charter.load(EXAMPLES / "support")
    guard = Guard(policy, log=tmp_path / "decisions.jsonl")
    sidecar = Sidecar(guard, approvers=approvers(), max_body=64 * 1024, source="examples/support")
    with serving(sidecar.app()) as url:
        yield url, sidecar
    guard.close()
