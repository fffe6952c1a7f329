"""Tool names: what each host calls a tool, and the Charter tool object for it (spec §0.3).

Hosts name the same action differently (`Bash`, `run_shell_command`, `bash`, a Cursor
`beforeShellExecution` event). A policy targets dot-segmented names (`tool "shell.*"`), so a
host's built-in tool maps to one Charter name through `BUILTINS`, and an MCP tool becomes
`mcp.<server>.<tool>` with `server` set (Claude Code, Codex and Gemini CLI spell it
`mcp__<server>__<tool>`, Cursor `MCP:<server>:<tool>`). A name the table does not know is
kept as the host sent it, so a policy can still target it. The raw host name always rides
along as the tags `host:<agent>` and `raw:<name>` (and `mcp` for an MCP tool): sent tags only
ever restrict (docs/language.md, "Targets"), so they cannot open anything.

`names="raw"` keeps every host name unchanged (the tags are still added).
"""

from __future__ import annotations

from typing import Final

__all__ = ["AGENTS", "BUILTINS", "tool_object"]

#: The hosts `charter hook` speaks for, by the name the command line takes.
AGENTS: Final = ("claude-code", "cursor", "gemini", "codex", "copilot")

_SHELL, _READ, _WRITE, _EDIT = "shell.run", "file.read", "file.write", "file.edit"
_SEARCH, _LIST = "file.search", "file.list"

_CLAUDE: Final = {
    "Bash": _SHELL,
    "BashOutput": "shell.output",
    "KillShell": "shell.kill",
    "Read": _READ,
    "Write": _WRITE,
    "Edit": _EDIT,
    "MultiEdit": _EDIT,
    "NotebookEdit": "notebook.edit",
    "NotebookRead": "notebook.read",
    "Glob": _SEARCH,
    "Grep": _SEARCH,
    "LS": _LIST,
    "WebFetch": "web.fetch",
    "WebSearch": "web.search",
    "Task": "agent.task",
    "TodoWrite": "agent.todo",
}

#: Host tool name -> Charter tool name, per host.
BUILTINS: Final[dict[str, dict[str, str]]] = {
    "claude-code": _CLAUDE,
    # Codex speaks the Claude Code hook format; `apply_patch` and `exec_command` are its own.
    "codex": {
        **_CLAUDE,
        "apply_patch": _EDIT,
        "exec_command": _SHELL,
        "shell": _SHELL,
        "local_shell": _SHELL,
    },
    "gemini": {
        "run_shell_command": _SHELL,
        "read_file": _READ,
        "read_many_files": _READ,
        "write_file": _WRITE,
        "replace": _EDIT,
        "glob": _SEARCH,
        "search_file_content": _SEARCH,
        "list_directory": _LIST,
        "web_fetch": "web.fetch",
        "google_web_search": "web.search",
        "save_memory": "memory.save",
    },
    "cursor": {
        "Shell": _SHELL,
        "Read": _READ,
        "Write": _WRITE,
        "Edit": _EDIT,
        "StrReplace": _EDIT,
        "Delete": "file.delete",
        "Grep": _SEARCH,
        "Glob": _SEARCH,
        "LS": _LIST,
        "WebFetch": "web.fetch",
        "WebSearch": "web.search",
        "Task": "agent.task",
    },
    "copilot": {
        "bash": _SHELL,
        "powershell": _SHELL,
        "view": _READ,
        "create": _WRITE,
        "edit": _EDIT,
        "str_replace": _EDIT,
        "glob": _SEARCH,
        "grep": _SEARCH,
        "web_fetch": "web.fetch",
    },
}


def _mcp_parts(agent: str, raw: str) -> tuple[str, str] | None:
    """(server, tool) of an MCP tool name in the host's spelling, or None."""
    if agent == "cursor":
        if raw.startswith("MCP:"):
            server, sep, tool = raw[4:].partition(":")
            if sep and server and tool:
                return server, tool
        return None
    if raw.startswith("mcp__"):
        server, sep, tool = raw[5:].partition("__")
        if sep and server and tool:
            return server, tool
    return None


def tool_object(
    agent: str, raw: str, *, names: str = "normalized", server: str | None = None
) -> dict[str, object]:
    """The request's `tool` for the host tool `raw`: `{"name", "tags"[, "server"]}`.

    `server` is the MCP server when the host names it apart from the tool (Claude Code's
    `mcp_server.name`, Cursor's MCP events); an `mcp__s__t` name gives its own.
    """
    tags = [f"host:{agent}", f"raw:{raw}"]
    mcp = _mcp_parts(agent, raw)
    name = raw
    if mcp is not None:
        server = server or mcp[0]
        tags.append("mcp")
        if names == "normalized":
            name = f"mcp.{mcp[0]}.{mcp[1]}"
    elif names == "normalized":
        name = BUILTINS.get(agent, {}).get(raw, raw)
    tool: dict[str, object] = {"name": name, "tags": tags}
    if server is not None:
        tool["server"] = server
    return tool
