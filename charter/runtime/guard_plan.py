"""What the Guard must read from and write to its state store for one kind of call.

The answer depends only on the policy and the call's (stage, tool name, tags), so it is
computed once per distinct call and cached: a call that needs no state costs the Guard one
dict lookup on top of `Policy.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

import msgspec

from charter.engine import ir
from charter.engine.plan import Plan, target_matches
from charter.runtime.state.base import to_units

__all__ = ["CHARGED_STAGES", "NO_ESTIMATE", "SESSION_COUNTS", "CounterUse", "GuardPlan",
           "MemoryPlan", "Needs", "session_counter_id"]

Metric = Literal["cost_usd", "tokens", "calls"]
SESSION_COUNTS = ("tool_calls", "consecutive_tool_calls")
# Stages whose estimate is charged to budgets: tool calls and model calls.
CHARGED_STAGES = frozenset({"tool_call", "model_input", "model_output"})
_SESSION_METRICS: tuple[Metric, ...] = ("cost_usd", "tokens")
_JSON = msgspec.json.encode
# Store units charged per metric when the request sends no estimate: one call.
NO_ESTIMATE: Final = {"calls": to_units(1), "cost_usd": 0, "tokens": 0}


def session_counter_id(metric: str) -> str:
    """The store counter in which the Guard keeps `session.<metric>` (keyed by session id):
    the id of the per-session budgets' `CounterSpec`s."""
    return ir.session_total_id(metric)


@dataclass(frozen=True, slots=True)
class CounterUse:
    """One counter a call is charged to on allow.

    `limit=None` charges without checking. `scope` holds the owning rule's conditions other
    than the limit test (from `scope ... {}` or `when`): the call counts only when they hold.
    `rule` is None for the Guard's own session totals.
    """

    counter_id: str
    metric: Metric
    window: int | None
    key: ir.Expr | None  # None: the session id
    limit: int | Decimal | None
    scope: ir.Expr | None
    rule: ir.Rule | None


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """What the Guard's lean stateful path (a `MemoryStore`, no approvals presented) can
    work out once per kind of call, so that only the counter keys vary between calls.

    `counters[i]` is `Needs.counters[i]` with the limit it is capped at when no grant is
    presented (the rule's limit, or None for a warn, shadow or otherwise uncapped counter)
    and that limit in store units. `keyed`: some counter is keyed by a request path (the
    others by the session id). `scoped`: some counter has scope conditions.

    When neither (`simple`), every counter is keyed by the session id and always counts,
    so the read and the charge are known but for the key: `refs` are the distinct
    (counter_id, window) to read, and `charge` the (counter_id, window, metric, limit units,
    counter) to reserve — one per counter id, against the tightest limit, in first-seen
    order, as `guard_flow.Flow._reserve` charges them.
    """

    counters: tuple[tuple[CounterUse, int | Decimal | None, int | None], ...]
    keyed: bool
    scoped: bool
    simple: bool
    refs: tuple[tuple[str, int | None], ...]
    charge: tuple[tuple[str, int | None, Metric, int | None, CounterUse], ...]
    # For each `charge` entry, the JSON text before and after the key of its
    # [counter_id, key, metric] entry in `decision.reservation`.
    charge_json: tuple[tuple[str, str], ...]
    # Every counter the call's rules read is only tested as `counter + N > LIMIT` (N a
    # number or an estimate, LIMIT a number), where a whole usage given as an `int` decides
    # exactly as the same `Decimal`: the store may then skip making the Decimal.
    int_usage: bool = False
    # `charge` as `MemoryStore.take_key` takes it for a request without an estimate:
    # (counter_id, window, units, limit units).
    take: tuple[tuple[str, int | None, int, int | None], ...] = ()


def _number(node: object) -> bool:
    return isinstance(node, ir.Const) and isinstance(node.value, int | Decimal) and not (
        isinstance(node.value, bool))


