"""A quick yes for arguments that plainly fit a tool's `inputSchema`, before jsonschema.

Most tool schemas are flat objects of typed properties (`type`, `properties`, `required`,
`additionalProperties: false`). For those, `quick_fit(schema)` compiles a check that answers
True only when the value certainly fits; anything else (a violation, a value it is not sure
of) is False, and then the full jsonschema validator, which remains the judge and writes the
message, runs. jsonschema's `iter_errors` costs ~10 µs on a one-property call of a proxy
that adds well under a millisecond in all; this check costs ~1 µs.

A schema that uses any keyword outside this subset, anywhere, gets no quick check (None).
Annotation keywords (`title`, `description`, `default`, `examples`, `$comment`,
`deprecated`, `$schema`) assert nothing; `format` asserts nothing either, as the proxy's
validator has no format checker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["quick_fit"]

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "$schema", "format"}
)
_KEYWORDS = _ANNOTATIONS | {"type", "properties", "required", "additionalProperties", "items"}


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float


# `integer` is sure for ints only (jsonschema also takes 1.0, for which the judge is asked)
_TYPES: dict[str, Check] = {
    "string": lambda v: type(v) is str,
    "number": _is_number,
    "integer": lambda v: type(v) is int,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
}


def quick_fit(schema: Any) -> Check | None:
    """A check that is True only for values that fit `schema`, or None when the schema is
    outside the subset this module knows."""
    if schema is True or (isinstance(schema, Mapping) and not schema.keys() - _ANNOTATIONS):
        return lambda v: True
    if not isinstance(schema, Mapping) or schema.keys() - _KEYWORDS:
        return None
    checks = [_type(schema.get("type"))]
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        checks.append(_object(schema))
    if "items" in schema:
        checks.append(_items(schema["items"]))
    if any(c is None for c in checks):
        return None
    return _all([c for c in checks if c is not None])


def _all(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def _type(kind: Any) -> Check | None:
    if kind is None:
        return lambda v: True
    kinds = [kind] if isinstance(kind, str) else kind
    if not isinstance(kinds, list) or not kinds or any(k not in _TYPES for k in kinds):
        return None
    tests = [_TYPES[k] for k in kinds]
    return tests[0] if len(tests) == 1 else lambda v: any(t(v) for t in tests)


def _object(schema: Mapping[str, Any]) -> Check | None:
    """`properties`, `required` and `additionalProperties` (a boolean only), on dicts; they
    say nothing of other values (the `type` check does)."""
    props = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(props, Mapping) or not isinstance(required, list):
        return None
    if not isinstance(extra, bool) or not all(isinstance(r, str) for r in required):
        return None
    subs: dict[str, Check] = {}
    for name, sub in props.items():
        check = quick_fit(sub)
        if check is None:
            return None
        subs[name] = check
    need = tuple(required)

    def fits(v: Any) -> bool:
        if type(v) is not dict:
            return True
        for key in need:
            if key not in v:
                return False
        for key, value in v.items():
            check = subs.get(key)
            if check is None:
                if not extra:
                    return False
            elif not check(value):
                return False
        return True

    return fits


def _items(items: Any) -> Check | None:
    check = quick_fit(items)
    if check is None:
        return None
    return lambda v: type(v) is not list or all(check(x) for x in v)
