"""`strict args`: a call's args must fit its tool's declaration exactly.

The lowerer adds one deny rule per declared tool whose condition is `strict_args(...)`; the
function returns False when the args fit and otherwise raises a `RequestError` naming the
field, so the rule errs — and an erring deny rule denies, with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from charter.stdlib.values import CHECKS, RequestError, type_name


def strict_args(req: Any, tool: str, params: Sequence[tuple[str, str, bool]]) -> bool:
    """False when `req["args"]` has every required parameter, no other field, and each value
    of its declared type; otherwise a RequestError naming the first field that does not."""
    args = req.get("args")
    if args is None:
        args = {}
    elif not isinstance(args, dict):
        raise RequestError(f"args: expected an object, found {type_name(args)}", "args")
    declared = {name for name, _, _ in params}
    for key in args:
        if key not in declared:
            raise RequestError(f'args.{key} is not a parameter of tool "{tool}"', f"args.{key}")
    for name, check, optional in params:
        value = args.get(name)
        if value is None:
            if optional:
                continue
            raise RequestError(f"args.{name} missing", f"args.{name}")
        try:
            CHECKS[check](value)
        except TypeError as err:
            raise RequestError(f"args.{name}: {err}", f"args.{name}") from None
    return False
