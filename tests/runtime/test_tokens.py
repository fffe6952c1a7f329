"""`charter.runtime.tokens` makes the tokens `secrets` makes: same length, same alphabet."""

from __future__ import annotations

import re
import secrets

from charter.runtime.tokens import token_bytes, token_hex, token_urlsafe


def test_tokens_have_the_shape_secrets_gives_them() -> None:
    for n in (0, 1, 2, 3, 9, 12, 16, 32):
        assert len(token_bytes(n)) == len(secrets.token_bytes(n)) == n
        assert len(token_hex(n)) == len(secrets.token_hex(n))
        assert re.fullmatch(r"[0-9a-f]*", token_hex(n))
        assert len(token_urlsafe(n)) == len(secrets.token_urlsafe(n))
        # Many draws: '+' and '/' (standard base64) would show up, as would padding.
        drawn = "".join(token_urlsafe(n) for _ in range(200))
        assert re.fullmatch(r"[A-Za-z0-9_-]*", drawn), drawn


def test_tokens_differ() -> None:
    assert len({token_urlsafe(12) for _ in range(100)}) == 100
    assert len({token_hex(6) for _ in range(100)}) == 100
