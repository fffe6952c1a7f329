"""One hook call: a host event in, the host's answer out (spec hosts.md §2).

    answer = run_hook(HookOptions("claude-code"), stdin_bytes, open_guard)

`open_guard` loads the policy and opens the state (the command line's job: a cached
compiled policy, an SQLite store); it is called only for events Charter decides or settles,
and anything it raises becomes the host's blocking answer. The flow: read the event
(`wire.read_event`); after a tool, settle (or, when it failed, release) the reservation its
before-event made (`charter.hosts.held`); attach a granted approval of the identical action
(`PendingApprovals`), `Guard.check`, spend the grant, map the decision to the host's verdict
(`wire.verdict`, parking an approval as a ticket) and write it (`wire.render`); before a
tool, hold the decision's reservation for the after-event when the call will run, and give
it back when the answer stops it. Nothing raises; every failure is the host's blocking
answer (exit 2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from charter.hosts.approvals import ApprovalError, PendingApprovals, ticket_text
from charter.hosts.wire import HookAnswer, blocked, read_event, render, verdict
from charter.stdlib.values import describe_error

if TYPE_CHECKING:
    from charter.engine.decision import Decision
    from charter.hosts.held import Held
    from charter.hosts.wire import HookEvent, Verdict
    from charter.runtime.guard import Guard

__all__ = ["HookOptions", "PolicyUnavailable", "run_hook"]


class PolicyUnavailable(Exception):
    """The policy cannot be loaded (missing, unreadable, not compiling, corrupt with nothing
    to rebuild it from); the message says which and where."""


class HookOptions(msgspec.Struct, frozen=True):
    """How `charter hook` answers: the host, the event when the payload does not name it,
    tool naming (`normalized` or `raw`), whether a plain allow is said out loud
    (`authoritative`; otherwise the host's own permission rules still apply), the approver
    groups that mean the person at the keyboard (`ask_groups`: answered with the host's
    `ask`), and how long a parked ticket waits."""

    agent: str
    event: str | None = None
    names: str = "normalized"
    authoritative: bool = False
    ask_groups: frozenset[str] = frozenset()
    ticket_ttl: float = 900
    env: Mapping[str, str] = msgspec.field(default_factory=dict)


Opener = Callable[[], "tuple[Guard, PendingApprovals | None, Held | None]"]


def run_hook(opts: HookOptions, raw: bytes, open_guard: Opener) -> HookAnswer:
    """Answer one hook event. Never raises."""
    event = read_event(opts.agent, raw, names=opts.names, env=opts.env, event_name=opts.event)
    if isinstance(event, str):
        return blocked(opts.agent, opts.event, event)
    if event.stage is None and event.outcome is None:
        return HookAnswer("{}", 0)  # nothing to decide: the host goes on
    try:
        guard, pending, held = open_guard()
    except PolicyUnavailable as err:
        return blocked(opts.agent, event.name, f"charter: no policy, so nothing is allowed: {err}")
    except Exception as err:  # noqa: BLE001
        return blocked(
            opts.agent,
            event.name,
            f"charter: cannot open the policy or its state: {describe_error(err)}",
        )
    notes: list[str] = []
    if event.outcome is not None and held is not None:
        _collect(guard, held, event, notes)
    if event.stage is None:  # a failure event: released, nothing to decide
        return HookAnswer("{}", 0, "".join(notes))
    try:
        request: dict[str, Any] = event.request
        if pending is not None and event.stage == "tool_call":
            request = pending.attach(request)
        decision = guard.check(request)
        park: Callable[[Decision], str] | None = None
        if pending is not None:
            pending.settle(request, decision)
            ttl = opts.ticket_ttl

            def park(d: Decision, store: PendingApprovals = pending) -> str:
                try:
                    return ticket_text(store.park(d, request, ttl=ttl))
                except ApprovalError as err:  # an action nothing can approve: still a deny
                    return f"approval required, but {err}: {'; '.join(d.reasons)}"

        v = verdict(decision, event, ask_groups=opts.ask_groups, park=park)
        if decision.reservation is not None:
            _keep(guard, held, event, decision, v, notes)
        answer = render(event, v, authoritative=opts.authoritative)
        if notes:
            answer = HookAnswer(answer.stdout, answer.code, answer.stderr + "".join(notes))
        return answer
    except Exception as err:  # noqa: BLE001 - nothing raises into the host
        return blocked(opts.agent, event.name, f"charter: internal error: {describe_error(err)}")


def _collect(guard: Guard, held: Held, event: HookEvent, notes: list[str]) -> None:
    """After a tool: settle the reservation its before-event held (it ran; the hosts report
    no cost, so the estimate stays) or release it (it failed). A store that fails leaves it
    counted, which errs on the safe side: noted, not blocking (the tool already ran)."""
    from charter.engine.decision import Decision
    from charter.hosts.held import call_key

    try:
        token = held.take(call_key(event.agent, event.request, event.call_id))
        if token is None:
            return
        reserved = Decision("allow", True, policy=guard.policy.info, reservation=token)
        ok = guard.release(reserved) if event.outcome == "failed" else guard.settle(reserved)
        if not ok:
            notes.append("charter: the state store failed settling this call's reservation\n")
    except Exception as err:  # noqa: BLE001 - the answer still goes out
        notes.append(f"charter: cannot settle this call's reservation: {describe_error(err)}\n")


def _keep(
    guard: Guard,
    held: Held | None,
    event: HookEvent,
    decision: Decision,
    v: Verdict,
    notes: list[str],
) -> None:
    """What becomes of an allowed decision's reservation. Before a tool that will run (the
    answer does not stop it), it waits for the after-event under the call's key (with the
    arguments as rewritten, which is how the host reports them after). An answer that stops
    the call gives it back. Any other stage (the output or prompt is already there): settled
    now. With nowhere to hold it (`--state memory`), it stays counted."""
    from charter.hosts.held import call_key

    try:
        if event.stage != "tool_call":
            guard.settle(decision)
        elif v.kind == "deny":
            guard.release(decision)
        elif held is not None:
            request = event.request
            if v.rewrite == "args":
                request = {**request, "args": v.value}
            assert decision.reservation is not None
            held.hold(call_key(event.agent, request, event.call_id), decision.reservation)
    except Exception as err:  # noqa: BLE001 - a reservation kept too long only over-counts
        notes.append(f"charter: cannot keep this call's reservation: {describe_error(err)}\n")
