"""Real MCP servers behind a real `charter mcp proxy` process, driven by the SDK's client."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")
from mcp import Client, StdioServerParameters  # noqa: E402

HERE = Path(__file__).parent
SERVERS = HERE.parent / "npm" / "node_modules" / "@modelcontextprotocol"
FILESYSTEM = SERVERS / "server-filesystem" / "dist" / "index.js"
EVERYTHING = SERVERS / "server-everything" / "dist" / "index.js"
POLICY = HERE / "proxy_policy.agentpolicy"
CARD = "4111 1111 1111 1111"
EMAIL = "billing@example.com"


def _need(path: Path, what: str) -> None:
    if not path.exists():
        pytest.skip(f"{what} is not installed (cd tests/hosts/npm && npm ci)")


@dataclass
class Setup:
    """One proxy's world: its upstreams' files, its config, its state file."""

    root: Path
    data: Path
    repo: Path
    config: Path
    state: Path

    def proxy_args(self, *extra: str) -> list[str]:
        return [
            "-m",
            "charter.cli.main",
            "mcp",
            "proxy",
            str(POLICY),
            "--config",
            str(self.config),
            "--state",
            str(self.state),
            *extra,
        ]

    def charter(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "charter.cli.main", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def grant(self, ticket: str, person: str, group: str) -> subprocess.CompletedProcess[str]:
        """`charter approvals grant TICKET --as PERSON --group GROUP` on this state file."""
        return self.charter(
            "approvals",
            "grant",
            ticket,
            "--state",
            str(self.state),
            "--as",
            person,
            "--group",
            group,
        )

    @asynccontextmanager
    async def stdio(self, mode: str = "auto", **options: Any) -> AsyncIterator[Client]:
        # the SDK passes a stdio server a small "safe" environment: give the proxy this
        # one, so it imports the charter under test (PYTHONPATH) and not another install
        params = StdioServerParameters(
            command=sys.executable, args=self.proxy_args(), env=dict(os.environ)
        )
        async with Client(params, mode=mode, read_timeout_seconds=30, **options) as client:  # type: ignore[arg-type]
            yield client

    def proxy_setting(self, line: str) -> None:
        """Add `line` to the config's [proxy] table (the last table of the file)."""
        self.config.write_text(self.config.read_text() + line + "\n")

    @asynccontextmanager
    async def http(self, mode: str = "auto", **options: Any) -> AsyncIterator[Client]:
        with self.http_proxy() as url:
            async with Client(url, mode=mode, read_timeout_seconds=30, **options) as client:  # type: ignore[arg-type]
                yield client

    @contextmanager
    def http_proxy(self) -> Iterator[str]:
        """A `charter mcp proxy --listen http://...` process: its URL."""
        port = _free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        proc = subprocess.Popen(
            [sys.executable, *self.proxy_args("--listen", url)], stderr=subprocess.PIPE, text=True
        )
        try:
            _wait_for(port, proc)
            yield url
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited: {proc.stderr.read() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the proxy did not start listening")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def everything() -> Iterator[str]:
    """`@modelcontextprotocol/server-everything` over streamable HTTP: its URL."""
    _need(EVERYTHING, "@modelcontextprotocol/server-everything")
    port = _free_port()
    proc = subprocess.Popen(
        ["node", str(EVERYTHING), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        _stop(proc)


@pytest.fixture
def setup(tmp_path: Path, everything: str) -> Iterator[Setup]:
    _need(FILESYSTEM, "@modelcontextprotocol/server-filesystem")
    if shutil.which("mcp-server-git") is None:
        pytest.skip("mcp-server-git is not installed")
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text(f"customer {EMAIL} paid with {CARD} yesterday\n")
    (data / "plain.txt").write_text("nothing to see\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(
        repo,
        "-c",
        "user.email=t@e.st",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    )
    (repo / "a.txt").write_text("a\n")
    _git(repo, "add", "a.txt")
    (tmp_path / "outside.txt").write_text("not under the data root\n")
    config = tmp_path / "charter-mcp.toml"
    config.write_text(f"""
[servers.fs]
command = "node"
args = [{str(FILESYSTEM)!r}, {str(tmp_path)!r}]
trust_annotations = true

[servers.every]
url = {everything!r}

[servers.git]
command = "mcp-server-git"
args = ["--repository", {str(repo)!r}]
trust_annotations = true
cost_usd = {{ git_log = 0.30 }}

[servers.flaky]
command = {sys.executable!r}
args = [{str(HERE / "flaky_server.py")!r}]

[proxy]
timeout = 2
agent = {{ id = "test-agent", team = "eng" }}
""")
    yield Setup(tmp_path, data, repo, config, tmp_path / "state.db")
