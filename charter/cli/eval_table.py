"""The table `charter eval` prints for a person: one row per request, and a summary line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from charter.cli import golden

if TYPE_CHECKING:
    from charter.cli.eval import Row

_STYLE = {"allow": "green", "deny": "bold red", "require_approval": "yellow"}


#: below this many columns, rules and reasons share one column so that words still fit
_WIDE = 120


def print_table(rows: Sequence[Row], with_expectations: bool) -> None:
    """Print the rows and a summary line on stdout."""
    out = Console(highlight=False)
    wide = out.width >= _WIDE
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", expand=False)
    if with_expectations:
        table.add_column("", no_wrap=True)
    table.add_column("request", no_wrap=True)
    table.add_column("effect", no_wrap=True)
    if wide:
        table.add_column("rules", ratio=1, overflow="fold")
        table.add_column("reasons", ratio=2, overflow="fold")
    else:
        table.add_column("rules · reasons", ratio=1, overflow="fold")
    for i, row in enumerate(rows, 1):
        cells = _cells(row, i)
        if with_expectations:
            cells.insert(0, _mark(row))
            cells[-1].append_text(_notes(row))
        table.add_row(*(cells if wide else [*cells[:-2], _joined(cells[-2], cells[-1])]))
    out.print(table)
    out.print(_summary(rows, with_expectations))


def _cells(row: Row, index: int) -> list[Text]:
    name = Text(row.name if row.name is not None else f"#{index}")
    if row.decision is None:
        return [name, Text("error", style="bold red"), Text(""),
                Text(row.error or "", style="red")]
    d = row.decision
    reasons = Text("; ".join(d.reasons))
    for w in d.warnings:
        reasons.append(("; " if reasons.plain else "") + f"warning: {w}", style="yellow")
    return [name, Text(d.effect, style=_STYLE.get(d.effect, "")),
            Text(", ".join(d.rules), style="cyan"), reasons]


def _joined(rules: Text, reasons: Text) -> Text:
    if not rules.plain or not reasons.plain:
        return rules + reasons
    return Text.assemble(rules, "\n", reasons)


def _mark(row: Row) -> Text:
    return Text("✓", style="green") if row.agrees else Text("✗", style="bold red")


def _notes(row: Row) -> Text:
    """Why a row disagrees, and the state it was decided in, under its reasons."""
    text = Text()
    if row.error is None and row.differences:
        text.append("\nexpected: " + "; ".join(row.differences), style="bold red")
    note = golden.state_note((row.expected or {}).get("state"))
    if note:
        text.append(f"\nneeds state: {note}", style="dim")
    return text


def _summary(rows: Sequence[Row], with_expectations: bool) -> Text:
    effects = Counter(r.decision.effect for r in rows if r.decision is not None)
    parts = [f"{n} {effect}" for effect, n in sorted(effects.items())]
    errors = sum(r.decision is None for r in rows)
    if errors:
        parts.append(f"{errors} not decided")
    text = Text(f"{len(rows)} request(s): " + ", ".join(parts), style="bold")
    if with_expectations:
        agree = sum(r.agrees for r in rows)
        stateful = sum(bool((r.expected or {}).get("state")) for r in rows)
        style = "green" if agree == len(rows) else "bold red"
        text.append(f" · {agree} of {len(rows)} as expected", style=style)
        if stateful:
            text.append(f" ({stateful} decided in the state their expectation gives)",
                        style="dim")
    return text
