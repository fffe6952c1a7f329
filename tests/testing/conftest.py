"""Fixtures for the policy test runner's tests. Policy test files live in tmp dirs only."""

from __future__ import annotations

pytest_plugins = ["pytester"]
