"""Session facts the Guard keeps step by step: the turn and the checkpoint count.

- `session.turn`: a turn starts with each `model_input` from the user (`from_user`); the
  Guard numbers them per session ("0" before the first). `per turn` budgets and limits key
  their counters by it, so they never expire by the clock and never span two turns.
- `session.tool_calls_since_checkpoint`: tool calls since the last human checkpoint — a
  user turn or an approved action (which of the two reset it is the Guard's
  `checkpoint_resets`). Unlike `consecutive_tool_calls`, model steps in between do not reset
  it, so a host that routes every planning step through the Guard still meets the
  checkpoint. A tool call that presents a valid grant is the retry of an attempt already
  counted, and is not counted again.

Both are kept in ordinary store counters keyed by the session id (no new store operation):
an increment is a reservation without a limit, settled at once. The checkpoint count is
`calls - base`, and a reset moves `base` up to `calls`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from charter.runtime.state import CounterRef, Reservation, StateQuery, Store

__all__ = ["Steps", "from_user"]

TURN = "session:turn"
CALLS = "session:checkpoint_calls"
BASE = "session:checkpoint_base"


def from_user(req: Mapping[str, Any]) -> bool:
    """A `model_input` whose input is a user message: an object with `"role": "user"`, or a
    list of messages whose last one is."""
    if req.get("stage") != "model_input":
        return False
    value = req.get("input")
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and value:
        value = value[-1]
    return isinstance(value, dict) and value.get("role") == "user"


class Steps:
    """Reads and moves the turn and checkpoint counters of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _read(self, sid: str, ids: tuple[str, ...], now: float) -> dict[str, int]:
        refs = tuple(CounterRef(cid, sid) for cid in ids)
        usage = self.store.read(StateQuery(sid, refs, (), False), now).usage
        return {cid: int(usage.get((cid, sid), Decimal(0))) for cid in ids}

    def _add(self, sid: str, amounts: Mapping[str, int], now: float) -> None:
        items = [Reservation(cid, sid, None, n, None) for cid, n in amounts.items() if n > 0]
        if not items:
            return
        result = self.store.reserve(items, now)
        if result.token is not None:
            self.store.settle(result.token, {}, now)  # keep the amounts; drop the record

    def turn(self, req: Mapping[str, Any], sid: str, now: float) -> str:
        """This step's turn id (a new one when the step is a user's model input)."""
        if from_user(req):
            self._add(sid, {TURN: 1}, now)
        return str(self._read(sid, (TURN,), now)[TURN])

    def checkpoint(self, req: Mapping[str, Any], sid: str, stage: str, retry: bool,
                   reset_on_turn: bool, now: float) -> int:
        """Tool calls since the last checkpoint, this one included."""
        if stage == "tool_call" and not retry:
            self._add(sid, {CALLS: 1}, now)
        counts = self._read(sid, (CALLS, BASE), now)
        since = counts[CALLS] - counts[BASE]
        if reset_on_turn and from_user(req):
            self._add(sid, {BASE: since}, now)
            return 0
        return since

    def reset(self, sid: str, now: float) -> None:
        """A human checkpoint: the next tool call counts 1."""
        counts = self._read(sid, (CALLS, BASE), now)
        self._add(sid, {BASE: counts[CALLS] - counts[BASE]}, now)
