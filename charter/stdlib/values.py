"""Run-time value checks and conversions shared by the interpreter and generated code.

Each `check_*` returns the value (converted where the wire format allows it, e.g. floats to
exact decimals, ISO strings to times) or raises `TypeError`; the caller turns that into a
request error that names the field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class RequestError(Exception):
    """A request lacks a field a rule needs or has the wrong type there. `message` names
    the field; `field` is its path (`args.amount`) when one field is at fault, else None."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# Numbers a request may carry: finite, and below 10**MAX_NUMBER_DIGITS in magnitude (every
# finite float, every 128-bit integer fits). Past that a read is a request error naming the
# field: converting and comparing bigger numbers costs time quadratic in their length.
MAX_NUMBER_DIGITS = 400
INT_BOUND = 10**MAX_NUMBER_DIGITS
DECIMAL_BOUND = Decimal(f"1e{MAX_NUMBER_DIGITS}")
_TOO_BIG = f"number out of range (more than {MAX_NUMBER_DIGITS} digits before the point)"

FLOATS: dict[float, Decimal] = {}


def float_to_decimal(v: float) -> Decimal:
    """The decimal a float was written as (its shortest repr), memoised: hosts tend to send
    the same few amounts, and the conversion costs more than the rest of a decision."""
    d = FLOATS.get(v)
    if d is None:
        if v != v or v in (float("inf"), float("-inf")):
            raise TypeError("expected a finite number, found NaN or Infinity")
        d = Decimal(repr(v))
        if len(FLOATS) < 65536:
            FLOATS[v] = d
    return d


def check_decimal(v: Decimal) -> Decimal:
    """`v` if it is a finite decimal within range; Decimal's NaN and Infinity are not numbers
    a request may carry (NaN compares false with everything, -Infinity passes every cap)."""
    if not v.is_finite():
        raise TypeError("expected a finite number, found NaN or Infinity")
    if not -DECIMAL_BOUND < v < DECIMAL_BOUND:
        raise TypeError(_TOO_BIG)
    return v


def check_num(v: object) -> int | Decimal:
    t = v.__class__
    if t is float:
        d = FLOATS.get(v)  # type: ignore[call-overload]
        return d if d is not None else float_to_decimal(v)  # type: ignore[arg-type]
    if t is int:
        if -INT_BOUND < v < INT_BOUND:
            return v  # type: ignore[return-value]  # the class test above narrows it
        raise TypeError(_TOO_BIG)
    if t is Decimal:
        return check_decimal(v)  # type: ignore[arg-type]
    raise TypeError(f"expected a number, found {type_name(v)}")


def check_int(v: object) -> int:
    t = v.__class__
    if t is int:
        if -INT_BOUND < v < INT_BOUND:
            return v  # type: ignore[return-value]
        raise TypeError(_TOO_BIG)
    if t is float:
        v, t = float_to_decimal(v), Decimal  # type: ignore[arg-type]  # as written, like decimals
    if t is Decimal:
        d = check_decimal(v)  # type: ignore[arg-type]  # bounded first: int() of 1e400000 is slow
        if d == d.to_integral_value():
            return int(d)
    raise TypeError(f"expected an int, found {type_name(v)}")


COST_FLOATS: dict[float, Decimal] = {}  # the floats of FLOATS that `check_cost` accepted


def check_cost(v: object) -> int | Decimal:
    """A number that counts usage (`session.cost_usd`, `estimate.cost_usd`): never negative,
    so that a budget cannot be passed by claiming a refund."""
    if type(v) is float:
        d = COST_FLOATS.get(v)
        if d is not None:
            return d
    elif type(v) is Decimal and v.is_finite() and v.adjusted() < MAX_NUMBER_DIGITS and (
            not v.is_signed()):
        return v  # the common cases first, without further calls
    n = check_num(v)
    if n < 0:
        raise TypeError("must not be negative")
    if type(v) is float and len(COST_FLOATS) < 65536:
        COST_FLOATS[v] = n  # type: ignore[assignment]  # a float's n is its Decimal
    return n


def check_count(v: object) -> int:
    """An int that counts usage (`session.tokens`, `estimate.tokens`): never negative."""
    n = check_int(v)
    if n < 0:
        raise TypeError("must not be negative")
    return n


def as_text(v: bytes | bytearray) -> str:
    """Bytes as the text they hold: matchers and string tests see what a reader would."""
    return bytes(v).decode("utf-8", "replace")


