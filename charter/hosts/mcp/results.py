"""`CallToolResult`s as the policy sees them, and the proxy's own answers.

The `tool_result` stage reads `result` = the upstream's result as a dict: `content` (text
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

from typing import Any

from mcp import types

from charter.engine.decision import Decision

__all__ = ["as_policy_value", "decision_meta", "error_result", "from_policy_value"]


def as_policy_value(result: types.CallToolResult) -> dict[str, Any]:
    """The result as the `tool_result` stage reads it."""
    content: list[dict[str, Any]] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            content.append({"type": "text", "text": block.text})
        elif isinstance(block, types.EmbeddedResource):
            res = block.resource
            item: dict[str, Any] = {"type": "resource", "uri": str(res.uri)}
            if isinstance(res, types.TextResourceContents):
                item["text"] = res.text
            content.append(item)
        else:
            content.append({"type": block.type, "mimeType": getattr(block, "mime_type", None)})
    out: dict[str, Any] = {"content": content, "isError": bool(result.is_error)}
    if result.structured_content is not None:
        out["structuredContent"] = result.structured_content
    return out


def from_policy_value(result: types.CallToolResult, value: dict[str, Any]
                      ) -> types.CallToolResult:
    """`result` with the (redacted) text of `value` put back, block for block."""
    blocks: list[types.ContentBlock] = []
    for block, item in zip(result.content, value.get("content", ()), strict=False):
        if isinstance(block, types.TextContent) and isinstance(item.get("text"), str):
            blocks.append(block.model_copy(update={"text": item["text"]}))
        elif (isinstance(block, types.EmbeddedResource)
              and isinstance(block.resource, types.TextResourceContents)
              and isinstance(item.get("text"), str)):
            resource = block.resource.model_copy(update={"text": item["text"]})
            blocks.append(block.model_copy(update={"resource": resource}))
        else:
            blocks.append(block)
    update: dict[str, Any] = {"content": blocks}
    if "structuredContent" in value:
        update["structured_content"] = value["structuredContent"]
    return result.model_copy(update=update)


def decision_meta(decision: Decision) -> dict[str, Any]:
    """`_meta["io.charter/decision"]`: what the client application may show or log."""
    info = decision.policy
    return {"effect": decision.effect, "rules": list(decision.rules),
            "reasons": list(decision.reasons),
            "policy": None if info is None else {"name": info.name, "version": info.version,
                                                 "digest": info.digest}}


def error_result(text: str, meta: dict[str, Any] | None = None) -> types.CallToolResult:
    """An `isError` result the model reads."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                is_error=True, _meta=meta)
