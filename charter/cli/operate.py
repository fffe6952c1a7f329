"""`charter status`, `charter history`, `charter rollback`, `charter unpin` (issue 16, L-K3,
L-H1; docs/operations.md).

They reach a running host through its state dir (`charter.control.commands`): the host keeps
its `LiveStatus` in `status.json` and follows the commands written to `pin.json`; `status
--url` asks a `charter serve` sidecar's `/status` instead. Exit codes: 0 ok (status: READY),
1 the check failed (status: not READY; rollback/unpin: refused or not applied in time),
2 usage or I/O error.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from charter.cli.common import EXIT_FAILED, fail

if TYPE_CHECKING:
    from charter.runtime.live_status import LiveStatus

_state_dir = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The state dir of the host (charter.control.watch(..., state_dir=D)).",
)
_format = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _actor(given: str | None) -> str:
    return given or os.environ.get("CHARTER_ACTOR") or os.environ.get("USER") or "cli"


def _from_dir(state_dir: Path) -> LiveStatus:
    """The host's status from its state dir: NOT_READY when no host wrote one, STALE when
    it was last written longer ago than the host's `stale_after_s` (the host is gone)."""
    from charter.control.commands import read_status
    from charter.runtime.live_status import LiveStatus, Unreachable

    if not state_dir.is_dir():
        fail(f"--state-dir {state_dir}: no such directory")
    try:
        status = read_status(state_dir)
    except ValueError as err:
        fail(str(err))
    now = time.time()
    if status is None:
        return LiveStatus(state="NOT_READY", active=None, updated_at=0.0)
    age = now - status.updated_at
    if age > status.stale_after_s and status.state != "NOT_READY":
        status.state = "STALE"
        status.unreachable.append(
            Unreachable(
                what="host",
                since=status.updated_at,
                error=f"{status.host} has not updated {state_dir}/status.json for {age:.0f} s",
            )
        )
    return status


def _from_url(url: str) -> LiveStatus:
    import urllib.error
    import urllib.request

    import msgspec

    from charter.runtime.live_status import LiveStatus

    where = url.rstrip("/") + "/status"
    try:
        with urllib.request.urlopen(where, timeout=5) as answer:  # noqa: S310 - an operator's URL
            data = answer.read()
    except urllib.error.HTTPError as err:
        fail(f"{where}: HTTP {err.code} (is it a charter serve with --state-dir?)")
    except (urllib.error.URLError, OSError) as err:
        fail(f"{where}: {getattr(err, 'reason', err)}")
    try:
        return msgspec.json.decode(data, type=LiveStatus)
    except msgspec.DecodeError as err:
        fail(f"{where}: not a Charter live status ({err})")


def _text(status: LiveStatus) -> list[str]:
    lines = [f"state      {status.state}"]
    a = status.active
    if a is not None:
        name = " ".join(x for x in (a.name, a.version) if x)
        lines.append(
            f"active     {a.digest} {name} (source {a.source_digest or '-'}, since "
            f"{_when(a.since)}, by {a.actor or '-'})"
        )
    if status.pinned:
        lines.append(
            f"pinned     {status.pinned} by a rollback (source {status.pinned_source or '-'} "
            "stays off until it changes or `charter unpin`)"
        )
    last = status.last_attempt
    if last is not None:
        if last.ok:
            lines.append(f"last try   ok {last.digest} at {_when(last.at)}")
        else:
            first = last.diagnostics[0].splitlines()[0] if last.diagnostics else ""
            more = f" (+{len(last.diagnostics) - 1} more)" if len(last.diagnostics) > 1 else ""
            lines.append(
                f"last try   failed at {last.stage_failed} at {_when(last.at)}: {first}{more}"
            )
    if status.command_error:
        lines.append(f"command    #{status.command_seq} refused: {status.command_error}")
    for s in status.control.kill_switches:
        until = f", expires {_when(s.get('expires_at'))}" if s.get("expires_at") else ""
        lines.append(
            f"kill       {s.get('id')} {','.join(s.get('tools') or ())}: "
            f"{s.get('reason') or '-'} (by {s.get('actor') or '-'}{until})"
        )
    if status.canary is not None:
        c = status.canary
        lines.append(
            f"canary     {c.digest} {c.percent:g}% by {c.key}"
            + (
                f", compared {c.compared}, loosened {c.loosened}, tightened {c.tightened}"
                if c.guarded
                else ""
            )
        )
    if status.shadow is not None:
        sh = status.shadow
        div = ", ".join(f"{k} {v}" for k, v in sorted(sh.divergence.items())) or "none"
        lines.append(f"shadow     {sh.digest} divergence: {div}")
    for u in status.unreachable:
        lines.append(f"unreachable {u.what} since {_when(u.since)}: {u.error}")
    if status.updated_at:
        lines.append(
            f"host       {status.host or '-'}, reloads {status.reloads_ok} ok / "
            f"{status.reloads_rejected} rejected, updated {_when(status.updated_at)}"
        )
    return lines


@click.command("status")
@_state_dir
@click.option("--url", help="A charter serve sidecar (http://host:port): its /status.")
@_format
def status_cmd(state_dir: Path | None, url: str | None, fmt: str) -> None:
    """What a live host serves and how: exit 0 when READY, 1 when NOT_READY, DEGRADED or
    STALE (a host that stopped updating its state dir is STALE)."""
    if (state_dir is None) == (url is None):
        fail("name the host: --state-dir DIR or --url http://host:port (one of them)")
    status = _from_dir(state_dir) if state_dir is not None else _from_url(str(url))
    if fmt == "json":
        import msgspec

        click.echo(msgspec.json.format(msgspec.json.encode(status)).decode())
    elif status.active is None:
        click.echo(f"state      {status.state}: no host has written {state_dir}/status.json")
    else:
        click.echo("\n".join(_text(status)))
    if status.state != "READY":
        sys.exit(EXIT_FAILED)


