"""SHA-256 without loading OpenSSL.

`hashlib` imports `_hashlib`, which loads libcrypto: ~2 ms of every fresh process that
compiles a policy (policy digests, counter ids), a quarter of issue 11's cold-start budget
for a whole compile. CPython ships its own SHA-256 (`_sha2` from 3.12, `_sha256` before);
it gives the same digest, and hashlib itself falls back to it. Where neither exists (another
interpreter), hashlib is used.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any, Protocol


class Hash(Protocol):
    """The part of hashlib's hash objects used here."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


@cache
def _constructor() -> Any:
    name = "_sha2" if sys.version_info >= (3, 12) else "_sha256"
    try:
        # `__import__` of a top-level name is `importlib.import_module`, without importing
        # importlib (~0.2 ms of every hook call).
        return __import__(name).sha256
    except (ImportError, AttributeError):
        import hashlib

        return hashlib.sha256


def sha256(data: bytes = b"") -> Hash:
    """A SHA-256 hash object over `data`, as `hashlib.sha256(data)`."""
    h: Hash = _constructor()(data)
    return h
