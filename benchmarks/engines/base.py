"""The small interface every engine adapter implements, and request helpers they share.

An adapter module exposes ``load(source) -> loaded`` and ``decide(loaded, request) -> str``
(one of EFFECTS). ``source`` is engine-specific (text, or a small dataclass); ``decide``
takes the request dict exactly as the user has it, so any conversion an engine needs is
part of what gets timed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

EFFECTS = ("allow", "deny", "require_approval")

Request = dict[str, Any]
DecimalFields = tuple[tuple[str, str], ...]


class EngineModule(Protocol):
    def load(self, source: Any) -> Any: ...

    def decide(self, loaded: Any, request: Request) -> str: ...


def tool_name(request: Request) -> str:
    # The wire format allows "tool": "name" or "tool": {"name": ...}.
    tool = request["tool"]
    return tool if isinstance(tool, str) else str(tool["name"])


def convert_decimals(
    sections: dict[str, Any], fields: Iterable[tuple[str, str]], convert: Any
) -> None:
    """Rewrite the decimal fields in ``sections`` with ``convert``, copying each touched section.

    Engines without exact decimals need money fields as one numeric type (CEL refuses
    int + double, Cedar has no decimal addition), so adapters normalise them here.
    The caller's request is never mutated.
    """
    for section, field in fields:
        values = sections.get(section)
        if values and field in values:
            values = dict(values)
            values[field] = convert(values[field])
            sections[section] = values