@click.command("history")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The state dir of the host.",
)
@_format
def history_cmd(state_dir: Path, fmt: str) -> None:
    """The kept versions of a host (oldest first): digest, source digest, since, actor; the
    active one marked `*`, a pinned one `pinned`."""
    from charter.control.commands import read_status
    from charter.control.versions import VersionStore
    from charter.runtime.live_bundle import kept_bundles

    if not state_dir.is_dir():
        fail(f"--state-dir {state_dir}: no such directory")
    kept = VersionStore(state_dir).history() + kept_bundles(state_dir)  # a bundle host's
    try:
        status = read_status(state_dir)
    except ValueError:
        status = None  # the history stands without it; only the marks are missing
    active = status.active.digest if status is not None and status.active is not None else None
    pinned = status.pinned if status is not None else None
    if fmt == "json":
        rows = [{**h, "active": h["digest"] == active} for h in kept]
        click.echo(json.dumps({"versions": rows, "active": active, "pinned": pinned}, indent=2))
        return
    if not kept:
        click.echo(f"no kept versions in {state_dir}/versions")
        return
    click.echo(f"  {'SINCE':20}  {'DIGEST':16}  {'SOURCE':16}  ACTOR")
    for h in kept:
        since = h.get("since")
        mark = "*" if h["digest"] == active else " "
        tail = "  pinned" if h["digest"] == pinned else ""
        click.echo(
            f"{mark} {_when(since if isinstance(since, int | float) else None):20}  "
            f"{h['digest']!s:16}  {h.get('source_digest') or '-'!s:16}  "
            f"{h.get('actor') or '-'}{tail}"
        )


def _resolve(state_dir: Path, to: str) -> str:
    """A kept version's digest from a unique prefix (what `charter history` shows)."""
    from charter.control.versions import VersionStore
    from charter.runtime.live_bundle import kept_bundles

    kept = VersionStore(state_dir).history() + kept_bundles(state_dir)  # a bundle host's
    digests = list(dict.fromkeys(str(h["digest"]) for h in kept))
    found = [d for d in digests if d.startswith(to)]
    if len(found) == 1:
        return found[0]
    if not found:
        fail(f"--to {to}: no kept version in {state_dir}/versions (see charter history)")
    fail(f"--to {to}: names {len(found)} kept versions; give more of the digest")


def _send(
    state_dir: Path,
    action: str,
    to: str | None,
    actor: str,
    reason: str,
    wait: float,
) -> None:
    """Write the command, then wait for the host to report it applied (or refused)."""
    from charter.control.commands import write_command

    if not state_dir.is_dir():
        fail(f"--state-dir {state_dir}: no such directory")
    try:
        cmd = write_command(state_dir, action, to=to, actor=actor, reason=reason)
    except OSError as err:
        fail(f"cannot write the command to {state_dir}: {err}")
    if wait <= 0:
        click.echo(f"{action} written as command {cmd.seq} to {state_dir}/pin.json")
        return
    end = time.monotonic() + wait
    while True:
        status = _from_dir(state_dir)
        if status.command_seq >= cmd.seq:
            break
        if time.monotonic() > end:
            click.echo(
                f"charter {action}: written as command {cmd.seq}, but no running host "
                f"applied it within {wait:g} s (a host applies it when it starts)",
                err=True,
            )
            sys.exit(EXIT_FAILED)
        time.sleep(0.05)
    if status.command_seq == cmd.seq and status.command_error:
        click.echo(f"charter {action} refused: {status.command_error}", err=True)
        sys.exit(EXIT_FAILED)
    active = status.active.digest if status.active is not None else "-"
    if action == "rollback":
        click.echo(
            f"rolled back: {active} active, pinned (the source stays off until it changes "
            "or `charter unpin`)"
        )
    else:
        click.echo(f"unpinned: {active} active")


_wait = click.option(
    "--wait",
    type=click.FloatRange(0),
    default=15.0,
    show_default=True,
    help="Seconds to wait for the host to apply it (0: write and return).",
)
_actor_opt = click.option(
    "--actor", default=None, help="Who (default $CHARTER_ACTOR or the OS user)."
)


@click.command("rollback")
@click.option("--to", "to", default=None, help="A kept version's digest (or a unique prefix).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The state dir of the host.",
)
@click.option("--reason", default="", help="Kept in the change record.")
@_actor_opt
@_wait
def rollback_cmd(
    to: str | None, state_dir: Path, reason: str, actor: str | None, wait: float
) -> None:
    """Make the host serve a kept version (default the one before the active one) without
    compiling, pinned until its source changes or `charter unpin` (L-K3)."""
    digest = _resolve(state_dir, to) if to is not None else None
    _send(state_dir, "rollback", digest, _actor(actor), reason, wait)


@click.command("unpin")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The state dir of the host.",
)
@_actor_opt
@_wait
def unpin_cmd(state_dir: Path, actor: str | None, wait: float) -> None:
    """End a rollback's pin: the host gates its source as it is now and serves it if it
    passes."""
    _send(state_dir, "unpin", None, _actor(actor), "", wait)


__all__ = ["history_cmd", "rollback_cmd", "status_cmd", "unpin_cmd"]
