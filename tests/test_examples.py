"""The policies under examples/: each compiles, and every request gets its expected decision.

`expected.json` maps a request file to what its decision must be, in the format
charter/cli/golden.py documents: the same reading `charter eval --expect` gives it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from state_spec import snapshot

import charter
from charter import Decision, Policy
from charter.cli.golden import differences

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FOLDERS = sorted(p for p in EXAMPLES.iterdir() if (p / "expected.json").is_file())


def _cases() -> list[Any]:
    out = []
    for folder in FOLDERS:
        expected = json.loads((folder / "expected.json").read_text())
        for name, exp in expected.items():
            marks = [pytest.mark.xfail(reason=exp["xfail"], strict=True)] if "xfail" in exp else []
            out.append(pytest.param(folder, name, exp, marks=marks, id=f"{folder.name}/{name}"))
    return out


_POLICIES: dict[Path, Policy] = {}


def _policy(folder: Path) -> Policy:
    if folder not in _POLICIES:
        _POLICIES[folder] = charter.load(folder)
    return _POLICIES[folder]


def check_decision(d: Decision, exp: dict[str, Any]) -> None:
    assert d.allowed == (d.effect == "allow")
    assert differences(d, exp) == [], d
    if not exp.get("shadow"):
        # a shadow rule is never enforced: it never shows up among the enforced rules
        assert not {s.rule for s in d.shadow} & set(exp.get("rules", ()))


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_example_compiles_cleanly(folder: Path) -> None:
    from charter.compiler.pipeline import compile_sources
    from charter.compiler.sources import discover, read_sources

    comp = compile_sources(read_sources(discover(folder)))
    assert [d.code for d in comp.diagnostics] == []
    policy = _policy(folder)
    assert policy.name and policy.version
    expected = json.loads((folder / "expected.json").read_text())
    files = {p.name for p in (folder / "requests").glob("*.json")}
    assert files == set(expected), "every request file has an expectation and vice versa"
    assert 10 <= len(files) <= 25


@pytest.mark.parametrize(("folder", "name", "exp"), _cases())
def test_example_request(folder: Path, name: str, exp: dict[str, Any]) -> None:
    policy = _policy(folder)
    raw = (folder / "requests" / name).read_bytes()
    request = json.loads(raw, parse_float=Decimal)
    state = snapshot(policy, request, exp.get("state")) if isinstance(request, dict) else None
    compiled = policy.decide(raw, state)
    check_decision(compiled, exp)
    if isinstance(request, dict):
        assert policy.decide(request, state) == compiled
        assert policy.interpret(request, state) == compiled


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_important_rule_is_exercised(folder: Path) -> None:
    """Every rule with an @id matches in at least one example request."""
    policy = _policy(folder)
    expected = json.loads((folder / "expected.json").read_text())
    seen: set[str] = set()
    for exp in expected.values():
        seen.update(exp.get("rules", ()))
        seen.update(exp.get("shadow", ()))
    ids = {r.id for r in policy.rules if ":" not in r.id}
    assert ids - seen == set()
