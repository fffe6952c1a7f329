"""The one wire module: JSON in, JSON out, for every host (spec hosts.md §0).

Two halves, both of which never raise and never fail open:

- **Charter JSON** for hosts that build Charter requests themselves (the sidecar, the C ABI,
  scripts): `decide_json` (pure `Policy.decide`), `check_json` (`Guard.check`),
  `settle_json` (`Guard.settle` / `release`) and `approve_json` (`Guard.approve`). Bad input
  is a deny (decide, check) or an `{"error": ...}` answer (settle, approve) naming the field.
- **Host hook JSON**: `read_event` turns a coding agent's hook event (Claude Code, Cursor,
  Gemini CLI, Codex, Copilot; §2) into a `HookEvent` holding a Charter request (tool object
  with name, tags and server, args, session, agent); `verdict` is the decision → host
  verdict table of §0.2, in one place; `render` writes the verdict in the host's own format
  and exit code; `blocked` is the host's blocking answer for anything that went wrong
  (always exit 2, never 1: in Claude Code exit 1 lets the call run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import msgspec

from charter.engine.decision import Decision
from charter.stdlib.values import describe, describe_error

if TYPE_CHECKING:
    from charter.runtime.guard import Guard
    from charter.runtime.policy import Policy

__all__ = [
    "Caps",
    "HookAnswer",
    "HookEvent",
    "Verdict",
    "approve_json",
    "blocked",
    "check_json",
    "decide_json",
    "read_event",
    "render",
    "settle_json",
    "verdict",
]

_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")
#: Largest hook event read (a tool response can be big; beyond this is refused, not cut).
MAX_EVENT_BYTES: Final = 32 * 1024 * 1024
WITHHELD: Final = "[withheld by policy]"


def _deny(reason: str, policy: Policy | None = None) -> Decision:
    return Decision(
        "deny", False, reasons=(reason,), policy=policy.info if policy is not None else None
    )


def _encode(value: object) -> bytes:
    return _ENCODER.encode(value)


# ── Charter JSON ─────────────────────────────────────────────────────────────


def decide_json(policy: Policy, raw: bytes | str) -> bytes:
    """`Policy.decide` of a JSON request, as `Decision` JSON. Never raises."""
    try:
        return policy.decide(raw).to_json()
    except Exception as err:  # noqa: BLE001 - nothing raises into the host
        return _deny(f"charter: internal error: {describe_error(err)}", policy).to_json()


def check_json(guard: Guard, raw: bytes | str) -> bytes:
    """`Guard.check` of a JSON request, as `Decision` JSON (with `action` and `reservation`
    when set). Never raises."""
    try:
        return guard.check(raw).to_json()
    except Exception as err:  # noqa: BLE001
        return _deny(f"charter: internal error: {describe_error(err)}", guard.policy).to_json()


def _object(raw: bytes | str, what: str) -> dict[str, Any] | str:
    """The JSON object `raw`, or the reason it is not one."""
    try:
        value = _DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError) as err:
        return f"{what}: not valid JSON: {err}"
    if type(value) is not dict:
        return f"{what} must be a JSON object; found {describe(value)}"
    return value


def settle_json(guard: Guard, raw: bytes | str) -> bytes:
    """`{"reservation": TOKEN, "cost_usd"?: N, "tokens"?: N, "release"?: bool}` →
    `{"ok": bool}` (false when the store failed), or `{"ok": false, "error": ...}` naming the
    field that is wrong. Never raises."""
    body = _object(raw, "settle request")
    if isinstance(body, str):
        return _encode({"ok": False, "error": body})
    token = body.get("reservation")
    if type(token) is not str or not token:
        return _encode(
            {
                "ok": False,
                "error": "reservation must be the decision's reservation "
                f"token (a non-empty string); found {describe(token)}",
            }
        )
    cost, tokens = body.get("cost_usd"), body.get("tokens")
    if cost is not None and (type(cost) is bool or not isinstance(cost, int | Decimal)):
        return _encode({"ok": False, "error": f"cost_usd must be a number; found {describe(cost)}"})
    if tokens is not None and (type(tokens) is not int):
        return _encode(
            {"ok": False, "error": f"tokens must be an integer; found {describe(tokens)}"}
        )
    release = body.get("release", False)
    if type(release) is not bool:
        return _encode(
            {"ok": False, "error": f"release must be true or false; found {describe(release)}"}
        )
    held = Decision("allow", True, policy=guard.policy.info, reservation=token)
    try:
        ok = guard.release(held) if release else guard.settle(held, cost, tokens)
    except Exception as err:  # noqa: BLE001
        return _encode({"ok": False, "error": f"charter: internal error: {describe_error(err)}"})
    return _encode({"ok": ok})


def approve_json(guard: Guard, raw: bytes | str) -> bytes:
    """`{"action": DIGEST, "approvers"?: [G...], "by": NAME, "group": G, "ttl"?: S}` (or
    `"decision": {...}` in place of action and approvers: a `require_approval` decision's
    JSON) → `{"grant": "cg1.…", "expires_at": T}`, or `{"error": ...}` saying why not
    (`Guard.approve`'s refusals: a group the action does not name, a person the directory
    does not list). Never raises."""
    body = _object(raw, "approve request")
    if isinstance(body, str):
        return _encode({"error": body})
    decision = body.get("decision")
    if isinstance(decision, dict):
        action, approvers = decision.get("action"), decision.get("approvers", [])
    else:
        action, approvers = body.get("action"), body.get("approvers", [])
    problems = []
    if type(action) is not str or not action:
        problems.append(f"action must be the decision's action digest; found {describe(action)}")
    if not isinstance(approvers, list) or not all(type(g) is str for g in approvers):
        problems.append(f"approvers must be a list of group names; found {describe(approvers)}")
    by, group, ttl = body.get("by"), body.get("group"), body.get("ttl", 300)
    for name, value in (("by", by), ("group", group)):
        if type(value) is not str or not value:
            problems.append(f"{name} must be a non-empty string; found {describe(value)}")
    if type(ttl) is bool or not isinstance(ttl, int | Decimal) or ttl <= 0:
        problems.append(f"ttl must be a positive number of seconds; found {describe(ttl)}")
    if problems:
        return _encode({"error": "; ".join(problems)})
    pending = Decision("require_approval", False, approvers=tuple(approvers), action=action)
    try:
        grant = guard.approve(pending, by=str(by), group=str(group), ttl=float(ttl))
    except ValueError as err:
        return _encode({"error": str(err)})
    except Exception as err:  # noqa: BLE001
        return _encode({"error": f"charter: internal error: {describe_error(err)}"})
    return _encode({"grant": grant.to_token(), "expires_at": grant.expires_at})


# ── host hooks ───────────────────────────────────────────────────────────────
# Frozen msgspec Structs rather than dataclasses: a hook is a fresh process per tool call,
# and making a dataclass (generated methods, exec) cost ~0.5 ms of every call per class.


class Caps(msgspec.Struct, frozen=True):
    """What a host does with one event's answer."""

    block: bool = True  # the answer can stop the action (false after the fact)
    ask: bool = False  # "ask the local user" is honoured
    rewrite_args: bool = False  # rewritten tool input is applied
    rewrite_result: bool = False  # rewritten tool output is applied


