"""Where `charter hook` and `charter approvals` keep state between processes.

One SQLite file holds the Guard's counters, labels, history and grant nonces
(`SQLiteStore`) and the pending approval tickets (`SQLitePending`, its own table). The
grant secret sits beside it in `<file>.key` (created once, mode 0600), so a grant minted by
`charter approvals grant` verifies in the next hook process. Default file:
`$CHARTER_STATE`, else `$XDG_STATE_HOME/charter/hooks.db`, else
`~/.local/state/charter/hooks.db`; `memory` keeps nothing between calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from charter.runtime.tokens import token_hex
from charter.stdlib.files import read_bytes

__all__ = ["secret_for", "state_path"]


def state_path(given: str | None, env: Mapping[str, str]) -> str | None:
    """The state file (None for `memory`). (Paths are text here, not `pathlib`: importing
    it is ~3 ms of every hook call.)"""
    text = given or env.get("CHARTER_STATE")
    if text == "memory":
        return None
    if text:
        return text.removeprefix("sqlite:")
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "charter", "hooks.db")


def secret_for(state: str | os.PathLike[str]) -> bytes:
    """The grant secret of `state`, made on first use. Raises OSError / ValueError when the
    key file cannot be made or read (the hook then blocks: no secret, no approvals)."""
    path = os.fspath(state)
    key = path + ".key"
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    try:
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token_hex(32) + "\n")
    text = read_bytes(key).decode("ascii").strip()
    for _ in range(100):  # another process made the file and is still writing it
        if text:
            break
        time.sleep(0.01)
        text = read_bytes(key).decode("ascii").strip()
    secret = bytes.fromhex(text)
    if len(secret) < 16:
        raise ValueError(f"{key}: the grant secret is too short")
    return secret
