"""`charter replay LOG --policy NEW` (or `charter replay LOG NEW`): decide every record of a
decision log again with a policy and report what would change — the counts, the transition
table (old effect -> new effect), the rules and tools behind the changes and a few
examples (docs/log.md; live-control-analysis.md Part C)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from charter.cli.common import EXIT_FAILED, EXIT_USAGE, load_policy
from charter.runtime.audit import LogVersionError
from charter.runtime.replay_report import report


@click.command("replay")
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.argument("policy", type=click.Path(exists=True), required=False)
@click.option("--policy", "new_policy", type=click.Path(exists=True),
              help="The policy to replay the log against (the same as the POLICY argument).")
@click.option("--hash-key-file", type=click.Path(exists=True, dir_okay=False),
              help="The log's HMAC key (the bytes of this file), so that equality rules "
                   "on masked values replay.")
@click.option("--against", "against", type=click.Path(exists=True),
              help="The policy that wrote the log: each record is re-decided with it first "
                   "and the records it does not reproduce are counted.")
@click.option("--samples", type=click.IntRange(0), default=3, show_default=True,
              help="Examples kept per transition.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def replay_cmd(log: str, policy: str | None, new_policy: str | None,
               hash_key_file: str | None, against: str | None, samples: int,
               fmt: str) -> None:
    """Re-decide every decision in LOG with a policy; exit 1 if any decision changed."""
    chosen = new_policy or policy
    if chosen is None or (new_policy and policy and new_policy != policy):
        click.echo("charter replay: give the policy once, as POLICY or --policy NEW", err=True)
        sys.exit(EXIT_USAGE)
    key = Path(hash_key_file).read_bytes() if hash_key_file else None
    try:
        base = load_policy(against) if against else None
        found = report(log, load_policy(chosen), hash_key=key, samples=samples, against=base)
    except (LogVersionError, OSError) as err:
        click.echo(f"charter replay: {err}", err=True)
        sys.exit(EXIT_USAGE)
    if fmt == "json":
        click.echo(json.dumps(found.to_json(), indent=2, default=str))
    else:
        click.echo(found.render())
    if found.tally.changed:
        sys.exit(EXIT_FAILED)
