"""Approval grants: HMAC-signed, single-use permissions for one exact action (DESIGN §1.8).

A grant is bound to the *action digest*: SHA-256 over the canonical encoding of
`action_of(request)` — stage, tool (name, tags, server), args, the stage's payload, the
estimate, the agent, the user and the session (without its running totals).  A grant for
one estimate does not cover another, nor another agent, tag set, session or argument.

The canon (`canonical_json`) is exact and typed: two values encode alike only when the
policy cannot tell them apart.  Numbers are written from their digits, never through a
decimal context, so no precision is lost (``1``, ``1.0`` and ``Decimal("1.00")`` are the
same number and encode as ``1``; ``…678.1`` and ``…678.4`` stay apart at any length).
Object keys must be strings; lists, tuples and sets, booleans and integers, strings and
times all encode differently; NaN and infinities are rejected.

The signature covers every other field of the grant, so widening the group, extending the
expiry or moving the grant to another action invalidates it.  Verification does not use up
the nonce unless asked to: the Guard verifies first and consumes (`consume_grant`) only when
the grant actually lets an action through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

import msgspec

from charter.runtime.tokens import token_urlsafe
from charter.stdlib.digest import sha256

__all__ = [
    "BAD_SIGNATURE",
    "EXPIRED",
    "MALFORMED",
    "REPLAYED",
    "WRONG_ACTION",
    "Grant",
    "GrantCheck",
    "NonceStore",
    "action_digest",
    "action_of",
    "canonical_json",
    "consume_grant",
    "mint_grant",
    "verify_grant",
]

MALFORMED: Final = "malformed"
BAD_SIGNATURE: Final = "bad_signature"
EXPIRED: Final = "expired"
WRONG_ACTION: Final = "wrong_action"
REPLAYED: Final = "replayed"

_TOKEN_PREFIX = "cg1."
# Request parts bound as they are (besides stage, tool and args, which are normalised).
_BOUND: Final = ("result", "input", "output", "estimate", "agent", "user")
# Session fields that are running state, not part of the action: they change between the
# check that asked for approval and the retry (the Guard itself may inject them).
_SESSION_STATE: Final = frozenset(
    {"cost_usd", "tokens", "tool_calls", "consecutive_tool_calls", "labels"})
# Numbers whose exponent is within this range are written plainly (see `_number`).
_PLAIN: Final = 30


class NonceStore(Protocol):
    """The part of a state `Store` that grants need."""

    def use_nonce(self, nonce: str, expires_at: float) -> bool: ...

    def is_nonce_used(self, nonce: str) -> bool: ...


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """A signed approval of one action by one approver of one group.

    Times are seconds since the epoch.  `to_dict`/`to_token` give the forms a host can put in
    ``request["approvals"]``; `verify_grant` accepts either, or a `Grant`.
    """

    digest: str
    approver: str
    group: str
    issued_at: float
    expires_at: float
    nonce: str
    signature: str

    def to_dict(self) -> dict[str, object]:
        """The grant as a JSON-ready dict."""
        return {f: getattr(self, f) for f in self.__struct_fields__}

    def to_token(self) -> str:
        """The grant as one compact URL-safe string (``cg1.`` + base64url JSON)."""
        import base64  # here: a hook call that mints no grant does not load it

        raw = msgspec.json.encode(self)
        return _TOKEN_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def parse(cls, value: object) -> Grant:
        """Read a grant from any of its forms (a `Grant`, dict or token); raises `ValueError`
        when `value` is not a well-formed grant."""
        if isinstance(value, Grant):
            return value
        try:
            if isinstance(value, str | bytes):
                text = value.decode("ascii") if isinstance(value, bytes) else value
                if not text.startswith(_TOKEN_PREFIX):
                    raise ValueError("not a grant token")
                body = text[len(_TOKEN_PREFIX) :]
                import base64

                raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
                return msgspec.json.decode(raw, type=cls)
            if not isinstance(value, Mapping):
                raise ValueError(f"expected a grant dict or token, got {type(value).__name__}")
            return msgspec.convert(dict(value), type=cls)
        except (
            msgspec.ValidationError,
            msgspec.DecodeError,
            UnicodeError,
            TypeError,
            ValueError,
        ) as exc:
            raise ValueError(f"malformed grant: {exc}") from exc


class GrantCheck(msgspec.Struct, frozen=True):
    """Result of `verify_grant`.

    `code` is one of `MALFORMED`, `BAD_SIGNATURE`, `EXPIRED`, `WRONG_ACTION`, `REPLAYED` (or
    None when ok); `reason` is the same for humans.
    """

    ok: bool
    group: str | None = None
    reason: str | None = None
    code: str | None = None


def canonical_json(value: object) -> str:
    """Encode `value` in the canonical form used for digests and signatures.

    JSON values are written as JSON: objects with their (string) keys sorted, no whitespace,
    numbers as exact decimals (see `_number`).  Python types JSON lacks get a tag no JSON
    text starts with, so they never meet a JSON value: ``!tuple[...]``, ``!set[...]``
    (elements sorted, duplicates dropped), ``!datetime"..."``, ``!date"..."``,
    ``!time"..."`` (ISO 8601) and ``!timedelta`` + exact seconds.  Non-string keys,
    non-finite numbers, cycles and other types raise `ValueError`.
    """
    parts: list[str] = []
    try:
        _canon(value, parts)
    except RecursionError:
        raise ValueError("cannot canonicalise: nested too deeply (or a cycle)") from None
    return "".join(parts)


def action_of(request: Mapping[str, Any]) -> dict[str, object]:
    """The parts of `request` a grant is bound to (see docs/state.md, "What a grant binds").

    Everything the policy can read about the action and who asks for it: the stage, the
    tool (its name, tags as a set, server...), `args`, the stage's payload (`result`,
    `input`, `output`), the `estimate`, the whole `agent` and `user`, and the `session`
    without its running totals.  Not bound: `approvals`, `trace_id`, `now`, and
    ``session.cost_usd / tokens / tool_calls / consecutive_tool_calls / labels``, which move
    between the check that asked for approval and the retry that presents the grant.
    """
    action: dict[str, object] = {
        "v": 2,
        "stage": request.get("stage", "tool_call"),
        "tool": _tool(request.get("tool")),
        "args": request.get("args", {}),
    }
    for part in _BOUND:
        if part in request:
            action[part] = request[part]
    if "session" in request:
        session = request["session"]
        action["session"] = (
            {k: v for k, v in session.items() if k not in _SESSION_STATE}
            if isinstance(session, Mapping) else session)
    return action


def action_digest(request: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical `action_of(request)`; raises `ValueError` when a bound
    part cannot be canonicalised (such an action cannot be approved)."""
    text = canonical_json(action_of(request))
    return sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def mint_grant(
    secret: bytes, digest: str, approver: str, group: str, ttl_seconds: float, now: float
) -> Grant:
    """Sign a grant for the action with `digest`, valid for `ttl_seconds` from `now`."""
    if not secret:
        raise ValueError("grant secret must not be empty")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    unsigned = Grant(
        digest=digest,
        approver=approver,
        group=group,
        issued_at=float(now),
        expires_at=float(now + ttl_seconds),
        nonce=token_urlsafe(16),
        signature="",
    )
    return msgspec.structs.replace(unsigned, signature=_sign(secret, unsigned))


