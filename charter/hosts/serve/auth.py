"""Who is asking: approver tokens, inbox sessions and CSRF tokens for `charter serve`.

Approvers are configured in a TOML or JSON file (`charter serve --approvers FILE`):

    [approvers.alice]
    token = "a long random string"      # or token_sha256 = "<hex>"
    groups = ["finance"]

An API client sends `Authorization: Bearer TOKEN`; a browser signs in once on the inbox page,
which sets an HttpOnly, SameSite=Strict session cookie, and every state-changing request of
the page also carries the session's CSRF token in `X-CSRF-Token` (a cross-site form can send
the cookie, never that header). A token is bound to its person and groups: an approver of
group A cannot approve for B.
"""

from __future__ import annotations

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
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

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

    def sign_in(self, approver: Approver) -> tuple[str, Session]:
        """A new browser session: (cookie value, session)."""
        sid = secrets.token_urlsafe(32)
        session = Session(approver, secrets.token_urlsafe(32), time.time() + SESSION_TTL)
        with self._lock:
            now = time.time()
            for old in [k for k, s in self._sessions.items() if s.expires_at <= now]:
                del self._sessions[old]
            self._sessions[sid] = session
        return sid, session

    def session(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            s = self._sessions.get(sid)
        if s is None or s.expires_at <= time.time():
            return None
        return s

    def sign_out(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)


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
