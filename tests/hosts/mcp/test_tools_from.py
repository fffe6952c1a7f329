"""`tools from` and the MCP proxy read MCP annotations through one mapping
(`charter.stdlib.mcp_tools`), so a policy written against `charter mcp tools --json` sees the
tags the proxy sends, and the arguments' types come from each tool's inputSchema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import charter
from charter.stdlib.mcp_tools import annotation_tags

TOOLS = {
    "tools": [
        {
            "name": "mcp.fs.read_text_file",
            "inputSchema": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "head": {"type": "number"}},
                "required": ["path"],
            },
            "annotations": {"readOnlyHint": True, "openWorldHint": False},
        },
        {
            "name": "mcp.fs.write_file",
            "inputSchema": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"],
            },
            "annotations": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True},
        },
        {"name": "mcp.git.git_log", "inputSchema": {"type": "object", "properties": {}}},
    ]
}


@pytest.mark.parametrize(
    ("hints", "trusted", "tags"),
    [
        (None, True, ["destructive", "open_world"]),  # the MCP spec's defaults
        ({"readOnlyHint": True, "destructiveHint": True}, True, ["read_only", "open_world"]),
        ({"destructiveHint": False, "openWorldHint": False}, True, []),
        (
            {"idempotentHint": True, "openWorldHint": False},
            False,
            ["hint:destructive", "hint:idempotent"],
        ),
    ],
)
def test_annotation_tags(hints: dict[str, bool] | None, trusted: bool, tags: list[str]) -> None:
    assert annotation_tags(hints, trusted) == tags


def test_tools_from_declares_types_and_the_proxys_tags(tmp_path: Path) -> None:
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    (tmp_path / "policy.agentpolicy").write_text("""policy "typed" version "1"
tools from "tools.json"
default deny
allow tool tagged read_only
deny tool "mcp.fs.read_text_file" when has(args.head) and args.head > 100
  because "at most 100 lines"
""")
    policy = charter.load(tmp_path)
    read = {"tool": "mcp.fs.read_text_file", "args": {"path": "a"}}
    assert policy.decide(read).allowed  # declared read_only: the granting tag is the file's
    assert not policy.decide(
        {"tool": "mcp.fs.write_file", "args": {"path": "a", "content": "b"}}
    ).allowed
    assert not policy.decide({"tool": "mcp.git.git_log", "args": {}}).allowed
    typed = policy.decide({**read, "args": {"path": "a", "head": "many"}})
    assert not typed.allowed and typed.errors[0].field == "args.head"
    assert policy.decide({**read, "args": {"path": "a", "head": 500}}).reasons == (
        "at most 100 lines",
    )
