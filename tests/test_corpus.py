"""The language corpus.

tests/corpus/decisions/*.json — each file holds one small policy and the decisions it must
give:
    {"policy": "text" | ["line", ...], "cases": [CASE, ...]}
    CASE = {"name": ..., one of
              "request": JSON value (passed to decide as is),
              "request_text": str (passed as a str of JSON),
              "request_bytes": str (passed UTF-8 encoded, as bytes),
              "request_hex": hex string (passed as raw bytes),
            "state": {"counters": {RULE_ID: used}, "labels": [...], "approved_groups": [...],
                      "history": {TOOL: [[unix_time, {field: value}], ...]}, "now": unix_time},
            "effect": ..., "rules": [exact ids of matched enforced rules],
            "reason_contains": str, "warning_contains": str, "approvers": [...],
            "labels": [...], "shadow": [...], "redacted": [...], "no_errors": true,
            "xfail": "why (a known core bug)"}
  Dict requests are also run through the reference interpreter, which must agree.

tests/corpus/errors/*.agentpolicy — each file starts with one or more header lines
    # expect: CODE LINE:COL
  and must produce exactly those diagnostics (codes and positions), in any order. A line
    # xfail: reason
  marks a file whose expected diagnostics a known core bug does not yet produce.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from state_spec import snapshot

import charter
from charter import Decision, Policy
from charter.compiler.pipeline import compile_sources
from charter.language.source import Source

CORPUS = Path(__file__).resolve().parent / "corpus"
DECISIONS = sorted((CORPUS / "decisions").glob("*.json"))
ERRORS = sorted((CORPUS / "errors").glob("*.agentpolicy"))
EXPECT = re.compile(r"^#\s*expect:\s*([A-Z]+[0-9]+)\s+(\d+):(\d+)\s*$")


# ── decisions ────────────────────────────────────────────────────────────────

def _policy_text(spec: dict[str, Any]) -> str:
    text = spec["policy"]
    return "\n".join(text) + "\n" if isinstance(text, list) else str(text)


_POLICIES: dict[Path, Policy] = {}


def _policy(path: Path) -> Policy:
    if path not in _POLICIES:
        spec = json.loads(path.read_text())
        _POLICIES[path] = charter.compile(_policy_text(spec))
    return _POLICIES[path]


def _decision_cases() -> list[Any]:
    out = []
    for path in DECISIONS:
        spec = json.loads(path.read_text(), parse_float=Decimal)
        for i, case in enumerate(spec["cases"]):
            marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if "xfail" in case \
                else []
            out.append(pytest.param(path, case, marks=marks,
                                    id=f"{path.stem}/{i:02d}-{case['name']}"))
    return out


def _request(case: dict[str, Any]) -> Any:
    if "request" in case:
        return case["request"]
    if "request_text" in case:
        return case["request_text"]
    if "request_bytes" in case:
        return case["request_bytes"].encode()
    return bytes.fromhex(case["request_hex"])


def check(d: Decision, case: dict[str, Any]) -> None:
    assert d.effect == case["effect"], d
    assert d.allowed == (case["effect"] == "allow")
    if "rules" in case:
        assert sorted(d.rules) == sorted(case["rules"]), d
    if "reason_contains" in case:
        assert any(case["reason_contains"] in r for r in d.reasons), d.reasons
    if "warning_contains" in case:
        assert any(case["warning_contains"] in w for w in d.warnings), d.warnings
    if "approvers" in case:
        assert sorted(d.approvers) == sorted(case["approvers"]), d
    if "labels" in case:
        assert sorted(d.labels) == sorted(case["labels"]), d
    if "shadow" in case:
        assert sorted(s.rule for s in d.shadow) == sorted(case["shadow"]), d
    if "redacted" in case:
        found = {m for r in d.redactions for m, n in r.counts.items() if n}
        assert sorted(found) == sorted(case["redacted"]), d.redactions
    if case.get("no_errors"):
        assert d.errors == (), d.errors
    if d.effect != "allow":
        assert d.reasons, "a refusal always says why"


@pytest.mark.parametrize(("path", "case"), _decision_cases())
def test_decision(path: Path, case: dict[str, Any]) -> None:
    policy = _policy(path)
    request = _request(case)
    state = snapshot(policy, request, case.get("state")) if isinstance(request, dict) else None
    decision = policy.decide(request, state)
    check(decision, case)
    if isinstance(request, dict):
        assert policy.interpret(request, state) == decision, "interpreter disagrees"
        assert policy.decide(request, state) == decision, "a second decision differs"


# ── errors ───────────────────────────────────────────────────────────────────

def _expected(path: Path) -> list[tuple[str, int, int]]:
    out = []
    for line in path.read_text().splitlines():
        m = EXPECT.match(line)
        if m:
            out.append((m[1], int(m[2]), int(m[3])))
    return out


def _error_params() -> list[Any]:
    out = []
    for path in ERRORS:
        m = re.search(r"^#\s*xfail:\s*(.+)$", path.read_text(), re.M)
        marks = [pytest.mark.xfail(reason=m[1], strict=True)] if m else []
        out.append(pytest.param(path, marks=marks, id=path.stem))
    return out


@pytest.mark.parametrize("path", _error_params())
def test_error_file(path: Path) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} has no `# expect: CODE LINE:COL` header"
    text = path.read_text()
    comp = compile_sources([Source(path.name, text)])
    got = [(d.code, d.span.line, d.span.col) for d in comp.diagnostics]
    assert sorted(got) == sorted(expected), "\n".join(
        d.render(comp.sources.get(d.span.file)) for d in comp.diagnostics)
    for d in comp.diagnostics:
        assert d.span.file == path.name
        assert d.message
        rendered = d.render(comp.sources.get(d.span.file))
        assert f"{path.name}:{d.span.line}:{d.span.col}: {d.severity}[{d.code}]" in rendered
        assert "^" in rendered
    if any(code.startswith("CH") for code, _, _ in expected):
        with pytest.raises(charter.CompileError):
            charter.compile(text, path.name)
    else:
        charter.compile(text, path.name)  # warnings alone do not stop compilation


def test_every_checker_code_has_an_error_case() -> None:
    """Each code a policy can get from `charter check` appears in some error file (the
    registry's CH04xx codes come from running tests, W05xx/W06xx from `charter analyze`, whose
    corpus is tests/corpus/analysis/, and the codes without an example policy, such as
    internal errors, from no policy text)."""
    from charter.language.diagnostics import REGISTRY

    codes = {c for c, e in REGISTRY.items() if e.example is not None
             and not c.startswith(("CH04", "W05", "W06"))}
    covered = {code for p in ERRORS for code, _, _ in _expected(p)}
    assert codes - covered == set()


def test_corpus_is_substantial() -> None:
    cases = sum(len(json.loads(p.read_text())["cases"]) for p in DECISIONS)
    assert len(DECISIONS) >= 10
    assert cases >= 100
    assert len(ERRORS) >= 30
