"""The Python side of libcharter: the functions `charter.h` declares, attached to the
library's cffi `ffi` by `bind` (called from the embedding init code, `build.py`).

Each function catches everything: a Python exception becomes a deny JSON (decisions), an
`{"error": ...}` answer (load, approve) or 0 (settle), never a NULL a C caller could read as
"no answer". Handles are small integers cast to pointers and looked up in a registry, so a
freed or forged handle is an error answer, not a crash.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import msgspec

__all__ = ["bind"]

_ENCODER = msgspec.json.Encoder()
_lock = threading.Lock()
_objects: dict[int, Any] = {}
_next = [0x1000]


def _keep(obj: Any) -> int:
    with _lock:
        _next[0] += 16  # never 0, never reused
        _objects[_next[0]] = obj
        return _next[0]


def bind(ffi: Any, lib: Any) -> None:
    """Attach the `charter_*` functions of the header to `ffi` (cffi's `def_extern`)."""
    from charter.engine.decision import Decision
    from charter.hosts import wire
    from charter.stdlib.values import describe_error

    def out(data: bytes) -> Any:
        return lib.charter__dup(data, len(data))

    def deny(reason: str) -> Any:
        return out(Decision("deny", False, reasons=(reason,)).to_json())

    def error(err: Any, message: str, diagnostics: list[dict[str, object]] | None = None) -> Any:
        if err != ffi.NULL:
            err[0] = out(_ENCODER.encode({"error": message, "diagnostics": diagnostics or []}))
        return ffi.NULL

    def text(ptr: Any, size: int | None = None) -> bytes | None:
        if ptr == ffi.NULL:
            return None
        data: bytes = ffi.unpack(ptr, size) if size is not None else ffi.string(ptr)
        return data

    def handle(ptr: Any, kind: type) -> Any:
        obj = _objects.get(int(ffi.cast("uintptr_t", ptr)))
        return obj if isinstance(obj, kind) else None

    def loaded(policy: Any, kind: str) -> Any:
        return ffi.cast(kind, _keep(policy))

    def compile_error(err: Any, exc: Exception) -> Any:
        diags = []
        for d in getattr(exc, "diagnostics", ()) or ():
            span = getattr(d, "span", None)
            diags.append(
                {
                    "file": getattr(span, "file", None),
                    "line": getattr(span, "line", None),
                    "col": getattr(span, "col", None),
                    "code": getattr(d, "code", None),
                    "message": getattr(d, "message", str(d)),
                }
            )
        return error(err, str(exc) if not diags else f"{len(diags)} error(s) in the policy", diags)

    from charter.runtime.guard import Guard
    from charter.runtime.policy import Policy

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_load(path: Any, err: Any) -> Any:
        try:
            where = text(path)
            if where is None:
                return error(err, "path is NULL")
            import charter

            name = where.decode("utf-8")
            compiled = os.path.isfile(name) and not name.endswith(".agentpolicy")
            policy = charter.load_compiled(name) if compiled else charter.load(name)
            return loaded(policy, "charter_policy *")
        except Exception as exc:  # noqa: BLE001 - nothing raises into the host
            return compile_error(err, exc)

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_load_source(src: Any, size: int, name: Any, err: Any) -> Any:
        try:
            body = text(src, size)
            if body is None:
                return error(err, "text is NULL")
            file = (text(name) or b"policy.agentpolicy").decode("utf-8")
            import charter

            return loaded(charter.compile(body.decode("utf-8"), file), "charter_policy *")
        except Exception as exc:  # noqa: BLE001
            return compile_error(err, exc)

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_load_bundle(path: Any, keys_json: Any, err: Any) -> Any:
        try:
            from charter.runtime.bundle import BundleError, parse_key, read_bundle

            where = text(path)
            if where is None:
                return error(err, "path is NULL")
            raw = text(keys_json) or b"{}"
            try:
                given = msgspec.json.decode(raw, type=dict[str, str])
                ring = {k: parse_key(v.encode(), f"key {k!r}") for k, v in given.items()}
            except (msgspec.DecodeError, ValueError) as exc:
                return error(err, f"keys_json: {exc}")
            try:
                bundle = read_bundle(where.decode("utf-8"), ring)
            except BundleError as exc:
                return error(err, str(exc), [{"stage": exc.stage, "message": exc.detail}])
            return loaded(bundle.policy, "charter_policy *")
        except Exception as exc:  # noqa: BLE001 - nothing raises into the host
            return error(err, f"cannot load the bundle: {exc}")

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_policy_free(p: Any) -> None:
        with _lock:
            if isinstance(_objects.get(int(ffi.cast("uintptr_t", p))), Policy):
                del _objects[int(ffi.cast("uintptr_t", p))]

    def decision(ptr: Any, kind: type, stale: str, decide: Any, raw: Any, size: int) -> Any:
        """The decision JSON of `decide(object, body)` for the object behind `ptr`; a stale
        handle, a NULL request or any failure is a deny naming it (never an open call)."""
        try:
            obj = handle(ptr, kind)
            if obj is None:
                return deny(f"charter: {stale}")
            body = text(raw, size)
            if body is None:
                return deny("malformed request: request_json is NULL")
            return out(decide(obj, body))
        except Exception as exc:  # noqa: BLE001
            return deny(f"charter: internal error: {describe_error(exc)}")

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_decide_json(p: Any, raw: Any, size: int) -> Any:
        return decision(p, Policy, "not a loaded policy handle (freed, or never loaded)",
                        wire.decide_json, raw, size)

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_guard_new(p: Any, config: Any, err: Any) -> Any:
        try:
            policy = handle(p, Policy)
            if policy is None:
                return error(err, "not a loaded policy handle (freed, or never loaded)")
            guard = _guard(policy, text(config), Guard)
            if isinstance(guard, str):
                return error(err, guard)
            return ffi.cast("charter_guard *", _keep(guard))
        except Exception as exc:  # noqa: BLE001
            return error(err, f"cannot make the guard: {describe_error(exc)}")

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_guard_check_json(g: Any, raw: Any, size: int) -> Any:
        return decision(g, Guard, "not a guard handle (freed, or never made)",
                        wire.check_json, raw, size)

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_guard_settle_json(g: Any, raw: Any, size: int) -> int:
        try:
            guard, body = handle(g, Guard), text(raw, size)
            if guard is None or body is None:
                return 0
            answer = msgspec.json.decode(wire.settle_json(guard, body))
            return 1 if answer.get("ok") is True else 0
        except Exception:  # noqa: BLE001
            return 0

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_guard_approve_json(g: Any, raw: Any, size: int) -> Any:
        try:
            guard, body = handle(g, Guard), text(raw, size)
            if guard is None:
                return out(b'{"error":"not a guard handle (freed, or never made)"}')
            if body is None:
                return out(b'{"error":"approve_json is NULL"}')
            return out(wire.approve_json(guard, body))
        except Exception as exc:  # noqa: BLE001
            return out(
                _ENCODER.encode({"error": f"charter: internal error: {describe_error(exc)}"})
            )

    @ffi.def_extern()  # type: ignore[untyped-decorator]
    def charter_guard_free(g: Any) -> None:
        with _lock:
            guard = _objects.get(int(ffi.cast("uintptr_t", g)))
            if isinstance(guard, Guard):
                del _objects[int(ffi.cast("uintptr_t", g))]
        if isinstance(guard, Guard):
            guard.close()


def _guard(policy: Any, config: bytes | None, make: Any) -> Any:
    """The Guard `config` describes, or the reason it cannot be made."""
    conf: Any = msgspec.json.decode(config) if config else {}
    if not isinstance(conf, dict):
        return "config_json must be a JSON object"
    state = conf.get("state", "memory")
    secret_hex = conf.get("secret_hex")
    try:
        secret = bytes.fromhex(secret_hex) if secret_hex else None
    except (TypeError, ValueError):
        return "secret_hex must be hexadecimal"
    log = conf.get("log")
    store: Any
    if state == "memory":
        store = None
    elif isinstance(state, str) and state.startswith("sqlite:"):
        from charter.runtime.state.sqlite import SQLiteStore

        store = SQLiteStore(state.removeprefix("sqlite:"))
    elif isinstance(state, str) and state.startswith("redis://"):
        from charter.runtime.state.redis import RedisStore

        store = RedisStore(state)
    else:
        return f"state must be memory, sqlite:PATH or redis://...; found {state!r}"
    return make(policy, state=store, secret=secret, log=log)
