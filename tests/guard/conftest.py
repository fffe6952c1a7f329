"""Fixtures for the Guard tests: the shared policy, a test clock and a Guard over each store
(the redis-server and `store` fixtures come from tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from guard_helpers import POLICY, Clock

from charter.runtime.state import Store


@pytest.fixture(scope="session")
def policy() -> Any:
    import charter

    return charter.compile(POLICY, "guard.agentpolicy")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(policy: Any, store: Store, clock: Clock) -> Any:
    from charter import Guard

    return Guard(policy, state=store, secret=b"test-secret", clock=clock)