class HookEvent(msgspec.Struct, frozen=True):
    """One host hook event, read. `stage` is None for an event Charter does not decide
    (a session start, a notification, a tool's failure): its answer lets the host go on."""

    agent: str
    name: str
    stage: str | None
    request: dict[str, Any] = msgspec.field(default_factory=dict)
    caps: Caps = Caps()
    mcp: bool = False  # the tool is an MCP tool (Claude Code answers `updatedMCPToolOutput`)
    # The host's id of this tool call (Claude Code's and Codex's `tool_use_id`), which keys
    # the reservation its before-event made; None: the action's digest keys it.
    call_id: str | None = None
    # After a tool: "ran" (settle the reservation its before-event made) or "failed"
    # (release it). A failure event has no stage: nothing is decided, only released.
    outcome: str | None = None


class Verdict(msgspec.Struct, frozen=True):
    """What the host must do (spec §0.2): `pass` (no opinion: the host's own rules apply),
    `allow`, `deny` or `ask`; `reason` is what the model (and user) read; `args` / `result`
    replace the call's input or output when `rewrite` says so."""

    kind: str
    reason: str = ""
    rewrite: str | None = None  # "args" | "result" | None
    value: Any = None
    warnings: tuple[str, ...] = ()


class HookAnswer(msgspec.Struct, frozen=True):
    """What the hook process writes and how it exits."""

    stdout: str
    code: int = 0
    stderr: str = ""


def read_event(
    agent: str,
    raw: bytes,
    *,
    names: str = "normalized",
    env: Mapping[str, str] | None = None,
    event_name: str | None = None,
) -> HookEvent | str:
    """The host event `raw` (the hook's stdin) of `agent`, or the reason it cannot be read,
    naming the field. `event_name` is the event when the host does not say it in the payload
    (Copilot: `charter hook copilot postToolUse`). Never raises."""
    from charter.hosts.hooks import reader

    try:
        if len(raw) > MAX_EVENT_BYTES:
            return f"{agent} hook event is larger than {MAX_EVENT_BYTES} bytes"
        read = reader(agent)
        if read is None:
            return f"unknown agent {agent!r}"
        event = _object(raw, f"{agent} hook event")
        if isinstance(event, str):
            return event
        if event_name is not None:
            event.setdefault("hook_event_name", event_name)
        return read(event, names, env if env is not None else {})
    except Exception as err:  # noqa: BLE001 - nothing raises into the host
        return f"cannot read the {agent} hook event: {describe_error(err)}"


