"""`charter hook install AGENT --policy P [--user | --project DIR] [--dry-run]` (the agent
also as `--agent AGENT`), or for Claude Code `--http URL` (a `type: "http"` hook to a
running `charter serve`).

Merges Charter's entries into the host's own hook settings (spec hosts.md §2): the file is
read, every entry that runs `charter hook AGENT` is replaced by the current one, everything
else (the user's own hooks, other settings) is kept as it is, and the file is written only
if it changed — so installing twice changes nothing. `--dry-run` prints the merged file.
A settings file that is not a JSON object is refused, never overwritten.

The command an entry runs is, unless `--command` names another, this interpreter under
`-I -S` with a launcher file (`charter.cli.hook_launcher`): no `site`, no `PYTHONPATH`,
no working directory on the import path.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn

from charter.hosts.names import AGENTS

__all__ = ["hook_url", "install_main", "merged", "settings_path"]

#: (project file, user file) relative to the project directory / the home directory.
FILES = {
    "claude-code": (".claude/settings.json", ".claude/settings.json"),
    "codex": (".codex/hooks.json", ".codex/hooks.json"),
    "gemini": (".gemini/settings.json", ".gemini/settings.json"),
    "cursor": (".cursor/hooks.json", ".cursor/hooks.json"),
    "copilot": (".github/hooks/charter.json", ".copilot/hooks/charter.json"),
}
#: Each host's failure event is installed too: it gives back what the call reserved.
EVENTS = {
    "claude-code": ("PreToolUse", "PostToolUse", "PostToolUseFailure", "UserPromptSubmit"),
    "codex": ("PreToolUse", "PostToolUse"),
    "gemini": ("BeforeTool", "AfterTool", "BeforeAgent"),
    "cursor": ("preToolUse", "postToolUse", "postToolUseFailure", "beforeSubmitPrompt"),
    "copilot": ("preToolUse", "postToolUse"),
}
_TOOL_EVENTS = {"PreToolUse", "PostToolUse", "PostToolUseFailure", "BeforeTool", "AfterTool"}


def settings_path(agent: str, user: bool, project: Path, home: Path) -> Path:
    rel = FILES[agent][1 if user else 0]
    return (home if user else project) / rel


def _mine(entry: object, markers: tuple[str, ...]) -> bool:
    """Whether a settings entry is one `install` wrote (it runs `charter hook AGENT`, or
    posts to a `charter serve` hook URL)."""
    text = json.dumps(entry)
    return any(marker in text for marker in markers)


def hook_url(given: str, agent: str) -> str:
    """The hook URL of `given`: a `charter serve` base URL gets `/v1/hooks/AGENT`; a URL
    that already names a hooks route is kept as it is (its query too)."""
    if "/v1/hooks/" in given:
        return given
    return given.rstrip("/") + f"/v1/hooks/{agent}"


def merged(
    agent: str, current: dict[str, Any], command: str, *, http: str | None = None
) -> dict[str, Any]:
    """`current` settings with Charter's entries for `agent` in place of any older ones
    (command entries and HTTP entries replace each other: one Charter hook per event)."""
    markers = (f"hook {agent} --policy", f"/v1/hooks/{agent}")
    out = dict(current)
    hooks = dict(out.get("hooks") or {})
    for event in EVENTS[agent]:
        kept = [e for e in hooks.get(event) or [] if not _mine(e, markers)]
        hooks[event] = [*kept, _entry(agent, event, command, http)]
    out["hooks"] = hooks
    if agent in ("cursor", "copilot"):
        out.setdefault("version", 1)
    return out


def _entry(agent: str, event: str, command: str, http: str | None = None) -> dict[str, Any]:
    if http is not None:  # Claude Code only (install refuses it for the others)
        handler: dict[str, Any] = {"type": "http", "url": http}
        if event in _TOOL_EVENTS:
            return {"matcher": "*", "hooks": [handler]}
        return {"hooks": [handler]}
    if agent == "cursor":
        # failClosed: a hook that cannot start or times out blocks instead of allowing.
        return {"command": command, "failClosed": True}
    if agent == "copilot":
        return {"type": "command", "bash": f"{command} {event}", "timeoutSec": 30}
    handler = {"type": "command", "command": command}
    if agent == "gemini":
        handler["name"] = "charter"
    entry: dict[str, Any] = {"hooks": [handler]}
    if event in _TOOL_EVENTS:
        entry = {"matcher": "*" if agent == "claude-code" else ".*", **entry}
    return entry


def _runner(args: argparse.Namespace) -> list[str]:
    """The words before the agent's name: `--command` then `hook`, or the launcher's
    command (written here unless `--dry-run`)."""
    if args.command is not None:
        return [*shlex.split(args.command), "hook"]
    from charter.cli.hook_launcher import hook_command, launcher_dir, write_launcher

    directory = args.launcher_dir or launcher_dir(os.environ)
    try:
        return hook_command(write_launcher(directory, dry_run=args.dry_run))
    except OSError as err:
        print(
            f"charter hook install: cannot write the launcher in {directory}: {err}; "
            "give --command charter to run it from PATH instead",
            file=sys.stderr,
        )
        sys.exit(2)


class _Usage(Exception):
    pass


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Usage(message)


def install_main(argv: list[str]) -> NoReturn:
    p = _ArgumentParser(prog="charter hook install", description=__doc__.splitlines()[0])
    p.add_argument("agent", nargs="?", choices=AGENTS)
    p.add_argument("--agent", dest="agent_opt", choices=AGENTS, help="the agent (or positional)")
    p.add_argument("--policy", help="the policy the hook enforces (required but with --http)")
    p.add_argument(
        "--http",
        metavar="URL",
        help="Claude Code only: post each event to a running `charter serve` at URL "
        "(a type: http hook) instead of running `charter hook`",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="the user's settings file")
    where.add_argument("--project", default=".", help="project directory (default: .)")
    p.add_argument(
        "--command",
        help="how the host runs charter (for example `charter`, from PATH); by default, "
        "this interpreter under -I -S running a launcher written to --launcher-dir "
        "(docs/hosts.md: interpreter start-up is most of a hook call)",
    )
    p.add_argument(
        "--launcher-dir",
        help="where the launcher is written (default: $CHARTER_DATA_DIR/bin, else "
        "$XDG_DATA_HOME/charter/bin, else ~/.local/share/charter/bin)",
    )
    p.add_argument(
        "--hook-args",
        default="",
        help="extra `charter hook` options, quoted "
        '(e.g. "--ask-group user --state /var/lib/charter/hooks.db")',
    )
    p.add_argument("--dry-run", action="store_true", help="print the merged file, write nothing")
    try:
        args = p.parse_args(argv)
        if args.agent and args.agent_opt and args.agent != args.agent_opt:
            raise _Usage(f"two agents named: {args.agent} and {args.agent_opt}")
        args.agent = args.agent or args.agent_opt
        if args.agent is None:
            raise _Usage(f"name the agent ({', '.join(AGENTS)})")
    except _Usage as err:
        print(f"charter hook install: {err}", file=sys.stderr)
        sys.exit(2)
    if args.http is not None and args.agent != "claude-code":
        print(
            f"charter hook install: --http: {args.agent} has no HTTP hooks (only Claude Code)",
            file=sys.stderr,
        )
        sys.exit(2)
    if args.http is not None and args.hook_args:
        print(
            "charter hook install: --hook-args does not apply to --http: give the options "
            "in the URL's query (?authoritative=1&ask_group=user)",
            file=sys.stderr,
        )
        sys.exit(2)
    if args.http is None and not args.policy:
        print("charter hook install: --policy is required (or --http URL)", file=sys.stderr)
        sys.exit(2)
    command = (
        ""
        if args.policy is None or args.http is not None
        else shlex.join(
            [
                *_runner(args),
                args.agent,
                "--policy",
                str(Path(args.policy).resolve()),
                *shlex.split(args.hook_args),
            ]
        )
    )
    http = None if args.http is None else hook_url(args.http, args.agent)
    path = settings_path(args.agent, args.user, Path(args.project), Path.home())
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        print(f"charter hook install: cannot read {path}: {err}; left unchanged", file=sys.stderr)
        sys.exit(2)
    if not isinstance(current, dict) or not isinstance(current.get("hooks", {}), dict):
        print(
            f"charter hook install: {path} is not a settings object with a `hooks` "
            "object; left unchanged",
            file=sys.stderr,
        )
        sys.exit(2)
    new = merged(args.agent, current, command, http=http)
    text = json.dumps(new, indent=2) + "\n"
    if args.dry_run:
        sys.stdout.write(text)
        sys.exit(0)
    if new == current:
        print(f"{path}: already installed", file=sys.stderr)
        sys.exit(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    sys.exit(0)
