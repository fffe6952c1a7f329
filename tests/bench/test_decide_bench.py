"""benchmarks/decide.py: Charter and the hand-written twins agree (no timing)."""

from __future__ import annotations

import pytest

from benchmarks import decide, decide_policies, reference
from benchmarks.reference.handwritten import decide as handwritten


@pytest.mark.parametrize("size", [10, 100])
def test_generated_policy_agrees_with_python_twin(size: int) -> None:
    import charter

    policy = charter.compile(decide_policies.charter_source(size))
    requests = decide_policies.requests(size)
    assert decide.check_agreement(policy, decide_policies.python_twin(size), requests) == len(
        requests
    )


@pytest.mark.parametrize("size", [10, 100])
def test_generated_requests_cover_every_effect(size: int) -> None:
    twin = decide_policies.python_twin(size)
    effects = {twin(request) for request in decide_policies.requests(size)}
    assert effects == {"allow", "deny", "require_approval"}


def test_request_mix_has_the_same_size_at_every_size() -> None:
    assert len({len(decide_policies.requests(n)) for n in (10, 20, 100, 1_000, 10_000)}) == 1


def test_reference_policy_agrees_with_handwritten() -> None:
    import charter

    policy = charter.compile(reference.source("charter"))
    requests = [case["request"] for case in reference.cases()]
    assert decide.check_agreement(policy, handwritten, requests) == len(requests)


def test_disagreement_is_reported() -> None:
    import charter

    policy = charter.compile(decide_policies.charter_source(10))
    with pytest.raises(decide.Mismatch):
        decide.check_agreement(policy, lambda _: "allow", decide_policies.requests(10))


def test_targets_without_measurements_are_not_measured() -> None:
    results = {target["result"] for target in decide.targets([])}
    assert results == {"NOT MEASURED"}
