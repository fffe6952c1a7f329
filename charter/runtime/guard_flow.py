"""The Guard's work for one request: read state, verify grants, decide, reserve, record."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import msgspec

from charter.engine import ir
from charter.engine.combine import rule_reason
from charter.engine.decision import Decision
from charter.engine.interpreter import Ctx, counter_key, evaluate
from charter.engine.snapshot import Snapshot
from charter.runtime.approvals import (
    BAD_SIGNATURE,
    EXPIRED,
    MALFORMED,
    REPLAYED,
    WRONG_ACTION,
    Grant,
    action_digest,
    consume_grant,
    verify_grant,
)
from charter.runtime.approvers import requester_ids
from charter.runtime.guard_plan import (
    CHARGED_STAGES,
    NO_ESTIMATE,
    SESSION_COUNTS,
    CounterUse,
    MemoryPlan,
    Needs,
    session_counter_id,
)
from charter.runtime.state import (
    CounterRef,
    MemoryStore,
    Reservation,
    SessionCalls,
    StateQuery,
    StateSnapshot,
    StoreError,
)
from charter.runtime.state.base import to_units
from charter.stdlib.values import RequestError, check_int, check_num

if TYPE_CHECKING:
    from charter.runtime.guard import Guard
    from charter.runtime.policy import Policy

__all__ = ["JSON_KEYS", "NO_COUNTERS", "NO_GROUPS", "NO_HISTORY", "NO_LABELS", "Call", "Flow",
           "deny", "reservation_text", "session_id", "units_of"]

_LOG = logging.getLogger("charter.guard")
_REJECTED: Final = {
    MALFORMED: "approval rejected: not a valid grant (malformed)",
    BAD_SIGNATURE: "approval rejected: grant signature is invalid (forged or altered)",
    WRONG_ACTION: "approval rejected: grant was issued for a different action (transplanted)",
    EXPIRED: "approval rejected: grant has expired",
    REPLAYED: "approval rejected: grant was already used (replayed)",
}
_NO_DIGEST = "approval rejected: the action's args cannot be canonicalised"
_RESERVATION = msgspec.json.Decoder(tuple[str, list[tuple[str, str, str]]])
_ENCODE = msgspec.json.encode
NO_GROUPS: frozenset[str] = frozenset()
NO_LABELS: frozenset[str] = frozenset()
NO_HISTORY: Mapping[str, Any] = MappingProxyType({})
NO_COUNTERS: Mapping[tuple[str, str], Any] = MappingProxyType({})

# (counter, its key or None when the key field is missing, the missing field's error)
_Use = tuple[CounterUse, str | None, str | None]


@dataclass(slots=True)
class Call:
    """One well-formed request as the Guard reads it."""

    req: dict[str, Any]
    stage: str
    name: str
    needs: Needs
    grants: list[dict[str, str]] = field(default_factory=list)  # used up, for the log
    # What the policy decided from, for the decision log's replay block: the request as
    # decided (session totals included), the snapshot, and the policy's own decision.
    used: tuple[dict[str, Any], Snapshot | None, Decision] | None = None


def session_id(req: Mapping[str, Any]) -> str | None:
    """`session.id` when it is a string, else None."""
    session = req.get("session")
    sid = session.get("id") if isinstance(session, dict) else None
    return sid if type(sid) is str else None


def deny(policy: Policy, reason: str) -> Decision:
    """A fail-closed deny with one reason."""
    return Decision(effect="deny", allowed=False, reasons=(reason,), policy=policy.info)


class Flow:
    """The stateful path of `Guard.check`, and `settle`."""

    def __init__(self, guard: Guard) -> None:
        self.g = guard

    def run(self, call: Call) -> Decision:
        needs = call.needs
        approvals = call.req.get("approvals")
        if needs.stateless and not approvals:
            decision = self.g.policy.decide(call.req)
            call.used = (call.req, None, decision)
            if decision.effect == "require_approval" or (needs.approvals and not decision.allowed):
                decision = msgspec.structs.replace(decision, action=self._digest(call))
            return decision
        try:
            return self._stateful(call, approvals)
        except StoreError as err:
            return deny(self.g.policy, f"state store unavailable: {err}")

    def _digest(self, call: Call) -> str | None:
        return _digest(call.req)

    # ── the memory path (see guard_lean) ─────────────────────────────────────

    def record(self, req: dict[str, Any], name: str, needs: Needs, decision: Decision,
               sid: str | None, token: str | None, now: float) -> None:
        """Remember an allowed call's fields and the labels added (releasing the reservation
        if that fails)."""
        store = self.g.store
        try:
            if decision.allowed and needs.record is not None and sid is not None:
                args = req.get("args")
                args = args if isinstance(args, dict) else {}
                store.record_call(sid, name, {f: args[f] for f in needs.record if f in args},
                                  now)
            if decision.labels and sid is not None:
                store.add_labels(sid, decision.labels)
        except BaseException:
            if token is not None:
                self._release_quietly(token, now)
            raise

    @staticmethod
    def finish(req: dict[str, Any], stage: str, name: str, needs: Needs, decision: Decision,
               token: str | None) -> Decision:
        """The decision with its reservation token and, when it can be approved, action."""
        if decision.effect == "require_approval" or (needs.approvals and not decision.allowed):
            if token is not None:
                return msgspec.structs.replace(decision, reservation=token,
                                               action=_digest(req))
            return msgspec.structs.replace(decision, action=_digest(req))
        if token is not None:
            return msgspec.structs.replace(decision, reservation=token)
        return decision

    def memory(self, req: dict[str, Any], stage: str, name: str, needs: Needs,
               plan: MemoryPlan, store: MemoryStore) -> Decision:
        """`_stateful` for a call with a `Needs.memory` plan over a `MemoryStore`, with no
        approvals presented. `guard_lean` sends here what its closure does not handle:
        counters keyed by request paths or with scope conditions, a request without a
        session id, or one whose estimate is not valid."""
        try:
            now = self.g.clock()
            sid = session_id(req)
            policy = self.g.policy
            # (counter, key or None, why the key is missing) for each counter, as `_stateful`.
            uses: list[_Use]
            if plan.keyed:
                ctx = Ctx(req, None, stage, name, needs.tags, policy.matchers)
                uses = [(u, *self._key(u, ctx, sid)) for u in needs.counters]
            elif sid is not None:
                uses = [(u, sid, None) for u in needs.counters]
            else:
                uses = [(u, None, "session.id missing") for u in needs.counters]
            refs = list(dict.fromkeys((u.counter_id, key, u.window)
                                      for u, key, _ in uses if key is not None))
            if refs or (needs.labels and sid is not None):
                usage, labels = store.read_counters(refs, sid or "", needs.labels, now)
            else:
                usage, labels = {}, NO_LABELS
            st = Snapshot(usage, labels, NO_HISTORY, NO_GROUPS, now)
            decision = policy.decide(req, st)
            token: str | None = None
            if decision.allowed and stage in CHARGED_STAGES:
                decision, token = self._reserve_units(req, st, stage, name, needs, plan,
                                                      decision, uses, store, now)
            self.record(req, name, needs, decision, sid, token, now)
        except StoreError as err:
            return deny(self.g.policy, f"state store unavailable: {err}")
        return self.finish(req, stage, name, needs, decision, token)

    def _reserve_units(self, req: dict[str, Any], st: Snapshot, stage: str, name: str,
                       needs: Needs, plan: MemoryPlan, decision: Decision,
                       uses: Sequence[_Use], store: MemoryStore, now: float
                       ) -> tuple[Decision, str | None]:
        """`_reserve` with no grants presented, through `MemoryStore.reserve_units`."""
        estimate = req.get("estimate")
        try:
            units = NO_ESTIMATE if estimate is None else units_of(estimate)
        except TypeError as err:
            return deny(self.g.policy, f"request error: estimate: {err}"), None
        ctx = Ctx(req, st, stage, name, needs.tags, self.g.policy.matchers) if (
            plan.scoped) else None
        # (counter_id, key) -> (window, units, limit, limit units, use); see `_reserve`.
        charge: dict[tuple[str, str], tuple[int | None, int, int | Decimal | None,
                                            int | None, CounterUse]] = {}
        for (use, key, missing), (_, limit, limit_units) in zip(uses, plan.counters,
                                                               strict=True):
            if ctx is not None and use.scope is not None and not _holds(use.scope, ctx):
                continue
            if key is None:
                rule = f" of rule {use.rule.id}" if use.rule is not None else ""
                return deny(self.g.policy, f"request error: {missing} (counter key{rule})"), None
            slot = (use.counter_id, key)
            old = charge.get(slot)
            if old is None or (limit is not None and (old[2] is None or limit < old[2])):
                charge[slot] = (use.window, units[use.metric], limit, limit_units, use)
        if not charge:
            return decision, None
        ok, token = store.reserve_units(
            [(cid, key, w, amount, lim) for (cid, key), (w, amount, _, lim, _) in charge.items()],
            now)
        if not ok:
            failed = next(c[4] for (cid, _), c in charge.items() if cid == token)
            return self.over_limit(decision, failed), None
        return decision, _ENCODE(
            (token, [(cid, key, c[4].metric) for (cid, key), c in charge.items()])).decode()

    # ── the stateful path ────────────────────────────────────────────────────

    def _stateful(self, call: Call, approvals: object) -> Decision:
        g, needs, req = self.g, call.needs, call.req
        store, now = g.store, g.clock()
        sid = session_id(req)
        raw_session = req.get("session")
        session: dict[str, Any] = raw_session if isinstance(raw_session, dict) else {}
        inject: dict[str, Any] = {}
        read_calls = False
        if sid is not None and g.plan.counts_calls and any(k not in session
                                                           for k in SESSION_COUNTS):
            # A tool result belongs to the call before it: it neither counts nor resets.
            if call.stage == "tool_result":
                read_calls = needs.reads_calls
            else:
                _inject_counts(inject, session,
                               store.bump_session_calls(sid, call.stage == "tool_call"))
        groups, valid, rejected = self._verify(call, approvals, now)
        if sid is not None:
            self._steps(call, session, sid, bool(valid), inject, now)
        keyed = {**req, "session": {**session, **inject}} if inject else req
        ctx = Ctx(keyed, None, call.stage, call.name, needs.tags, g.policy.matchers)
        uses: list[_Use] = [(u, *self._key(u, ctx, sid)) for u in needs.counters]
        tracked = [m for m in needs.track_session if sid is not None and m not in session]
        if call.stage in CHARGED_STAGES:
            uses.extend((u, sid, None) for u in needs.session_budgets if u.metric in tracked)
            uses.extend((CounterUse(session_counter_id(m), m, None, None, None, None, None),
                         sid, None) for m in tracked)
        refs = tuple(dict.fromkeys(CounterRef(u.counter_id, key, u.window)
                                   for u, key, _ in uses if key is not None))
        if tracked and call.stage not in CHARGED_STAGES:
            refs += tuple(CounterRef(session_counter_id(m), sid or "") for m in tracked)
        history = needs.history_tools if sid is not None else ()
        snap = StateSnapshot()
        if refs or history or read_calls or (needs.labels and sid is not None):
            snap = store.read(StateQuery(sid or "", refs, history, needs.labels), now)
            if read_calls:
                _inject_counts(inject, session, snap.calls)
            for m in tracked:
                used = snap.usage.get((session_counter_id(m), sid or ""), Decimal(0))
                inject[m] = int(used) if m == "tokens" else used
        if inject:
            req = {**req, "session": {**session, **inject}}
        st = Snapshot(
            counters=snap.usage, labels=snap.labels,
            history={t: tuple((e.time, e.fields) for e in h) for t, h in snap.history.items()},
            approved_groups=groups, now=now, approvers=_people(valid))
        decision = g.policy.decide(req, st)
        call.used = (req, st, decision)
        token: str | None = None
        try:
            if decision.allowed and call.stage in CHARGED_STAGES:
                ctx = Ctx(req, st, call.stage, call.name, needs.tags, g.policy.matchers)
                decision, token = self._reserve(call, ctx, decision, uses, groups, now)
            if decision.allowed and valid:
                decision, rejected = self._consume(call, st, decision, valid, rejected, token)
                if not decision.allowed:
                    token = None  # released by _consume
                elif sid is not None and g.plan.checkpoints and "approval" in g.resets:
                    g.steps.reset(sid, now)
            self.record(req, call.name, needs, decision, sid, token, now)
        except BaseException:
            if token is not None:
                self._release_quietly(token, now)
            raise
        changes: dict[str, Any] = {}
        if rejected:
            changes["reasons"] = decision.reasons + tuple(
                r for r in dict.fromkeys(rejected) if r not in decision.reasons)
        if token is not None:
            changes["reservation"] = token
        if decision.effect == "require_approval" or (needs.approvals and not decision.allowed):
            changes["action"] = self._digest(call)
        return msgspec.structs.replace(decision, **changes) if changes else decision

    def _steps(self, call: Call, session: Mapping[str, Any], sid: str, retry: bool,
               inject: dict[str, Any], now: float) -> None:
        """`session.turn` and `session.tool_calls_since_checkpoint`, when the policy reads
        them and the host does not send them (`guard_steps`)."""
        g = self.g
        if g.plan.turns and "turn" not in session:
            inject["turn"] = g.steps.turn(call.req, sid, now)
        if g.plan.checkpoints and "tool_calls_since_checkpoint" not in session:
            inject["tool_calls_since_checkpoint"] = g.steps.checkpoint(
                call.req, sid, call.stage, retry, "turn" in g.resets, now)

    def _key(self, use: CounterUse, ctx: Ctx, sid: str | None) -> tuple[str | None, str | None]:
        if use.key is None:
            return (sid, None) if sid is not None else (None, "session.id missing")
        try:
            return counter_key(use.key, ctx.req), None
        except RequestError as err:
            return None, err.message

    def _verify(self, call: Call, approvals: object, now: float
                ) -> tuple[frozenset[str], list[Grant], list[str]]:
        if not approvals:
            return frozenset(), [], []
        items = approvals if isinstance(approvals, list | tuple) else [approvals]
        digest = self._digest(call)
        groups: set[str] = set()
        valid: list[Grant] = []
        rejected: list[str] = []
        for item in items:
            if digest is None:
                rejected.append(_NO_DIGEST)
                continue
            check = verify_grant(self.g.secret, item, digest, now, self.g.store)
            if check.ok and check.group is not None:
                grant = Grant.parse(item)
                refused = self._refuse(grant, call.req)
                if refused is not None:
                    rejected.append(refused)
                    continue
                groups.add(check.group)
                valid.append(grant)
            else:
                rejected.append(_REJECTED.get(check.code or MALFORMED, _REJECTED[MALFORMED]))
        return frozenset(groups), valid, rejected

    def _refuse(self, grant: Grant, req: Mapping[str, Any]) -> str | None:
        """Why a well-signed grant still does not count: its approver asked for the action,
        or is not a member of its group in the Guard's directory (`approvers`)."""
        if grant.approver in requester_ids(req):
            return "approval rejected: the approver is the requester"
        member = self.g.is_member
        if member is not None and not member(grant.approver, grant.group):
            return "approval rejected: the approver is not a member of the group"
        return None

    def _reserve(self, call: Call, ctx: Ctx, decision: Decision, uses: Sequence[_Use],
                 groups: frozenset[str], now: float) -> tuple[Decision, str | None]:
        try:
            amounts = _amounts(call.req.get("estimate"))
        except TypeError as err:
            return deny(self.g.policy, f"request error: estimate: {err}"), None
        # Several rules may share one counter (per-session budgets); charge it once, against
        # the tightest limit that applies.
        charge: dict[tuple[str, str], tuple[int | None, Decimal | int,
                                            int | Decimal | None, CounterUse]] = {}
        for use, key, missing in uses:
            if use.scope is not None and not _holds(use.scope, ctx):
                continue
            if key is None:
                rule = f" of rule {use.rule.id}" if use.rule is not None else ""
                return deny(self.g.policy, f"request error: {missing} (counter key{rule})"), None
            limit = _limit(use, groups)
            slot = (use.counter_id, key)
            old = charge.get(slot)
            if old is None or (limit is not None and (old[2] is None or limit < old[2])):
                charge[slot] = (use.window, amounts[use.metric], limit, use)
        if not charge:
            return decision, None
        result = self.g.store.reserve(
            [Reservation(cid, key, w, amount, limit)
             for (cid, key), (w, amount, limit, _) in charge.items()], now)
        if not result.ok or result.token is None:
            failed = next(u for (cid, _), (_, _, _, u) in charge.items() if cid == result.failed)
            return self.over_limit(decision, failed), None
        entries = [(cid, key, u.metric) for (cid, key), (_, _, _, u) in charge.items()]
        return decision, msgspec.json.encode((result.token, entries)).decode()

    def over_limit(self, decision: Decision, use: CounterUse) -> Decision:
        rule = use.rule
        assert rule is not None  # only rules set limits
        reason = rule_reason(rule)
        base = msgspec.structs.replace(
            decision, allowed=False, reasons=(*decision.reasons, reason),
            rules=(*decision.rules, rule.id))
        if rule.kind == "require_approval":
            approvers = tuple(dict.fromkeys((*decision.approvers, *rule.groups)))
            return msgspec.structs.replace(base, effect="require_approval", approvers=approvers)
        return msgspec.structs.replace(base, effect="deny")

    def _consume(self, call: Call, st: Snapshot, decision: Decision,
                 valid: list[Grant], rejected: list[str], token: str | None
                 ) -> tuple[Decision, list[str]]:
        """Use up every valid grant of an allowed action; one that another request used
        first is a replay, and the action is decided again without it. The grants used are
        noted on `call` for the decision log."""
        req = call.req
        kept: set[str] = set()
        used: list[Grant] = []
        lost = False
        for grant in valid:
            if consume_grant(grant, self.g.store):
                kept.add(grant.group)
                used.append(grant)
                call.grants.append({"approver": grant.approver, "group": grant.group,
                                    "grant": grant.nonce})
            else:
                lost = True
        if not lost:
            return decision, rejected
        rejected = [*rejected, _REJECTED[REPLAYED]]
        again_st = Snapshot(
            counters=st.counters, labels=st.labels, history=st.history,
            approved_groups=frozenset(kept), now=st.now, approvers=_people(used))
        again = self.g.policy.decide(req, again_st)
        if not again.allowed:
            call.used = (req, again_st, again)
        if not again.allowed and token is not None:
            self._release_quietly(token, st.now or 0.0)
        return (again if not again.allowed else decision), rejected

    def _release_quietly(self, reservation: str, now: float) -> None:
        """Release `decision.reservation` text, logging (not raising) a failure."""
        self.give_back(_parse(reservation)[0], now)

    def give_back(self, token: str, now: float) -> None:
        """Release a store token, logging (not raising) a failure."""
        try:
            self.g.store.release(token, now)
        except Exception:  # noqa: BLE001 - an unreleased reservation only over-counts
            _LOG.exception("cannot release a reservation")

    # ── settling ─────────────────────────────────────────────────────────────

    def settle(self, decision: Decision, cost_usd: Decimal | float | int | None,
               tokens: int | None, release: bool = False) -> bool:
        if decision.reservation is None:
            return True
        token, entries = _parse(decision.reservation)
        actual: dict[tuple[str, str], Decimal | int] = {}
        if not release and (cost_usd is not None or tokens is not None):
            cost = None if cost_usd is None else _amount(cost_usd, "cost_usd")
            count = None if tokens is None else _amount(tokens, "tokens")
            for cid, key, metric in entries:
                value = cost if metric == "cost_usd" else count if metric == "tokens" else None
                if value is not None:
                    actual[(cid, key)] = value
        try:
            if release:
                self.g.store.release(token, self.g.clock())
            else:
                self.g.store.settle(token, actual, self.g.clock())
        except StoreError:
            _LOG.exception("cannot settle a reservation")
            return False
        return True


