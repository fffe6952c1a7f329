"""Engine registry: which adapter module implements which engine, and whether it loads here."""

from __future__ import annotations

import importlib
from types import ModuleType

# Display name -> adapter module. Charter first, the hand-written baseline second.
ENGINES: dict[str, str] = {
    "charter": "benchmarks.engines.charter_engine",
    "python": "benchmarks.engines.python_engine",
    "cedar": "benchmarks.engines.cedar_engine",
    "rego": "benchmarks.engines.rego_engine",
    "cel-cpp": "benchmarks.engines.cel_cpp",
    "cel-rust": "benchmarks.engines.cel_rust",
}

LABELS: dict[str, str] = {
    "charter": "Charter",
    "python": "hand-written Python",
    "cedar": "Cedar (cedarpy)",
    "rego": "Rego (regopy)",
    "cel-cpp": "CEL (cel-expr-python, C++)",
    "cel-rust": "CEL (common-expression-language, Rust)",
}

PEERS = ("cedar", "rego", "cel-cpp", "cel-rust")


def import_engine(name: str) -> ModuleType:
    """Import an adapter; raises ImportError (with the library's message) when it cannot load."""
    return importlib.import_module(ENGINES[name])


def import_error(name: str) -> str | None:
    try:
        import_engine(name)
    except Exception as exc:  # any failure to import is reported, not raised
        return f"{type(exc).__name__}: {exc}"
    return None
