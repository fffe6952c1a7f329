"""The Guard's lean stateful path: one closure per kind of call over a `MemoryStore`.

`Guard.check` takes it for a dict request naming a tool by a plain string, with no
approvals presented, to a Guard over exactly a `MemoryStore` (a subclass may override what
this path bypasses), when the call reads and writes only counters, labels and history
records (`Needs.memory`). It gives the same decision, reservation, records and result as the
store-neutral `Flow._stateful` (`tests/guard/test_guard_memory_path.py` compares them), with
everything that depends only on the kind of call bound once into the closure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from charter.engine.decision import Decision
from charter.engine.snapshot import Snapshot
from charter.runtime.guard_flow import (
    JSON_KEYS,
    NO_COUNTERS,
    NO_GROUPS,
    NO_HISTORY,
    NO_LABELS,
    deny,
    reservation_text,
    units_of,
)
from charter.runtime.guard_plan import CHARGED_STAGES, MemoryPlan, Needs
from charter.runtime.state import MemoryStore, StoreError

if TYPE_CHECKING:
    from charter.runtime.guard_flow import Flow

__all__ = ["Runner", "lean_runner"]

Runner = Callable[[dict[str, Any]], Decision]
_REPLACE = msgspec.structs.replace


def lean_runner(flow: Flow, stage: str, name: str, needs: Needs, plan: MemoryPlan,
                store: MemoryStore) -> Runner:
    """`check` for one kind of call with a memory plan, over `store`.

    Counters keyed by request paths or with scope conditions go through `Flow.memory`;
    counters all keyed by the session id (`plan.simple`) through `_simple`.
    """
    if plan.simple:
        return _simple(flow, stage, name, needs, plan, store)
    general = flow.memory

    def run(req: dict[str, Any]) -> Decision:
        return general(req, stage, name, needs, plan, store)

    return run


def _simple(flow: Flow, stage: str, name: str, needs: Needs, plan: MemoryPlan,
            store: MemoryStore) -> Runner:
    """The path of a call whose counters are all keyed by the session id.

    A tool call reserves *before* it decides, reading its counters and labels in the same
    locked step (`MemoryStore.take_key`), and gives the reservation back unless the
    decision is an allow: one store round instead of two (docs/state.md, "Reserving
    first"). Usage is read from before the reservation, so the decision is the same.
    """
    guard = flow.g
    general = flow.memory
    policy = guard.policy
    decide = policy.decide
    take = store.take_key if stage in CHARGED_STAGES and plan.charge else None
    # Nothing to read for a call that only records history or adds labels.
    read = store.read_key if plan.refs or needs.labels else None
    release = store.release
    charge = plan.charge
    charge_json = plan.charge_json
    default_items = plan.take
    refs = plan.refs
    labels = needs.labels
    int_usage = plan.int_usage
    records = needs.record is not None
    plain = not needs.approvals
    one = len(charge) == 1
    before, after = charge_json[0] if one else ("", "")
    finish = flow.finish
    record = flow.record
    over_limit = flow.over_limit

    def run(req: dict[str, Any]) -> Decision:
        session = req.get("session")
        sid = session.get("id") if session.__class__ is dict else None
        if sid.__class__ is not str:
            return general(req, stage, name, needs, plan, store)
        estimate = req.get("estimate")
        if estimate is None or take is None:  # only a reservation reads the estimate
            items = default_items
        else:
            try:
                units = units_of(estimate)
            except TypeError:  # the general path says why, if the decision would allow
                return general(req, stage, name, needs, plan, store)
            items = tuple((cid, window, units[metric], limit)
                          for cid, window, metric, limit, _ in charge)
        token = reservation = None
        usage: Mapping[tuple[str, str], Decimal | int]
        now = 0.0
        try:
            now = guard.clock()
            if take is not None:
                token, failed, usage, found = take(items, sid, labels, now, int_usage)
            else:
                failed = None
                usage, found = (NO_COUNTERS, NO_LABELS) if read is None else read(
                    refs, sid, labels, now, int_usage)
            decision = decide(req, Snapshot(usage, found, NO_HISTORY, NO_GROUPS, now))
            if token is not None:
                if not decision.allowed:
                    release(token, now)
                    token = None
                elif one and (key_json := JSON_KEYS.get(sid)) is not None:
                    reservation = f'["{token}",[{before}{key_json}{after}]]'
                else:
                    reservation = reservation_text(token, sid, charge_json)
            elif failed is not None and decision.allowed:
                decision = over_limit(decision, next(c[4] for c in charge if c[0] == failed))
            if decision.labels or (records and decision.allowed):
                record(req, name, needs, decision, sid, reservation, now)
        except StoreError as err:
            return deny(policy, f"state store unavailable: {err}")
        except BaseException:
            if token is not None:
                flow.give_back(token, now)
            raise
        if reservation is not None and plain and decision.effect == "allow":
            return _REPLACE(decision, reservation=reservation)
        return finish(req, stage, name, needs, decision, reservation)

    return run
