"""The back half of the pipeline as values: `DecisionTree` (which rules can apply to a call)
and `CompiledPolicy` (IR + tree + generated code), and the saved-policy format.

A compiled policy is saved as a header line and a msgpack body (`dumps`/`loads`):

    CHARTER-POLICY/3\\n  <msgpack of CompiledPolicy>

Every IR node is a tagged `msgspec.Struct`, so the body is the IR as data: nothing in the
file names a Python class or function, and nothing in it runs as it stands. The fields of
open type, `ir.Const.value` (str, int, bool, None, Decimal, Fraction, timedelta, tuple,
frozenset, or a dict with str keys) and `ir.CounterSpec.limit`, are packed so that their
Python types survive: Decimal, Fraction, timedelta, tuple, frozenset and integers beyond 64
bits become msgpack extension values (`_EXT_*`), the rest are msgpack as they are.
`BucketCode.consts` are packed the same way.

Reading a file trusts nothing in it. The body is decoded against these types (a wrong field,
type or literal is an error); the generated source in it is parsed back and held to the
emitter's shape (`charter.engine.emitcheck`) before it is ever compiled, and is used only when
it was written by the same emitter as the one running (`CompiledPolicy.emitter`); otherwise
the engine generates the code again from the IR.

This module imports msgspec and the IR only: loading a policy needs nothing more.
"""

from __future__ import annotations

import gc
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache
from typing import Any

import msgspec

from charter.engine import ir

# Format 1 (`CHARTER-POLICY-1`) stored Python objects, not data; format 2 named counters by
# position and gave per-session budgets and counter scopes no CounterSpec fields, which the
# Guard now reads (issue 12): both are refused, and the message says to compile again.
FORMAT = 3
MAGIC = b"CHARTER-POLICY"
HEADER = MAGIC + b"/%d\n" % FORMAT


class CompiledPolicyError(ValueError):
    """A file that is not a compiled policy this version of Charter can read."""


# ── the tree ─────────────────────────────────────────────────────────────────


