"""Reading host events: typed field access whose failures name the field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec

from charter.stdlib.values import describe

_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)


class BadEvent(Exception):
    """An event field that is missing or of the wrong type; the message names it."""


def text(event: dict[str, Any], key: str, agent: str, *, required: bool = True) -> str | None:
    """`event[key]` as a non-empty string (None when absent and not `required`)."""
    value = event.get(key)
    if value is None and not required:
        return None
    if type(value) is not str or not value:
        what = "missing" if value is None else "must be a non-empty string; found "
        what += "" if value is None else describe(value)
        raise BadEvent(f"{agent} hook event: {key} {what}")
    return value


def obj(
    event: dict[str, Any],
    key: str,
    agent: str,
    *,
    json_text: bool = False,
    default: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`event[key]` as an object; with `json_text`, a JSON string holding one is read too
    (Cursor sends MCP input either way, Copilot always as text)."""
    value = event.get(key)
    if value is None and default is not None:
        return default
    if json_text and type(value) is str:
        try:
            value = _DECODER.decode(value)
        except (msgspec.DecodeError, RecursionError) as err:
            raise BadEvent(f"{agent} hook event: {key} is not valid JSON: {err}") from None
    if type(value) is not dict:
        what = "missing" if value is None else f"must be an object; found {describe(value)}"
        raise BadEvent(f"{agent} hook event: {key} {what}")
    return value


def prune(request: dict[str, Any]) -> dict[str, Any]:
    """The request without parts that are None (absent means absent)."""
    return {k: v for k, v in request.items() if v is not None}
