"""Starting a throwaway redis-server for a test: no persistence, loopback only."""

from __future__ import annotations

import subprocess
from pathlib import Path


def spawn_redis(server: str, port: int, workdir: str | Path) -> subprocess.Popen[bytes]:
    """`server` (the redis-server binary) on 127.0.0.1:`port`, writing nothing to disk but
    into `workdir`; the caller waits for it to answer and stops it."""
    return subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