class StageTree(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """Dispatch for one stage. `exact`, `globs`, `tagged` and `untargeted` index every rule
    of the stage by its first target (its other targets are tested when a bucket is
    resolved); `tools` is the resolved bucket of each named tool: the rules that apply to a
    call naming it with no tags beyond its declared ones."""

    exact: dict[str, tuple[int, ...]]
    globs: tuple[tuple[str, int], ...]
    tagged: dict[str, tuple[int, ...]]
    untargeted: tuple[int, ...]
    tools: dict[str, tuple[int, ...]]


class DecisionTree(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """Per stage, which rules can apply to a call; `matchers` are the matcher names the rules
    use (they make the policy's one RE2 Set)."""

    stages: dict[str, StageTree]
    matchers: tuple[str, ...]


# ── generated code ───────────────────────────────────────────────────────────


class Value(msgspec.Struct, frozen=True, tag=True, forbid_unknown_fields=True, gc=False):
    """A constant of the generated code: a value from the IR."""

    value: object


class LikeTest(msgspec.Struct, frozen=True, tag=True, forbid_unknown_fields=True, gc=False):
    """A constant of the generated code: the compiled test of a `like` glob."""

    pattern: str


class SearchTest(msgspec.Struct, frozen=True, tag=True, forbid_unknown_fields=True, gc=False):
    """A constant of the generated code: the compiled RE2 search of a `matches` pattern."""

    pattern: str


class Held(msgspec.Struct, frozen=True, tag=True, forbid_unknown_fields=True, gc=False):
    """A constant of the generated code: a condition the interpreter evaluates (too deeply
    nested to inline)."""

    expr: ir.Expr


ConstSpec = Value | LikeTest | SearchTest | Held


class BucketCode(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """The generated function of one bucket, as text and the recipe of its namespace.

    `rules` are the bucket's rule indices, in policy order (bit i of the returned mask is
    rules[i]); `source` is empty when no rule has a condition (the mask is then that of
    the unconditional rules, computed from them as it is for any bucket). `line_map` maps a
    line of `source` (1-based) to the index of the rule it evaluates. `consts` rebuild the
    hoisted constants `K0`, `K1`...; `bound` are the names passed as default arguments,
    `locals` the locals the emitter assigned."""

    rules: tuple[int, ...]
    source: str
    line_map: dict[int, int]
    consts: dict[str, ConstSpec]
    bound: tuple[str, ...]
    locals: tuple[str, ...]


class CompiledPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """What the pipeline produces and `Policy` runs: the IR, its tree, and the generated code
    of the buckets reachable from named tools (`emitter` names the emitter that wrote it).
    Buckets not in `code` (tool names or tags seen only at run time) are generated when first
    needed."""

    ir: ir.Policy
    tree: DecisionTree
    code: tuple[BucketCode, ...] = ()
    emitter: str = ""


# ── saving and loading ───────────────────────────────────────────────────────

_EXT_DECIMAL, _EXT_TIMEDELTA, _EXT_TUPLE, _EXT_FROZENSET, _EXT_FRACTION, _EXT_INT = range(1, 7)
_INT64 = 2**63
_PLAIN = (str, int, bool, type(None))


def dumps(compiled: CompiledPolicy) -> bytes:
    """The saved form of a compiled policy (see the module docstring)."""
    try:
        return HEADER + _ENCODER.encode(_packed(compiled))
    except OverflowError as err:  # an int field beyond 64 bits (`within 10^30d`)
        raise TypeError(f"cannot save this policy: {err}") from None


def loads(data: bytes | bytearray | memoryview) -> CompiledPolicy:
    """A compiled policy from `dumps` output; `CompiledPolicyError` for anything else."""
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise CompiledPolicyError("not a compiled Charter policy")
    end = data.find(b"\n", 0, 64)
    version = data[len(MAGIC):end] if end > 0 else b""
    if version != b"/%d" % FORMAT:
        shown = version.lstrip(b"/-").decode("ascii", "replace") or "?"
        raise CompiledPolicyError(
            f"compiled policy format {shown} is not supported (this Charter reads format "
            f"{FORMAT}); compile the policy again with `charter compile`")
    # Decoding builds tens of thousands of acyclic objects; the cyclic collector would
    # rescan them again and again (a third of a 1,000-rule policy's load, issue 11).
    enabled = gc.isenabled()
    gc.disable()
    try:
        compiled = _decoder().decode(memoryview(data)[end + 1:])
    except (msgspec.DecodeError, ValueError, TypeError, ArithmeticError, RecursionError) as err:
        raise CompiledPolicyError(f"corrupt compiled policy: {err}") from None
    finally:
        if enabled:
            gc.enable()
    _check(compiled)
    return compiled


def _check(compiled: CompiledPolicy) -> None:
    """What decoding against the types cannot say: rule indices name rules."""
    count = len(compiled.ir.rules)
    for at, rule in enumerate(compiled.ir.rules):
        if rule.index != at:
            raise CompiledPolicyError(f"corrupt compiled policy: rule {at} has index {rule.index}")
    for stage in compiled.tree.stages.values():
        indices = [*stage.untargeted, *(i for _, i in stage.globs)]
        for group in (stage.exact, stage.tagged, stage.tools):
            for rules in group.values():
                indices.extend(rules)
        _in_range(indices, count)
    for code in compiled.code:
        _in_range(code.rules, count)
        _in_range(code.line_map.values(), count)


def _in_range(indices: Any, count: int) -> None:
    for i in indices:
        if not 0 <= i < count:
            raise CompiledPolicyError(f"corrupt compiled policy: no rule {i}")


def _packed(obj: Any) -> Any:
    """`obj` with every constant value packed (see `_pack`); other nodes rebuilt as they are."""
    if isinstance(obj, ir.Const):
        return ir.Const(_pack(obj.value))
    if isinstance(obj, Value):
        return Value(_pack(obj.value))
    if isinstance(obj, ir.CounterSpec):
        return msgspec.structs.replace(obj, limit=_pack(obj.limit), key=_packed(obj.key),
                                       targets=_packed(obj.targets), scope=_packed(obj.scope))
    if isinstance(obj, msgspec.Struct):
        fields = obj.__struct_fields__
        return msgspec.structs.replace(obj, **{f: _packed(getattr(obj, f)) for f in fields})
    if isinstance(obj, tuple):
        return tuple(_packed(item) for item in obj)
    if isinstance(obj, dict):
        return {key: _packed(value) for key, value in obj.items()}
    return obj


def _pack(value: object) -> object:
    if type(value) is int and not -_INT64 <= value < _INT64:  # beyond msgpack's integers
        return msgspec.msgpack.Ext(_EXT_INT, str(value).encode("ascii"))
    if type(value) in _PLAIN:
        return value
    if type(value) is Decimal:
        return msgspec.msgpack.Ext(_EXT_DECIMAL, str(value).encode("ascii"))
    if type(value) is Fraction:  # an exact quotient (`1 / 3`), folded
        return msgspec.msgpack.Ext(_EXT_FRACTION, _ENCODER.encode((value.numerator,
                                                                     value.denominator)))
    if type(value) is timedelta:
        parts = (value.days, value.seconds, value.microseconds)
        return msgspec.msgpack.Ext(_EXT_TIMEDELTA, _ENCODER.encode(parts))
    if type(value) is tuple:
        return msgspec.msgpack.Ext(_EXT_TUPLE, _ENCODER.encode([_pack(v) for v in value]))
    if type(value) is frozenset:
        items = sorted((_pack(v) for v in value), key=_ENCODER.encode)  # same file every time
        return msgspec.msgpack.Ext(_EXT_FROZENSET, _ENCODER.encode(items))
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: _pack(v) for k, v in value.items()}
    raise TypeError(f"cannot save a constant of type {type(value).__name__}")


def _ext(code: int, data: memoryview) -> object:
    if code == _EXT_DECIMAL:
        try:
            return Decimal(bytes(data).decode("ascii"))
        except (UnicodeDecodeError, InvalidOperation):
            raise ValueError("bad decimal constant") from None
    if code == _EXT_TIMEDELTA:
        days, seconds, micro = _PARTS.decode(data)
        return timedelta(days, seconds, micro)
    if code == _EXT_INT:
        return int(bytes(data).decode("ascii"))  # ValueError if not a number
    if code == _EXT_FRACTION:
        numerator, denominator = _PAIR.decode(data)
        return Fraction(numerator, denominator)  # ZeroDivisionError: an ArithmeticError
    if code == _EXT_TUPLE:
        return tuple(_ITEMS.decode(data))
    if code == _EXT_FROZENSET:
        return frozenset(_ITEMS.decode(data))  # TypeError for an unhashable item
    raise ValueError(f"unknown extension type {code}")


_ENCODER = msgspec.msgpack.Encoder()
_PARTS = msgspec.msgpack.Decoder(tuple[int, int, int])
_PAIR = msgspec.msgpack.Decoder(tuple[int, int])
_ITEMS = msgspec.msgpack.Decoder(list[Any], ext_hook=_ext)


@cache
def _decoder() -> msgspec.msgpack.Decoder[CompiledPolicy]:
    # Built on first load, not at import: it resolves the annotations of every IR and tree
    # struct, which a process that only compiles never needs (issue 11 cold start).
    for module in (ir.__dict__, globals()):
        _resolve_annotations(module)
    return msgspec.msgpack.Decoder(CompiledPolicy, ext_hook=_ext)


def _resolve_annotations(namespace: dict[str, Any]) -> None:
    """Evaluate the string annotations (`from __future__ import annotations`) of the
    Structs defined in a module's `namespace`, all in one `eval`, and store the values
    in their place. msgspec evaluates each string on its own through `typing.ForwardRef`,
    which compiles it: the 111 annotations of the IR and the tree made building the
    decoder ~4 ms of every fresh process (a hook call); one compile of all of them is a
    tenth of that, and of each distinct text once (39 of the 111: `Expr`, `tuple[str, ...]`
    and `str | None` recur) about half again, ~0.3 ms. The values are those msgspec would
    find (the same names in the same module namespace). Anything that does not evaluate is
    left as it was, for msgspec."""
    name = namespace["__name__"]
    found = [
        (cls.__annotations__, field, text)
        for cls in list(namespace.values())
        if isinstance(cls, type) and issubclass(cls, msgspec.Struct) and cls.__module__ == name
        for field, text in cls.__dict__.get("__annotations__", {}).items()
        if type(text) is str
    ]
    if not found:
        return
    texts = list(dict.fromkeys(text for _, _, text in found))
    try:
        values = eval("(" + ", ".join(texts) + ",)", namespace)  # noqa: S307
    except Exception:  # noqa: BLE001 - msgspec resolves them one by one, as it always did
        return
    by_text = dict(zip(texts, values, strict=True))
    for table, field, text in found:
        table[field] = by_text[text]
