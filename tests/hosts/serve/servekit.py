"""A real uvicorn on loopback for the sidecar tests: the app is served from a thread of the
test process on a socket bound to 127.0.0.1:0, and the tests speak HTTP to it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from charter.hosts.serve import Approvers

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ALICE = "alice-token-0123456789"  # finance
BOB = "bob-token-0123456789abc"  # security


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def approvers() -> Approvers:
    return Approvers.from_tokens({ALICE: ("alice", ["finance"]), BOB: ("bob", ["security"])})
