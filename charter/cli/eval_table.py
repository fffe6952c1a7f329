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


def print_table(rows: Sequence[Row], with_expectations: bool) -> None:
    """Print the rows and a summary line on stdout."""
    out = Console(highlight=False)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", expand=False)
    table.add_column("request", no_wrap=True)
    table.add_column("effect", no_wrap=True)
    table.add_column("rules")
    table.add_column("reasons")
    if with_expectations:
        table.add_column("expected")
    for i, row in enumerate(rows, 1):
        table.add_row(*_cells(row, i, with_expectations))
    out.print(table)
    out.print(_summary(rows, with_expectations))


def _cells(row: Row, index: int, with_expectations: bool) -> list[Text | str]:
    name = row.name if row.name is not None else f"#{index}"
    if row.decision is None:
        cells: list[Text | str] = [name, Text("error", style="bold red"), "",
                                   Text(row.error or "", style="red")]
    else:
        d = row.decision
        cells = [name, Text(d.effect, style=_STYLE.get(d.effect, "")), ", ".join(d.rules),
                 "; ".join((*d.reasons, *(f"warning: {w}" for w in d.warnings)))]
    if with_expectations:
        cells.append(_verdict(row))
    return cells


def _verdict(row: Row) -> Text:
    if row.error is not None:
        return Text("✗ not decided", style="red")
    text = Text("✓", style="green") if row.agrees else Text(
        "✗ " + "; ".join(row.differences), style="bold red")
    note = golden.state_note((row.expected or {}).get("state"))
    if note:
        text.append(f" (needs state: {note})", style="dim")
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
