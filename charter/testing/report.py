"""`charter test` reports: pytest-like text, and JSON for machines."""

from __future__ import annotations

from typing import Any

from charter.testing.coverage import Coverage
from charter.testing.runner import CaseResult
from charter.testing.session import SessionReport

MARK = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}


def case_title(r: CaseResult) -> str:
    return f'{r.kind} "{r.name}"'


def examples_text(r: CaseResult) -> str:
    """`200 examples, 180 meaningful; vacuous: 20 request errors, 3 where rejections`."""
    errors, rejected = r.vacuous
    return (f"{r.examples} examples, {r.meaningful} meaningful; vacuous: {errors} request "
            f"errors, {rejected} `where` rejections")


def case_failure(r: CaseResult) -> str:
    """The failure text of one block: the same in `charter test` and in pytest."""
    lines = [f"{r.location}: {case_title(r)} {'failed' if r.status == 'fail' else 'errored'}"]
    lines.extend(r.details)
    if r.counterexample:
        lines.append("counterexample (paste into a test file):")
        lines.extend("  " + x for x in r.counterexample.splitlines())
    return "\n".join(lines)


def text(report: SessionReport, coverage: bool = False) -> str:
    """The human report."""
    out: list[str] = [f"charter test: seed {report.seed}, {report.examples} examples per property"]
    for unit in report.units:
        out.append("")
        out.append(", ".join(unit.files))
        for d, src in unit.errors:
            out.append(d.render(src))
        for r in unit.results:
            extra = f"  ({examples_text(r)})" if r.kind == "property" else ""
            out.append(f"  {MARK[r.status]:5} {case_title(r)}  {r.location}{extra}")
    failures = [r for r in report.results if r.status != "pass"]
    if failures:
        out.append("")
        out.append("=" * 30 + " failures " + "=" * 30)
        for r in failures:
            out.append("")
            out.append(case_failure(r))
    if coverage:
        for unit in report.units:
            if unit.coverage is not None:
                out.append("")
                out.extend(coverage_text(unit.coverage, ", ".join(unit.files)))
    out.append("")
    out.append(summary(report))
    return "\n".join(out)


def summary(report: SessionReport) -> str:
    counts = {s: sum(r.status == s for r in report.results) for s in MARK}
    broken = sum(bool(u.errors) for u in report.units)
    parts = [f"{counts['pass']} passed", f"{counts['fail']} failed", f"{counts['error']} errors"]
    if broken:
        parts.append(f"{broken} policies did not compile")
    return "== " + ", ".join(parts) + " =="


def coverage_text(c: Coverage, where: str) -> list[str]:
    lines = [f"coverage of policy \"{c.policy}\" ({where}): {c.covered}/{len(c.entries)} "
             f"rules and scopes, {c.percent:.1f}%"]
    for e in c.entries:
        box = "x" if e.covered else " "
        lines.append(f"  [{box}] {e.kind:5} {e.id:32} {e.effect:18} {e.status:12} "
                     f"{e.file}:{e.line}")
    missed = [e.id for e in c.entries if not e.covered]
    lines.append("  not reached by any test: " + (", ".join(missed) if missed else "(none)"))
    return lines


def as_json(report: SessionReport, coverage: bool = False) -> dict[str, Any]:
    units: list[dict[str, Any]] = []
    for u in report.units:
        unit: dict[str, Any] = {
            "files": u.files,
            "errors": [d.to_json() for d, _ in u.errors],
            "results": [{
                "kind": r.kind, "name": r.name, "file": r.file, "line": r.line,
                "status": r.status, "details": r.details, "counterexample": r.counterexample,
                "examples": r.examples if r.kind == "property" else None,
                **({"meaningful": r.meaningful, "request_errors": r.vacuous[0],
                    "where_rejections": r.vacuous[1]} if r.kind == "property" else {}),
            } for r in u.results],
        }
        if coverage and u.coverage is not None:
            unit["coverage"] = {
                "policy": u.coverage.policy, "percent": round(u.coverage.percent, 1),
                "entries": [{"kind": e.kind, "id": e.id, "file": e.file, "line": e.line,
                             "effect": e.effect, "status": e.status, "covered": e.covered}
                            for e in u.coverage.entries],
            }
        units.append(unit)
    counts = {s: sum(r.status == s for r in report.results) for s in MARK}
    return {"seed": report.seed, "examples": report.examples, "ok": not report.failed,
            "passed": counts["pass"], "failed": counts["fail"], "errors": counts["error"],
            "units": units}
