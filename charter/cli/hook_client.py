"""`charter hook AGENT [EVENT] --server URL|unix:PATH [--fail closed|open]`: the thin hook.

A command hook is a fresh process per tool call; loading the runtime costs most of it. With
`--server` the process imports nothing of Charter's runtime (only the standard library): it
posts the event to a warm `charter serve` (`POST /v1/hooks/{agent}?reply=envelope&event=`),
which answers with what `charter hook` would have printed and its exit code, and relays
that. If the
server cannot be reached, answers with an error, or answers something that is not such an
answer, `--fail closed` (the default) is the host's blocking answer, exit 2, reason
`charter: policy server unreachable: …`; `--fail open` lets the call go on (exit 0, `{}`)
with the reason on stderr — only for hosts where a hook outage must not stop work.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import NoReturn
from urllib.parse import quote, urlsplit

__all__ = ["Reply", "main", "post"]

AGENTS = ("claude-code", "cursor", "gemini", "codex", "copilot")
MAX_REPLY = 64 * 1024 * 1024


Reply = tuple[str, int, str]  # stdout, exit code, stderr


def _connect(server: str, timeout: float) -> tuple[socket.socket, str, str]:
    """(connected socket, Host header, path prefix) for `http://HOST:PORT[/prefix]` or
    `unix:PATH`. Plain HTTP only: the sidecar listens on loopback or a Unix socket."""
    if server.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(server[5:])
        return sock, "localhost", ""
    url = urlsplit(server if "://" in server else f"http://{server}")
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"--server must be http://HOST:PORT or unix:PATH; got {server!r}")
    port = url.port or 80
    sock = socket.create_connection((url.hostname, port), timeout=timeout)
    return sock, f"{url.hostname}:{port}", url.path.rstrip("/")


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REPLY:
            raise ValueError("the answer is too large")


def _body(head: bytes, rest: bytes) -> bytes:
    """The response body, from its headers (Content-Length or chunked)."""
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get(b"transfer-encoding") == b"chunked":
        out: list[bytes] = []
        i = 0
        while True:
            end = rest.index(b"\r\n", i)
            size = int(rest[i:end].split(b";")[0], 16)
            if size == 0:
                return b"".join(out)
            out.append(rest[end + 2 : end + 2 + size])
            i = end + 2 + size + 2
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        if len(rest) < length:
            raise ValueError("the answer was cut short")
        return rest[:length]
    return rest


def post(server: str, agent: str, event: str | None, body: bytes, timeout: float) -> Reply:
    """The sidecar's answer to one event. Raises OSError / ValueError when there is no
    usable answer. One request per connection (`Connection: close`), over a plain socket:
    `http.client` would cost the hook more to import than the call takes."""
    sock, host, prefix = _connect(server, timeout)
    # `reply=envelope`: the command hook's whole answer (stdout, exit code, stderr), not
    # only the body an HTTP hook reads.
    path = f"{prefix}/v1/hooks/{quote(agent, safe='')}?reply=envelope"
    if event:
        path += f"&event={quote(event, safe='')}"
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    try:
        sock.sendall(request + body)
        data = _read_all(sock)
    finally:
        sock.close()
    head, sep, rest = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)
    if not sep or len(status) < 2 or not status[0].startswith(b"HTTP/"):
        raise ValueError("the answer is not HTTP")
    payload = _body(head, rest)
    if status[1] != b"200":
        raise ValueError(
            f"HTTP {status[1].decode('ascii', 'replace')} from {server}: {payload[:200]!r}"
        )
    reply = json.loads(payload)
    if not isinstance(reply, dict):
        raise ValueError("the answer is not a JSON object")
    out, code, err = reply.get("stdout"), reply.get("exit_code"), reply.get("stderr", "")
    if (
        type(out) is not str
        or type(code) is not int
        or code not in (0, 2)
        or (type(err) is not str)
    ):
        raise ValueError("the answer is not {stdout, exit_code 0 or 2, stderr}")
    return out, code, err


def _blocking(agent: str, event: str | None, reason: str) -> Reply:
    """The host's blocking answer (imports the host formats only on this path)."""
    try:
        from charter.hosts.wire import blocked

        answer = blocked(agent, event, reason)
        return answer.stdout, 2, answer.stderr
    except Exception:  # noqa: BLE001 - exit 2 blocks whatever stdout holds
        return "{}", 2, reason + "\n"


def _options(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """`--name value` / `--name=value` options and the positional arguments."""
    options: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, sep, value = arg[2:].partition("=")
            if not sep:
                if i + 1 >= len(argv):
                    raise ValueError(f"--{name} needs a value")
                i += 1
                value = argv[i]
            options[name] = value
        else:
            rest.append(arg)
        i += 1
    return options, rest


def run(argv: list[str], stdin: bytes) -> Reply:
    """One thin hook call. Never raises."""
    agent = next((a for a in argv if a in AGENTS), "claude-code")
    try:
        options, rest = _options(argv)
        agent = options.pop("agent", "") or (rest[0] if rest else "")
        if agent not in AGENTS:
            raise ValueError(f"name the agent ({', '.join(AGENTS)})")
        event = rest[1] if len(rest) > 1 else None
        server = options.pop("server")
        fail = options.pop("fail", "closed")
        timeout = float(options.pop("timeout", "10"))
        if fail not in ("closed", "open") or options or len(rest) > 2:
            raise ValueError(
                "with --server, charter hook takes AGENT [EVENT] --server URL "
                "[--fail closed|open] [--timeout SECONDS]"
            )
    except (ValueError, KeyError) as err:
        return _blocking(agent, None, f"charter: hook usage: {err}")
    try:
        return post(server, agent, event, stdin, timeout)
    except Exception as err:  # noqa: BLE001 - no answer is never an allow
        reason = f"charter: policy server unreachable: {type(err).__name__}: {err}"
        if fail == "open":
            return "{}", 0, reason + " (--fail open: the call goes on)\n"
        return _blocking(agent, event, reason)


def main(argv: list[str]) -> NoReturn:
    try:
        stdin = sys.stdin.buffer.read()
    except Exception:  # noqa: BLE001 - an unreadable stdin is posted as empty: a block
        stdin = b""
    out, code, err = run(argv, stdin)
    sys.stdout.write(out + "\n")
    sys.stdout.flush()
    if err:
        sys.stderr.write(err)
    sys.exit(code)
