"""`charter replay LOG POLICY`: decide every record of a decision log again with a policy and
print the counts (docs/log.md). The report of live-control-analysis.md Part C (transitions,
rules, samples, `--against`) is issue 16's; this is its counting core."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from charter.cli.common import EXIT_FAILED, EXIT_USAGE, load_policy
from charter.runtime.audit import LogVersionError
from charter.runtime.replay import replay_log


@click.command("replay")
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.argument("policy", type=click.Path(exists=True))
@click.option("--hash-key-file", type=click.Path(exists=True, dir_okay=False),
              help="The log's HMAC key (the bytes of this file), so that equality rules "
                   "on masked values replay.")
def replay_cmd(log: str, policy: str, hash_key_file: str | None) -> None:
    """Re-decide every decision in LOG with POLICY; exit 1 if any decision changed."""
    key = Path(hash_key_file).read_bytes() if hash_key_file else None
    try:
        tally = replay_log(log, load_policy(policy), hash_key=key)
    except (LogVersionError, OSError) as err:
        click.echo(f"charter replay: {err}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"replayed {tally.records - tally.not_replayable:,} of {tally.records:,} "
               f"records ({tally.not_replayable:,} not replayable): {tally.same:,} the same, "
               f"{tally.changed:,} changed, {tally.inconclusive:,} inconclusive")
    if tally.changed:
        sys.exit(EXIT_FAILED)
