"""`charter mcp`: a policy-enforcing MCP proxy in front of real MCP servers (hosts.md §1).

`Proxy(guard, config).as_server()` is an MCP server (the SDK's low-level `Server`) whose
`tools/list` and `tools/call` go to the configured upstreams, every call decided by the
Guard. `load_config` reads `charter-mcp.toml`. Needs the `mcp` package (`charter[mcp]`).
"""

from charter.hosts.mcp.config import ConfigError, ProxyConfig, ServerConfig, load_config
from charter.hosts.mcp.proxy import Proxy

__all__ = ["ConfigError", "Proxy", "ProxyConfig", "ServerConfig", "load_config"]
