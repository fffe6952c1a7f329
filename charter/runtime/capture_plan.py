"""The replay block's request and snapshot made in one pass by a per-policy plan
(`charter.runtime.capture`; R-L4 of live-control-analysis.md: the block's cost).

`Capture.block` used to project the request (`Reads.project`) and then walk the projection
with a masking `Walk` that kept a JSON pointer stack. This module does both at once for
the plain JSON a request usually is — dicts with ASCII keys, lists, strings, small ints,
floats, bools, None — following the policy's read tree, and builds a pointer only for a
value the mask changed. The result is the same block, value for value and pointer for
pointer (`tests/runtime/test_capture_plan.py` compares the two). Anything else (a `str`
subclass, a tuple, bytes, a Decimal that could be a card number, a key that masks onto
another, nesting past `_DEPTH`...) raises `Bail`, and the caller makes the whole block the
general way, so the unusual cases keep the general walk's placeholders and ``type`` notes.

It is also a separate code path from the record's own `Walk` on purpose: CPython
specialises attribute loads by the class of ``self``, and the two classes taking turns
through the same methods cost the record's masking about a third more.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec

from charter.runtime.reads import Reads, reads_of

__all__ = ["Bail", "Builder", "Plan", "plan_of"]

PAYLOADS: Final = ("args", "result", "input", "output")
_HERE: Final = ""  # `reads.Node`: the kinds of a read of the node's own value
_DEPTH: Final = 32  # as `capture._FAST_DEPTH`: deeper values take the general walk
# Far below `audit_values.MAX_VALUES`: larger blocks take the walk. Counted by container
# (its length, on entry), not by value: the same count, one subtraction per container.
_VALUES: Final = 10_000
_SMALL: Final = 10**18
_SCAN_DIGITS: Final = 64
_MAX_DIGITS: Final = 4300  # as `audit_values`: longer decimals are placeholders

Step = tuple[str, str, "tuple[Step, ...] | None"]
"""(request key, the pointer of its value in the block, the plan under it; None: kept
whole)."""
_MISSING: Final = object()
_NOTHING: Final[Mapping[str, str]] = {}
_ENCODE = msgspec.json.Encoder(decimal_format="number").encode  # as the log's encoder
_LEVELS: Final = 6  # deeper read paths take the loop (Python nests at most 20 blocks)


class Bail(Exception):
    """A value this plan does not make exactly as the general walk would."""


class Plan:
    """What every block of one policy needs that does not depend on the request: the
    projection as steps, the policy's `Reads` and its counters' limits."""

    __slots__ = ("_clean", "keys", "limits", "payloads", "project", "reads", "steps", "__weakref__")

    def __init__(self, policy: Any) -> None:
        self.reads: Reads = reads_of(policy)
        self.steps = _steps(self.reads.tree, "/request", top=True)
        self.keys = frozenset(_keys(self.steps))
        # The payloads some rule reads: the only ones a block can hold (whole).
        self.payloads = tuple(key for key, _, _ in self.steps if key in PAYLOADS)
        self.project = _projector(self.steps)
        # Limits as the log writes them: a Decimal limit (a budget's) costs the encoder a
        # conversion to text in every record, a `Raw` none.
        self.limits: dict[str, object] = {
            spec.id: msgspec.Raw(_ENCODE(spec.limit)) if type(spec.limit) is Decimal else spec.limit
            for spec in policy.ir.counters
        }
        self._clean: dict[int, Callable[[str], str]] = {}  # masks that keep `keys` as is

    def clean(self, mask: Callable[[str], str]) -> bool:
        """Whether `mask` leaves every key of the projection as it is (the general walk
        masks the projection's keys too; a policy's path keys are never PII in practice,
        but a user matcher could say otherwise)."""
        if id(mask) in self._clean:
            return True
        if not all(k.isascii() and mask(k) == k for k in self.keys):
            return False
        if len(self._clean) >= 64:  # masks are made per set of user matchers: a few
            self._clean.clear()
        self._clean[id(mask)] = mask  # held, so that its id is not reused
        return True


def plan_of(policy: Any) -> Plan:
    """The `Plan` of a `Policy` (made once per policy object)."""
    last = _LAST[0]
    if last is not None and last[0]() is policy:
        return last[1]
    found = _PLANS.get(policy)
    if found is None:
        found = _PLANS[policy] = Plan(policy)
    # The policy of the last block, weakly: a Guard writes one policy's blocks in a row,
    # and a `WeakKeyDictionary` lookup makes a new weak reference each time.
    _LAST[0] = (weakref.ref(policy), found)
    return found


_PLANS: weakref.WeakKeyDictionary[Any, Plan] = weakref.WeakKeyDictionary()
_LAST: list[tuple[weakref.ref[Any], Plan] | None] = [None]


Projector = Callable[[Mapping[str, Any], "Builder"], dict[str, Any]]
"""`Builder.project` of one plan's steps, as straight-line code."""


