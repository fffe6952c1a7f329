"""Reading a request: loose in, strict out.

`read` takes what a host sends (a dict or any other mapping, JSON bytes or text) and gives
back either a `Call`, whose stage, tool name, tags and server are known to be well formed,
or the malformed-request deny whose reason names the field (and whose one `RuleError` has no
rule and, where one field is at fault, that field's path). It never raises. Every reader
of requests goes through it: `Policy.decide` (on its slow path), `Policy.interpret`,
`explain` and `bucket_for`, and the Guard.

`fast_key` is the plain case of the same reading, for hot paths that want to skip building
a `Call`: a dict naming its tool by a string, or by an object without tags. Whenever it
returns a key, `read` accepts the request with that stage and name and no request tags;
when it returns None, the caller reads the request with `read`. `tests/runtime/
test_request.py` holds the two together over adversarial shapes.

What `read` checks, and nothing more (everything else in a request is read, and typed, by
the rules that use it):

- the request is an object (JSON text that decodes to one, or a mapping);
- `stage` is absent, null or one of `STAGES` (null means absent, as everywhere);
- `tool` is a non-empty string, or an object whose `name` is a non-empty string, whose
  `tags` are absent, null or a list of strings, and whose `server` is absent, null or a
  string; a `tool_call` or `tool_result` request must name its tool, a model request
  need not (its name is then `""`).

Strings are exact `str` (a subclass, such as an `enum.StrEnum` member, is refused rather
than converted: its `__eq__` and `__hash__` are its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec

from charter.engine.combine import malformed
from charter.engine.decision import Decision, PolicyInfo
from charter.stdlib.values import describe, describe_error

__all__ = ["STAGES", "TOOL_STAGES", "Call", "fast_key", "read"]

#: The stages a request may name, in the language's order; `tool_call` when absent.
STAGES: Final = ("tool_call", "tool_result", "model_input", "model_output")
#: Stages whose requests must name a tool.
TOOL_STAGES: Final = frozenset({"tool_call", "tool_result"})
_STAGE_SET: Final = frozenset(STAGES)
_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)
_NO_TAGS: tuple[str, ...] = ()


class Call(msgspec.Struct, frozen=True):
    """One well-formed request: where it is in the agent's loop, which tool it names (`""`
    for a model request without one), the tags and server the host sent for the tool, and
    the request itself as a dict, for the rules to read."""

    stage: str
    name: str
    tags: tuple[str, ...]
    server: str | None
    req: dict[str, Any]


def read(raw: object, info: PolicyInfo | None = None) -> Call | Decision:
    """`raw` as a `Call`, or the malformed-request deny (for the policy `info`) saying which
    field is wrong. A `Call` is returned as it is. Never raises."""
    try:
        if type(raw) is Call:
            return raw
        req = _as_dict(raw, info)
        return req if isinstance(req, Decision) else _read_dict(req, info)
    except Exception as err:  # noqa: BLE001 - a mapping or key whose methods raise
        return malformed(info, f"cannot read the request: {describe_error(err)}")


def fast_key(raw: object) -> tuple[str, str] | None:
    """(stage, tool name) of a plain, well-formed request, or None: the caller then reads
    it with `read`. Plain: `raw` is a dict whose tool is a non-empty string, or an object
    with a non-empty string name, no tags (absent, null or `[]`) and a string server or
    none, or is absent from a model request (the name is then `""`). `read(raw)` then gives
    a `Call` with this stage and name and no tags."""
    if type(raw) is not dict:
        return None
    stage = raw.get("stage")
    if stage is None:
        stage = "tool_call"
    elif type(stage) is not str or stage not in _STAGE_SET:
        return None
    tool = raw.get("tool")
    if type(tool) is dict:
        tags = tool.get("tags")
        server = tool.get("server")
        if (tags is not None and (type(tags) is not list or tags)) or (
                server is not None and type(server) is not str):
            return None
        tool = tool.get("name")
    elif tool is None:
        return None if stage in TOOL_STAGES else (stage, "")
    if type(tool) is not str or not tool:
        return None
    return (stage, tool)


def _as_dict(raw: object, info: PolicyInfo | None) -> dict[str, Any] | Decision:
    if type(raw) is dict:
        return raw
    if isinstance(raw, bytes | bytearray | memoryview | str):
        try:
            req = _DECODER.decode(raw)
        except msgspec.DecodeError as err:
            return malformed(info, f"not valid JSON: {err}")
        if type(req) is not dict:
            return malformed(info, f"the request must be a JSON object; found {describe(req)}")
        return req
    if isinstance(raw, Mapping):
        return dict(raw)
    return malformed(info, f"expected a JSON object, found {type(raw).__name__}")


def _read_dict(req: dict[str, Any], info: PolicyInfo | None) -> Call | Decision:
    stage = req.get("stage")
    if stage is None:
        stage = "tool_call"
    elif type(stage) is not str or stage not in _STAGE_SET:
        return malformed(info, f"stage must be one of {', '.join(sorted(STAGES))}; "
                         f"found {describe(stage)}", "stage")
    tool = req.get("tool")
    if tool is None:
        if stage in TOOL_STAGES:
            return malformed(info, f"tool missing (a {stage} request names its tool)", "tool")
        return Call(stage, "", _NO_TAGS, None, req)
    if type(tool) is str:
        if not tool:
            return malformed(info, "tool name is empty", "tool")
        return Call(stage, tool, _NO_TAGS, None, req)
    if not isinstance(tool, dict):
        return malformed(info, "tool must be a name or an object with a name; found "
                         + describe(tool), "tool")
    name = tool.get("name")
    if type(name) is not str:
        return malformed(info, "tool.name missing" if name is None else
                         f"tool.name must be a string; found {describe(name)}", "tool.name")
    if not name:
        return malformed(info, "tool.name is empty", "tool.name")
    tags = tool.get("tags")
    if tags is None:
        tags = _NO_TAGS
    elif isinstance(tags, list | tuple):
        for i, tag in enumerate(tags):
            if type(tag) is not str:
                return malformed(info, f"tool.tags must be a list of strings; tool.tags[{i}] "
                                 f"is {describe(tag)}", f"tool.tags[{i}]")
        tags = tuple(tags)
    else:
        return malformed(info, f"tool.tags must be a list of strings; found {describe(tags)}",
                         "tool.tags")
    server = tool.get("server")
    if server is not None and type(server) is not str:
        return malformed(info, f"tool.server must be a string; found {describe(server)}",
                         "tool.server")
    return Call(stage, name, tags, server, req)
