"""The guarded canary's request-error and latency thresholds and the CLI form of its
thresholds (issue 16, L-N6), with real policies deciding."""

from __future__ import annotations

import pytest

import charter
from charter.runtime.live import Live
from charter.runtime.live_canary import CanaryGuard

STABLE = """policy "p"
default deny
tool "web.fetch" (url: str)
@id("web")
allow tool "web.fetch"
"""


def request(i: int, cost: bool = True) -> dict[str, object]:
    session: dict[str, object] = {"id": f"s-{i}"}
    if cost:
        session["cost_usd"] = 0.5
    return {"tool": "web.fetch", "args": {"url": "https://x"}, "session": session}


def test_a_candidate_with_more_request_errors_aborts_at_min_samples() -> None:
    """1 request in 100 lacks `session.cost_usd`, which only the candidate reads: 1 % more
    request errors (> 0.5 pp), 1 % tightened (< 2 %): the error threshold trips."""
    candidate = STABLE + '@id("cost")\ndeny tool "web.fetch" when session.cost_usd > 1\n'
    live = Live(charter.compile(STABLE))
    live.canary(charter.compile(candidate), 50, guard=CanaryGuard(max_latency_ratio=None))
    canary = live.control.canary
    assert canary is not None
    stats = canary.stats
    for i in range(499):
        live.decide(request(i, cost=i % 100 != 0))
    assert live.control.canary is not None and stats.candidate_errors == 5
    live.decide(request(499))
    assert live.control.canary is None and stats.compared == 500
    assert stats.aborted is not None and stats.aborted.startswith("request errors on 5 of 500")
    assert stats.stable_errors == 0 and stats.tightened == 5


def test_a_much_slower_candidate_aborts_on_latency_and_an_identical_one_does_not() -> None:
    """3,000 substring rules against one: its pure decide is tens of microseconds, far
    above the 50 us floor and 2x the stable version's p99 (the margin is what makes this a
    behaviour test, not a speed claim)."""
    slow = STABLE + "".join(
        f'@id("s{i}")\ndeny tool "web.fetch" when "zz{i}q" in args.url\n' for i in range(3000)
    )
    live = Live(charter.compile(STABLE))
    live.canary(charter.compile(slow), 50, salt="5eed0001", guard=CanaryGuard())
    canary = live.control.canary
    assert canary is not None
    for i in range(5000):
        assert live.decide(request(i)).allowed  # the same effect on every request
        if live.control.canary is None:
            break
    assert canary.stats.aborted is not None and canary.stats.aborted.startswith("candidate p99")
    assert canary.stats.compared % 100 == 0 and canary.stats.compared >= 500

    same = Live(charter.compile(STABLE))
    same.canary(charter.compile(STABLE + "# the same\n"), 50, salt="5eed0001", guard=CanaryGuard())
    for i in range(5000):
        same.decide(request(i))
    assert same.control.canary is not None and same.control.canary.stats.aborted is None


def test_the_cli_form_of_the_thresholds() -> None:
    guard = CanaryGuard.parse("loosen=0,tighten=2%,errors=0.5pp,latency=2x,min=500")
    assert guard == CanaryGuard()
    assert CanaryGuard.parse("tighten=0.05, latency=off, errors=off") == CanaryGuard(
        max_tighten=0.05, max_latency_ratio=None, max_error_delta=None
    )
    for bad, what in (
        ("tighten", "KEY=VALUE"),
        ("speed=2x", "unknown key"),
        ("tighten=lots", "not a share"),
        ("min=0", "min_samples"),
        ("tighten=150%", "between 0 and 1"),
        ("latency=0.5x", "at least 1"),
    ):
        with pytest.raises(ValueError, match=what):
            CanaryGuard.parse(bad)
