"""`charter eval POLICY --request F`: decide requests; a table on a terminal, else JSON lines.

With `--expect expected.json` each decision is compared with its golden expectation (see
`charter.cli.golden`), in the state the expectation names, and the exit code says whether all
agree. In a directory of requests a file that cannot be read is reported and the others are
still decided.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from charter.cli import golden
from charter.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    RequestFileError,
    fail,
    load_policy,
    load_requests,
)
from charter.engine.decision import Decision
from charter.runtime.policy import Policy


class Row(msgspec.Struct):
    """One request's outcome: its decision, or why it could not be decided."""

    name: str | None  # the file (in a directory or with --expect); None for a lone request
    decision: Decision | None = None
    error: str | None = None
    expected: dict[str, Any] | None = None
    differences: list[str] = msgspec.field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return self.error is None and self.expected is not None and not self.differences


@click.command("eval")
@click.argument("policy")
@click.option("--request", "-r", "request", required=True,
              help="JSON file with a request or an array of requests; - for stdin; or a "
                   "directory of such files.")
@click.option("--expect", "expect", type=click.Path(path_type=Path, dir_okay=False),
              help="Golden file mapping request file names to expected decisions "
                   "(an example's expected.json); exit 1 unless every decision agrees.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None,
              help="table (the default on a terminal) or JSON lines (the default otherwise).")
@click.option("--fail-on-deny", is_flag=True, help="Exit 1 unless every decision allows.")
def eval_cmd(policy: str, request: str, expect: Path | None, fmt: str | None,
             fail_on_deny: bool) -> None:
    """Decide requests and show each decision.

    JSON: one line per decision; for a directory (or with --expect) each line is
    {"request": FILE, "decision": ...} (or {"request": FILE, "error": ...}), with --expect
    also "agrees" and "differences"."""
    pol = load_policy(policy)
    expected = _golden(expect) if expect is not None else None
    rows = _decide(pol, _requests(request, named=expected is not None), expected)
    if fmt is None:
        fmt = "table" if sys.stdout.isatty() else "json"
    if fmt == "json":
        for row in rows:
            click.echo(_json_line(row, expected is not None))
    else:
        from charter.cli.eval_table import print_table

        print_table(rows, with_expectations=expected is not None)
    for row in rows:
        if row.error is not None:
            click.echo(f"error: {row.error}", err=True)
    sys.exit(_exit_code(rows, expected is not None, fail_on_deny))


def _golden(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return golden.validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as err:
        fail(f"cannot read {path}: {err}")
    except (ValueError, RecursionError) as err:
        fail(f"{path}: {err}")


def _requests(source: str, named: bool) -> list[tuple[str | None, Any, str | None]]:
    """(name, request, error) in order. A lone file or stdin stops at its error (exit 2);
    in a directory a bad file becomes an error row and the rest go on. With a golden file
    (`named`) each file is one request, as its expectation is: an array is not split."""
    folder = Path(source)
    if source != "-" and folder.is_dir():
        out: list[tuple[str | None, Any, str | None]] = []
        for file in sorted(folder.glob("*.json")):
            try:
                reqs = load_requests(str(file), split=not named)
                out.extend((file.name, req, None) for req in reqs)
            except RequestFileError as err:
                out.append((file.name, None, str(err)))
        return out
    try:
        reqs = load_requests(source, split=not named)
    except RequestFileError as err:
        fail(str(err))
    name = Path(source).name if named and source != "-" else None
    return [(name, req, None) for req in reqs]


def _decide(pol: Policy, requests: list[tuple[str | None, Any, str | None]],
            expected: dict[str, dict[str, Any]] | None) -> list[Row]:
    rows = []
    for name, req, error in requests:
        if error is not None:
            rows.append(Row(name, error=error))
            continue
        exp = expected.get(name) if expected is not None and name is not None else None
        try:
            state = golden.snapshot(pol, req, exp.get("state")) \
                if exp is not None and isinstance(req, dict) else None
        except (golden.GoldenError, KeyError, TypeError, AttributeError) as err:
            rows.append(Row(name, error=f"{name}: cannot build its state: {err}", expected=exp))
            continue
        decision = pol.decide(req, state)
        row = Row(name, decision, expected=exp)
        if expected is not None:
            row.differences = golden.differences(decision, exp) if exp is not None else [
                "no expectation for this request in the golden file"]
        rows.append(row)
    if expected is not None:
        seen = {r.name for r in rows}
        rows += [Row(n, error=f"{n}: expected, but there is no such request file", expected=e)
                 for n, e in expected.items() if n not in seen]
    return rows


def _json_line(row: Row, with_expectations: bool) -> str:
    if row.name is None and not with_expectations:
        return msgspec.json.encode(row.decision).decode()
    line: dict[str, Any] = {"request": row.name}
    if row.error is not None:
        line["error"] = row.error
    else:
        line["decision"] = row.decision
    if with_expectations:
        line["agrees"] = row.agrees
        line["differences"] = row.differences
        if row.expected is not None and "state" in row.expected:
            line["state"] = row.expected["state"]
    return msgspec.json.encode(line).decode()


def _exit_code(rows: list[Row], with_expectations: bool, fail_on_deny: bool) -> int:
    if any(r.error is not None and r.expected is None for r in rows):
        return EXIT_USAGE  # a request file could not be read
    if with_expectations and not all(r.agrees for r in rows):
        return EXIT_FAILED
    if fail_on_deny and not all(r.decision is not None and r.decision.allowed for r in rows):
        return EXIT_FAILED
    return EXIT_OK
