"""What the runtime state contributes to one decision, read in one batch by the Guard."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import msgspec


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """Counters, labels, call history and verified approvals for one request.

    `counters` maps (counter id, key) to usage so far (reservations included);
    `history` maps a tool name to earlier allowed calls in this session as
    (unix time, recorded argument fields); `approved_groups` holds the groups of valid
    grants for this exact action (verified by the Guard before the decision).

    A msgspec Struct rather than a frozen dataclass because the Guard builds one per
    stateful check: construction costs a fifth as much, attribute reads the same. Not
    tracked by the garbage collector (`gc=False`, cheaper to make and free): it holds plain
    data that never refers back to it, so it can be in no reference cycle.
    """

    counters: Mapping[tuple[str, str], int | Decimal] = {}
    labels: frozenset[str] = frozenset()
    history: Mapping[str, tuple[tuple[float, Mapping[str, object]], ...]] = {}
    approved_groups: frozenset[str] = frozenset()
    now: float | None = None
    # group -> the distinct people whose valid grants are presented (`approved by 2 of "g"`)
    approvers: Mapping[str, frozenset[str]] = {}


EMPTY = Snapshot()