def _projector(steps: tuple[Step, ...]) -> Projector:
    """`Builder.project` over `steps` written out as one function, without the loop over
    the steps and a call per level (a third of the block's time went there). The keys and
    pointers are passed in as constants, never written into the source."""
    if _depth(steps) > _LEVELS:
        return lambda obj, build: build.project(steps, obj)
    consts: list[str] = []
    lines = ["def project(o0, b):", "    mask, seen = b.mask, b.seen", "    r0 = {}"]
    _emit(steps, 0, consts, lines)
    lines.append("    return r0")
    scope: dict[str, Any] = {"K": tuple(consts), "MISSING": _MISSING}
    exec(compile("\n".join(lines), "<capture_plan>", "exec"), scope)  # noqa: S102 - our text
    project: Projector = scope["project"]
    return project


def _emit(steps: tuple[Step, ...], level: int, consts: list[str], lines: list[str]) -> None:
    """The lines projecting `steps` from ``o{level}`` into ``r{level}``, masked: as
    `Builder.project` does it."""
    pad = "    " + "        " * level
    o, r, v, n = f"o{level}", f"r{level}", f"v{level}", level + 1
    for key, ptr, sub in steps:
        k, p = f"K[{len(consts)}]", f"K[{len(consts) + 1}]"
        consts += [key, ptr]
        lines += [
            f"{pad}{v} = {o}.get({k}, MISSING)",
            f"{pad}if {v} is not MISSING:",
            f"{pad}    if type({v}) is str and {v}.isascii():",
            f"{pad}        t = seen.get({v}) or mask({v})",
            f"{pad}        if t != {v}:",
            f"{pad}            b.note({p}, 'str', {v})",
            f"{pad}        {r}[{k}] = t",
        ]
        if sub is not None:
            lines += [
                f"{pad}    elif type({v}) is dict:",
                f"{pad}        o{n} = {v}",
                f"{pad}        r{n} = {{}}",
            ]
            _emit(sub, n, consts, lines)
            lines.append(f"{pad}        {r}[{k}] = r{n}")
        lines += [f"{pad}    else:", f"{pad}        {r}[{k}] = b.value({v}, {p}, {n})"]


def _depth(steps: tuple[Step, ...]) -> int:
    return 1 + max((_depth(sub) for _, _, sub in steps if sub is not None), default=0)


def _keys(steps: tuple[Step, ...]) -> list[str]:
    out: list[str] = []
    for key, _, sub in steps:
        out.append(key)
        if sub is not None:
            out += _keys(sub)
    return out


def _steps(node: Mapping[str, Any], at: str, *, top: bool = False) -> tuple[Step, ...]:
    out: list[Step] = []
    for key, child in node.items():
        if key == _HERE:
            continue
        ptr = f"{at}/{_escape(key)}"
        # A payload some rule reads part of is kept whole all the same (`Capture.block`).
        whole = _HERE in child or (top and key in PAYLOADS)
        out.append((key, ptr, None if whole else _steps(child, ptr)))
    return tuple(out)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _token(key: str) -> str:
    """`key` as a JSON-pointer reference token (RFC 6901)."""
    return key if "/" not in key and "~" not in key else _escape(key)


