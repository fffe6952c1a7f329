"""`charter eval POLICY --request F`: the decision as JSON."""

from __future__ import annotations

import sys

import click
import msgspec

from charter.cli.common import EXIT_FAILED, EXIT_OK, load_policy, read_requests


@click.command("eval")
@click.argument("policy")
@click.option("--request", "-r", "request", required=True,
              help="JSON file with a request or an array of requests; - for stdin.")
@click.option("--fail-on-deny", is_flag=True, help="Exit 1 unless every decision allows.")
def eval_cmd(policy: str, request: str, fail_on_deny: bool) -> None:
    """Decide requests and print each decision as one JSON line."""
    pol = load_policy(policy)
    all_allowed = True
    for req in read_requests(request):
        decision = pol.decide(req)
        all_allowed &= decision.allowed
        click.echo(msgspec.json.encode(decision).decode())
    sys.exit(EXIT_FAILED if fail_on_deny and not all_allowed else EXIT_OK)
