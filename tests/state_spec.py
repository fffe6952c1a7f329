"""The `state` entry of a corpus case or an example's expected.json, as a `Snapshot`: the
same reading `charter eval --expect` gives it (charter.cli.golden)."""

from __future__ import annotations

from charter.cli.golden import snapshot

__all__ = ["snapshot"]
