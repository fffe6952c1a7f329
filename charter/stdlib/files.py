"""Replacing a file whole, so a reader in another process or thread sees the old bytes or
the new ones, never half of either: the one way every state, status, control, cache and
bundle file of Charter is written; and reading one whole. Neither imports `pathlib` until
it is used: this module is on a hook call's path, and pathlib is ~3 ms of a fresh process."""

from __future__ import annotations

import os

__all__ = ["read_bytes", "replace_file"]


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole file at `path` (`Path.read_bytes` without importing pathlib)."""
    with open(path, "rb") as f:
        return f.read()


def replace_file(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write `data` beside `path` and move it into place (tmp+rename). `fsync`: the bytes
    are on disk before the rename, so a crash leaves the old file or the new one. The
    temporary name is unique per process and thread; it is removed when the write fails."""
    import threading  # with pathlib: a write needs them, a hook call's reads do not
    from pathlib import Path

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
