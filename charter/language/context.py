"""The request context of §1.4 as types: what `agent.x`, `session.y` and friends are."""

from __future__ import annotations

from charter.language.types import (
    ANY,
    DECIMAL,
    INT,
    STR,
    TIME,
    FieldT,
    ListT,
    MapT,
    RecordT,
    Type,
)


def _record(record_name: str, **fields: Type) -> RecordT:
    return RecordT(record_name, {k: FieldT(v) for k, v in fields.items()})


AGENT = _record("agent", id=STR, team=STR, tenant=STR, env=STR, labels=MapT(STR))
USER = _record("user", id=STR, roles=ListT(STR), tenant=STR)
SESSION = _record(
    "session", id=STR, cost_usd=DECIMAL, tokens=INT, tool_calls=INT,
    consecutive_tool_calls=INT, tool_calls_since_checkpoint=INT, turn=STR, labels=ListT(STR),
    started_at=TIME,
)
TOOL = _record("tool", name=STR, tags=ListT(STR), server=STR)
ESTIMATE = _record("estimate", cost_usd=DECIMAL, tokens=INT)

# Roots whose type does not depend on the rule. `args` depends on the rule's target.
ROOTS: dict[str, Type] = {
    "agent": AGENT, "user": USER, "session": SESSION, "tool": TOOL, "estimate": ESTIMATE,
    "now": TIME, "stage": STR, "result": ANY, "input": ANY, "output": ANY,
}
ALL_ROOTS = (*ROOTS, "args")

# Roots that exist only at one stage.
STAGE_ONLY = {"result": "tool_result", "input": "model_input", "output": "model_output"}
