"""Counter ids that survive edits to the rest of the policy (issue 12, L-C3).

A budget's or limit's counter lives in the state store under its id, so the id decides what a
hot swap or a restart on an edited policy keeps. It is derived from what the counter counts —
never from where its rule stands, nor from its limit:

- `session:<metric>` for a per-session budget (`budget cost_usd <= 5 per session`): the rule
  reads the session's running total, which is one per session whatever the rule says.
- `<metric>:<window>:@<id>` when the rule has an `@id`: the id pins the counter. Its targets,
  key, conditions and limit can change and the count carries over; a change of metric or
  window starts a new counter (a count in other units, or over another period, means
  something else — and a store keeps each window of a counter apart anyway).
- `<metric>:<window>:<hash>` otherwise, `<hash>` being 12 hex digits of a SHA-256 over the
  counter's content: stage, metric, window, key expression, targets (sorted: their order
  means nothing) and the rule's other conditions (scope and `when`, in order). Not the limit,
  the effect, the reason, the file, the line, nor any other rule.

Two rules with the same content get the same id and share one counter. That is the
disambiguation, and it is exact: they are charged by the same calls with the same amounts (a
counter is charged on every allowed call its targets, stage and conditions select, whatever
the rule's effect or limit), so two counters would always hold the same number. The Guard
charges a shared counter once, against the tightest limit that applies. An ordinal among
identical rules (L-C3's first sketch) would instead make the count depend on their order,
and deleting the first would move the second's count.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import msgspec

from charter.engine import ir
from charter.stdlib.digest import sha256

__all__ = ["counter_id", "session_total_id"]

session_total_id = ir.session_total_id


def counter_id(*, metric: str, window: str, window_seconds: int | None, key: ir.Expr | None,
               targets: tuple[ir.Target, ...], stage: str, scope: tuple[ir.Expr, ...],
               pinned: str | None) -> str:
    """The id of a windowed (or keyed per-session) counter; see the module docstring."""
    if pinned is not None:
        return f"{metric}:{window}:@{pinned}"
    content = (stage, metric, window, window_seconds, _canon(key),
               sorted((_canon(t) for t in targets), key=_key), [_canon(c) for c in scope])
    digest = sha256(msgspec.json.encode(content)).hexdigest()[:12]
    return f"{metric}:{window}:{digest}"


def _canon(obj: object) -> object:
    """`obj` as plain JSON data that is the same for equal IR in every process: sets sorted,
    numbers tagged with their type, fields at their default left out (so that a new optional
    IR field does not change every id), and source offsets dropped."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return ["int", str(obj)]
    if isinstance(obj, Decimal | Fraction):
        return [type(obj).__name__, str(obj)]
    if isinstance(obj, timedelta):
        return ["timedelta", [obj.days, obj.seconds, obj.microseconds]]
    if isinstance(obj, tuple | list):
        return [_canon(item) for item in obj]
    if isinstance(obj, frozenset | set):
        return ["set", sorted((_canon(item) for item in obj), key=_key)]
    if isinstance(obj, dict):
        return ["map", sorted(([_canon(k), _canon(v)] for k, v in obj.items()), key=_key)]
    if isinstance(obj, ir.Target):
        return [sorted(obj.names), obj.tag]
    if isinstance(obj, msgspec.Struct):
        out: dict[str, object] = {}
        for f in msgspec.structs.fields(obj):
            value = getattr(obj, f.name)
            if f.default is not msgspec.NODEFAULT and value == f.default:
                continue
            if f.name == "field" and isinstance(obj, ir.Contains | ir.CountOf) and isinstance(
                    value, str) and value.startswith("@"):
                continue  # `@offset`: a scan cache key from the source position, not content
            out[f.name] = _canon(value)
        return [type(obj).__name__, out]
    return ["repr", repr(obj)]


def _key(item: object) -> bytes:
    return msgspec.json.encode(item)
