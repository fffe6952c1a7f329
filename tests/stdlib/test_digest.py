"""charter.stdlib.digest gives hashlib's SHA-256 without importing hashlib's OpenSSL module."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from charter.stdlib.digest import sha256


def test_same_digest_as_hashlib() -> None:
    for data in (b"", b"abc", bytes(range(256)) * 40):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
        h = sha256()
        h.update(data[:7])
        h.update(data[7:])
        assert h.hexdigest() == hashlib.sha256(data).hexdigest()


def test_compiling_does_not_load_openssl_hashes() -> None:
    # a policy digest, and counter ids of a windowed limit and a budget: every SHA-256 use
    source = (
        'policy "p"\ndefault deny\nallow tool "t" when args.n <= 3\n'
        'limit calls(tool "t") <= 5 per 1h per agent.id\n'
        "budget cost_usd <= 2.00 per session\n"
    )
    code = f"import sys, charter\ncharter.compile({source!r})\nprint('_hashlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
