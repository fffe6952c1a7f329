"""The replay block made by a policy's plan (`runtime.capture_plan`) is the block the
general masking walk makes, byte for byte: on the differential test's generated policies
and requests (exotic values included), on hand-made odd values, and with and without
masking and keyed hashes. Where the plan cannot make a value exactly it must hand the
whole block to the walk, never make a different one."""

from __future__ import annotations

import enum
import random
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

import charter
from charter.engine.snapshot import Snapshot
from charter.runtime import audit
from charter.runtime.capture import Capture, with_now
from charter.runtime.capture_plan import Bail, Builder, _projector, _steps, plan_of
from charter.runtime.request import Call, read

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compiler"))
from test_differential import Policies, Requests, render  # noqa: E402

KEY = b"capture-plan-key-0123456789abcdef"
# (`repr` for what JSON cannot carry: an unmasked walk leaves a `str` subclass as it is.)
_ENCODE = msgspec.json.Encoder(decimal_format="number", enc_hook=repr).encode
MASKS = [audit._masker(()), audit._masker((("emp", r"EMP-[0-9]{6}"),)), None]


def _both(capture: Capture, mask: Any, key: bytes | None) -> tuple[bytes, bytes | None]:
    """The general walk's block and the plan's (None: the plan bailed out)."""
    walked = _ENCODE(capture._walked(mask, key))
    plan = plan_of(capture.policy)
    try:
        planned = capture._planned(plan, mask if mask is not None else (lambda s: s), key)
    except Bail:
        return walked, None
    except Exception:  # noqa: BLE001 - any other failure also hands over to the walk
        return walked, None
    return walked, _ENCODE(planned)


def test_generated_requests_make_the_same_block() -> None:
    planned = bailed = 0
    for seed in range(20):
        rng = random.Random(seed)
        options, items = Policies(rng).policy()
        policy = charter.compile(render(options, items))
        gen = Requests(rng)
        counters = sorted({c.id for c in policy.counters})
        for i in range(60):
            gen.noisy = i % 3 == 0
            req, snap = gen.request(), gen.snapshot(counters)
            call = read(req, policy.info)
            if not isinstance(call, Call):
                continue
            call = with_now(call, policy)
            decided = policy.decide(call.req, snap)
            capture = Capture(policy, call.req, snap, decided, decided, 1.8e9)
            for mask in MASKS:
                for key in (None, KEY):
                    walked, made = _both(capture, mask, key)
                    assert _ENCODE(capture.block(mask, key)) == walked
                    if made is None:
                        bailed += 1
                    else:
                        assert made == walked, (seed, call.req)
                        planned += 1
    # The generator is fond of odd values (bytes, enums, tuples): both paths are taken.
    assert planned > 1000 and bailed > 1000, (planned, bailed)


POLICY = """
policy "plan"
use pii
matcher emp = r"EMP-[0-9]{6}"
tool "t" (note?: str) tags read
allow tool "t" when agent.team == "x" or agent.labels["k"] == "y"
  or args.note contains pii.email or session.cost_usd > 3
  or previously call "h" with {f: args.note}
limit calls(tool "t") <= 100 per 1h per agent.id
"""


class _Str(str):
    pass


class _Color(enum.Enum):
    RED = "red"


ODD: list[object] = [
    "plain",
    "mail bob@example.com",
    "émail bob@example.com",
    "bad \ud800 surrogate",
    4111111111111111,
    -4111111111111111,
    4111111111111111.0,
    250.0,
    0.25,
    float("nan"),
    10**30,
    Decimal("4111111111111111"),
    Decimal("0"),
    Decimal("12.50"),
    Decimal("1." + "0" * 5000),
    Decimal("NaN"),
    True,
    None,
    [],
    [1, "a@b.co", [2.0]],
    (1, 2),
    {"x"},
    b"bytes",
    bytearray(b"\xff"),
    _Str("sub"),
    _Color.RED,
    {"bob@example.com": 1, "alice@example.com": 2},
    {"a/b~c": "EMP-123456"},
    {1: "x"},
    {"é": "x"},
    {"k": {"k": {"k": {"k": "v"}}}},
    object(),
]


def _deep(n: int) -> object:
    v: object = "leaf"
    for _ in range(n):
        v = {"d": [v]}
    return v


