"""Fixtures shared by the runtime and Guard tests: a real redis-server, one `store` per backend."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from charter.runtime.state import MemoryStore, SQLiteStore, Store
from tests.redis_server import spawn_redis


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _unavailable(message: str) -> NoReturn:
    # In CI a missing Redis must not turn the Redis tests into silent skips.
    if os.environ.get("CI"):
        pytest.fail(message + "; the Redis tests must run in CI")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a throwaway redis-server on a free loopback port, stopped after the session."""
    server = shutil.which("redis-server")
    if server is None:
        _unavailable("redis-server is not on PATH (apt-get install redis-server)")
    try:
        import redis
    except ImportError:
        _unavailable("the redis Python client is not installed (pip install redis)")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="charter-redis-")
    proc = spawn_redis(server, port, workdir)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """A fresh, empty store of one kind (Redis: a unique key prefix per test)."""
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "state.db")
    if kind == "sqlite-lazy":  # the hook's: opened by the first call that needs it
        return SQLiteStore(tmp_path / "state.db", lazy=True)
    from charter.runtime.state import RedisStore

    url: str = request.getfixturevalue("redis_url")
    return RedisStore(url, prefix=f"test-{uuid.uuid4().hex}:")


@pytest.fixture(params=["memory", "sqlite", "sqlite-lazy", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same contract tests run against every store."""
    s = make_store(request.param, tmp_path, request)
    yield s
    s.close()
