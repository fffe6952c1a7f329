"""`charter-mcp.toml`: the upstream servers and how the proxy presents them.

```toml
[servers.fs]
command = "npx"
args = ["@modelcontextprotocol/server-filesystem", "/srv/data"]
trust_annotations = true      # map readOnlyHint... to tags; else they become hint:* tags
tags = ["local"]
cost_usd = { write_file = 0.01 }   # settled per call of that tool

[servers.remote]
url = "http://127.0.0.1:3001/mcp"
headers = { Authorization = "Bearer ${REMOTE_TOKEN}" }

[proxy]
separator = "."            # exported name <server><sep><tool>
names = "normalized"       # Charter tool mcp.<server>.<tool>; "raw": <server><sep><tool>
hide_denied_tools = true
timeout = 30               # seconds per upstream call
agent = { id = "claude-desktop", team = "eng" }
approvals = "block"        # or "elicit": ask the client's user (see docs/mcp.md)
local_user_groups = ["user"]   # approver groups the person at the client stands for
session_from = "connection"    # or "header" (X-Charter-Session), "meta" (_meta): see docs/mcp.md
```

`${NAME}` in strings is read from the environment (an unset name is an error, never an
empty string). Every mistake is a `ConfigError` naming the file and key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "ProxyConfig", "ServerConfig", "load_config", "parse_config"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(ValueError):
    """The proxy configuration is not usable; the message names the key."""


#: Where a call's session id comes from (hosts.md §0.4: configured, never guessed):
#: `connection` one id per connection (stdio: the proxy's; a handshake-era HTTP client's
#: `Mcp-Session-Id`), which the client cannot choose; `header` the `X-Charter-Session`
#: HTTP header, `meta` the request's `_meta["io.charter/session"]`, each else the
#: connection's. A client that names its own session can start a new budget at will, so
#: those two are for a client trusted to name its agents' sessions.
SESSION_SOURCES = ("connection", "header", "meta")


@dataclass(frozen=True)
class ServerConfig:
    """One upstream: a command to run (stdio) or a URL (streamable HTTP)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    trust_annotations: bool = False
    tags: tuple[str, ...] = ()
    cost_usd: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class ProxyConfig:
    """The whole configuration: upstreams by name and the proxy's own settings."""

    servers: Mapping[str, ServerConfig]
    separator: str = "."
    names: str = "normalized"
    hide_denied_tools: bool = True
    timeout: float = 30.0
    agent: Mapping[str, Any] = field(default_factory=dict)
    approvals: str = "block"
    local_user_groups: tuple[str, ...] = ()
    session_from: str = "connection"


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> ProxyConfig:
    """Read and check a TOML configuration file."""
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{where}: cannot read: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: not valid TOML: {err}") from None
    return parse_config(data, where, os.environ if env is None else env)


