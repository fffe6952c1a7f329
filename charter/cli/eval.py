"""`charter eval POLICY --request F`: the decision as JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from charter.cli.common import EXIT_FAILED, EXIT_OK, load_policy, read_requests


@click.command("eval")
@click.argument("policy")
@click.option("--request", "-r", "request", required=True,
              help="JSON file with a request or an array of requests; - for stdin; or a "
                   "directory of such files.")
@click.option("--fail-on-deny", is_flag=True, help="Exit 1 unless every decision allows.")
def eval_cmd(policy: str, request: str, fail_on_deny: bool) -> None:
    """Decide requests and print each decision as one JSON line.

    With a directory of request files, each line is {"request": FILE, "decision": ...}."""
    pol = load_policy(policy)
    all_allowed = True
    folder = Path(request)
    named: list[tuple[str | None, Any]]
    if request != "-" and folder.is_dir():
        named = [(file.name, req) for file in sorted(folder.glob("*.json"))
                 for req in read_requests(str(file))]
    else:
        named = [(None, req) for req in read_requests(request)]
    for name, req in named:
        decision = pol.decide(req)
        all_allowed &= decision.allowed
        line = decision if name is None else {"request": name, "decision": decision}
        click.echo(msgspec.json.encode(line).decode())
    sys.exit(EXIT_FAILED if fail_on_deny and not all_allowed else EXIT_OK)
