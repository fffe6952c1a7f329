"""Replay round trip on the differential test's generated policies and requests: a decision's
replay block, written as the log writes it (masked, with keyed hashes, through JSON), decided
again by `runtime.replay` gives the same effect and rules — or says it is inconclusive, which
it must only be when the policy reads a value the log cannot reconstruct."""

from __future__ import annotations

import collections
import os
import random
import sys
from decimal import Decimal
from pathlib import Path

import msgspec

import charter
from charter.runtime import audit
from charter.runtime.capture import Capture, with_now
from charter.runtime.replay import replay_record
from charter.runtime.request import Call, read

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compiler"))
from test_differential import Policies, Requests, render  # noqa: E402

POLICIES = int(os.environ.get("CHARTER_REPLAY_POLICIES", "30"))
KEY = b"generated-replay-key-0123456789"
_ENCODE = msgspec.json.Encoder(decimal_format="number").encode
_DECODE = msgspec.json.Decoder(dict[str, object], float_hook=Decimal).decode


def test_generated_decisions_replay_the_same_or_say_why_not() -> None:
    mask = audit._masker(())
    stats: collections.Counter[str] = collections.Counter()
    for seed in range(POLICIES):
        rng = random.Random(seed)
        options, items = Policies(rng).policy()
        text = render(options, items)
        policy = charter.compile(text)
        gen = Requests(rng)
        counters = sorted({c.id for c in policy.counters})
        for _ in range(100):
            req, snap = gen.request(), gen.snapshot(counters)
            call = read(req, policy.info)
            if not isinstance(call, Call):
                continue  # malformed: no projection (docs/log.md)
            call = with_now(call, policy)
            decided = policy.decide(call.req, snap)
            block = Capture(policy, call.req, snap, decided, decided, 1.8e9).block(mask, KEY)
            # The digest, as a Guard's record names it: the block's capture is then known
            # to be this policy's read set (`runtime.captured`).
            record = _DECODE(_ENCODE({"v": 1, "effect": decided.effect,
                                      "rules": list(decided.rules), "replay": block,
                                      "policy_digest": policy.digest}))
            out = replay_record(record, policy, hash_key=KEY)
            if out.inconclusive:
                stats["inconclusive"] += 1
            elif out.same:
                stats["same"] += 1
            else:
                raise AssertionError(
                    f"seed {seed}: replay changed the decision\n{text}\n--- request\n"
                    f"{call.req!r}\n--- snapshot\n{snap!r}\n--- logged\n{decided}\n"
                    f"--- replayed\n{out.decision}")
    assert stats["same"] > 30 * POLICIES and stats["inconclusive"] > 10 * POLICIES, stats
