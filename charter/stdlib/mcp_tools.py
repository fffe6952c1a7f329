"""MCP tool annotations as Charter tags: one mapping for `tools from` and the MCP proxy.

`readOnlyHint` → `read_only`; `destructiveHint` → `destructive` (meaningful only when the
tool is not read-only); `idempotentHint` → `idempotent`; `openWorldHint` → `open_world`,
with the MCP spec's defaults when a hint is absent (`readOnlyHint` false, `destructiveHint`
true, `idempotentHint` false, `openWorldHint` true). The MCP spec says clients should never
decide on annotations from untrusted servers: untrusted ones come out as `hint:read_only`
and so on, which a policy can still read knowingly (docs/mcp.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["annotation_tags"]


def annotation_tags(annotations: Mapping[str, Any] | None, trusted: bool) -> list[str]:
    """The tags of an MCP `ToolAnnotations` object (its JSON, camelCase keys)."""
    hints = annotations or {}
    read_only = hints.get("readOnlyHint") is True
    destructive = hints.get("destructiveHint") is not False
    found = []
    if read_only:
        found.append("read_only")
    elif destructive:
        found.append("destructive")
    if hints.get("idempotentHint") is True:
        found.append("idempotent")
    if hints.get("openWorldHint") is not False:
        found.append("open_world")
    return found if trusted else [f"hint:{tag}" for tag in found]