def _limit_tests_only(conds: list[ir.Expr]) -> bool:
    """True when every `ir.Counter` in `conds` is the left of `counter + N` (N a number
    constant or an estimate), itself the left of a comparison with a number constant."""
    safe = total = 0
    for cond in conds:
        for node in ir.walk(cond):
            if isinstance(node, ir.Counter):
                total += 1
            elif (isinstance(node, ir.Cmp) and _number(node.right)
                    and isinstance(node.left, ir.Arith) and node.left.op == "+"
                    and isinstance(node.left.left, ir.Counter)
                    and (_number(node.left.right) or isinstance(node.left.right, ir.Estimate))):
                safe += 1
    return safe == total


def _memory_plan(counters: tuple[CounterUse, ...], conds: list[ir.Expr]) -> MemoryPlan:
    limited = []
    for use in counters:
        limit = _static_limit(use)
        limited.append((use, limit, None if limit is None else to_units(limit)))
    keyed = any(u.key is not None for u in counters)
    scoped = any(u.scope is not None for u in counters)
    tightest: dict[str, tuple[int | Decimal | None, int | None, CounterUse]] = {}
    for use, limit, units in limited:
        old = tightest.get(use.counter_id)
        if old is None or (limit is not None and (old[0] is None or limit < old[0])):
            tightest[use.counter_id] = (limit, units, use)
    charge = tuple((cid, use.window, use.metric, units, use)
                   for cid, (_, units, use) in tightest.items())
    return MemoryPlan(
        counters=tuple(limited), keyed=keyed, scoped=scoped, simple=not (keyed or scoped),
        refs=tuple(dict.fromkeys((u.counter_id, u.window) for u in counters)),
        charge=charge,
        charge_json=tuple((f"[{_JSON(cid).decode()},", f",{_JSON(metric).decode()}]")
                          for cid, _, metric, _, _ in charge),
        int_usage=_limit_tests_only(conds),
        take=tuple((cid, window, NO_ESTIMATE[metric], units)
                   for cid, window, metric, units, _ in charge))


@dataclass(frozen=True, slots=True)
class Needs:
    """What one (stage, tool, tags) needs from the store."""

    tags: tuple[str, ...] = ()  # the request's and the declared tags
    counters: tuple[CounterUse, ...] = ()
    session_budgets: tuple[CounterUse, ...] = ()  # per-session budgets over session.<metric>
    history_tools: tuple[str, ...] = ()
    labels: bool = False
    record: tuple[str, ...] | None = None  # fields to remember for `previously`
    approvals: bool = False  # an approval rule or an `approved` test can apply
    reads_calls: bool = False
    adds_labels: bool = False  # a `label session` rule can apply
    track_session: tuple[Metric, ...] = ()  # session.<metric> totals kept by the Guard
    stateless: bool = True  # nothing to read or write: the lean path
    # Set when the call reads and writes only counters, labels and history records (no
    # history read, no loop-guard counts, no session totals kept by the Guard).
    memory: MemoryPlan | None = None


def _session_path(node: object, keys: tuple[str, ...]) -> bool:
    return isinstance(node, ir.Path) and node.root == "session" and node.keys[:1] == keys[:1]


def _static_limit(use: CounterUse) -> int | Decimal | None:
    """The cap on `use` when no grant is presented (`guard_flow._limit` with no groups)."""
    rule = use.rule
    if rule is None or rule.shadow or rule.kind not in ("deny", "require_approval"):
        return None
    return use.limit


