"""Who is asking: approver tokens, inbox sessions and CSRF tokens for `charter serve`.

Approvers are configured in a TOML or JSON file (`charter serve --approvers FILE`):

    [approvers.alice]
    token = "a long random string"      # or token_sha256 = "<hex>"
    groups = ["finance"]

An API client sends `Authorization: Bearer TOKEN`; a browser signs in once on the inbox page,
which sets an HttpOnly, SameSite=Strict session cookie (signed with a key derived from the
grant secret, so every worker accepts it), and every state-changing request of the page also
carries the session's CSRF token (an HMAC of the cookie) in `X-CSRF-Token`: a cross-site form
can send the cookie, never that header. A token is bound to its person and groups: an approver of
group A cannot approve for B.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["Approver", "Approvers", "AuthError", "Session", "load_approvers"]

COOKIE: Final = "charter_inbox"
SESSION_TTL: Final = 8 * 3600


class AuthError(ValueError):
    """An unreadable approvers file; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Approver:
    """One person who may approve for `groups`."""

    name: str
    groups: frozenset[str]


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who, its CSRF token, until when."""

    approver: Approver
    csrf: str
    expires_at: float


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Approvers:
    """Token → approver, and the inbox's browser sessions."""

    def __init__(self, by_digest: Mapping[bytes, Approver] | None = None) -> None:
        self._by_digest = dict(by_digest or {})
        self._revoked: set[str] = set()
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)  # until `key` sets the shared one

    @classmethod
    def from_tokens(
        cls, tokens: Mapping[str, tuple[str, list[str] | tuple[str, ...]]]
    ) -> Approvers:
        """`{token: (name, groups)}` (tests and embedding)."""
        return cls({_digest(t): Approver(n, frozenset(g)) for t, (n, g) in tokens.items()})

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def directory(self) -> dict[str, list[str]]:
        """group → people, for the Guard's directory (`Guard(approvers=...)`)."""
        out: dict[str, list[str]] = {}
        for a in self._by_digest.values():
            for g in a.groups:
                out.setdefault(g, []).append(a.name)
        return out

    def by_token(self, token: str) -> Approver | None:
        """The approver of `token`, compared in constant time."""
        want = _digest(token)
        found = None
        for digest, approver in self._by_digest.items():
            if hmac.compare_digest(digest, want):
                found = approver
        return found

    def key(self, secret: bytes) -> None:
        """Sign sessions with a key derived from `secret` (the Guard's grant secret), so
        every worker sharing it accepts a session any of them issued."""
        self._key = hmac.new(secret, b"charter inbox session v1", hashlib.sha256).digest()

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def sign_in(self, approver: Approver) -> tuple[str, Session]:
        """A new browser session: (cookie value, session). The cookie is signed and carries
        the person and the expiry; groups are looked up again on every request."""
        expires = int(time.time() + SESSION_TTL)
        name = base64.urlsafe_b64encode(approver.name.encode("utf-8")).decode("ascii")
        body = f"v1.{name}.{expires}.{secrets.token_urlsafe(12)}"
        cookie = f"{body}.{self._mac(body)}"
        return cookie, Session(approver, self._mac("csrf:" + cookie)[:40], float(expires))

    def session(self, cookie: str | None) -> Session | None:
        """The session of a cookie this sidecar (or a worker with the same secret) signed,
        unexpired, not signed out here, for an approver still in the file."""
        if not cookie or cookie.count(".") != 4:
            return None
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        _, name64, expires, nonce = body.split(".")
        if not expires.isdigit() or int(expires) <= time.time():
            return None
        with self._lock:
            if nonce in self._revoked:
                return None
        try:
            name = base64.urlsafe_b64decode(name64.encode("ascii")).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        approver = self._by_name().get(name)
        if approver is None:
            return None
        return Session(approver, self._mac("csrf:" + cookie)[:40], float(expires))

    def sign_out(self, cookie: str | None) -> None:
        """Refuse the cookie from now on (in this process; the browser drops it too)."""
        if cookie and cookie.count(".") == 4:
            with self._lock:
                self._revoked.add(cookie.split(".")[3])

    def _by_name(self) -> dict[str, Approver]:
        return {a.name: a for a in self._by_digest.values()}


def load_approvers(path: str | Path) -> Approvers:
    """Read an approvers file (TOML, or JSON by its `.json` suffix). Raises `AuthError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data: Any = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as err:
        raise AuthError(f"{p}: cannot read the approvers file: {err}") from None
    people = data.get("approvers") if isinstance(data, dict) else None
    if not isinstance(people, dict) or not people:
        raise AuthError(f"{p}: expected an [approvers.NAME] table per approver")
    found: dict[bytes, Approver] = {}
    for name, entry in people.items():
        if not isinstance(entry, dict):
            raise AuthError(f"{p}: approvers.{name} must be a table")
        groups = entry.get("groups")
        if (
            not isinstance(groups, list)
            or not groups
            or not all(type(g) is str and g for g in groups)
        ):
            raise AuthError(f"{p}: approvers.{name}.groups must be a non-empty list of names")
        token, hashed = entry.get("token"), entry.get("token_sha256")
        if type(token) is str and len(token) >= 16:
            digest = _digest(token)
        elif type(hashed) is str:
            try:
                digest = bytes.fromhex(hashed)
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise AuthError(f"{p}: approvers.{name}.token_sha256 must be 64 hex digits")
        else:
            raise AuthError(
                f"{p}: approvers.{name} needs token (at least 16 characters) or token_sha256"
            )
        if digest in found:
            raise AuthError(f"{p}: approvers.{name} has the same token as {found[digest].name}")
        found[digest] = Approver(str(name), frozenset(groups))
    return Approvers(found)
