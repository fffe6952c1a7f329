"""`CallToolResult`s as the policy sees them, and the proxy's own answers.

The proxy relays an upstream's `CallToolResult` in its wire form (the dict the SDK's client
validated against the negotiated protocol version), never rebuilt as a model and dumped
again. The `tool_result` stage reads `result` = that result as a dict: `content` (text
blocks as `{"type": "text", "text": ...}`, embedded resources with their `text`),
`structuredContent` and `isError`. A redaction is applied to that dict and the result is
rebuilt from it, so text blocks, structured content and embedded resource text come back
masked and structured content keeps its shape (a string stays a string: `[EMAIL]`).
Image and audio blobs pass unchanged; the policy sees their type and mime type only.

Answers the proxy makes itself (a deny, an approval ticket, an upstream failure) are
`isError` results whose text the model reads and whose `_meta["io.charter/decision"]` the
client application reads (hosts.md §1.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp import types

from charter.engine.decision import Decision

__all__ = ["as_policy_value", "decision_meta", "error_result", "from_policy_value", "masks"]


def as_policy_value(result: Mapping[str, Any]) -> dict[str, Any]:
    """The result (its wire form, as the upstream sent it) as the `tool_result` stage reads
    it."""
    content: list[dict[str, Any]] = []
    for block in _blocks(result):
        kind = block.get("type")
        if kind == "text":
            content.append({"type": "text", "text": block.get("text")})
        elif kind == "resource":
            res = block.get("resource")
            res = res if isinstance(res, Mapping) else {}
            item: dict[str, Any] = {"type": "resource", "uri": str(res.get("uri"))}
            if isinstance(res.get("text"), str):
                item["text"] = res["text"]
            content.append(item)
        else:
            content.append({"type": kind, "mimeType": block.get("mimeType")})
    out: dict[str, Any] = {"content": content, "isError": bool(result.get("isError"))}
    if result.get("structuredContent") is not None:
        out["structuredContent"] = result["structuredContent"]
    return out


def from_policy_value(result: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, Any]:
    """`result` (wire form) with the (redacted) text of `value` put back, block for block;
    every other field as it was."""
    blocks: list[Any] = []
    items = value.get("content", ())
    for i, block in enumerate(_blocks(result)):
        item = items[i] if i < len(items) and isinstance(items[i], Mapping) else {}
        text = item.get("text")
        if block.get("type") == "text" and isinstance(text, str):
            blocks.append({**block, "text": text})
        elif (
            block.get("type") == "resource"
            and isinstance(block.get("resource"), Mapping)
            and isinstance(block["resource"].get("text"), str)
            and isinstance(text, str)
        ):
            blocks.append({**block, "resource": {**block["resource"], "text": text}})
        else:
            blocks.append(block)
    out = {**result, "content": blocks}
    if "structuredContent" in value:
        out["structuredContent"] = value["structuredContent"]
    return out


def masks(decision: Decision, field: str) -> bool:
    """Whether `decision.redact(value, field)` would change the value the decision read:
    some redaction of `field` counted a match in it (the counts are of that very value, and
    a value with no match comes back unchanged). Saves rebuilding a clean result."""
    return any(r.field == field and any(r.counts.values()) for r in decision.redactions)


def _blocks(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = result.get("content")
    if not isinstance(content, list):
        return []
    return [b if isinstance(b, Mapping) else {} for b in content]


def decision_meta(decision: Decision) -> dict[str, Any]:
    """`_meta["io.charter/decision"]`: what the client application may show or log."""
    info = decision.policy
    return {
        "effect": decision.effect,
        "rules": list(decision.rules),
        "reasons": list(decision.reasons),
        "policy": None
        if info is None
        else {"name": info.name, "version": info.version, "digest": info.digest},
    }


def error_result(text: str, meta: dict[str, Any] | None = None) -> types.CallToolResult:
    """An `isError` result the model reads."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=True, _meta=meta
    )
