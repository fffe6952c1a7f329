"""`Guard`: a policy over a state store — budgets, limits, labels, history and approvals.

`Policy.decide` is pure. The Guard gives it memory: for each request it reads what the
decision needs from the store in one batch, verifies approval grants, decides, and on allow
reserves usage atomically, uses up the grant, and records history and labels. Any store
failure is a deny (never fail open); `check` never raises. See docs/state.md ("Guard").
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from charter.engine.decision import Decision
from charter.runtime import guard_flow
from charter.runtime.approvers import Directory, IsMember, directory
from charter.runtime.guard_flow import Runner, Seen, deny, session_id
from charter.runtime.guard_plan import GuardPlan
from charter.runtime.guard_steps import Steps
from charter.runtime.logs import logger
from charter.runtime.policy import Policy
from charter.runtime.request import Call, read
from charter.runtime.state import Store
from charter.runtime.tokens import token_bytes
from charter.stdlib.values import describe_error

if TYPE_CHECKING:
    from contextvars import ContextVar

    from charter.runtime import verdicts
    from charter.runtime.approvals import Grant
    from charter.runtime.audit import AuditLog

__all__ = ["Guard"]

F = TypeVar("F", bound=Callable[..., Any])



class Guard:
    """Enforce `policy` with memory kept in `state` (a `MemoryStore` unless given).

    `log`: a path or an `AuditLog` for the decision log (none by default; a failed write is
    reported on the `charter.guard` logger, and with `AuditLog(..., required=True)` turns an
    allow into a deny). `secret`: the HMAC key of approval grants; random per Guard when
    None, so grants then only verify in this process — pass the same secret to every Guard
    that must accept them. `clock`: seconds since the epoch (windows, grant expiry,
    `previously ... within`). `approvers`: who may approve for each group (a mapping, a
    JSON file or a `(person, group) -> bool` callable; see `runtime.approvers`).
    `checkpoint_resets`: what resets `session.tool_calls_since_checkpoint` — a user turn
    (`"turn"`), an approved action (`"approval"`), or both (the default).
    """

    def __init__(
        self,
        policy: Policy,
        state: Store | None = None,
        log: str | os.PathLike[str] | AuditLog | None = None,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        approvers: Directory | None = None,
        checkpoint_resets: Collection[str] = ("turn", "approval"),
    ) -> None:
        self.policy = policy
        if state is None:
            from charter.runtime.state import MemoryStore  # here: a hook call brings SQLite

            state = MemoryStore()
        self.store: Store = state
        self._own_log = False
        self.log: AuditLog | None = None
        if log is not None:
            # Only a Guard that keeps a decision log loads it (and the capture of what each
            # decision read): five modules a hook call without `--log` never needs.
            from charter.runtime.audit import AuditLog

            self._own_log = not isinstance(log, AuditLog)
            self.log = log if isinstance(log, AuditLog) else AuditLog(log)
        if self.log is not None and self.log.replay:
            # The same policy, noting the verdicts of its scans for the replay block. (Imported
            # here, with a log that replays: a hook call need not load its context variables.)
            from charter.runtime import verdicts

            policy = verdicts.recorder(policy)
            self.policy = policy
        self.secret = secret if secret else token_bytes(32)
        self.clock = clock
        self.plan = GuardPlan(policy.ir, policy.plan)
        self.is_member: IsMember | None = directory(approvers)
        unknown = set(checkpoint_resets) - {"turn", "approval"}
        if unknown:
            raise ValueError(f"checkpoint_resets takes 'turn' and 'approval'; found "
                             f"{', '.join(sorted(unknown))}")
        self.resets = frozenset(checkpoint_resets)
        self.steps = Steps(self.store)
        # (stage, tool name, request tags) -> that kind of call's runner (`guard_flow.bind`)
        self._runners: dict[tuple[str, str, tuple[str, ...]], Runner] = {}
        # tool name -> the runner of ("tool_call", name, ()): those of `_runners` too
        self._named: dict[str, Runner] = {}

    # ── deciding ─────────────────────────────────────────────────────────────

    def check(self, request: Mapping[str, Any] | bytes | str) -> Decision:
        """Decide one request with the state the policy needs, and record its effects.

        On allow, applicable budgets and limits are reserved (`decision.reservation`: call
        `settle` after the action, or `release` if it did not run). A `require_approval`
        decision carries `decision.action` for `approve`. Never raises.
        """
        log = self.log
        if log is None and type(request) is dict:
            # A dict request of a kind already seen: `_kind` checked what `read` would. A
            # tool call named by a bare string (the usual request) is found by its name
            # alone, as `_kind` would find it, without building its key.
            stage, tool = request.get("stage"), request.get("tool")
            run = self._named.get(tool) if type(tool) is str and (
                stage is None or type(stage) is str and stage == "tool_call") else None
            if run is None and (kind := _kind(stage, tool)) is not None:
                run = self._runners.get(kind)
            if run is not None:
                try:
                    return run(request, None)
                except Exception as err:  # noqa: BLE001 - nothing raises into the host
                    return deny(self.policy,
                                f"internal error in the guard: {describe_error(err)}")
        start = time.perf_counter_ns() if log is not None else 0
        seen = Seen() if log is not None else None
        scans: verdicts.Table | None = None
        if log is not None and log.replay:
            from charter.runtime import verdicts

            with verdicts.recording() as scans:
                decision, call = self._check(request, log, seen)
        else:
            decision, call = self._check(request, log, seen)
        if log is not None and not self._write_log(log, call, seen, decision, start, scans) and (
                log.required and decision.allowed):
            decision = self._unlogged(decision)
        return decision

    def _check(self, request: Mapping[str, Any] | bytes | str, log: AuditLog | None,
               seen: Seen | None) -> tuple[Decision, Call | None]:
        """`check` but the log: the decision, and the call it read (None: malformed)."""
        call: Call | None = None
        try:
            found = read(request, self.policy.info)
            if isinstance(found, Decision):
                decision = found  # malformed: the reason names the field
            else:
                if log is not None and log.replay:
                    from charter.runtime.capture import with_now

                    found = with_now(found, self.policy)  # so the log knows the decision's now
                call = found
                decision = self._runner(found.stage, found.name, found.tags)(found.req, seen)
        except Exception as err:  # noqa: BLE001 - nothing raises into the host
            decision = deny(self.policy, f"internal error in the guard: {describe_error(err)}")
        return decision, call

    def _runner(self, stage: str, name: str, tags: tuple[str, ...]) -> Runner:
        """The runner of one kind of call, made on first use."""
        kind = (stage, name, tags)
        run = self._runners.get(kind)
        if run is None:
            run = guard_flow.bind(self, stage, name, tags, self.plan.plan_for(stage, name, tags))
            if len(self._runners) < 4096:
                self._runners[kind] = run
                if stage == "tool_call" and not tags:
                    self._named[name] = run
        return run

    # ── after the decision ───────────────────────────────────────────────────

    def settle(self, decision: Decision, cost_usd: Decimal | float | int | None = None,
               tokens: int | None = None) -> bool:
        """Replace the reservation of an allowed action by its actual usage.

        Counters of a metric not given keep their reserved estimate (a call limit stays
        charged one call). An actual above the estimate is charged in full: the overshoot
        counts, and the next check of that counter denies if it no longer fits. Returns
        False if the store failed (the reservation then stays counted, which errs on the
        safe side); settling twice does nothing. With a decision log, the settlement is
        logged (`event: "settle"`, the actual `cost` and `tokens`).
        """
        ok = guard_flow.settle(self, decision, cost_usd, tokens)
        if self.log is not None and decision.reservation is not None:
            self._log_settle(self.log, decision, cost_usd, tokens, ok)
        return ok

    def _log_settle(self, log: AuditLog, decision: Decision, cost_usd: object,
                    tokens: object, ok: bool) -> None:
        record: dict[str, object] = {
            "time": self.clock(), "event": "settle", "reservation": decision.reservation,
            "cost": cost_usd, "tokens": tokens, "settled": ok,
            "policy_digest": decision.policy.digest if decision.policy is not None else None,
        }
        try:
            log.write(record, matchers=self._log_matchers())
        except Exception as err:  # noqa: BLE001 - a log failure must not break the host
            logger("charter.guard").error("cannot write the decision log %s: %s", log.path, err)

    def release(self, decision: Decision) -> bool:
        """Give back the reservation of an allowed action that did not run."""
        return guard_flow.settle(self, decision, 0, 0, release=True)

    def approve(self, decision: Decision, by: str, group: str, ttl: float = 300) -> Grant:
        """Mint a grant by approver `by` of `group` for exactly the action of `decision`.

        The host retries the same request with ``"approvals": [grant]`` (a `Grant`, its
        `to_dict()` or its `to_token()` string); the grant is good for one use within `ttl`
        seconds. Raises `ValueError` if `decision` has no action (it did not come from
        `check`, or nothing about it can be approved), `group` is not one of its approvers,
        or the Guard has a directory (`approvers=`) in which `by` is not a member of `group`.
        """
        if decision.action is None:
            raise ValueError("this decision names no action to approve; pass a decision "
                             "returned by Guard.check that requires approval")
        if decision.approvers and group not in decision.approvers:
            raise ValueError(f"group {group!r} cannot approve this action; approvers: "
                             f"{', '.join(decision.approvers)}")
        if self.is_member is not None and not self.is_member(by, group):
            raise ValueError(f"{by!r} is not a member of approver group {group!r}")
        from charter.runtime.approvals import mint_grant  # here: only an approver's call mints

        return mint_grant(self.secret, decision.action, by, group, ttl, self.clock())

    # ── wrapping Python tools ────────────────────────────────────────────────

    @property
    def _context(self) -> ContextVar[Mapping[str, Any]]:
        """This Guard's context variable (`context` and `tool`), made on first use: a hook
        call, which wraps no function, never imports guard_tool and contextvars (~0.7 ms).
        `setdefault` is atomic, so two threads asking at once get the same variable."""
        var: ContextVar[Mapping[str, Any]] | None = self.__dict__.get("_context_var")
        if var is None:
            from charter.runtime import guard_tool

            var = self.__dict__.setdefault("_context_var", guard_tool.new_context_var())
        return var

    @contextmanager
    def context(self, **parts: Any) -> Iterator[None]:
        """Set request parts (`agent`, `user`, `session`, `approvals`, `estimate`...) for the
        guarded tools called inside the block; dicts merge with an enclosing block's."""
        from charter.runtime import guard_tool

        var = self._context
        token = var.set(guard_tool.merge(var.get(), parts))
        try:
            yield
        finally:
            var.reset(token)

    def tool(self, name: str, *, tags: tuple[str, ...] | list[str] = (),
             context: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
             cost: Callable[[Any], Decimal | float | int] | None = None,
             tokens: Callable[[Any], int] | None = None,
             estimate: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]]
             | None = None) -> Callable[[F], F]:
        """Decorate a function (sync or async) as the tool `name`; see `guard_tool.wrap`."""
        from charter.runtime import guard_tool

        def decorate(fn: F) -> F:
            spec = guard_tool.ToolSpec(name, tuple(tags), context, cost, tokens, estimate)
            return guard_tool.wrap(self, self._context, spec, fn)
        return decorate

    def close(self) -> None:
        """Close the decision log if the Guard opened it (the store is the caller's)."""
        if self._own_log and self.log is not None:
            self.log.close()

    # ── the decision log ─────────────────────────────────────────────────────

    def _write_log(self, log: AuditLog, call: Call | None, seen: Seen | None,
                   decision: Decision, start: int, scans: verdicts.Table | None = None
                   ) -> bool:
        """Log the decision; False (and an error on the `charter.guard` logger) when the
        file could not take it. What the record holds never makes it fail. `seen` holds
        what the decision used (`guard_flow.Seen`: its state snapshot, the grants used),
        `scans` the verdicts of its scans (`runtime.verdicts`)."""
        latency = (time.perf_counter_ns() - start) // 1000
        try:
            fields = _request_fields(call.req if call is not None else {})
        except Exception as err:  # noqa: BLE001 - a hostile request still gets its record
            fields = {"request": {"$unloggable": f"request that raised {type(err).__name__}"}}
        info = decision.policy
        now = self.clock()
        record: dict[str, object] = {
            "time": now,
            "agent_id": fields.pop("agent_id", None),
            "session_id": fields.pop("session_id", None),
            "trace_id": fields.pop("trace_id", None),
            "stage": call.stage if call is not None else None,
            "tool": call.name if call is not None else None,
            "effect": decision.effect,
            "allowed": decision.allowed,
            "rules": list(decision.rules),
            "reasons": list(decision.reasons),
            "approvers": list(decision.approvers),
            "warnings": list(decision.warnings),
            "errors": list(decision.errors),
            "labels": list(decision.labels),
            "shadow": [s.rule for s in decision.shadow],
            "latency_us": latency,
            "cost": fields.pop("cost", None),
            "tokens": fields.pop("tokens", None),
            "policy": info.name if info is not None else None,
            "policy_digest": info.digest if info is not None else None,
            **fields,
        }
        if seen is not None and seen.grants:
            record["approved_by"] = seen.grants  # who approved, with which grant
        capture = None
        if seen is not None and seen.used is not None:
            from charter.runtime.capture import Capture

            req, state, decided = seen.used
            capture = Capture(self.policy, req, state, decided, decision, now, scans)
        try:
            log.write(record, matchers=self._log_matchers(), capture=capture)
        except Exception as err:  # noqa: BLE001 - a log failure must not break the host
            logger("charter.guard").error(
                "cannot write the decision log %s (%d failed so far): %s",
                log.path, log.failures, err)
            return False
        return True

    def _log_matchers(self) -> dict[str, str]:
        """The policy's own matchers, so that the log masks what the policy calls sensitive."""
        return {name: m.pattern for name, m in self.policy.ir.matchers.items()}

    def _unlogged(self, decision: Decision) -> Decision:
        """The fail-closed answer for an action a `required` log could not record."""
        if decision.reservation is not None:
            self.release(decision)
        return deny(self.policy, "decision log unavailable: an action that cannot be "
                    "recorded is not allowed")


