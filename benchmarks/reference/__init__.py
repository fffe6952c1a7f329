"""The reference policy (about 20 rules) in every engine's language, and its requests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DECIMAL_FIELDS = (("session", "cost_usd"), ("estimate", "cost_usd"), ("args", "amount"))


@cache
def cases() -> list[dict[str, Any]]:
    """Requests that together fire every rule: ``{"name", "expect", "request"}``."""
    data: list[dict[str, Any]] = json.loads((HERE / "requests.json").read_text())
    return data


def source(engine: str) -> Any:
    """The reference policy in the form ``engine``'s adapter ``load`` takes."""
    if engine == "charter":
        return (HERE / "policy.agentpolicy").read_text()
    if engine == "python":
        from benchmarks.reference.handwritten import decide

        return decide
    if engine == "cedar":
        from benchmarks.engines.cedar_engine import CedarSource

        return CedarSource(
            policies=(HERE / "policy.cedar").read_text(),
            entities=(HERE / "entities.json").read_text(),
            decimal_fields=DECIMAL_FIELDS,
        )
    if engine == "rego":
        from benchmarks.engines.rego_engine import RegoSource

        return RegoSource((HERE / "policy.rego").read_text(), "data.charter.reference.decision")
    if engine in ("cel-cpp", "cel-rust"):
        from benchmarks.reference.cel_rules import POLICY

        return POLICY
    raise KeyError(engine)
