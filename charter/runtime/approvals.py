"""Approval grants: HMAC-signed, single-use permissions for one exact action (DESIGN §1.8).

A grant is bound to the *action digest*: SHA-256 over the canonical JSON of
``{"args", "session", "stage", "tool", "v"}``.  The canon (see `canonical_json`) makes equal
values encode equally: object keys sorted, no whitespace, and numbers written as their exact
decimal value with no exponent and no trailing zeros, so ``100``, ``100.0`` and
``Decimal("100.00")`` all encode as ``100``.  Booleans stay ``true``/``false`` (never 1/0).

The signature covers every other field of the grant, so widening the group, extending the
expiry or moving the grant to another action invalidates it.  Verification does not use up
the nonce unless asked to: the Guard verifies first and consumes (`consume_grant`) only when
the grant actually lets an action through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final, Protocol

import msgspec

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


@dataclass(frozen=True, slots=True)
class GrantCheck:
    """Result of `verify_grant`.

    `code` is one of `MALFORMED`, `BAD_SIGNATURE`, `EXPIRED`, `WRONG_ACTION`, `REPLAYED` (or
    None when ok); `reason` is the same for humans.
    """

    ok: bool
    group: str | None = None
    reason: str | None = None
    code: str | None = None


def canonical_json(value: object) -> str:
    """Encode `value` in the canonical JSON used for digests and signatures.

    Mappings become objects with sorted (string) keys; lists, tuples become arrays; sets
    become arrays sorted by their canonical encoding; numbers are exact decimals; dates and
    times are ISO 8601 strings; msgspec Structs are encoded as their fields.  Non-finite
    numbers and other types raise `ValueError`.
    """
    parts: list[str] = []
    _canon(value, parts)
    return "".join(parts)


def action_digest(stage: str, tool: str, args: object, session_id: str) -> str:
    """Hex SHA-256 of the canonical action ``{stage, tool, args, session}``."""
    action = {"v": 1, "stage": stage, "tool": tool, "args": args, "session": session_id}
    return hashlib.sha256(canonical_json(action).encode("utf-8")).hexdigest()


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
        nonce=secrets.token_urlsafe(16),
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
    if not hmac.compare_digest(_sign(secret, parsed), parsed.signature):
        return _fail(BAD_SIGNATURE, "grant signature is invalid (forged or altered)")
    if not hmac.compare_digest(parsed.digest, digest):
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
    payload = {f: getattr(grant, f) for f in grant.__struct_fields__ if f != "signature"}
    mac = hmac.new(secret, canonical_json(payload).encode("utf-8"), hashlib.sha256)
    return mac.hexdigest()


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
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        items = sorted(((str(k), v) for k, v in value.items()), key=lambda kv: kv[0])
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            out.append(json.dumps(k, ensure_ascii=False))
            out.append(":")
            _canon(v, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        _array(value, out)
    elif isinstance(value, set | frozenset):
        _array(sorted(value, key=canonical_json), out)
    elif isinstance(value, datetime | date | time):
        out.append(json.dumps(value.isoformat()))
    elif isinstance(value, timedelta):
        out.append(_number(Decimal(str(value.total_seconds()))))
    elif isinstance(value, msgspec.Struct):
        _canon(msgspec.structs.asdict(value), out)
    else:
        raise ValueError(f"cannot canonicalise value of type {type(value).__name__}")


def _array(values: list[object] | tuple[object, ...], out: list[str]) -> None:
    out.append("[")
    for i, v in enumerate(values):
        if i:
            out.append(",")
        _canon(v, out)
    out.append("]")


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    # repr() of a float is its shortest round-tripping decimal: 0.1 stays 0.1, not 0.1000...
    dec = Decimal(repr(value)) if isinstance(value, float) else value
    if not dec.is_finite():
        raise ValueError(f"cannot canonicalise non-finite number {value!r}")
    if dec == 0:
        return "0"
    return format(dec.normalize(), "f")