def _kind(stage: object, tool: object) -> tuple[str, str, tuple[str, ...]] | None:
    """(stage, tool name, tags) of a dict request with this `stage` and `tool` when its tool
    is a non-empty name, or an object with a non-empty string name, string tags and a
    string server or none (or no tool at all); None for anything else, which `read` then
    reads. A kind with a runner was made from a request `read` accepted, so a hit is one
    `read` accepts with this kind."""
    if stage is None:
        stage = "tool_call"
    elif type(stage) is not str:
        return None
    if type(tool) is str:
        return (stage, tool, ()) if tool else None
    if tool is None:
        return (stage, "", ())  # no runner for a tool stage has an empty name
    if type(tool) is not dict:
        return None
    name = tool.get("name")
    server = tool.get("server")
    if type(name) is not str or not name or (server is not None and type(server) is not str):
        return None
    tags = tool.get("tags")
    if tags is None:
        return (stage, name, ())
    if type(tags) is not list:
        return None
    for tag in tags:
        if type(tag) is not str:
            return None
    return (stage, name, tuple(tags))


def _request_fields(req: Mapping[str, Any]) -> dict[str, object]:
    """The parts of a request a log record carries (the log masks them)."""
    agent = req.get("agent")
    estimate = req.get("estimate")
    est = estimate if isinstance(estimate, dict) else {}
    fields: dict[str, object] = {
        "agent_id": agent.get("id") if isinstance(agent, dict) else None,
        "session_id": session_id(req),
        "trace_id": req.get("trace_id") or uuid.uuid4().hex,
        "cost": est.get("cost_usd"),
        "tokens": est.get("tokens"),
        "args": req.get("args"),
    }
    for part in ("result", "input", "output"):
        if part in req:
            fields[part] = req[part]
    return fields
