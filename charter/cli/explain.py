"""`charter explain POLICY --request F`: which rules matched, and why."""

from __future__ import annotations

import click

from charter.cli.common import load_policy, read_requests
from charter.engine import ir
from charter.engine.decision import RuleError
from charter.engine.render import render_code, render_expr


@click.command("explain")
@click.argument("policy")
@click.option("--request", "-r", "request", required=True)
@click.option("--code", is_flag=True, help="Show the generated Python for the request's bucket.")
def explain_cmd(policy: str, request: str, code: bool) -> None:
    """Show each candidate rule, its outcome and the value of every condition."""
    pol = load_policy(policy)
    for req in read_requests(request):
        if not isinstance(req, dict):
            click.echo(pol.decide(req).to_json().decode())
            continue
        report = pol.explain(req)
        d = report["decision"]
        click.echo(f"effect: {d.effect}")
        for reason in d.reasons:
            click.echo(f"  reason: {reason}")
        if d.approvers:
            click.echo(f"  approvers: {', '.join(d.approvers)}")
        click.echo(f"candidate rules: {len(report['rules'])} of {len(pol.rules)}")
        for row in report["rules"]:
            _rule(row["rule"], row["outcome"], row["trace"])
        if code:
            bucket = pol.bucket_for(req)
            click.echo("\ngenerated code:")
            if bucket is None or not bucket.source:
                click.echo("  (no conditions: the decision is a prebuilt constant)")
            else:
                rules = {rule.index: rule for rule in bucket.rules}
                click.echo(render_code(bucket.source, bucket.line_map, rules))


def _rule(rule: ir.Rule, outcome: object, trace: list[tuple[ir.Expr, object]]) -> None:
    mark = {True: "MATCH", False: "no"}.get(outcome, "ERROR") if isinstance(
        outcome, bool) else "ERROR"
    shadow = " [shadow]" if rule.shadow else ""
    click.echo(f"  [{mark:5}] {rule.id} {rule.kind}{shadow}  ({rule.file}:{rule.line})")
    if isinstance(outcome, RuleError):
        field = f" [field {outcome.field}]" if outcome.field is not None else ""
        click.echo(f"          request error: {outcome.message}{field}")
    if rule.cond is not None:
        click.echo(f"          when {render_expr(rule.cond)}")
        seen: set[int] = set()
        for expr, value in trace:
            if isinstance(expr, ir.Const) or id(expr) in seen:
                continue
            seen.add(id(expr))
            click.echo(f"            {render_expr(expr)} = {value!r}")