def parse_config(
    data: Mapping[str, Any], where: str = "config", env: Mapping[str, str] | None = None
) -> ProxyConfig:
    """Check a configuration already parsed (a dict of the TOML's shape)."""
    env = os.environ if env is None else env
    unknown = set(data) - {"servers", "proxy"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown section {sorted(unknown)[0]!r} (sections: servers, proxy)"
        )
    servers = _table(data.get("servers", {}), f"{where}: servers")
    if not servers:
        raise ConfigError(f"{where}: no [servers.NAME] section: the proxy needs an upstream")
    parsed = {
        name: _server(
            name, _table(spec, f"{where}: servers.{name}"), f"{where}: servers.{name}", env
        )
        for name, spec in servers.items()
    }
    return _proxy(_table(data.get("proxy", {}), f"{where}: proxy"), parsed, f"{where}: proxy")


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _server(name: str, spec: dict[str, Any], where: str, env: Mapping[str, str]) -> ServerConfig:
    if not _NAME.match(name):
        raise ConfigError(f"{where}: a server name is letters, digits, '-' and '_'")
    known = {
        "command",
        "args",
        "env",
        "cwd",
        "url",
        "headers",
        "trust_annotations",
        "tags",
        "cost_usd",
    }
    unknown = set(spec) - known
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (keys: {', '.join(sorted(known))})"
        )
    command, url = spec.get("command"), spec.get("url")
    if (command is None) == (url is None):
        raise ConfigError(f"{where}: give exactly one of `command` (stdio) or `url` (HTTP)")
    if url is not None and not str(url).startswith(("http://", "https://")):
        raise ConfigError(f"{where}.url: an http:// or https:// URL, found {url!r}")
    return ServerConfig(
        name=name,
        command=_text(command, f"{where}.command", env) if command is not None else None,
        args=tuple(
            _text(a, f"{where}.args", env) for a in _list(spec.get("args", []), f"{where}.args")
        ),
        env=(
            {
                k: _text(v, f"{where}.env.{k}", env)
                for k, v in _table(spec["env"], f"{where}.env").items()
            }
            if "env" in spec
            else None
        ),
        cwd=_text(spec["cwd"], f"{where}.cwd", env) if "cwd" in spec else None,
        url=_text(url, f"{where}.url", env) if url is not None else None,
        headers={
            k: _text(v, f"{where}.headers.{k}", env)
            for k, v in _table(spec.get("headers", {}), f"{where}.headers").items()
        },
        trust_annotations=_bool(spec.get("trust_annotations", False), f"{where}.trust_annotations"),
        tags=tuple(
            _text(t, f"{where}.tags", env) for t in _list(spec.get("tags", []), f"{where}.tags")
        ),
        cost_usd={
            tool: _money(v, f"{where}.cost_usd.{tool}")
            for tool, v in _table(spec.get("cost_usd", {}), f"{where}.cost_usd").items()
        },
    )


def _proxy(spec: dict[str, Any], servers: dict[str, ServerConfig], where: str) -> ProxyConfig:
    known = {
        "separator",
        "names",
        "hide_denied_tools",
        "timeout",
        "agent",
        "approvals",
        "local_user_groups",
        "session_from",
    }
    unknown = set(spec) - known
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (keys: {', '.join(sorted(known))})"
        )
    separator = spec.get("separator", ".")
    if not isinstance(separator, str) or not separator:
        raise ConfigError(f"{where}.separator: a non-empty string")
    names = spec.get("names", "normalized")
    if names not in ("normalized", "raw"):
        raise ConfigError(f'{where}.names: "normalized" or "raw", found {names!r}')
    approvals = spec.get("approvals", "block")
    if approvals not in ("block", "elicit"):
        raise ConfigError(f'{where}.approvals: "block" or "elicit", found {approvals!r}')
    session_from = spec.get("session_from", "connection")
    if session_from not in SESSION_SOURCES:
        raise ConfigError(
            f'{where}.session_from: "connection", "header" or "meta", found {session_from!r}'
        )
    groups = _list(spec.get("local_user_groups", []), f"{where}.local_user_groups")
    if not all(isinstance(g, str) and g for g in groups):
        raise ConfigError(f"{where}.local_user_groups: a list of group names")
    timeout = spec.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}.timeout: a positive number of seconds")
    return ProxyConfig(
        servers=servers,
        separator=separator,
        names=names,
        hide_denied_tools=_bool(spec.get("hide_denied_tools", True), f"{where}.hide_denied_tools"),
        timeout=float(timeout),
        agent=_table(spec.get("agent", {}), f"{where}.agent"),
        approvals=approvals,
        local_user_groups=tuple(groups),
        session_from=session_from,
    )


def _text(value: object, where: str, env: Mapping[str, str]) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: a string, found {value!r}")

    def expand(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise ConfigError(f"{where}: ${{{name}}} is not set in the environment")
        return env[name]

    return _VAR.sub(expand, value)


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: a list")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: true or false, found {value!r}")
    return value


def _money(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: a number of dollars")
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ConfigError(f"{where}: a number of dollars, found {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{where}: a number of dollars >= 0")
    return amount
