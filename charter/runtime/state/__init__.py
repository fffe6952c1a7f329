"""State stores for budgets, limits, labels, call history, grant nonces and loop guards.

`MemoryStore` (default, one process), `SQLiteStore` (one machine, survives restarts) and
`RedisStore` (many hosts) implement the same `Store` contract; see `docs/state.md`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    HISTORY_LIMIT,
    SCALE,
    Amount,
    CounterRef,
    HistoryEntry,
    Reservation,
    ReserveResult,
    SessionCalls,
    StateQuery,
    StateSnapshot,
    Store,
    StoreError,
    Taken,
)
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .memory import MemoryStore
    from .redis import RedisStore

__all__ = [
    "HISTORY_LIMIT",
    "SCALE",
    "Amount",
    "CounterRef",
    "HistoryEntry",
    "MemoryStore",
    "RedisStore",
    "Reservation",
    "ReserveResult",
    "SQLiteStore",
    "SessionCalls",
    "StateQuery",
    "StateSnapshot",
    "Store",
    "StoreError",
    "Taken",
]


def __getattr__(name: str) -> Any:
    # MemoryStore is imported when it is used: a hook call keeps its state in SQLite.
    if name == "MemoryStore":
        from .memory import MemoryStore

        return MemoryStore
    # The redis client is an optional dependency: import it only when RedisStore is used.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
