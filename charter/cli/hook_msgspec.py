"""msgspec as the hook process imports it: the same msgspec, less of it loaded up front.

A hook is a fresh process per tool call, and importing msgspec is about half of one
(`typing`, `enum`, `re`, `datetime`, `decimal`, `uuid` come with it). Two parts of that are
for work a hook never does, and only this process (it runs no code but Charter's) loads
msgspec differently:

- `typing_extensions` is hidden while msgspec loads. `msgspec._utils` takes
  `get_type_hints`, `Required` and `NotRequired` from it when it can (typing_extensions
  imports `inspect`, `ast`, `dis`, `tokenize`: a third of a warm call's imports) and from
  `typing` otherwise. msgspec uses them only for TypedDict types, which nothing a hook
  decodes is; Struct annotations go through msgspec's own resolver either way.
- `msgspec.inspect` and `msgspec._json_schema` (type introspection and JSON Schema, with
  `textwrap`: ~11 M instructions, ~5 % of a warm call) are imported when first used, not
  when msgspec loads: each stands in `sys.modules` as a `_Deferred` module until one of its
  attributes is read, and then the real module is imported and answers. `msgspec.json`
  takes `schema` and `schema_components` by name when it loads, so those two are
  functions that import the real module on their first call.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

__all__ = ["import_msgspec"]

_DEFERRED = {"msgspec.inspect": (), "msgspec._json_schema": ("schema", "schema_components")}


class _Deferred(ModuleType):
    """Stands for a msgspec submodule until an attribute of it is read."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # the import system's questions (`__path__`...): not a use
            raise AttributeError(attr)
        return getattr(_real(self.__name__), attr)


def _real(name: str) -> ModuleType:
    if isinstance(sys.modules.get(name), _Deferred):
        del sys.modules[name]
    __import__(name)
    return sys.modules[name]


def _forward(name: str, attr: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_real(name), attr)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attr
    return call


def import_msgspec() -> None:
    """Import msgspec as described above (nothing when it or typing_extensions is loaded)."""
    if "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    for name, names in _DEFERRED.items():
        stand_in = _Deferred(name)
        for attr in names:
            setattr(stand_in, attr, _forward(name, attr))
        sys.modules[name] = stand_in
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # import: ImportError
    try:
        import msgspec  # noqa: F401
    except BaseException:
        for name in _DEFERRED:
            sys.modules.pop(name, None)
        raise
    finally:
        del sys.modules["typing_extensions"]
