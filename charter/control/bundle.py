"""Building a signed bundle: the gate, then `charter.runtime.bundle.pack` (L-S2).

The bundle holds exactly the bytes the gate saw: one snapshot of the directory is gated and
the same snapshot is packed, so a file edited while `charter bundle` runs can never slip
into a bundle whose manifest says it passed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.control.gate import DEFAULT_PROPERTY_EXAMPLES, GateResult, run_gate, snapshot
from charter.runtime.bundle import pack

__all__ = ["BuildResult", "build_bundle"]


@dataclass(frozen=True, slots=True)
class BuildResult:
    """The gate's result and, when it passed, the bundle's bytes."""

    gate: GateResult
    data: bytes | None


def build_bundle(
    path: str | os.PathLike[str],
    *,
    key: Any = None,
    key_id: str | None = None,
    builder: str = "",
    tests: bool = True,
    properties: int = DEFAULT_PROPERTY_EXAMPLES,
) -> BuildResult:
    """Gate the policy at `path` and, if it passes, pack it (signed with `key` under
    `key_id`, or unsigned when both are None). `data` is None when the gate failed."""
    snap = snapshot(Path(path))
    result = run_gate(snap, tests=tests, properties=properties)
    if not result.ok or result.policy is None:
        return BuildResult(result, None)
    sources = {Path(name).name: text.encode("utf-8") for name, text in snap.files}
    gate = result.summary()
    gate["tests_run"] = tests
    gate["property_examples"] = properties
    data = pack(
        sources,
        result.policy.dumps(),
        policy_digest=result.policy.digest,
        gate=gate,
        builder=builder,
        key=key,
        key_id=key_id,
        extra={"policy": result.policy.name, "version": result.policy.version},
    )
    return BuildResult(result, data)