# JSON text of session ids, for `reservation_text` (bounded: cleared when full).
JSON_KEYS: dict[str, str] = {}


def reservation_text(token: str, key: str, entries: tuple[tuple[str, str], ...]) -> str:
    """`decision.reservation` for a store token and counters all keyed by `key`, where
    `entries` are the JSON texts before and after the key of each (counter_id, key, metric)
    entry: the same text as `msgspec.json.encode((token, [(cid, key, metric), ...]))`."""
    text = JSON_KEYS.get(key)
    if text is None:
        if len(JSON_KEYS) >= 4096:
            JSON_KEYS.clear()
        text = JSON_KEYS[key] = _ENCODE(key).decode()
    # Store tokens are letters, digits, "-", "_" and "." (`MemoryStore.reserve_units`): no
    # JSON escaping needed.
    if len(entries) == 1:
        before, after = entries[0]
        return f'["{token}",[{before}{text}{after}]]'
    inner = ",".join(f"{before}{text}{after}" for before, after in entries)
    return f'["{token}",[{inner}]]'


def units_of(estimate: object) -> dict[str, int]:
    """`_amounts` in store units (raises TypeError the same way)."""
    return {metric: to_units(amount) for metric, amount in _amounts(estimate).items()}


def _digest(req: Mapping[str, Any]) -> str | None:
    """The action digest a grant for `req` must carry (`approvals.action_of` says what it
    binds); None when the request cannot be canonicalised, so nothing can approve it."""
    try:
        return action_digest(req)
    except ValueError:
        return None


