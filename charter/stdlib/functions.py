"""The stdlib function registry: signatures for the checker, implementations for the runtime.

Signatures are written as type strings (`"str"`, `"list<str>"`, `"coll"` for any
collection or string) so that this module does not depend on the language package.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from charter.stdlib.urls import cidr_contains, domain_of, url_host
from charter.stdlib.values import to_time


class Function(msgspec.Struct, frozen=True):
    name: str
    params: tuple[str, ...]
    returns: str
    impl: Callable[..., object]
    doc: str


def _len(value: object) -> int:
    if isinstance(value, str | list | tuple | set | frozenset | dict):
        return len(value)
    raise TypeError("len() takes a string or a collection")


def _str_arg(value: object) -> str:
    if type(value) is not str:
        raise TypeError("expected a string")
    return value


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _time_arg(value: object) -> datetime:
    return to_time(value).astimezone(UTC)


def hour_of(value: object) -> int:
    """The hour (0-23, UTC) of a time."""
    return _time_arg(value).hour


def weekday(value: object) -> str:
    """The day of the week of a time, as `mon` ... `sun` (UTC)."""
    return _WEEKDAYS[_time_arg(value).weekday()]


def _lower(value: object) -> str:
    return _str_arg(value).lower()


def _upper(value: object) -> str:
    return _str_arg(value).upper()


def _startswith(value: object, prefix: object) -> bool:
    return _str_arg(value).startswith(_str_arg(prefix))


def _endswith(value: object, suffix: object) -> bool:
    return _str_arg(value).endswith(_str_arg(suffix))


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("len", ("coll",), "int", _len, "Length of a string, list, set or map."),
        Function("lower", ("str",), "str", _lower, "The string in lower case."),
        Function("upper", ("str",), "str", _upper, "The string in upper case."),
        Function(
            "startswith",
            ("str", "str"),
            "bool",
            _startswith,
            "True when the first string starts with the second.",
        ),
        Function(
            "endswith",
            ("str", "str"),
            "bool",
            _endswith,
            "True when the first string ends with the second.",
        ),
        Function("url_host", ("str",), "str", url_host, url_host.__doc__ or ""),
        Function("domain_of", ("str",), "str", domain_of, domain_of.__doc__ or ""),
        Function(
            "cidr_contains", ("str", "str"), "bool", cidr_contains, cidr_contains.__doc__ or ""
        ),
        Function("hour_of", ("time",), "int", hour_of, hour_of.__doc__ or ""),
        Function("weekday", ("time",), "str", weekday, weekday.__doc__ or ""),
    )
}

STDLIB_MODULES = ("pii", "secrets", "net", "text", "time")

__all__ = ["FUNCTIONS", "STDLIB_MODULES", "Function", "Decimal"]