def verify_grant(
    secret: bytes,
    grant: object,
    digest: str,
    now: float,
    store: NonceStore | None = None,
    *,
    consume: bool = False,
) -> GrantCheck:
    """Check a grant (any value from ``request["approvals"]``) for the action with `digest`.

    Checks, in order: well-formed, signature, bound to this action, not expired, nonce not
    used yet (when a `store` is given).  With ``consume=True`` the nonce is used up here;
    otherwise call `consume_grant` once the grant has let the action through.
    """
    try:
        parsed = Grant.parse(grant)
    except ValueError as exc:
        return _fail(MALFORMED, str(exc))
    if not (math.isfinite(parsed.issued_at) and math.isfinite(parsed.expires_at)):
        return _fail(MALFORMED, "malformed grant: times must be finite")
    if not _same(_sign(secret, parsed), parsed.signature):
        return _fail(BAD_SIGNATURE, "grant signature is invalid (forged or altered)")
    if not _same(parsed.digest, digest):
        return _fail(WRONG_ACTION, "grant was issued for a different action")
    if now >= parsed.expires_at:
        return _fail(EXPIRED, "grant has expired")
    if store is not None:
        used = (
            not store.use_nonce(parsed.nonce, parsed.expires_at)
            if consume
            else store.is_nonce_used(parsed.nonce)
        )
        if used:
            return _fail(REPLAYED, "grant was already used")
    return GrantCheck(ok=True, group=parsed.group)


def consume_grant(grant: object, store: NonceStore) -> bool:
    """Use up a verified grant's nonce; False if another use got there first (a replay)."""
    parsed = Grant.parse(grant)
    return store.use_nonce(parsed.nonce, parsed.expires_at)


def _fail(code: str, reason: str) -> GrantCheck:
    return GrantCheck(ok=False, group=None, reason=reason, code=code)


