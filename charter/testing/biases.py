"""The constants a policy compares request fields with, collected from its IR.

Random values rarely land on `args.amount == 100` or inside `{"eu-west-1", ...}`; the
generator draws from these constants (and their neighbours) so that properties probe the
boundaries where policies actually change their mind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from charter.engine import ir

CENT = Decimal("0.01")
# Text that the stdlib detectors recognise, so `contains pii.card` can come true.
MATCHER_SAMPLES = {
    "email": "jane@customer.org",
    "phone": "+1 415 555 0100",
    "card": "4111 1111 1111 1111",
    "ssn": "123-45-6789",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ip": "10.1.2.3",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "key": "-----BEGIN RSA PRIVATE KEY-----",
}
_DOMAIN_FNS = {"domain_of": "user@{}", "url_host": "https://{}/page"}


@dataclass
class Biases:
    """Values worth trying, per field (`args.amount`, `session.labels`...) and overall."""

    fields: dict[str, list[object]] = field(default_factory=dict)
    strings: list[str] = field(default_factory=list)
    numbers: list[int | Decimal] = field(default_factory=list)
    referenced: set[str] = field(default_factory=set)
    user_matchers: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, values: Iterable[object]) -> None:
        bucket = self.fields.setdefault(path, [])
        for v in values:
            if v not in bucket:
                bucket.append(v)
            if isinstance(v, str) and v not in self.strings:
                self.strings.append(v)
            if isinstance(v, int | Decimal) and not isinstance(v, bool) \
                    and v not in self.numbers:
                self.numbers.append(v)

    def for_path(self, path: str) -> list[object]:
        return self.fields.get(path, [])


def collect(policy: ir.Policy) -> Biases:
    """Walk every rule condition of `policy` for constants and the fields they meet."""
    b = Biases(user_matchers={n: m.pattern for n, m in policy.matchers.items()})
    for rule in policy.rules:
        if rule.label:
            b.add("session.labels", [rule.label])
        if rule.cond is not None:
            _walk(rule.cond, b)
    for spec in policy.counters:
        if spec.key is not None:
            b.referenced.update(n.text for n in ir.walk(spec.key) if isinstance(n, ir.Path))
    return b


def neighbours(c: object) -> list[object]:
    """A constant and the values just either side of it."""
    if isinstance(c, bool) or not isinstance(c, int | Decimal):
        return [c]
    if isinstance(c, int):
        return [c, c - 1, c + 1, Decimal(c) + CENT]
    return [c, c - CENT, c + CENT]


def _walk(e: ir.Expr, b: Biases) -> None:  # noqa: C901 - one branch per node kind
    fields = _fields_of(e)
    b.referenced.update(fields)
    if isinstance(e, ir.Cmp):
        for side, other in ((e.left, e.right), (e.right, e.left)):
            const = _const(other)
            if const is not None:
                _bias_side(side, const, b)
    elif isinstance(e, ir.In):
        item, coll = _const(e.item), _const(e.coll)
        if isinstance(coll, frozenset | tuple):
            for name in _fields_of(e.item):
                b.add(name, [*coll, "other"])
        elif item is not None:
            for name in _fields_of(e.coll):
                b.add(name, [item])
    elif isinstance(e, ir.Like):
        for name in _fields_of(e.value):
            b.add(name, [e.pattern.replace("*", ""), e.pattern.replace("*", "x")])
    elif isinstance(e, ir.Contains | ir.CountOf):
        samples = _matcher_samples(e.matchers, b)
        for name in _fields_of(e.value):
            b.add(name, [f"see {s} here" for s in samples])
    for child in children(e):
        _walk(child, b)


def _bias_side(side: ir.Expr, const: object, b: Biases) -> None:
    values = neighbours(const)
    if isinstance(side, ir.Fn) and side.name in _DOMAIN_FNS and isinstance(const, str):
        values = [_DOMAIN_FNS[side.name].format(const), _DOMAIN_FNS[side.name].format("x.org")]
    elif isinstance(side, ir.Fn) and side.name in ("lower", "upper") and isinstance(const, str):
        values = [const, const.upper(), const.lower()]
    elif isinstance(side, ir.Arith) and isinstance(const, int | Decimal):
        # `used + estimate > limit`: try splitting the limit between the two sides.
        half = Decimal(const) / 2
        values = [*values, half, half + CENT, 0]
    elif isinstance(const, timedelta):
        values = [f"{int(const.total_seconds())}s", f"{int(const.total_seconds()) + 1}s"]
    for name in _fields_of(side):
        b.add(name, values)


def _matcher_samples(names: Iterable[str], b: Biases) -> list[str]:
    out = []
    for name in names:
        if name in b.user_matchers:
            sample = _regex_sample(b.user_matchers[name])
            if sample:
                out.append(sample)
            continue
        out.extend(s for key, s in MATCHER_SAMPLES.items() if key in name or name.endswith(
            ".any"))
    return list(dict.fromkeys(out))


def _regex_sample(pattern: str) -> str | None:
    """One string matching a user matcher (Python's `re` reads the common RE2 subset)."""
    try:
        from hypothesis import HealthCheck, find, settings
        from hypothesis import strategies as st

        quiet = settings(database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))
        return str(find(st.from_regex(pattern), lambda _: True, settings=quiet))
    except Exception:  # noqa: BLE001 - an RE2-only pattern just gets no sample
        return None


def _const(e: ir.Expr) -> object | None:
    return e.value if isinstance(e, ir.Const) else None


def _fields_of(e: ir.Expr) -> list[str]:
    """The request fields an expression reads directly or through a function/arithmetic."""
    if isinstance(e, ir.Path):
        return [e.text]
    if isinstance(e, ir.Estimate):
        return [f"estimate.{e.field}"]
    if isinstance(e, ir.Labels):
        return ["session.labels"]
    if isinstance(e, ir.Index) and isinstance(e.key, ir.Const) and isinstance(e.obj, ir.Path):
        return [f"{e.obj.text}.{e.key.value}"]
    if isinstance(e, ir.Fn | ir.Arith | ir.Neg):
        return [name for child in children(e) for name in _fields_of(child)]
    return []


def children(e: ir.Expr) -> list[ir.Expr]:  # noqa: C901 - one branch per node kind
    if isinstance(e, ir.BoolOp):
        return list(e.items)
    if isinstance(e, ir.Not | ir.Neg):
        return [e.operand]
    if isinstance(e, ir.Cmp | ir.Arith):
        return [e.left, e.right]
    if isinstance(e, ir.In):
        return [e.item, e.coll]
    if isinstance(e, ir.Like | ir.Matches | ir.Contains | ir.CountOf):
        return [e.value]
    if isinstance(e, ir.Fn):
        return list(e.args)
    if isinstance(e, ir.Index):
        return [e.obj, e.key]
    if isinstance(e, ir.Previously):
        return [v for _, v in e.fields]
    if isinstance(e, ir.Counter) and e.key is not None:
        return [e.key]
    return []