@pytest.mark.parametrize("value", [*ODD, _deep(20), _deep(40)], ids=repr)
def test_odd_values_make_the_same_block(value: object) -> None:
    policy = charter.compile(POLICY)
    counter = next(c.id for c in policy.ir.counters)
    state = Snapshot(
        counters={(counter, value if type(value) is str else "a"): 3},
        history={"h": ((1.7e9, {"f": value}), (1.7e9 + 5, {"f": value}))},
        labels=frozenset({"l"}),
        now=1.8e9,
    )
    req = {
        "stage": "tool_call",
        "tool": "t",
        "args": {"note": value, "n": value},
        "agent": {"team": value, "labels": {"k": value}, "id": "a"},
        "session": {"id": "s-1", "cost_usd": value},
    }
    decided = policy.decide(req, state)
    capture = Capture(policy, req, state, decided, decided, 1.8e9)
    for mask in MASKS:
        for key in (None, KEY):
            walked, made = _both(capture, mask, key)
            assert _ENCODE(capture.block(mask, key)) == walked
            assert made is None or made == walked


def test_a_mask_that_changes_a_read_key_takes_the_walk() -> None:
    """The walk masks the projection's own keys too: a policy whose path key is a match
    for one of the log's matchers gets the walk's pointers, not the plan's."""
    policy = charter.compile(POLICY.replace('labels["k"]', 'labels["EMP-123456"]'))
    req = {"stage": "tool_call", "tool": "t", "agent": {"labels": {"EMP-123456": "y"}}}
    decided = policy.decide(req, None)
    capture = Capture(policy, req, None, decided, decided, 1.8e9)
    mask = MASKS[1]
    assert not plan_of(policy).clean(mask)
    block = capture.block(mask, None)
    assert _ENCODE(block) == _ENCODE(capture._walked(mask, None))
    masked = block.get("masked")
    assert isinstance(masked, dict), block
    assert [p for p in masked if p.startswith("/request/agent/labels/") and p.endswith("~k")]


def test_the_projector_is_the_loop_written_out() -> None:
    """The straight-line projector (and, for paths nested deeper than it writes out, the
    loop it hands over to) projects and masks as `Builder.project` does. Policies read
    no such depths outside payloads, which are kept whole: the steps are made here."""
    for depth in (1, 3, 12):
        keys = "abcdefghijklmnop"[:depth]
        tree: dict[str, object] = {"": 8}
        for k in reversed(keys):
            tree = {k: tree, "x": {"": 8}}
        steps = _steps({"agent": tree, "tool": {"": 8}}, "/request", top=True)
        value: object = "bob@example.com"
        for k in reversed(keys):
            value = {k: value, "x": "alice@example.com", "y": 1}
        req = {"tool": "t", "agent": value, "other": "x"}
        mask = MASKS[0]
        looped, written = Builder(mask, None), Builder(mask, None)
        assert _projector(steps)(req, written) == looped.project(steps, req)
        assert written.masked == looped.masked
        assert f"/request/agent/{'/'.join(keys)}" in written.masked


def test_the_plan_cache_does_not_keep_a_policy_alive() -> None:
    """A Guard's policies come and go (reloads): the last policy's plan is remembered
    weakly, so a policy no one else holds is freed."""
    import gc
    import weakref

    policy = charter.compile(POLICY)
    plan = plan_of(policy)
    assert plan_of(policy) is plan
    gone = weakref.ref(policy)
    del policy
    gc.collect()
    assert gone() is None


def test_a_large_payload_takes_the_walk() -> None:
    """More values than the plan counts (by container) go to the walk, which has the
    record's value budget and its placeholders."""
    policy = charter.compile(POLICY)
    wide = {f"k{i}": [i, "x"] for i in range(6000)}  # 6,000 + 12,000 values
    req = {"stage": "tool_call", "tool": "t", "args": {"note": "hi", "wide": wide}}
    decided = policy.decide(req, None)
    capture = Capture(policy, req, None, decided, decided, 1.8e9)
    walked, made = _both(capture, MASKS[0], None)
    assert made is None
    assert _ENCODE(capture.block(MASKS[0], None)) == walked
    narrow = {**req, "args": {"note": "hi", "wide": dict(list(wide.items())[:100])}}
    capture = Capture(policy, narrow, None, decided, decided, 1.8e9)
    walked, made = _both(capture, MASKS[0], None)
    assert made == walked
