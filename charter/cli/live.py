"""`charter gate`, `charter kill` and `charter unkill` (issue 16, docs/live.md).

`gate` runs exactly the gate a live host runs before it activates a version (for CI before
a deploy); `kill` and `unkill` write kill switches to the control every attached `Live`
handle follows: Redis (`--redis`) or a control file on this host (`--control`)."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import TYPE_CHECKING

import click

from charter.cli.common import EXIT_FAILED, EXIT_USAGE

if TYPE_CHECKING:
    from charter.runtime.live_file import FileControl
    from charter.runtime.live_redis import RedisControl


@click.command("gate")
@click.argument("policy", type=click.Path(exists=True))
@click.option(
    "--properties",
    type=click.IntRange(0),
    default=25,
    show_default=True,
    help="Examples per property block (0: no properties).",
)
@click.option("--no-tests", is_flag=True, help="Compile only.")
@click.option(
    "--against",
    type=click.Path(exists=True),
    default=None,
    help="The version serving now (a policy directory or file), for --max-rule-drop.",
)
@click.option(
    "--max-rule-drop",
    type=click.IntRange(0, 100),
    default=None,
    metavar="PERCENT",
    help="Fail (stage shrink) when POLICY enforces more than PERCENT % fewer rules than "
    "--against.",
)
@click.option("--allow-shrink", is_flag=True, help="The shrink is intended: skip that check.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def gate_cmd(
    policy: str,
    properties: int,
    no_tests: bool,
    against: str | None,
    max_rule_drop: int | None,
    allow_shrink: bool,
    fmt: str,
) -> None:
    """Run the live reload gate on POLICY (compile, tests, properties); exit 1 if it fails."""
    from charter.control.gate import run_gate

    if (max_rule_drop is None) != (against is None):
        click.echo("charter: --max-rule-drop and --against go together", err=True)
        sys.exit(EXIT_USAGE)
    old = None
    if against is not None:
        base = run_gate(against, tests=False, properties=0)
        if base.policy is None:
            click.echo(f"charter: --against {against} does not compile: {base.reason}", err=True)
            sys.exit(EXIT_USAGE)
        old = base.policy
    result = run_gate(
        policy,
        tests=not no_tests,
        properties=properties,
        against=old,
        max_rule_drop=None if max_rule_drop is None else max_rule_drop / 100,
        allow_shrink=allow_shrink,
    )
    if fmt == "json":
        click.echo(json.dumps(result.summary(), indent=2))
    elif result.ok:
        assert result.policy is not None
        click.echo(
            f"gate passed: {result.policy.name} {result.policy.digest} (source "
            f"{result.source_digest}), {result.tests[0]} tests, {result.properties[0]} "
            f"properties, {result.duration_ms:.0f} ms"
        )
    else:
        click.echo(f"gate failed at {result.stage_failed}", err=True)
        for line in result.diagnostics:
            click.echo(line, err=True)
    if not result.ok:
        sys.exit(EXIT_FAILED)


def _control(
    redis_url: str | None, prefix: str, control_file: str | None
) -> RedisControl | FileControl:
    if (redis_url is None) == (control_file is None):
        click.echo(
            "charter: name the control: --redis URL or --control FILE (one of them)", err=True
        )
        sys.exit(EXIT_USAGE)
    if control_file is not None:
        from charter.runtime.live_file import FileControl

        return FileControl(control_file)
    from charter.runtime.live_redis import RedisControl

    assert redis_url is not None
    try:
        return RedisControl(redis_url, prefix=prefix)
    except ImportError as err:  # the redis client is an optional dependency
        click.echo(f"charter: {err} (pip install 'charter[redis]')", err=True)
        sys.exit(EXIT_USAGE)


_redis = click.option(
    "--redis",
    "redis_url",
    default=None,
    metavar="URL",
    help="The Redis the live hosts follow (redis://host:port/db).",
)
_prefix = click.option("--prefix", default="charter:", show_default=True)
_file = click.option(
    "--control",
    "control_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="The control file the hosts of this machine follow (charter serve --control FILE).",
)


@click.command("kill")
@click.argument("tools", nargs=-1)
@_redis
@_prefix
@_file
@click.option("--all", "everything", is_flag=True, help="Every tool (the same as '*').")
@click.option("--reason", default="", help="Shown in every denied decision.")
@click.option("--ttl", type=float, default=None, help="Seconds until the switch expires.")
@click.option(
    "--stage",
    "stages",
    multiple=True,
    type=click.Choice(["tool_call", "tool_result", "model_input", "model_output"]),
    help="Stages it applies to (default tool_call and tool_result).",
)
@click.option("--actor", default=None, help="Who (default $CHARTER_ACTOR or the OS user).")
@click.option("--list", "listing", is_flag=True, help="List the switches and exit.")
def kill_cmd(
    tools: tuple[str, ...],
    redis_url: str | None,
    prefix: str,
    control_file: str | None,
    everything: bool,
    reason: str,
    ttl: float | None,
    stages: tuple[str, ...],
    actor: str | None,
    listing: bool,
) -> None:
    """Deny calls to TOOLS (globs) in every live host, before their policy runs; prints the
    switch id."""
    from charter.runtime.live import DEFAULT_STAGES, KillSwitch

    control = _control(redis_url, prefix, control_file)
    try:
        if listing:
            seq, switches = control.read()
            click.echo(
                json.dumps({"seq": seq, "switches": [s.to_dict() for s in switches]}, indent=2)
            )
            return
        if everything:
            tools = ("*",)
        if not tools:
            click.echo("charter kill: name the tool globs, or --all for every tool", err=True)
            sys.exit(EXIT_USAGE)
        now = time.time()
        who = actor or os.environ.get("CHARTER_ACTOR") or os.environ.get("USER") or "cli"
        switch = KillSwitch(
            uuid.uuid4().hex[:8],
            tools,
            reason,
            stages or DEFAULT_STAGES,
            who,
            now,
            None if ttl is None else now + ttl,
        )
        control.kill(switch)
    except Exception as err:  # noqa: BLE001 - redis or file errors: a clear message, exit 2
        click.echo(f"charter kill: {err}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(switch.id)


@click.command("unkill")
@click.argument("switch_id")
@_redis
@_prefix
@_file
def unkill_cmd(
    switch_id: str, redis_url: str | None, prefix: str, control_file: str | None
) -> None:
    """Remove kill switch SWITCH_ID from every live host."""
    control = _control(redis_url, prefix, control_file)
    try:
        control.unkill(switch_id)
    except Exception as err:  # noqa: BLE001 - redis errors: a clear message, exit 2
        click.echo(f"charter unkill: {err}", err=True)
        sys.exit(EXIT_USAGE)
