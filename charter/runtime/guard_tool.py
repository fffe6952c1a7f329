"""`@guard.tool(...)`: run a Python function only when the policy allows the call.

The request is built from the call's arguments (`args`) and a context: the decorator's
`context=` first, then whatever `guard.context(...)` blocks are active (inner blocks win;
dict parts such as `session` merge key by key).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import msgspec

from charter.engine.decision import Decision
from charter.runtime.errors import ApprovalRequired, Denied

if TYPE_CHECKING:
    import inspect

    from charter.runtime.guard import Guard

__all__ = ["ToolSpec", "merge", "new_context_var", "wrap"]

F = TypeVar("F", bound=Callable[..., Any])
Context = Mapping[str, Any]


class ToolSpec(msgspec.Struct, frozen=True):
    """How `Guard.tool` was called."""

    name: str
    tags: tuple[str, ...]
    context: Context | Callable[[], Context] | None
    cost: Callable[[Any], Decimal | float | int] | None
    tokens: Callable[[Any], int] | None
    estimate: Context | Callable[[dict[str, Any]], Context] | None


def new_context_var() -> ContextVar[Context]:
    """A fresh context variable for one Guard (so two Guards never see each other's)."""
    return ContextVar("charter_guard_context", default=MappingProxyType({}))


def merge(outer: Context, inner: Context) -> dict[str, Any]:
    """`inner` over `outer`; dict values are merged one level deep."""
    out = dict(outer)
    for key, value in inner.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = {**old, **value}
        else:
            out[key] = value
    return out


def wrap(guard: Guard, var: ContextVar[Context], spec: ToolSpec, fn: F) -> F:
    """`fn` guarded by `guard`: raises `Denied` / `ApprovalRequired` instead of running a
    call the policy does not allow; redacts its result as the `tool_result` stage says."""
    import inspect  # here: a hook process, which never wraps a function, does not load it

    signature = inspect.signature(fn)

    def before(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any],
                                                                        Decision]:
        request = _request(spec, var.get(), _arguments(signature, args, kwargs))
        decision = guard.check(request)
        if decision.effect == "require_approval":
            raise ApprovalRequired(decision)
        if not decision.allowed:
            raise Denied(decision)
        return request, decision

    def after(request: dict[str, Any], decision: Decision, result: Any) -> Any:
        guard.settle(decision,
                     cost_usd=spec.cost(result) if spec.cost is not None else None,
                     tokens=spec.tokens(result) if spec.tokens is not None else None)
        # The result belongs to the call already charged and approved: no estimate, no grant.
        seen = guard.check({**{k: v for k, v in request.items()
                               if k not in ("estimate", "approvals")},
                            "stage": "tool_result", "result": result})
        if not seen.allowed:
            raise Denied(seen)
        return seen.redact(result) if seen.redactions else result

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            request, decision = before(args, kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException:
                guard.release(decision)
                raise
            return after(request, decision, result)
        return cast(F, run_async)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        request, decision = before(args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            guard.release(decision)
            raise
        return after(request, decision, result)
    return cast(F, run)


def _arguments(signature: inspect.Signature, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> dict[str, Any]:
    import inspect

    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = list(value)
        else:
            out[name] = value
    return out


def _request(spec: ToolSpec, active: Context, args: dict[str, Any]) -> dict[str, Any]:
    static = spec.context() if callable(spec.context) else spec.context or {}
    request = merge(static, active)
    request["stage"] = "tool_call"
    request["tool"] = {"name": spec.name, "tags": list(spec.tags)} if spec.tags else spec.name
    request["args"] = args
    if spec.estimate is not None:
        est = spec.estimate(args) if callable(spec.estimate) else spec.estimate
        request["estimate"] = dict(est)
    return request