def verdict(
    decision: Decision,
    event: HookEvent,
    *,
    ask_groups: frozenset[str] = frozenset(),
    park: Callable[[Decision], str] | None = None,
) -> Verdict:
    """The decision → host verdict table (spec §0.2) for one event.

    `ask_groups`: approver groups that mean "whoever is at the keyboard"; an approval only
    they can give becomes the host's `ask` where it has one. Any other approval is a deny
    whose reason `park` writes (it parks the action and names the ticket). A redaction the
    host cannot apply to a call's input is a deny (never an unredacted allow); after the
    fact (a tool's output on a host that cannot rewrite it) it can only be reported.
    """
    warnings = tuple(decision.warnings)
    reasons = "; ".join(decision.reasons) or f"denied by policy ({decision.effect})"
    caps = event.caps
    if decision.effect == "require_approval":
        if caps.ask and decision.approvers and set(decision.approvers) <= ask_groups:
            return Verdict("ask", reasons, warnings=warnings)
        text = (
            park(decision)
            if park is not None
            else (
                f"approval required from {', '.join(decision.approvers) or 'an approver'}: "
                f"{reasons}"
            )
        )
        return _denied(event, text, warnings)
    if decision.effect != "allow" or not decision.allowed:
        return _denied(event, reasons, warnings)
    if not decision.redactions:
        return Verdict("allow", warnings=warnings)
    return _redacted(decision, event, warnings)


def _denied(event: HookEvent, reason: str, warnings: tuple[str, ...]) -> Verdict:
    if event.stage == "tool_result":
        # After the fact: hide the output where the host can replace it.
        if event.caps.rewrite_result:
            return Verdict(
                "deny", reason, "result", _withhold(event.request.get("result")), warnings
            )
        if not event.caps.block:
            return Verdict("pass", reason, warnings=(*warnings, _late(event, reason)))
    return Verdict("deny", reason, warnings=warnings)


def _late(event: HookEvent, reason: str) -> str:
    return (
        f"charter: the policy objects to this {event.name} output ({reason}), but "
        f"{event.agent} cannot rewrite tool output; route the tool through the Charter "
        "MCP proxy to enforce it"
    )


def _redacted(decision: Decision, event: HookEvent, warnings: tuple[str, ...]) -> Verdict:
    roots = {r.field.split(".", 1)[0].split("[", 1)[0] for r in decision.redactions}
    part = {"tool_call": "args", "tool_result": "result"}.get(event.stage or "")
    if part is None or roots - {part}:
        return Verdict(
            "deny",
            "charter: the policy redacts "
            f"{', '.join(sorted(roots))} of this {event.name}, which "
            f"{event.agent} cannot rewrite",
            warnings=warnings,
        )
    original = event.request.get(part)
    value = decision.redact(original)
    if value == original:  # the rule matched, its matchers found nothing to mask
        return Verdict("allow", warnings=warnings)
    can = event.caps.rewrite_args if part == "args" else event.caps.rewrite_result
    if not can:
        if part == "result" and not event.caps.block:
            return Verdict(
                "pass",
                warnings=(
                    *warnings,
                    _late(
                        event,
                        "redaction of "
                        + ", ".join(sorted({m for r in decision.redactions for m in r.matchers})),
                    ),
                ),
            )
        return Verdict(
            "deny",
            f"charter: the policy redacts this call's {part}, and "
            f"{event.agent} {event.name} cannot apply rewritten {part}; refused "
            "rather than run unredacted",
            warnings=warnings,
        )
    return Verdict("allow", rewrite=part, value=value, warnings=warnings)


def _withhold(value: Any) -> Any:
    """`value` in the same shape with every string replaced: a host that checks its tool
    output's shape (Claude Code's Bash result) still takes it."""
    if isinstance(value, str):
        return WITHHELD
    if isinstance(value, dict):
        return {k: _withhold(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_withhold(v) for v in value]
    return value


def render(event: HookEvent, v: Verdict, *, authoritative: bool = False) -> HookAnswer:
    """The verdict in the host's own format. Never raises (a failure is `blocked`)."""
    from charter.hosts.hooks import writer

    try:
        write = writer(event.agent)
        if write is None:
            return blocked(event.agent, event.name, f"unknown agent {event.agent!r}")
        out = write(event, v, authoritative)
        note = "\n".join(v.warnings)
        return HookAnswer(_encode(out).decode("utf-8"), 0, note + "\n" if note else "")
    except Exception as err:  # noqa: BLE001
        return blocked(
            event.agent, event.name, f"charter: cannot write the answer: {describe_error(err)}"
        )


def blocked(agent: str, event_name: str | None, reason: str) -> HookAnswer:
    """The host's blocking answer: its deny JSON on stdout, the reason on stderr, exit 2 (the
    one code every host treats as a block). For internal errors and unreadable events."""
    from charter.hosts.hooks import block_json

    try:
        out = _encode(block_json(agent, event_name, reason)).decode("utf-8")
    except Exception:  # noqa: BLE001 - exit 2 blocks whatever stdout holds
        out = "{}"
    return HookAnswer(
        out, 2, f"charter: {reason}\n" if not reason.startswith("charter:") else reason + "\n"
    )