def _parse(reservation: str) -> tuple[str, list[tuple[str, str, str]]]:
    try:
        return _RESERVATION.decode(reservation)
    except msgspec.DecodeError as err:
        raise ValueError(f"not a reservation of this Guard: {reservation!r}") from err


def _inject_counts(inject: dict[str, Any], session: Mapping[str, Any],
                   counts: SessionCalls) -> None:
    values = (counts.tool_calls, counts.consecutive_tool_calls)
    for name, value in zip(SESSION_COUNTS, values, strict=True):
        if name not in session:
            inject[name] = value


def _amount(value: object, what: str) -> Decimal | int:
    num = check_int(value) if what == "tokens" else check_num(value)
    if num < 0:
        raise ValueError(f"{what} must not be negative")
    return num


def _amounts(estimate: object) -> dict[str, Decimal | int]:
    est = estimate if isinstance(estimate, dict) else {}
    if estimate is not None and not isinstance(estimate, dict):
        raise TypeError("expected an object")
    out: dict[str, Decimal | int] = {"calls": 1}
    for metric in ("cost_usd", "tokens"):
        value = est.get(metric)
        try:
            out[metric] = 0 if value is None else _amount(value, metric)
        except ValueError as err:
            raise TypeError(str(err)) from None
    return out


def _limit(use: CounterUse, groups: frozenset[str]) -> int | Decimal | None:
    rule = use.rule
    if rule is None or rule.shadow:
        return None
    if rule.kind == "deny":
        return use.limit
    if rule.kind == "require_approval" and not groups.intersection(rule.groups):
        return use.limit
    return None  # warn, or an approval that was granted: count without capping


def _holds(scope: ir.Expr, ctx: Ctx) -> bool:
    try:
        return bool(evaluate(scope, ctx))
    except Exception:  # noqa: BLE001 - when in doubt, count the call (fail closed)
        return True


def _people(grants: Sequence[Grant]) -> Mapping[str, frozenset[str]]:
    """The distinct approvers of the valid grants, by group (`approved by N of "g"`)."""
    if not grants:
        return NO_HISTORY
    out: dict[str, set[str]] = {}
    for grant in grants:
        out.setdefault(grant.group, set()).add(grant.approver)
    return {group: frozenset(people) for group, people in out.items()}
