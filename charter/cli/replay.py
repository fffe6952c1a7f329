"""`charter replay LOG --policy NEW` (or `charter replay LOG NEW`): decide every record of a
decision log again with a policy and report what would change — the counts, the transition
table (old effect -> new effect), the rules and tools behind the changes and a few
examples (docs/log.md; live-control-analysis.md Part C).

Exit codes (R-S5): 1 when a record goes from deny or require_approval to a less strict
effect (unless `--allow-loosen`) or when more than `--max-changed` of the replayed records
change; 2 for usage and I/O errors (a log or policy that cannot be read); else 0 —
tightening alone is not a failure, a CI gate asks "does this let through what was
stopped?"."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from charter.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, load_policy
from charter.runtime.audit import LogVersionError
from charter.runtime.policy import Policy
from charter.runtime.replay_report import Report, report


def _percent(ctx: click.Context | None, param: click.Parameter | None,
             value: str | None) -> Decimal | None:
    """`--max-changed`: a percentage, ``1%`` or ``1`` (0 to 100)."""
    if value is None:
        return None
    try:
        number = Decimal(value.strip().removesuffix("%"))
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a percentage (say 1% or 0.5)") from None
    if not number.is_finite() or not 0 <= number <= 100:
        raise click.BadParameter(f"{value!r} is not a percentage between 0 and 100")
    return number


def _policy(path: str) -> Policy:
    """`load_policy`, with a policy that does not compile a usage error (exit 2): exit 1
    means the replay found a loosening, and a CI gate must not confuse the two."""
    try:
        return load_policy(path)
    except SystemExit as stop:
        raise SystemExit(EXIT_USAGE if stop.code == EXIT_FAILED else stop.code) from None


def verdict(found: Report, *, allow_loosen: bool, max_changed: Decimal | None
            ) -> tuple[int, list[str]]:
    """The exit code of a replay and why (R-S5): loosening fails unless allowed, and the
    share of changed records fails above `max_changed` percent."""
    why: list[str] = []
    if found.loosened and not allow_loosen:
        why.append(f"{found.loosened:,} records loosened (deny/approval -> less strict); "
                   "--allow-loosen accepts that")
    replayed = found.tally.records - found.tally.not_replayable
    if max_changed is not None and replayed:
        share = Decimal(found.tally.changed) * 100 / replayed
        if share > max_changed:
            why.append(f"{share:.2f}% of the replayed records changed, more than "
                       f"--max-changed {max_changed}%")
    return (EXIT_FAILED if why else EXIT_OK), why


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
@click.option("--allow-loosen", is_flag=True,
              help="Do not fail when records go from deny or approval to a less strict "
                   "effect.")
@click.option("--max-changed", callback=_percent, metavar="P%",
              help="Fail when more than P percent of the replayed records change (effect "
                   "or rules).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def replay_cmd(log: str, policy: str | None, new_policy: str | None,
               hash_key_file: str | None, against: str | None, samples: int,
               allow_loosen: bool, max_changed: Decimal | None, fmt: str) -> None:
    """Re-decide every decision in LOG with a policy; exit 1 if any decision loosens
    (unless --allow-loosen) or more than --max-changed change, 2 on usage or I/O errors."""
    chosen = new_policy or policy
    if chosen is None or (new_policy and policy and new_policy != policy):
        click.echo("charter replay: give the policy once, as POLICY or --policy NEW", err=True)
        sys.exit(EXIT_USAGE)
    try:
        key = Path(hash_key_file).read_bytes() if hash_key_file else None
        base = _policy(against) if against else None
        found = report(log, _policy(chosen), hash_key=key, samples=samples, against=base)
    except (LogVersionError, OSError) as err:
        click.echo(f"charter replay: {err}", err=True)
        sys.exit(EXIT_USAGE)
    if fmt == "json":
        click.echo(json.dumps(found.to_json(), indent=2, default=str))
    else:
        click.echo(found.render())
    code, why = verdict(found, allow_loosen=allow_loosen, max_changed=max_changed)
    for line in why:
        click.echo(f"charter replay: {line}", err=True)
    sys.exit(code)