class Builder:
    """Masks one block's values with `mask`, noting in `masked` (and with `hash_key`, in
    `hashes`) the pointer of every value or key it changed, as `capture._Masking` does."""

    __slots__ = ("hash", "hashes", "left", "mask", "masked", "seen")

    def __init__(
        self, mask: Callable[[str], str], hash: Callable[[object], str | None] | None
    ) -> None:
        self.mask = mask
        # What the mask remembers (`audit._masker`: text -> masked text), read without a
        # call; a mask that remembers nothing is called for every string.
        self.seen: Mapping[str, str] = getattr(mask, "memo", _NOTHING)
        self.hash = hash
        self.masked: dict[str, str] = {}
        self.hashes: dict[str, str] = {}
        self.left = _VALUES

    def note(self, ptr: str, kind: str, clean: object) -> None:
        self.masked[ptr] = kind
        if self.hash is not None:
            digest = self.hash(clean)
            if digest is not None:
                self.hashes[ptr] = digest

    def project(
        self, steps: tuple[Step, ...], obj: Mapping[str, Any], depth: int = 0
    ) -> dict[str, Any]:
        """The parts of `obj` (at `depth`) that `steps` read, masked. The steps' own keys
        are the policy's: `Plan.clean` checks that the mask leaves them as they are."""
        out: dict[str, Any] = {}
        mask = self.mask
        for key, ptr, sub in steps:
            v = obj.get(key, _MISSING)
            if v is _MISSING:
                continue
            t = type(v)
            if t is str and v.isascii():  # the commonest value, without a call
                text = self.seen.get(v) or mask(v)
                if text != v:
                    self.note(ptr, "str", v)
                out[key] = text
            elif sub is None or t is not dict:
                out[key] = self.value(v, ptr, depth + 1)
            else:
                out[key] = self.project(sub, v, depth + 1)
        return out

    def value(self, v: Any, ptr: str, depth: int) -> Any:  # noqa: C901 - one branch per kind
        """`v` masked, or `Bail`."""
        t = type(v)
        if t is str:
            return self.text(v, ptr)
        if t is dict:
            return self.mapping(v, ptr, depth)
        if t is int:
            if not -_SMALL < v < _SMALL:
                raise Bail
            return self.number(v, ptr)
        if v is None or v is True or v is False:
            return v
        if t is float:
            if v - v != 0:  # NaN, infinities: placeholders
                raise Bail
            return v if v != int(v) else self.number(v, ptr)
        if t is list:
            self.left -= len(v)
            if depth >= _DEPTH or self.left < 0:
                raise Bail
            return [self.value(item, f"{ptr}/{i}", depth + 1) for i, item in enumerate(v)]
        if t is Decimal:  # (the Guard's session totals are)
            if not v.is_finite() or len(v.as_tuple().digits) > _MAX_DIGITS:
                raise Bail
            if v.adjusted() < _SCAN_DIGITS and v == v.to_integral_value():
                return self.number(v, ptr)
            return v  # a fraction is no card or phone number
        raise Bail

    def text(self, s: str, ptr: str) -> str:
        out = self.seen.get(s) or self.mask(s)  # a mask that raises: the general walk
        if not out.isascii():
            out.encode("utf-8")  # lone surrogates (UnicodeEncodeError): the general walk
        if out != s:
            self.note(ptr, "str", s)
        return out

    def number(self, v: int | float | Decimal, ptr: str) -> int | float | Decimal | str:
        """`v`, or its masked digits when they are a match (a card sent as a number)."""
        # A sign is not part of a card number.
        digits = (str(v) if v >= 0 else str(-v)) if type(v) is int else str(abs(int(v)))
        if len(digits) > _SCAN_DIGITS:
            return v
        masked = self.seen.get(digits) or self.mask(digits)
        if masked == digits:
            return v
        if not masked.isascii():
            raise Bail
        self.note(ptr, "num", v)
        return masked

    def mapping(self, v: dict[Any, Any], ptr: str, depth: int) -> dict[str, Any]:
        self.left -= len(v)
        if depth >= _DEPTH or self.left < 0:
            raise Bail
        out: dict[str, Any] = {}
        mask, seen = self.mask, self.seen
        renamed = False  # some key masked: later keys may now collide
        for k, item in v.items():
            if type(k) is not str or not k.isascii():
                raise Bail
            key = seen.get(k) or mask(k)
            if key != k:
                if key in out:
                    raise Bail  # two keys masked alike: the general walk numbers them
                renamed = True
                self.note(f"{ptr}/{_token(key)}~k", "key", k)
            elif renamed and key in out:
                raise Bail
            if type(item) is str:  # the commonest value, without a call
                text = seen.get(item) or mask(item)
                if text != item:
                    self.note(f"{ptr}/{_token(key)}", "str", item)
                if not text.isascii():
                    text.encode("utf-8")
                out[key] = text
            else:
                out[key] = self.value(item, f"{ptr}/{_token(key)}", depth + 1)
        return out
