"""`python examples/agent_loop.py` runs and shows each behaviour it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "agent_loop.py"


def test_agent_loop_example_runs_and_shows_every_step() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert "deny" in lines["web.fetch docs/2"]
    assert "limited to 2 calls a minute" in lines["web.fetch docs/2"]
    assert "require_approval" in lines["refund.create 80"]
    assert " allow " in lines["refund.create 80 + grant"] + " "
    assert "(replayed)" in lines["refund.create 80 + same grant again"]
    assert "'email': '[EMAIL]'" in lines["crm.lookup C-17 (result redacted)"]
    assert " allow" in lines["web.fetch before PII"]
    assert "no egress after reading customer PII" in lines["web.fetch after PII"]
    assert " allow" in lines["search q1 (est $0.02)"]
    assert "session budget of $0.10 reached" in lines["search q2 (est $0.02)"]
    assert "session budget of $0.10 reached" in lines["guarded search raises Denied"]
    assert "-- 14 decisions and 7 settlements in the decision log" in out