def check_str(v: object) -> str:
    if type(v) is str:
        return v
    if type(v) is bytes or type(v) is bytearray:
        return as_text(v)
    raise TypeError(f"expected a string, found {type_name(v)}")


def check_bool(v: object) -> bool:
    if type(v) is bool:
        return v
    raise TypeError(f"expected a bool, found {type_name(v)}")


def check_coll(v: object) -> object:
    if isinstance(v, list | tuple | set | frozenset):
        return v
    raise TypeError(f"expected a list, found {type_name(v)}")


def check_map(v: object) -> object:
    if isinstance(v, dict):
        return v
    raise TypeError(f"expected an object, found {type_name(v)}")


PLAIN = frozenset({str, dict, list, bool, type(None)})  # classes `check_any` returns as they are


def check_any(v: object) -> object:
    """An untyped value, read the way a typed one would be: floats as the decimal they were
    written as, numbers checked like `num`, bytes as text; anything else as it is."""
    t = v.__class__
    if t in PLAIN:
        return v
    if t is float or t is int or t is Decimal:
        return check_num(v)
    if t is bytes or t is bytearray:
        return as_text(v)  # type: ignore[arg-type]
    return v


_TIMES: dict[str, datetime] = {}


def to_time(v: object) -> datetime:
    """A time from an ISO-8601 string (`Z` allowed), epoch seconds, or a datetime."""
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if type(v) is str:
        cached = _TIMES.get(v)
        if cached is not None:
            return cached
        try:
            parsed = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise TypeError(f"expected an ISO-8601 time, found {describe(v)}") from None
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if len(_TIMES) < 4096:
            _TIMES[v] = parsed
        return parsed
    if type(v) in (int, float, Decimal):
        try:
            return datetime.fromtimestamp(float(check_num(v)), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise TypeError("time out of range") from None
    raise TypeError(f"expected a time, found {type_name(v)}")


def to_duration(v: object) -> timedelta:
    """A duration from seconds (a number) or text such as `30s`, `5m`, `1h`, `7d`."""
    if isinstance(v, timedelta):
        return v
    if type(v) in (int, float, Decimal):
        return _seconds(float(check_num(v)))
    if type(v) is str:
        text = str(v).strip()
        for unit in ("ms", "s", "m", "h", "d"):
            if text.endswith(unit):
                try:
                    number = check_num(Decimal(text[: -len(unit)]))
                except (InvalidOperation, ValueError):
                    break
                return _seconds(float(number) * _DURATION_UNITS[unit])
    raise TypeError(f"expected a duration, found {describe(v)}")


def _seconds(seconds: float) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise TypeError("duration out of range") from None


CHECKS = {
    "num": check_num, "int": check_int, "str": check_str, "bool": check_bool,
    "coll": check_coll, "map": check_map, "any": check_any, "time": to_time,
    "dur": to_duration, "cost": check_cost, "count": check_count,
}


def type_name(v: object) -> str:
    """The wire-format name of a value's type, for error messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float | Decimal):
        return "decimal"
    if isinstance(v, str | bytes | bytearray):
        return "string"
    if isinstance(v, list | tuple | set | frozenset):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def describe(v: object) -> str:
    """A value's type and size for messages, never its content: reasons are returned to the
    host and logged, and request values carry PII (`a string of 23 characters`)."""
    name = type_name(v)
    if isinstance(v, str):
        return _sized("a string", len(v), "character")
    if isinstance(v, list | tuple | set | frozenset):
        return _sized("a list", len(v), "item")
    if isinstance(v, dict):
        return _sized("an object", len(v), "key")
    if isinstance(v, bytes | bytearray):
        return _sized("a bytes value", len(v), "byte")
    if name == "null":
        return name
    return ("an " if name[:1] in tuple("aeiou") else "a ") + name


def describe_error(err: BaseException) -> str:
    """An unexpected exception for a reason: its type, and its text only for charter's own
    exception classes, whose messages name fields and never quote values (a `KeyError`'s
    text is the key it missed, which may be a request value)."""
    name = type(err).__name__
    return f"{name}: {err}" if type(err).__module__.startswith("charter.") else name


def _sized(what: str, n: int, unit: str) -> str:
    return f"{what} of {n} {unit}{'' if n == 1 else 's'}"


def now_utc() -> datetime:
    return datetime.now(UTC)
