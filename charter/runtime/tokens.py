"""Random tokens as `secrets` makes them, without importing `secrets`.

`secrets` imports `random`, `base64` and `hmac`, and `hmac` loads OpenSSL (`_hashlib`): a
few milliseconds of every fresh process, which a hook call (a process per tool call) pays
for a store's token prefix alone. These are `secrets.token_bytes`, `token_hex` and
`token_urlsafe` over the same source, `os.urandom`.
"""

from __future__ import annotations

import os

__all__ = ["token_bytes", "token_hex", "token_urlsafe"]


def token_bytes(nbytes: int) -> bytes:
    """`nbytes` random bytes (`secrets.token_bytes`)."""
    return os.urandom(nbytes)


def token_hex(nbytes: int) -> str:
    """`nbytes` random bytes as hex (`secrets.token_hex`)."""
    return os.urandom(nbytes).hex()


def token_urlsafe(nbytes: int) -> str:
    """`nbytes` random bytes as unpadded URL-safe base64 (`secrets.token_urlsafe`)."""
    import binascii  # here: a hook call that mints no grant nor reservation never loads it

    text = binascii.b2a_base64(os.urandom(nbytes), newline=False).rstrip(b"=")
    return text.decode("ascii").replace("+", "-").replace("/", "_")
