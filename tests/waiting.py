"""Waiting for something a background thread or another process does (a reload, a
switch, a push): liveness with a generous deadline, never a claim about speed."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(cond: Callable[[], bool], what: str, deadline_s: float = 30.0) -> None:
    """Poll `cond` until it holds; fail the test naming `what` after `deadline_s`."""
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.01)
