"""A live host for tests, in its own process: `python -m tests.control.livehost POLICY_DIR
STATE_DIR` serves a watched directory and answers each JSON request line on stdin with one
line `{"digest", "rules", "effect"}` on stdout (EOF: close and exit)."""

from __future__ import annotations

import json
import sys

from charter.control import watch


def main(policy_dir: str, state_dir: str) -> None:
    live = watch(
        policy_dir,
        state_dir=state_dir,
        properties=0,
        step_ms=10,
        debounce_ms=100,
        poll_interval_s=0.2,
    )
    print(json.dumps({"ready": live.active.digest}), flush=True)
    for line in sys.stdin:
        decision = live.decide(json.loads(line))
        info = decision.policy
        answer = {
            "digest": info.digest if info is not None else None,
            "rules": list(decision.rules),
            "effect": decision.effect,
        }
        print(json.dumps(answer), flush=True)
    live.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
