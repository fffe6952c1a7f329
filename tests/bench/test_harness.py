"""The benchmark's own machinery: timing helpers, CEL chunking, conversions, skips, report."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from benchmarks import report, run, scaling, timing
from benchmarks.engines import cel_common
from benchmarks.engines.base import convert_decimals, tool_name
from benchmarks.reference.handwritten import decide as handwritten

TINY = timing.Settings(repeats=3, min_repeat_s=0.0005)


def test_measure_reports_a_median_within_its_samples_and_restores_gc() -> None:
    calls: list[int] = []
    result = timing.measure(lambda _loaded, r: calls.append(r), None, [1, 2], TINY)
    assert result.repeats == 3
    assert result.min_us <= result.median_us <= result.max_us
    assert result.decisions_per_repeat % 2 == 0
    assert len(calls) >= 3 * result.decisions_per_repeat
    assert gc.isenabled()


def test_measure_rejects_an_empty_request_mix() -> None:
    with pytest.raises(ValueError):
        timing.measure(lambda _loaded, _r: None, None, [], TINY)


def test_tool_name_accepts_both_wire_forms() -> None:
    assert tool_name({"tool": "kb.read"}) == "kb.read"
    assert tool_name({"tool": {"name": "kb.read", "tags": []}}) == "kb.read"


def test_convert_decimals_copies_instead_of_mutating() -> None:
    session = {"cost_usd": 1.5, "id": "s"}
    sections: dict[str, Any] = {"session": session, "args": {}}
    convert_decimals(sections, (("session", "cost_usd"), ("args", "amount")), lambda v: v * 2)
    assert sections["session"] == {"cost_usd": 3.0, "id": "s"}
    assert session["cost_usd"] == 1.5
    assert sections["args"] == {}


def test_cel_chunks_cover_every_rule_under_the_limit() -> None:
    rules = [f'tool == "tool_{i}"' for i in range(500)]
    parts = cel_common.chunks(rules, limit=1_000)
    assert len(parts) > 1
    assert all(len(part) <= 1_000 for part in parts)
    assert sum(part.count("tool ==") for part in parts) == len(rules)


def test_cel_chunked_decision_follows_charter_procedure() -> None:
    plan = cel_common.CelPlan(None, ("A",), ("P",), ("D",), ())

    def decide(values: dict[str, Any]) -> str:
        return cel_common.decide_chunked(plan, lambda p: values[p])

    assert decide({"D": True, "A": True, "P": False}) == "deny"
    assert decide({"D": False, "A": False, "P": True}) == "deny"
    assert decide({"D": False, "A": True, "P": True}) == "require_approval"
    assert decide({"D": False, "A": True, "P": False}) == "allow"
    # An error value is neither True nor False: it blocks, never grants.
    assert decide({"D": "error", "A": True, "P": False}) == "deny"
    assert decide({"D": False, "A": "error", "P": False}) == "deny"


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_scaling_requests_match_the_generated_python(n: int) -> None:
    decide = scaling.python_source(n)
    for case in scaling.requests(n):
        assert decide(case["request"]) == case["expect"], case["name"]


def test_scaling_sources_have_one_rule_per_tool() -> None:
    text = scaling.charter_source(25)
    assert text.count('allow tool "tool_') == 25
    assert 'allow tool "tool_24" when args.amount <= 24' in text


def test_handwritten_reference_matches_expected_effects() -> None:
    from benchmarks import reference

    for case in reference.cases():
        assert handwritten(case["request"]) == case["expect"], case["name"]


def test_scale_skips_sizes_projected_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_worker(
        args: list[str], timeout: float = run.RUN_LIMIT_S
    ) -> tuple[dict[str, Any], float]:
        size = int(args[2])
        return {"status": "ok", "size": size}, size * 0.02  # 20 ms per rule

    monkeypatch.setattr(run, "worker", fake_worker)
    out = run._scale("cedar", (10, 100, 1_000, 10_000), [], lambda _m: None)
    assert [out[s]["status"] for s in (10, 100, 1_000)] == ["ok", "ok", "ok"]
    assert out[10_000]["status"] == "skipped"
    assert "projected" in out[10_000]["error"]


def test_scale_stops_after_a_failed_size(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(args: list[str], timeout: float = run.RUN_LIMIT_S) -> tuple[dict[str, Any], float]:
        return {"status": "load_failed", "error": "boom"}, 0.1

    monkeypatch.setattr(run, "worker", failing)
    out = run._scale("charter", (10, 100), [], lambda _m: None)
    assert out[10]["status"] == "load_failed"
    assert out[100] == {"status": "skipped", "error": "not run: load_failed at 10 rules"}


def _ok(us: float, load_ms: float = 1.0) -> dict[str, Any]:
    timing_ = {"median_us": us, "min_us": us, "max_us": us, "repeats": 1}
    return {"status": "ok", "load_ms": load_ms, "mismatches": [], "timing": timing_}


def test_report_states_missed_targets_and_unavailable_engines() -> None:
    results = run.Results()
    results.reference = {
        "charter": _ok(3.0),
        "python": _ok(1.0),
        "cedar": _ok(90.0),
        "rego": {"status": "unavailable", "error": "ImportError: no regopy", "mismatches": []},
    }
    results.scaling = {
        "charter": {20: _ok(0.5), 10_000: _ok(0.6)},
        "cedar": {10: _ok(40.0), 10_000: {"status": "skipped", "error": "projected 300 s > 120 s"}},
    }
    results.pii = {"status": "ok", "rows": [{"engine": "presidio", "us_per_doc": 1234.5}]}
    text = report.render(results, ["charter", "python", "cedar", "rego"], "python -m benchmarks")
    assert "| Charter within 2× of hand-written Python (reference) | 3.00× | **missed** |" in text
    assert "30.00× faster | **missed**" in text  # cedar 90 / charter 3
    assert "ImportError: no regopy" in text
    assert "| Charter at 10,000 rules within 1.5× of its 20-rule time | 1.20× | met |" in text
    assert "projected 300 s > 120 s" in text
    assert "| presidio | 1,234.5 |" in text


def test_report_notes_a_missing_pii_module() -> None:
    results = run.Results(pii={"status": "missing", "error": "ModuleNotFoundError: benchmarks.pii"})
    text = report.render(results, ["python"], "python -m benchmarks")
    assert "Not available: ModuleNotFoundError: benchmarks.pii" in text
