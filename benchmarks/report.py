"""Renders collected results as one Markdown report."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from benchmarks import engines, machine, reference
from benchmarks.run import RUN_LIMIT_S, Results

# Targets from GitHub issue 6.
TARGET_VS_PYTHON = 2.0
TARGET_VS_CEDAR_REGO = 100.0
TARGET_SCALING = 1.5
# A peer "grows" when its largest measured size is this much slower than 10 rules.
GROWTH = 1.5


HOW_TO = [
    'Reproduce: `pip install -e ".[bench]"`, then `python -m benchmarks --out '
    "docs/performance.md` (`--quick` for a smoke run, `--engines charter,python,...` for a "
    "subset, `--no-pii` to leave out `benchmarks/pii.py`). Nothing is installed by the run; "
    "an engine that does not import is reported with its error. The agreement check alone "
    "(no timing) runs in CI as `pytest tests/bench`.",
    "",
]


def us(result: dict[str, Any] | None) -> float | None:
    if not result or result.get("status") != "ok" or "timing" not in result:
        return None
    value: float = result["timing"]["median_us"]
    return value


def fmt_us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


def fmt_ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base == 0:
        return "—"
    return f"{value / base:,.2f}×"


def fmt_ms(result: dict[str, Any] | None) -> str:
    if not result or "load_ms" not in result:
        return "—"
    return f"{result['load_ms']:,.2f}"


def why(result: dict[str, Any] | None) -> str:
    if not result:
        return "not run"
    if result.get("status") == "ok":
        return "ok"
    detail = result.get("error") or ", ".join(
        f"{m['name']}: expected {m['expect']}, got {m['got']}" for m in result.get("mismatches", [])
    )
    return f"{result.get('status')}: {detail}"


def render(results: Results, names: Sequence[str], command: str) -> str:
    out: list[str] = []
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = " (quick smoke run: few repeats, small sizes — not for quoting)" if results.quick else ""
    out += ["# Charter performance report", "", f"Measured {now} with `{command}`{mode}.", ""]
    out += HOW_TO
    out += _machine()
    out += _engines(results, names)
    out += _reference(results, names)
    out += _scaling(results, names)
    out += _targets(results, names)
    out += _pii(results)
    out += _notes(results)
    return "\n".join(out).rstrip() + "\n"


def _machine() -> list[str]:
    rows = ["## Machine", "", "| | |", "| --- | --- |"]
    rows += [f"| {k} | {v} |" for k, v in machine.describe().items()]
    rows += [f"| {k} | {v} |" for k, v in machine.versions().items()]
    return [*rows, ""]


def _engines(results: Results, names: Sequence[str]) -> list[str]:
    cases = reference.cases()
    rows = [
        "## Agreement on the reference requests",
        "",
        f"Checked before anything is timed: {len(cases)} requests from "
        "`benchmarks/reference/requests.json` that fire every rule; an engine is timed only "
        "if it returns the expected effect for all of them.",
        "",
        "| engine | result |",
        "| --- | --- |",
    ]
    for name in names:
        rows.append(f"| {engines.LABELS[name]} | {_cell(why(results.reference.get(name)))} |")
    return [*rows, ""]


def _reference(results: Results, names: Sequence[str]) -> list[str]:
    py = us(results.reference.get("python"))
    ch = us(results.reference.get("charter"))
    rows = [
        "## Reference policy (21 rules)",
        "",
        "In-process from Python, dict request in, effect out; each engine's request conversion "
        "is inside the timed call. Median of repeated runs over the whole request mix.",
        "",
        "| engine | load (ms) | µs / decision | × hand-written Python | × Charter |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        result = results.reference.get(name)
        value = us(result)
        rows.append(
            f"| {engines.LABELS[name]} | {fmt_ms(result)} | {fmt_us(value)} | "
            f"{fmt_ratio(value, py)} | {fmt_ratio(value, ch)} |"
        )
    return [*rows, ""]


def _scaling(results: Results, names: Sequence[str]) -> list[str]:
    sizes = sorted({size for per in results.scaling.values() for size in per})
    head = "| engine | " + " | ".join(f"{s:,} rules" for s in sizes) + " |"
    rule = "| --- |" + " ---: |" * len(sizes)
    rows = [
        "## Scaling",
        "",
        'Generated policies: rule i is `allow tool "tool_i" when args.amount <= i` (the '
        "idiomatic equivalent in each engine; the hand-written Python is a dict lookup). "
        f"A size whose run would take more than {RUN_LIMIT_S:.0f} s is skipped.",
        "",
        "### µs per decision",
        "",
        head,
        rule,
    ]
    skipped: list[str] = []
    for name in names:
        per = results.scaling.get(name, {})
        cells = []
        for size in sizes:
            result = per.get(size)
            value = us(result)
            cells.append(fmt_us(value))
            if value is None and result is not None:
                skipped.append(f"- {engines.LABELS[name]} at {size:,} rules: {_cell(why(result))}")
        rows.append(f"| {engines.LABELS[name]} | " + " | ".join(cells) + " |")
    rows += ["", "### Compile / load time (ms)", "", head, rule]
    for name in names:
        per = results.scaling.get(name, {})
        rows.append(
            f"| {engines.LABELS[name]} | "
            + " | ".join(fmt_ms(per.get(size)) for size in sizes)
            + " |"
        )
    if skipped:
        rows += ["", "Not measured:", "", *skipped]
    return [*rows, ""]


def _targets(results: Results, names: Sequence[str]) -> list[str]:
    ref = results.reference
    ch, py = us(ref.get("charter")), us(ref.get("python"))
    rows = ["## Targets (issue 6)", "", "| target | measured | verdict |", "| --- | --- | --- |"]

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "**missed**")

    ratio = ch / py if ch is not None and py else None
    rows.append(
        f"| Charter within {TARGET_VS_PYTHON:g}× of hand-written Python (reference) | "
        f"{_r(ratio)} | {verdict(None if ratio is None else ratio <= TARGET_VS_PYTHON)} |"
    )
    for peer in ("cedar", "rego"):
        value = us(ref.get(peer))
        speedup = value / ch if value is not None and ch else None
        ok = None if speedup is None else speedup >= TARGET_VS_CEDAR_REGO
        rows.append(
            f"| Charter ≥ {TARGET_VS_CEDAR_REGO:g}× faster than {engines.LABELS[peer]} | "
            f"{_r(speedup)} faster | {verdict(ok)} |"
        )
    per = results.scaling.get("charter", {})
    small, large = us(per.get(20)), us(per.get(10_000))
    growth = large / small if large is not None and small else None
    ok = None if growth is None else growth <= TARGET_SCALING
    rows.append(
        f"| Charter at 10,000 rules within {TARGET_SCALING:g}× of its 20-rule time | "
        f"{_r(growth)} | {verdict(ok)} |"
    )
    for peer in engines.PEERS:
        if peer not in names:
            continue
        measured = [(s, us(r)) for s, r in sorted(results.scaling.get(peer, {}).items())]
        points = [(s, v) for s, v in measured if v is not None]
        if len(points) < 2:
            rows.append(f"| {engines.LABELS[peer]} grows with the rule count | — | not measured |")
            continue
        (s0, v0), (s1, v1) = points[0], points[-1]
        rows.append(
            f"| {engines.LABELS[peer]} grows with the rule count | "
            f"{_r(v1 / v0)} from {s0:,} to {s1:,} rules | {verdict(v1 / v0 >= GROWTH)} |"
        )
    return [*rows, ""]


def _pii(results: Results) -> list[str]:
    rows = ["## PII detection (`benchmarks/pii.py`)", ""]
    pii = results.pii
    if not pii:
        return [*rows, "Not run (`--no-pii`).", ""]
    if pii.get("status") != "ok":
        return [*rows, f"Not available: {_cell(str(pii.get('error', pii.get('status'))))}", ""]
    table: list[dict[str, Any]] = pii.get("rows") or []
    if not table:
        return [*rows, "`benchmarks.pii.run()` returned no rows.", ""]
    columns: list[str] = []
    for row in table:
        columns += [key for key in row if key not in columns]
    rows += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in table:
        rows.append("| " + " | ".join(_cell(_value(row.get(c))) for c in columns) + " |")
    return [*rows, ""]


def _notes(results: Results) -> list[str]:
    return [
        "## Notes",
        "",
        "- Every engine runs in its own process (regopy and cel-expr-python abort with "
        "`free(): invalid size` when used in one process).",
        "- Conversions inside the timed call: Cedar gets a context record and money as integer "
        "micro-dollars (no decimal `+` in Cedar); both CEL bindings get the request sections "
        "as variables and money as doubles (CEL refuses int + double); Rego takes the dict "
        "as `input`; Charter and the hand-written Python take it as is.",
        '- Three-way effect: Cedar via `@id("allow:|approval:|deny:…")` on the determining '
        "policies; Rego via a `decision` rule over `deny`/`approval` sets; CEL via one "
        "combined decision expression (chunked rule lists when it exceeds cel-cpp's 100,000 "
        "character source limit).",
        '- The destructive-tool rule uses `unless "sre" in user.roles` instead of '
        "`unless approved`: signed approval grants exist only in Charter.",
        f"- Whole run took {results.seconds:,.0f} s.",
        "",
    ]


def _r(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}×"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return "" if value is None else str(value)


def _cell(text: str) -> str:
    # Keep tables intact whatever an error message contains.
    return text.replace("|", "\\|").replace("\n", " ")
