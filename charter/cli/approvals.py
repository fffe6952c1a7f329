"""`charter approvals list|show|grant|deny|attach`: the human side of pending approvals.

A hook that meets `require approval` parks the action as a ticket in the state file and
denies the call naming the ticket; a person of the right group runs
`charter approvals grant ID --as NAME --group G`, and the agent's identical retry goes
through (once). Refusals — a group the action does not name, a used ticket (replay), a
grant for other arguments or another session — exit 1 with the reason.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from charter.cli.common import EXIT_FAILED, fail

if TYPE_CHECKING:
    from charter.hosts.approvals import PendingApprovals

_STATE = click.option(
    "--state",
    help="state file the hooks use (default: $CHARTER_STATE, else ~/.local/state/charter/hooks.db)",
)


def _pending(state: str | None, approvers: str | None = None) -> PendingApprovals:
    from charter.cli.hook_state import secret_for, state_path
    from charter.hosts.approvals import PendingApprovals, SQLitePending
    from charter.runtime.guard import Guard
    from charter.runtime.policy import Policy
    from charter.runtime.state.sqlite import SQLiteStore

    path = state_path(state, os.environ)
    if path is None:
        fail("approvals need a state file shared with the hooks, not `memory`")
    if not os.path.exists(path):
        fail(f"{path}: no state file (no hook has parked an approval there)")
    try:
        secret = secret_for(path)
    except (OSError, ValueError) as err:
        fail(f"cannot read the grant secret of {path}: {err}")
    # The Guard only signs here (`Guard.approve`): an empty policy is enough for it.
    guard = Guard(Policy(_empty()), state=SQLiteStore(path), secret=secret, approvers=approvers)
    return PendingApprovals(guard, SQLitePending(path))


def _empty() -> Any:
    from charter.compiler.pipeline import compile_sources
    from charter.language.source import Source

    comp = compile_sources([Source("approvals.agentpolicy", 'policy "approvals"\n')])
    return comp.raise_for_errors()


def _show(t: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(t)
    out.pop("grant", None)  # the token is for the agent's retry, not for the screen
    return out


@click.group("approvals")
def approvals_cmd() -> None:
    """Pending approvals parked by `charter hook`: list, grant, deny, attach."""


@approvals_cmd.command("list")
@_STATE
@click.option("--all", "everything", is_flag=True, help="include granted, denied and used")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def list_cmd(state: str | None, everything: bool, as_json: bool) -> None:
    """Tickets waiting for approval (oldest first)."""
    pending = _pending(state)
    now = time.time()
    for t in pending.list(None if everything else "pending"):
        if not everything and t.expired(now):
            continue
        if as_json:
            click.echo(msgspec.json.encode(_show(t)).decode())
            continue
        args = msgspec.json.encode(t.args).decode()
        click.echo(
            f"{t.id}  {t.state:8} {t.tool}  from {', '.join(t.approvers)}  "
            f"session {t.session}  args {args[:200]}"
        )
        for reason in t.reasons:
            click.echo(f"    {reason}")


@approvals_cmd.command("grant")
@click.argument("ticket")
@click.option("--as", "by", required=True, help="who approves")
@click.option("--group", required=True, help="the approver group they act for")
@click.option("--ttl", type=float, default=300.0, help="seconds the grant is good for")
@click.option("--approvers", help="approver directory (JSON) that must list NAME in GROUP")
@_STATE
def grant_cmd(
    ticket: str, by: str, group: str, ttl: float, approvers: str | None, state: str | None
) -> None:
    """Approve TICKET: the agent's identical retry goes through, once."""
    from charter.hosts.approvals import ApprovalError

    pending = _pending(state, approvers)
    try:
        t = pending.grant(ticket, by=by, group=group, ttl=ttl)
    except ApprovalError as err:
        click.echo(f"refused: {err}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"granted {t.id} ({t.tool}) as {by} of {group}, for {ttl:g}s")


@approvals_cmd.command("deny")
@click.argument("ticket")
@click.option("--as", "by", required=True, help="who refuses")
@click.option("--reason", help="told to the agent")
@_STATE
def deny_cmd(ticket: str, by: str, reason: str | None, state: str | None) -> None:
    """Refuse TICKET; the agent's retry is told so."""
    from charter.hosts.approvals import ApprovalError

    try:
        t = _pending(state).deny(ticket, by=by, reason=reason)
    except ApprovalError as err:
        click.echo(f"refused: {err}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"denied {t.id} ({t.tool})")


@approvals_cmd.command("attach")
@click.option(
    "--request",
    "request_file",
    required=True,
    type=click.Path(path_type=Path),
    help="a Charter request (JSON; - for stdin)",
)
@click.option("--ticket", help="attach this ticket's grant (refused if it is for another action)")
@_STATE
def attach_cmd(request_file: Path, ticket: str | None, state: str | None) -> None:
    """Print the request with the grants of its exact action in `approvals`."""
    from charter.cli.common import RequestFileError, load_requests
    from charter.hosts.approvals import ApprovalError

    try:
        request = load_requests(str(request_file), split=False)[0]
    except RequestFileError as err:
        fail(str(err))
    if not isinstance(request, dict):
        fail("the request must be a JSON object")
    try:
        out = _pending(state).attach(request, ticket=ticket)
    except ApprovalError as err:
        click.echo(f"refused: {err}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(msgspec.json.encode(out).decode())