class GuardPlan:
    """The store needs of every call to one policy, computed lazily and cached."""

    def __init__(self, policy: ir.Policy, plan: Plan) -> None:
        self.policy = policy
        self.plan = plan
        nodes = [n for r in policy.rules if r.cond is not None for n in ir.walk(r.cond)]
        # Loop-guard counts must be maintained on every step (a model step resets the
        # consecutive count) as soon as any rule reads them.
        self.counts_calls = any(
            isinstance(n, ir.Path) and n.root == "session" and n.keys[:1] in (
                ("tool_calls",), ("consecutive_tool_calls",)) for n in nodes)
        self.session_metrics: tuple[Metric, ...] = tuple(
            m for m in _SESSION_METRICS if any(_session_path(n, (m,)) for n in nodes))
        # `session.turn` (`per turn` counters read it) and the checkpoint count are kept on
        # every step when some rule or counter reads them and the host does not send them.
        keys = [n for c in policy.counters if c.key is not None for n in ir.walk(c.key)]
        self.turns = any(_session_path(n, ("turn",)) for n in (*nodes, *keys))
        self.checkpoints = any(_session_path(n, ("tool_calls_since_checkpoint",))
                               for n in nodes)
        # Per-session budgets test `session.<metric>`, kept by the Guard when the host does
        # not send it; every other counter is read as an `ir.Counter`.
        self._session_budgets = [(self._counter_use(s), s) for s in policy.counters
                                 if s.session_total]
        self._specs = [(self._counter_use(s), s) for s in policy.counters
                       if not s.session_total]
        self._cache: dict[tuple[str, str, tuple[str, ...]], Needs] = {}
        # Stateless calls named by a plain tool string, for `Guard.check`'s lean path.
        self.lean: dict[tuple[str, str], Needs] = {}
        # Calls with a `Needs.memory` plan named by a plain tool string.
        self.memory: dict[tuple[str, str], Needs] = {}

    def needs(self, stage: str, name: str, req_tags: tuple[str, ...]) -> Needs:
        """The needs of a call to tool `name` (empty for model stages) at `stage`."""
        key = (stage, name, req_tags)
        found = self._cache.get(key)
        if found is None:
            found = self._compute(stage, name, req_tags)
            if len(self._cache) < 4096:
                self._cache[key] = found
                if found.stateless and not req_tags:
                    self.lean[(stage, name)] = found
                elif found.memory is not None and not req_tags:
                    self.memory[(stage, name)] = found
        return found

    def _compute(self, stage: str, name: str, req_tags: tuple[str, ...]) -> Needs:
        tags = tuple(dict.fromkeys((*req_tags, *self.plan.declared_tags(name))))
        rules = [self.policy.rules[i] for i in self.plan.candidates(stage, name, tags)]
        nodes = [n for r in rules if r.cond is not None for n in ir.walk(r.cond)]
        history = tuple(dict.fromkeys(n.tool for n in nodes if isinstance(n, ir.Previously)))
        counters = tuple(u for u, spec in self._specs if spec.stage == stage
                         and all(target_matches(t, name, tags) for t in spec.targets))
        budgets = tuple(u for u, spec in self._session_budgets if spec.stage == stage
                        and all(target_matches(t, name, tags) for t in spec.targets))
        record = self.policy.history.get(name) if stage == "tool_call" else None
        labels = any(isinstance(n, ir.Labels) for n in nodes)
        reads_calls = any(_session_path(n, ("tool_calls",))
                          or _session_path(n, ("consecutive_tool_calls",)) for n in nodes)
        adds_labels = any(r.kind == "label" for r in rules)
        track = self.session_metrics if stage in CHARGED_STAGES else ()
        steps = self.counts_calls or self.turns or self.checkpoints
        stateless = not (counters or budgets or history or labels or record is not None
                         or reads_calls or adds_labels or track or steps)
        memory = None
        if not (stateless or history or reads_calls or track or steps):
            memory = _memory_plan(counters, [r.cond for r in rules if r.cond is not None])
        return Needs(
            tags=tags,
            counters=counters,
            session_budgets=budgets,
            history_tools=history,
            labels=labels,
            record=record,
            approvals=any(r.kind == "require_approval" for r in rules)
            or any(isinstance(n, ir.Approved) for n in nodes),
            reads_calls=reads_calls,
            adds_labels=adds_labels,
            track_session=track,
            stateless=stateless,
            memory=memory,
        )

    def _counter_use(self, spec: ir.CounterSpec) -> CounterUse:
        rule = self.policy.rules[spec.rule]
        limit = spec.limit if isinstance(spec.limit, int | Decimal) else None
        return CounterUse(spec.id, spec.metric, spec.window, spec.key, limit, spec.scope, rule)