def _sign(secret: bytes, grant: Grant) -> str:
    # hmac loads OpenSSL: imported by the calls that sign or check a grant, not by every call
    import hashlib
    import hmac

    payload = {f: getattr(grant, f) for f in grant.__struct_fields__ if f != "signature"}
    mac = hmac.new(secret, canonical_json(payload).encode("utf-8", "surrogatepass"), hashlib.sha256)
    return mac.hexdigest()


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two texts, whatever characters they hold (a grant read
    from a request may carry any)."""
    import hmac

    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"),
                               b.encode("utf-8", "surrogatepass"))


def _tool(tool: object) -> object:
    """The request's tool as one form: ``"x"`` and ``{"name": "x"}`` are the same tool, and
    its tags are a set (the policy only asks whether a tag is present)."""
    if tool is None or isinstance(tool, str):
        return {"name": tool or "", "tags": []}
    if not isinstance(tool, Mapping):
        return tool
    tags = tool.get("tags") or []
    if isinstance(tags, list | tuple) and all(isinstance(t, str) for t in tags):
        tags = sorted(set(tags))
    return {**tool, "tags": tags}


def _canon(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int | float | Decimal):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(_json(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        _object(value, out)
    elif isinstance(value, list):
        _array(value, out)
    elif isinstance(value, tuple):
        out.append("!tuple")
        _array(value, out)
    elif isinstance(value, set | frozenset):
        # Elements in the order of their encodings; equal encodings are one element.
        out.append("!set[" + ",".join(sorted({canonical_json(v) for v in value})) + "]")
    elif isinstance(value, datetime | date | time):
        out.append(f"!{_time_kind(value)}{_json(value.isoformat())}")
    elif isinstance(value, timedelta):
        micros = (value.days * 86400 + value.seconds) * 10**6 + value.microseconds
        out.append("!timedelta" + _number(Decimal(f"{micros}E-6")))  # exact: no context
    else:
        raise ValueError(f"cannot canonicalise value of type {type(value).__name__}")


def _json(text: str, ensure_ascii: bool = True) -> str:
    # json imported here, when an action is digested: a hook call that allows without a
    # grant digests nothing, and importing json costs a fresh process ~1.4 ms.
    import json

    return json.dumps(text, ensure_ascii=ensure_ascii)


def _time_kind(value: datetime | date | time) -> str:
    if isinstance(value, datetime):  # before date: a datetime is a date
        return "datetime"
    return "date" if isinstance(value, date) else "time"


def _object(value: Mapping[object, object], out: list[str]) -> None:
    # JSON keys are strings: an int key would be indistinguishable from its text.
    keys = [k for k in value if isinstance(k, str)]
    if len(keys) != len(value):
        bad = next(k for k in value if not isinstance(k, str))
        raise ValueError(f"cannot canonicalise: object keys must be strings, found {bad!r}")
    out.append("{")
    for i, k in enumerate(sorted(keys)):
        if i:
            out.append(",")
        out.append(_json(k, ensure_ascii=False))
        out.append(":")
        _canon(value[k], out)
    out.append("}")


def _array(values: list[object] | tuple[object, ...], out: list[str]) -> None:
    out.append("[")
    for i, v in enumerate(values):
        if i:
            out.append(",")
        _canon(v, out)
    out.append("]")


def _number(value: int | float | Decimal) -> str:
    """The exact decimal value of a number, in one form per value.

    ``1``, ``1.0``, ``1.00`` and ``1E+0`` are one number (the policy compares numbers by
    value), so they encode alike: the coefficient's trailing zeros are moved into the
    exponent.  The text is plain (``-12.5``, ``0.001``) while the exponent is within
    ±`_PLAIN`, else coefficient ``e`` exponent (``15e40``), so that ``1E+999999999`` stays
    short.  Floats count as the decimal they print as (their shortest repr).  Only the
    digits are read: no decimal context, so no rounding at any precision.
    """
    if isinstance(value, int):
        negative, digits, exponent = value < 0, str(abs(int(value))), 0
    else:
        # float.__repr__, not repr: a subclass cannot choose its own digits.
        dec = Decimal(float.__repr__(value)) if isinstance(value, float) else value
        if not dec.is_finite():
            raise ValueError(f"cannot canonicalise non-finite number {value!r}")
        sign, coefficient, exp = dec.as_tuple()
        assert isinstance(exp, int)  # finite
        negative, digits, exponent = bool(sign), "".join(map(str, coefficient)), exp
    digits = digits.lstrip("0")
    if not digits:
        return "0"
    kept = digits.rstrip("0")
    exponent += len(digits) - len(kept)
    sign_text = "-" if negative else ""
    if exponent > _PLAIN or exponent < -_PLAIN:
        return f"{sign_text}{kept}e{exponent}"
    if exponent >= 0:
        return sign_text + kept + "0" * exponent
    point = len(kept) + exponent
    if point > 0:
        return f"{sign_text}{kept[:point]}.{kept[point:]}"
    return f"{sign_text}0.{'0' * -point}{kept}"
