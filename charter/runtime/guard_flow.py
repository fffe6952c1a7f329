"""The Guard's one algorithm for a request: read and reserve, decide, settle the outcome.

`bind(guard, stage, name, request_tags, plan)` returns the runner of one kind of call: the
algorithm below with everything that depends only on the kind (`guard_plan.CallPlan`, the
policy's `decider`) bound once. Every store runs the same code; only `Store.take` differs
between them.

1. Loop-guard counts and the session's turn and checkpoint, when the host does not send
   them (`Store.bump_session_calls`, `guard_steps`); approval grants verified.
2. What the call would be charged on allow: each counter's key (from the request), amount
   (the estimate) and limit (the rule's, unless a grant lifts it).
3. One `Store.take`: the counters, labels, history and loop counts the decision reads, and
   the reservation, in one atomic step. The usage it returns is from before the
   reservation, so the decision is the one read-then-reserve would give. (A plan whose
   counter scopes read that state reserves in a second take after the decision.)
4. Decide with the pure policy on that state: the one place where the state a decision
   used exists (`Seen.used` hands it to the decision log).
5. Not allowed: the reservation is given back. Allowed: a counter that did not fit makes
   it its rule's deny; grants are used up; history and labels are recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import msgspec

from charter.engine import ir
from charter.engine.combine import rule_reason
from charter.engine.decision import Decision, RuleError
from charter.engine.interpreter import Ctx, counter_key, evaluate
from charter.engine.snapshot import Snapshot
from charter.runtime.approvers import requester_ids
from charter.runtime.guard_plan import SESSION_COUNTS, CallPlan, CounterUse, session_counter_id
from charter.runtime.logs import logger
from charter.runtime.state import (
    CounterRef,
    Reservation,
    SessionCalls,
    StateQuery,
    StoreError,
    Taken,
)
from charter.stdlib.values import RequestError, check_int, check_num, type_name

if TYPE_CHECKING:
    from charter.runtime.approvals import Grant
    from charter.runtime.guard import Guard
    from charter.runtime.policy import Policy

__all__ = ["Runner", "Seen", "bind", "deny", "session_id", "settle"]


class Seen(msgspec.Struct):
    """What a decision used, filled in by a runner that is given one (the Guard does when it
    keeps a decision log): `used` is (the request as decided, session facts the Guard keeps
    included; the state the policy decided on — counters before this call's reservation,
    labels, history, verified grant groups and approvers, the clock — or None for a call
    that needs none; the policy's own decision), for the log's replay block, and `grants`
    the grants used up."""

    used: tuple[dict[str, Any], Snapshot | None, Decision] | None = None
    grants: list[dict[str, str]] = msgspec.field(default_factory=list)


Runner = Callable[[dict[str, Any], Seen | None], Decision]


@cache
def _rejected() -> dict[str, str]:
    """Why a grant was rejected, by `verify_grant`'s code. runtime.approvals (grants, their
    canonical digests) is imported here and in the functions that verify, use up or digest:
    only a request with grants, or a decision that needs an approval, does; an allow does
    not (~0.4 ms of a hook call's imports)."""
    from charter.runtime.approvals import (
        BAD_SIGNATURE,
        EXPIRED,
        MALFORMED,
        REPLAYED,
        WRONG_ACTION,
    )

    return {
        MALFORMED: "approval rejected: not a valid grant (malformed)",
        BAD_SIGNATURE: "approval rejected: grant signature is invalid (forged or altered)",
        WRONG_ACTION: "approval rejected: grant was issued for a different action (transplanted)",
        EXPIRED: "approval rejected: grant has expired",
        REPLAYED: "approval rejected: grant was already used (replayed)",
    }


#: why a session-keyed counter has no key (shared: a RequestError is only ever read)
_NO_SESSION_ID: Final = RequestError("session.id missing", "session.id")
_NO_DIGEST = "approval rejected: the action's args cannot be canonicalised"


class _Charged(msgspec.Struct, frozen=True):
    """A reserved counter as `decision.reservation` names it (a `Reservation`'s fields)."""

    counter_id: str
    key: str


# `decision.reservation`: the reservations the store made and the metric of each, so that
# `settle` knows which actual amount goes to which counter, then the store's token. Written
# `<n>:<JSON of n characters><token>`: the JSON repeats from call to call and is made once
# (`_held`), the token is appended as it is. (The reservations are encoded as they are:
# building (counter_id, key, metric) triples cost more than the rest.)
_HELD = msgspec.json.Decoder(tuple[tuple[_Charged, ...], tuple[str, ...]])
# Before 2026-12: one JSON array, `[token, reservations, metrics]`.
_OLD_HELD = msgspec.json.Decoder(tuple[str, tuple[_Charged, ...], tuple[str, ...]])
_ENCODE = msgspec.json.encode
# `_held` JSON -> what `_HELD` decodes it to (shared: frozen)
_UNHELD: dict[str, tuple[tuple[_Charged, ...], tuple[str, ...]]] = {}
_REPLACE = msgspec.structs.replace
_NO_GROUPS: frozenset[str] = frozenset()
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NO_PEOPLE: Mapping[str, frozenset[str]] = _EMPTY
_NOTHING_TO_READ = StateQuery("", labels=False, calls=False)
_NOT_TAKEN = Taken()
_NO_GRANTS: list[Grant] = []  # never changed
_NO_REASONS: list[str] = []  # never changed
# (groups, valid grants, rejections, approvers) of a request without grants
_NO_GRANT: Final = (_NO_GROUPS, _NO_GRANTS, _NO_REASONS, _NO_PEOPLE)
_NO_INJECT: dict[str, Any] = {}  # never changed
_NO_USES: list[Any] = []  # never changed
_MAX_SESSIONS = 512  # sessions whose charge a runner keeps built (then it starts again)
# (class, value) of an estimate's cost_usd and tokens -> its amounts (`_amounts`)
_ESTIMATES: dict[tuple[object, ...], Mapping[str, Decimal | int]] = {}
_MAX_ESTIMATES = 1024
_ONE_CALL: Final[Mapping[str, Decimal | int]] = MappingProxyType(
    {"calls": 1, "cost_usd": 0, "tokens": 0})


def _held(charge: Sequence[Reservation], metrics: Sequence[str]) -> str:
    """`decision.reservation` but the store's token (`_HELD`). Built apart from the token
    so that a plan whose charge repeats builds it once."""
    held = _ENCODE((charge, metrics)).decode()
    return f"{len(held)}:{held}"


def _unheld(reservation: object) -> tuple[str, tuple[_Charged, ...], tuple[str, ...]]:
    """(the store's token, the reservations, their metrics) of a `decision.reservation`;
    ValueError for anything `_held` and a token did not make."""
    if type(reservation) is str:
        colon = reservation.find(":")
        size = reservation[:colon]
        if 0 < colon < 10 and size.isascii() and size.isdigit():
            end = colon + 1 + int(size)
            held = reservation[colon + 1:end]
            found = _UNHELD.get(held)
            if found is None:
                found = _decode_held(held)
            if found is not None:
                return reservation[end:], found[0], found[1]
        elif reservation.startswith("["):
            try:  # as versions before 2026-12 wrote it (held across an upgrade)
                token, charged, metrics = _OLD_HELD.decode(reservation)
            except msgspec.DecodeError:
                pass
            else:
                if len(charged) == len(metrics):
                    return token, charged, metrics
    raise ValueError(f"not a reservation of this Guard: {reservation!r}")


def _decode_held(held: str) -> tuple[tuple[_Charged, ...], tuple[str, ...]] | None:
    """The reservations and metrics of a `_held` JSON (kept in `_UNHELD`), None if it is not
    one."""
    try:
        found = _HELD.decode(held)
    except msgspec.DecodeError:
        return None
    if len(found[0]) != len(found[1]):
        return None
    if len(_UNHELD) >= _MAX_SESSIONS:
        _UNHELD.clear()
    _UNHELD[held] = found
    return found


def session_id(req: Mapping[str, Any]) -> str | None:
    """`session.id` when it is a string, else None."""
    session = req.get("session")
    sid = session.get("id") if isinstance(session, dict) else None
    return sid if type(sid) is str else None


def deny(policy: Policy, reason: str) -> Decision:
    """A fail-closed deny with one reason."""
    return Decision(effect="deny", allowed=False, reasons=(reason,), policy=policy.info)


def bind(g: Guard, stage: str, name: str, req_tags: tuple[str, ...], plan: CallPlan
         ) -> Runner:
    """`Guard.check` for one kind of call (as `request.read` gives it): the one algorithm
    with `plan` bound."""
    policy = g.policy
    decide = policy.decider(stage, name, req_tags)
    store = g.store
    clock = g.clock
    steps = g.plan.steps
    counters = plan.counters
    charged = plan.charged
    first = charged and not plan.late  # reserve in the read's step
    scoped = any(u.scope is not None for u in counters)
    history = plan.history_tools
    labels = plan.labels
    approvable = plan.approvals
    track = plan.track
    tags = plan.tags
    matchers = policy.matchers
    records = plan.record is not None
    # Every counter keyed by the session id and counted on every allowed call, each its own
    # (no shared per-session total): the charge is known but for the session id.
    by_session = counters if first and not track and all(
        u.key is None and u.scope is None and not u.session for u in counters) and len(
        {u.counter_id for u in counters}) == len(counters) else None
    by_metric = [u.metric for u in counters]
    as_session: Sequence[CounterUse] = by_session or ()
    prepare = steps or bool(track)  # session facts to count or keep before the take
    # session id -> (amounts, query, charge, `_held`) of a by-session call (no grant): they
    # depend on nothing else, so they are built once per session and estimate.
    per_session: dict[str, tuple[Mapping[str, Decimal | int], StateQuery, list[Reservation],
                                 str]] = {}

    def stateless(req: dict[str, Any], seen: Seen | None = None) -> Decision:
        if req.get("approvals"):
            return stateful(req, seen)  # grants to verify and use up
        decision = decide(req, None)
        if seen is not None:
            seen.used = (req, None, decision)
        if decision.effect == "require_approval" or (approvable and not decision.allowed):
            return _REPLACE(decision, action=_digest(req))
        return decision

    def stateful(sent: dict[str, Any], seen: Seen | None = None) -> Decision:
        try:
            approvals = sent.get("approvals")
            now = clock()
            raw_session = sent.get("session")
            sid = raw_session.get("id") if type(raw_session) is dict else None
            if type(sid) is not str:
                sid = session_id(sent)  # a dict subclass, or no session id
            req = sent  # with the session facts the Guard keeps; grants bind what was sent
            # 1. Session facts and grants, when the policy reads them or some are presented.
            session: Mapping[str, Any] = _EMPTY
            inject: dict[str, Any] = _NO_INJECT  # replaced before anything is put in
            groups, valid, rejected, people = _NO_GRANT
            read_calls = False
            if prepare or approvals:
                inject = {}
                session = raw_session if isinstance(raw_session, dict) else _EMPTY
                read_calls = _count_calls(g, stage, plan, sid, session, inject)
                if approvals:
                    groups, valid, rejected = _verify(g, sent, approvals, now)
                    people = _people(valid)
                if steps and sid is not None:
                    _steps(g, req, stage, session, sid, bool(valid), inject, now)
                if inject:
                    req = {**req, "session": {**session, **inject}}
            # 2. What the call is charged on allow: per counter its key, amount and limit.
            estimate = req.get("estimate") if charged else None
            amounts: Mapping[str, Decimal | int] | None = _ONE_CALL
            bad: RuleError | None = None
            if estimate is not None:
                try:
                    amounts = _amounts(estimate)
                except RequestError as err:  # the Guard reads it, no rule: a malformed request
                    amounts, bad = None, RuleError(None, err.field, err.message)
            missing: RuleError | None = None
            tracked: Sequence[str] = ()
            uses: list[tuple[CounterUse, str | None, RequestError | None]] = _NO_USES
            charged_as: Sequence[CounterUse] = as_session
            held: str | None = None  # the reservation's JSON but for the store's token
            if by_session is not None and sid is not None and amounts is not None and not groups:
                # What `_charge` gives such a plan, bound: one reservation per counter, the
                # same for every call of the session with the same amounts (`_amounts`
                # gives equal estimates one mapping, and the entry keeps it alive, so an
                # identical mapping is the same amounts).
                known = per_session.get(sid) if not read_calls else None
                if known is not None and known[0] is amounts:
                    _, query, charge, held = known
                else:
                    charge = [Reservation(u.counter_id, sid, u.window, amounts[u.metric], u.cap)
                              for u in by_session]
                    query = StateQuery(sid, (), history, labels, read_calls)
                    if not read_calls:
                        if len(per_session) >= _MAX_SESSIONS:
                            per_session.clear()
                        held = _held(charge, by_metric)
                        per_session[sid] = (amounts, query, charge, held)
            else:
                # The session's totals count only when the Guard keeps them (the host sends none).
                if track and sid is not None:
                    tracked = [m for m in track if m not in session]
                uses = []
                for use in counters:
                    if use.session and use.metric not in tracked:
                        continue
                    if use.key is None:
                        uses.append((use, sid, None if sid is not None else _NO_SESSION_ID))
                    else:
                        key, why = _key(use.key, req)
                        uses.append((use, key, why))
                if charged:
                    for m in tracked:
                        uses.append((_tracker(m), sid, None))
                charge, charged_as = [], []
                if first and amounts is not None:
                    ctx = Ctx(req, Snapshot(approved_groups=groups, now=now, approvers=people),
                              stage, name, tags, matchers) if scoped else None
                    missing = _charge(uses, ctx, groups, amounts, charge, charged_as)
                refs = () if len(charge) == len(uses) else _refs(uses, charge)
                query = StateQuery(sid or "", refs, history if sid is not None else (),
                                   labels and sid is not None, read_calls)
            # 3. One atomic step: what the decision reads, and the reservation.
            taken = (store.take(query, charge, now) if charge or query.counters
                     or query.history_tools or query.labels or read_calls else _NOT_TAKEN)
            token = taken.token
            try:
                if read_calls or tracked:
                    _inject_state(inject, session, taken, read_calls, tracked, sid)
                    req = {**req, "session": {**session, **inject}}
                # 4. The state this decision used: counters, labels, history hits and grants.
                st = Snapshot(taken.usage, taken.labels,
                              _history(taken) if query.history_tools else _EMPTY,
                              groups, now, people)
                decision = decide(req, st)
                if seen is not None:
                    seen.used = (req, st, decision)
                # 5. Settle the outcome with the store.
                if charged and decision.allowed:
                    failed = taken.failed
                    if not first and amounts is not None:
                        charge, charged_as = [], []
                        missing = _charge(uses, Ctx(req, st, stage, name, tags, matchers), groups,
                                          amounts, charge, charged_as)
                        held = None
                        if charge and not missing:
                            got = store.take(_NOTHING_TO_READ, charge, now)
                            token, failed = got.token, got.failed
                    error = bad or missing
                    if error is not None:
                        decision = Decision.refused(policy.info, error)
                    elif failed is not None:
                        decision = over_limit(decision, next(
                            use for r, use in zip(charge, charged_as, strict=True)
                            if r.counter_id == failed))
                if token is not None and not decision.allowed:
                    _give_back(g, token, now)
                    token = None
                if valid and decision.allowed:
                    decision, rejected = _consume(g, req, st, decision, valid, rejected, token,
                                                  seen)
                    if not decision.allowed:
                        token = None  # released by _consume
                    elif sid is not None and g.plan.checkpoints and "approval" in g.resets:
                        g.steps.reset(sid, now)
                if sid is not None and (decision.labels or (records and decision.allowed)):
                    _record(g, req, name, plan, decision, sid, now)
            except BaseException:
                if token is not None:
                    _give_back(g, token, now)
                raise
            if rejected:
                decision = _REPLACE(decision, reasons=decision.reasons + tuple(
                    r for r in dict.fromkeys(rejected) if r not in decision.reasons))
            if decision.effect == "require_approval" or (approvable and not decision.allowed):
                decision = _REPLACE(decision, action=_digest(sent))
            if token is not None:
                if held is None:
                    held = _held(charge, by_metric if charged_as is by_session
                                 else [u.metric for u in charged_as])
                return _REPLACE(decision, reservation=held + token)
            return decision
        except StoreError as err:
            return deny(policy, f"state store unavailable: {err}")

    return stateless if plan.stateless else stateful


def _count_calls(g: Guard, stage: str, plan: CallPlan, sid: str | None,
                 session: Mapping[str, Any], inject: dict[str, Any]) -> bool:
    """Loop-guard counts the host does not send: counted now (into `inject`), or, for a tool
    result, to be read with the rest (True)."""
    if sid is None or not g.plan.counts_calls or all(k in session for k in SESSION_COUNTS):
        return False
    # A tool result belongs to the call before it: it neither counts nor resets.
    if stage == "tool_result":
        return plan.reads_calls
    _inject_counts(inject, session, g.store.bump_session_calls(sid, stage == "tool_call"))
    return False


def _inject_state(inject: dict[str, Any], session: Mapping[str, Any], taken: Taken,
                  read_calls: bool, tracked: Sequence[str], sid: str | None) -> None:
    """The session facts the store's answer holds: loop counts and running totals."""
    if read_calls:
        _inject_counts(inject, session, taken.calls)
    for m in tracked:
        used = taken.usage.get((session_counter_id(m), sid or ""), 0)
        inject[m] = int(used) if m == "tokens" else Decimal(used)


def _tracker(metric: str) -> CounterUse:
    """The Guard's running `session.<metric>` total: charged on every allowed call, capped
    by nothing (a per-session budget on the same counter caps it)."""
    return CounterUse(session_counter_id(metric), metric, None, None, None,  # type: ignore[arg-type]
                      None, None, True, None)


def _key(key: ir.Expr, req: Mapping[str, Any]) -> tuple[str | None, RequestError | None]:
    """(the value of a counter's key path, None) or (None, why it is missing)."""
    try:
        return counter_key(key, req), None
    except RequestError as err:
        return None, err


def _charge(uses: Sequence[tuple[CounterUse, str | None, RequestError | None]],
            ctx: Ctx | None, groups: frozenset[str], amounts: Mapping[str, Decimal | int],
            charge: list[Reservation], charged_as: list[CounterUse]) -> RuleError | None:
    """Fill `charge` with what an allowed call reserves (and `charged_as` with the counter
    each charges): one reservation per (counter, key), against the tightest limit that
    applies (several per-session budgets share one counter). Returns the error of a counter
    that applies but whose key field is missing (then nothing is charged)."""
    for use, key, missing in uses:
        if use.scope is not None and ctx is not None and not _holds(use.scope, ctx):
            continue
        if key is None:
            charge.clear()
            charged_as.clear()
            why = missing or _NO_SESSION_ID
            return RuleError(use.rule.id if use.rule is not None else None, why.field,
                             f"counter key: {why.message}")
        limit = _limit(use, groups) if groups else use.cap
        for i, old in enumerate(charge):
            if old.counter_id == use.counter_id and old.key == key:
                if limit is not None and (old.limit is None or limit < old.limit):
                    charge[i] = Reservation(use.counter_id, key, use.window,
                                            amounts[use.metric], limit)
                    charged_as[i] = use
                break
        else:
            charge.append(Reservation(use.counter_id, key, use.window, amounts[use.metric],
                                      limit))
            charged_as.append(use)
    return None


def _refs(uses: Sequence[tuple[CounterUse, str | None, RequestError | None]],
          charge: Sequence[Reservation]) -> tuple[CounterRef, ...]:
    """The counters the decision reads that the take does not reserve (their usage comes
    with the reservation)."""
    held = {(r.counter_id, r.key) for r in charge}
    return tuple(CounterRef(u.counter_id, key, u.window) for u, key, _ in uses
                 if key is not None and (u.counter_id, key) not in held)


def _history(taken: Taken) -> Mapping[str, tuple[tuple[float, Mapping[str, object]], ...]]:
    if not taken.history:
        return _EMPTY
    return {t: tuple((e.time, e.fields) for e in h) for t, h in taken.history.items()}


def _steps(g: Guard, req: Mapping[str, Any], stage: str, session: Mapping[str, Any],
           sid: str, retry: bool, inject: dict[str, Any], now: float) -> None:
    """`session.turn` and `session.tool_calls_since_checkpoint`, when the policy reads
    them and the host does not send them (`guard_steps`)."""
    if g.plan.turns and "turn" not in session:
        inject["turn"] = g.steps.turn(req, sid, now)
    if g.plan.checkpoints and "tool_calls_since_checkpoint" not in session:
        inject["tool_calls_since_checkpoint"] = g.steps.checkpoint(
            req, sid, stage, retry, "turn" in g.resets, now)


def _verify(g: Guard, req: Mapping[str, Any], approvals: object, now: float
            ) -> tuple[frozenset[str], list[Grant], list[str]]:
    from charter.runtime.approvals import MALFORMED, Grant, verify_grant  # see `_rejected`

    items = approvals if isinstance(approvals, list | tuple) else [approvals]
    digest = _digest(req)
    groups: set[str] = set()
    valid: list[Grant] = []
    rejected: list[str] = []
    for item in items:
        if digest is None:
            rejected.append(_NO_DIGEST)
            continue
        check = verify_grant(g.secret, item, digest, now, g.store)
        if check.ok and check.group is not None:
            grant = Grant.parse(item)
            refused = _refuse(g, grant, req)
            if refused is not None:
                rejected.append(refused)
                continue
            groups.add(check.group)
            valid.append(grant)
        else:
            reasons = _rejected()
            rejected.append(reasons.get(check.code or MALFORMED, reasons[MALFORMED]))
    return frozenset(groups), valid, rejected


def _refuse(g: Guard, grant: Grant, req: Mapping[str, Any]) -> str | None:
    """Why a well-signed grant still does not count: its approver asked for the action,
    or is not a member of its group in the Guard's directory (`approvers`)."""
    if grant.approver in requester_ids(req):
        return "approval rejected: the approver is the requester"
    if g.is_member is not None and not g.is_member(grant.approver, grant.group):
        return "approval rejected: the approver is not a member of the group"
    return None


def over_limit(decision: Decision, use: CounterUse) -> Decision:
    """`decision` turned into the deny (or approval request) of the rule whose counter did
    not fit."""
    rule = use.rule
    assert rule is not None  # only rules set limits
    base = _REPLACE(decision, allowed=False, reasons=(*decision.reasons, rule_reason(rule)),
                    rules=(*decision.rules, rule.id))
    if rule.kind == "require_approval":
        approvers = tuple(dict.fromkeys((*decision.approvers, *rule.groups)))
        return _REPLACE(base, effect="require_approval", approvers=approvers)
    return _REPLACE(base, effect="deny")


def _consume(g: Guard, req: dict[str, Any], st: Snapshot, decision: Decision,
             valid: list[Grant], rejected: list[str], token: str | None, seen: Seen | None
             ) -> tuple[Decision, list[str]]:
    """Use up every valid grant of an allowed action; one that another request used first
    is a replay, and the action is decided again without it (its reservation given back if
    it is no longer allowed). The grants used go into the decision log record."""
    from charter.runtime.approvals import REPLAYED, consume_grant  # see `_rejected`

    kept: set[str] = set()
    used: list[Grant] = []
    lost = False
    for grant in valid:
        if consume_grant(grant, g.store):
            kept.add(grant.group)
            used.append(grant)
        else:
            lost = True
    if seen is not None:
        seen.grants.extend({"approver": x.approver, "group": x.group, "grant": x.nonce}
                           for x in used)
    if not lost:
        return decision, rejected
    rejected = [*rejected, _rejected()[REPLAYED]]
    again_st = Snapshot(
        counters=st.counters, labels=st.labels, history=st.history,
        approved_groups=frozenset(kept), now=st.now, approvers=_people(used))
    again = g.policy.decide(req, again_st)
    if not again.allowed and seen is not None:
        seen.used = (req, again_st, again)
    if not again.allowed and token is not None:
        _give_back(g, token, st.now or 0.0)
    return (again if not again.allowed else decision), rejected


def _record(g: Guard, req: dict[str, Any], name: str, plan: CallPlan, decision: Decision,
            sid: str, now: float) -> None:
    """Remember an allowed call's fields and the labels added."""
    if decision.allowed and plan.record is not None:
        args = req.get("args")
        args = args if isinstance(args, dict) else {}
        g.store.record_call(sid, name, {f: args[f] for f in plan.record if f in args}, now)
    if decision.labels:
        g.store.add_labels(sid, decision.labels)


def _give_back(g: Guard, token: str, now: float) -> None:
    """Release a store token, logging (not raising) a failure."""
    try:
        g.store.release(token, now)
    except Exception:  # noqa: BLE001 - an unreleased reservation only over-counts
        logger("charter.guard").exception("cannot release a reservation")


def settle(g: Guard, decision: Decision, cost_usd: Decimal | float | int | None,
           tokens: int | None, release: bool = False) -> bool:
    """`Guard.settle` / `Guard.release` of `decision.reservation`."""
    if decision.reservation is None:
        return True
    token, held, metrics = _unheld(decision.reservation)
    actual: dict[tuple[str, str], Decimal | int] = {}
    if not release and (cost_usd is not None or tokens is not None):
        cost = None if cost_usd is None else _amount(cost_usd, "cost_usd")
        count = None if tokens is None else _amount(tokens, "tokens")
        for r, metric in zip(held, metrics, strict=True):
            value = cost if metric == "cost_usd" else count if metric == "tokens" else None
            if value is not None:
                actual[(r.counter_id, r.key)] = value
    try:
        if release:
            g.store.release(token, g.clock())
        else:
            g.store.settle(token, actual, g.clock())
    except StoreError:
        logger("charter.guard").exception("cannot settle a reservation")
        return False
    return True


def _digest(req: Mapping[str, Any]) -> str | None:
    """The action digest a grant for `req` must carry (`approvals.action_of` says what it
    binds); None when the request cannot be canonicalised, so nothing can approve it."""
    from charter.runtime.approvals import action_digest  # see `_rejected`

    try:
        return action_digest(req)
    except ValueError:
        return None


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


def _amounts(estimate: object) -> Mapping[str, Decimal | int]:
    """The amounts one call charges; a RequestError naming the field of a bad estimate.
    Equal estimates (the same values of the same types) get the same mapping, made once."""
    key: tuple[object, ...] | None = None
    if type(estimate) is dict:
        cost, tokens = estimate.get("cost_usd"), estimate.get("tokens")
        key = (cost.__class__, cost, tokens.__class__, tokens)
        try:
            found = _ESTIMATES.get(key)
        except TypeError:  # an unhashable value: an error below
            found = key = None
        if found is not None:
            return found
    out: Mapping[str, Decimal | int] = _new_amounts(estimate)
    if key is not None:
        if len(_ESTIMATES) >= _MAX_ESTIMATES:
            _ESTIMATES.clear()
        _ESTIMATES[key] = out = MappingProxyType(out)  # shared: read-only
    return out


def _new_amounts(estimate: object) -> dict[str, Decimal | int]:
    if not isinstance(estimate, dict):
        raise RequestError(f"estimate: expected an object, found {type_name(estimate)}",
                           "estimate")
    out: dict[str, Decimal | int] = {"calls": 1}
    for metric in ("cost_usd", "tokens"):
        value = estimate.get(metric)
        try:
            out[metric] = 0 if value is None else _amount(value, metric)
        except TypeError as err:
            raise RequestError(f"estimate.{metric}: {err}", f"estimate.{metric}") from None
        except ValueError:
            raise RequestError(f"estimate.{metric}: must not be negative",
                               f"estimate.{metric}") from None
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
        return _NO_PEOPLE
    out: dict[str, set[str]] = {}
    for grant in grants:
        out.setdefault(grant.group, set()).add(grant.approver)
    return {group: frozenset(people) for group, people in out.items()}
