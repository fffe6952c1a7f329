"""What the Guard must read from and write to its state store for one kind of call.

The answer depends only on the policy and the call's (stage, tool name, tags), so it is
worked out once per distinct call (`GuardPlan.plan`) and bound into that kind's runner
(`guard_flow.bind`): the per-call work is only what varies with the request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from charter.engine import ir
from charter.engine.plan import Plan, target_matches

__all__ = ["CHARGED_STAGES", "SESSION_COUNTS", "CallPlan", "CounterUse", "GuardPlan",
           "session_counter_id"]

Metric = Literal["cost_usd", "tokens", "calls"]
SESSION_COUNTS = ("tool_calls", "consecutive_tool_calls")
# Stages whose estimate is charged to budgets: tool calls and model calls.
CHARGED_STAGES = frozenset({"tool_call", "model_input", "model_output"})
_SESSION_METRICS: tuple[Metric, ...] = ("cost_usd", "tokens")


def session_counter_id(metric: str) -> str:
    """The store counter in which the Guard keeps `session.<metric>` (keyed by session id):
    the id of the per-session budgets' `CounterSpec`s."""
    return ir.session_total_id(metric)


class CounterUse(msgspec.Struct, frozen=True):
    """One counter a call is charged to on allow: a `CounterSpec` as the Guard uses it.

    `limit=None` charges without checking. `scope` holds the owning rule's conditions other
    than the limit test (`CounterSpec.scope`): the call counts only when they hold. `rule`
    is None for the Guard's own running session totals. `session` marks a per-session
    budget, whose counter exists only while the Guard keeps the session's total.
    """

    counter_id: str
    metric: Metric
    window: int | None
    key: ir.Expr | None  # None: the session id
    limit: int | Decimal | None
    scope: ir.Expr | None
    rule: ir.Rule | None
    session: bool = False
    cap: int | Decimal | None = None  # the limit when no grant is presented


def _cap(rule: ir.Rule, limit: int | Decimal | None) -> int | Decimal | None:
    """The cap on a counter when no grant is presented: a warn or shadow rule counts
    without capping."""
    return None if rule.shadow or rule.kind not in ("deny", "require_approval") else limit


def _reads_state(node: ir.Expr) -> bool:
    """Whether a scope condition reads what only the store's answer holds: labels,
    counters, history or the session totals the Guard keeps."""
    return any(isinstance(n, ir.Labels | ir.Counter | ir.Previously) or (
        isinstance(n, ir.Path) and n.root == "session" and n.keys[:1] in (
            ("cost_usd",), ("tokens",))) for n in ir.walk(node))


class CallPlan(msgspec.Struct, frozen=True):
    """What one (stage, tool, tags) needs from the store.

    `counters` are charged on allow (per-session budgets among them, `CounterUse.session`,
    when the Guard keeps the session's totals); `track` the `session.<metric>` totals the
    Guard keeps when the host sends none. `late`: some counter's scope reads the store's
    answer, so the reservation cannot be part of the read and follows the decision (a
    second `Store.take`); otherwise the call reserves in the same step as it reads.
    """

    tags: tuple[str, ...] = ()  # the request's and the declared tags
    counters: tuple[CounterUse, ...] = ()
    history_tools: tuple[str, ...] = ()
    labels: bool = False
    record: tuple[str, ...] | None = None  # fields to remember for `previously`
    approvals: bool = False  # an approval rule or an `approved` test can apply
    reads_calls: bool = False
    track: tuple[Metric, ...] = ()
    charged: bool = False  # a stage whose allowed calls are charged
    late: bool = False
    stateless: bool = True  # nothing to read or write: `decide` and no store at all


def _session_path(node: object, keys: tuple[str, ...]) -> bool:
    return isinstance(node, ir.Path) and node.root == "session" and node.keys[:1] == keys[:1]


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
        self.steps = self.counts_calls or self.turns or self.checkpoints
        self._uses = [(self._counter_use(spec), spec) for spec in policy.counters]
        self._cache: dict[tuple[str, str, tuple[str, ...]], CallPlan] = {}

    def plan_for(self, stage: str, name: str, req_tags: tuple[str, ...]) -> CallPlan:
        """The plan of a call to tool `name` (empty for model stages) at `stage`."""
        key = (stage, name, req_tags)
        found = self._cache.get(key)
        if found is None:
            found = self._compute(stage, name, req_tags)
            if len(self._cache) < 4096:
                self._cache[key] = found
        return found

    def _compute(self, stage: str, name: str, req_tags: tuple[str, ...]) -> CallPlan:
        tags = tuple(dict.fromkeys((*req_tags, *self.plan.declared_tags(name))))
        rules = [self.policy.rules[i] for i in self.plan.candidates(stage, name, tags)]
        nodes = [n for r in rules if r.cond is not None for n in ir.walk(r.cond)]
        history = tuple(dict.fromkeys(n.tool for n in nodes if isinstance(n, ir.Previously)))
        counters = tuple(u for u, spec in self._uses if spec.stage == stage
                         and all(target_matches(t, name, tags) for t in spec.targets))
        record = self.policy.history.get(name) if stage == "tool_call" else None
        labels = any(isinstance(n, ir.Labels) for n in nodes)
        reads_calls = any(_session_path(n, ("tool_calls",))
                          or _session_path(n, ("consecutive_tool_calls",)) for n in nodes)
        adds_labels = any(r.kind == "label" for r in rules)
        charged = stage in CHARGED_STAGES
        track = self.session_metrics if charged else ()
        stateless = not (counters or history or labels or record is not None
                         or reads_calls or adds_labels or track or self.steps)
        return CallPlan(
            tags=tags,
            counters=counters,
            history_tools=history,
            labels=labels,
            record=record,
            approvals=any(r.kind == "require_approval" for r in rules)
            or any(isinstance(n, ir.Approved) for n in nodes),
            reads_calls=reads_calls,
            track=track,
            charged=charged,
            late=any(u.scope is not None and _reads_state(u.scope) for u in counters),
            stateless=stateless,
        )

    def _counter_use(self, spec: ir.CounterSpec) -> CounterUse:
        rule = self.policy.rules[spec.rule]
        limit = spec.limit if isinstance(spec.limit, int | Decimal) else None
        return CounterUse(spec.id, spec.metric, spec.window, spec.key, limit, spec.scope, rule,
                          spec.session_total, _cap(rule, limit))
