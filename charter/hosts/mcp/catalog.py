"""The proxy's tool catalog: upstream tools under exported names, as Charter tool objects.

An upstream tool `read_file` of server `fs` is exported as `fs.read_file` (`<server><sep>
<tool>`) and decided as the Charter tool `{"name": "mcp.fs.read_file", "server": "fs",
"tags": [...]}` (`names = "normalized"`, spec hosts.md §0.3; `"raw"` keeps the exported
name). Tags: `mcp`, the server's configured tags, and the tool's MCP annotations — as
`read_only`, `destructive`, `idempotent`, `open_world` for a server marked
`trust_annotations`, else as `hint:read_only`... (the MCP spec: clients should never decide
on annotations from untrusted servers; a policy can still read the hints knowingly).
Annotation defaults are the spec's: `destructiveHint` true and `openWorldHint` true when
absent, `destructiveHint` meaningful only when `readOnlyHint` is false.

A tool is hidden from `tools/list` (with `hide_denied_tools`) when no call of it can be
allowed: a rule denies it with no condition, or the policy denies by default and no allow or
approval rule targets it. Calling a hidden tool anyway is the MCP spec's unknown tool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from charter.hosts.mcp.fits import quick_fit
from charter.stdlib.mcp_tools import annotation_tags

if TYPE_CHECKING:
    from mcp import types

    from charter.hosts.mcp.config import ProxyConfig, ServerConfig
    from charter.runtime.policy import Policy

__all__ = ["Catalog", "Entry"]

_OPENING = ("allow", "require_approval")


@dataclass(frozen=True)
class Entry:
    """One exported tool: where it lives and how the policy sees it."""

    exported: str
    server: str
    upstream_name: str
    charter: dict[str, Any]  # the request's `tool` object
    tool: types.Tool  # as exported (renamed, tags in _meta)
    hidden: bool
    _validator: Any = field(default=None, repr=False, compare=False)
    _quick: Any = field(default=None, repr=False, compare=False)  # `fits.quick_fit`

    def problem(self, arguments: Mapping[str, Any]) -> str | None:
        """Why `arguments` break the tool's `inputSchema` (None when they fit). The upstream
        never sees arguments its own schema refuses; the model reads the reason."""
        if self._validator is None or (self._quick is not None and self._quick(arguments)):
            return None
        error = next(
            iter(sorted(self._validator.iter_errors(dict(arguments)), key=lambda e: list(e.path))),
            None,
        )
        if error is None:
            return None
        where = "/".join(str(p) for p in error.path) or "(arguments)"
        return f"arguments do not fit the schema of {self.exported}: {where}: {error.message}"


class Catalog:
    """Exported tools by name, rebuilt whenever an upstream's tool list changes."""

    def __init__(self, config: ProxyConfig, policy: Policy) -> None:
        self.config = config
        self.policy = policy
        self.entries: dict[str, Entry] = {}

    def charter_tool(self, server: ServerConfig, name: str, annotations: Any) -> dict[str, Any]:
        exported = f"{server.name}{self.config.separator}{name}"
        charter_name = (
            f"mcp.{server.name}.{name}" if self.config.names == "normalized" else exported
        )
        hints = (
            annotations.model_dump(by_alias=True, exclude_none=True)
            if annotations is not None
            else None
        )
        tags = ["mcp", *server.tags, *annotation_tags(hints, server.trust_annotations)]
        return {"name": charter_name, "server": server.name, "tags": list(dict.fromkeys(tags))}

    def rebuild(self, server: ServerConfig, tools: Iterable[types.Tool]) -> None:
        """Replace `server`'s entries by `tools` (its whole current list)."""
        self.entries = {k: e for k, e in self.entries.items() if e.server != server.name}
        for tool in tools:
            charter = self.charter_tool(server, tool.name, tool.annotations)
            exported = f"{server.name}{self.config.separator}{tool.name}"
            meta = dict(tool.meta or {})
            meta["io.charter/tags"] = charter["tags"]
            meta["io.charter/tool"] = charter["name"]
            shown = tool.model_copy(update={"name": exported, "meta": meta})
            hidden = self.config.hide_denied_tools and self.never_allowed(charter)
            self.entries[exported] = Entry(
                exported,
                server.name,
                tool.name,
                charter,
                shown,
                hidden,
                _validator(tool.input_schema),
                quick_fit(tool.input_schema),
            )

    def drop(self, server: str) -> None:
        """Forget a server's tools (it went away)."""
        self.entries = {k: e for k, e in self.entries.items() if e.server != server}

    def listed(self) -> list[types.Tool]:
        """What `tools/list` answers: every tool not hidden, in a stable order."""
        return [e.tool for _, e in sorted(self.entries.items()) if not e.hidden]

    def find(self, exported: str) -> Entry | None:
        """The entry a `tools/call` names, None for an unknown or hidden tool."""
        entry = self.entries.get(exported)
        return entry if entry is not None and not entry.hidden else None

    def never_allowed(self, tool: Mapping[str, Any]) -> bool:
        """No call of `tool` can be allowed, whatever its arguments or session."""
        plan = self.policy.plan
        ir = self.policy.ir
        rules = ir.rules
        bucket = plan.bucket("tool_call", str(tool["name"]), tuple(tool["tags"]))
        if any(rules[i].kind == "deny" and rules[i].cond is None for i in bucket):
            return True
        return ir.default == "deny" and not any(rules[i].kind in _OPENING for i in bucket)


def _validator(schema: Mapping[str, Any] | None) -> Any:
    """A JSON Schema validator for a tool's `inputSchema` (its own `$schema` dialect, 2020-12
    when absent, as MCP says); None for a schema that is not one (the upstream judges)."""
    if not isinstance(schema, Mapping):
        return None
    from jsonschema import exceptions, validators  # type: ignore[import-untyped]

    try:
        cls = validators.validator_for(schema, default=validators.Draft202012Validator)
        cls.check_schema(schema)
    except exceptions.SchemaError:
        return None
    return cls(schema)
