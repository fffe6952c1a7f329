"""`charter hook AGENT [EVENT] --policy P`: one coding-agent hook call (spec hosts.md §2).

Reads the host's event JSON on stdin, writes the host's answer on stdout, exits with the
host's code: 0 with the answer, 2 (the one code every host treats as a block, never 1)
for anything that went wrong — unreadable stdin, no policy, a policy that does not
compile, a state store that cannot be opened. This module is the command's fast path: it
is reached before the rest of the command line is imported (`charter.cli.entry`), so a call
with a warm policy cache imports neither click, the parser nor the compiler; a well-formed
command line is read by `_quick` without argparse (importing and building the argparse
parser cost a few milliseconds of every call), and anything else goes to argparse for its
usage message. `charter hook install` is in `charter.cli.hook_install`.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

from charter.hosts.hook import HookOptions, run_hook
from charter.hosts.names import AGENTS
from charter.hosts.wire import HookAnswer, blocked

if TYPE_CHECKING:
    import argparse

    from charter.hosts.approvals import PendingApprovals
    from charter.hosts.held import Held
    from charter.runtime.guard import Guard

__all__ = ["main", "run"]


class _Usage(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    import argparse

    class _ArgumentParser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise _Usage(message)

    p = _ArgumentParser(
        prog="charter hook",
        description="Answer one coding-agent hook event: the "
        "host's event JSON on stdin, its answer on stdout. `charter hook install "
        "AGENT` writes the host's settings entry.",
    )
    p.add_argument("agent", nargs="?", choices=AGENTS, help="the host")
    p.add_argument(
        "event",
        nargs="?",
        help="the event, for hosts whose payload does not "
        "name it (Copilot: preToolUse, postToolUse)",
    )
    p.add_argument("--agent", dest="agent_opt", choices=AGENTS, help="the host (as AGENT)")
    p.add_argument(
        "--policy",
        help="policy file or directory, or a file saved by "
        "`charter compile -o` (default: $CHARTER_POLICY)",
    )
    p.add_argument(
        "--state",
        help="sqlite:PATH or PATH (default: $CHARTER_STATE, else "
        "~/.local/state/charter/hooks.db), or `memory`",
    )
    p.add_argument(
        "--cache-dir",
        help="compiled-policy cache (default: $CHARTER_CACHE_DIR, else ~/.cache/charter/policies)",
    )
    p.add_argument(
        "--names",
        choices=("normalized", "raw"),
        default="normalized",
        help="map host tool names to Charter names (shell.run, mcp.S.T), or not",
    )
    p.add_argument(
        "--authoritative",
        action="store_true",
        help="say allow out loud (by "
        "default an allowed call gets no decision, so the host's own permission "
        "rules still apply)",
    )
    p.add_argument(
        "--ask-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="an approver group that means the person at the keyboard: its "
        "approvals become the host's `ask` (Claude Code, Cursor); repeatable",
    )
    p.add_argument(
        "--ticket-ttl",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="how long a parked approval waits (default 900)",
    )
    p.add_argument("--approvers", help="approver directory (JSON) the Guard checks grants against")
    p.add_argument("--log", help="decision log (JSON lines)")
    p.add_argument(
        "--server",
        help="post the event to a warm `charter serve` "
        "(http://HOST:PORT or unix:PATH) instead of deciding here; with "
        "--fail closed|open and --timeout SECONDS (charter.cli.hook_client)",
    )
    return p


#: `_quick`: options taking a value (destination), and flags.
_VALUED = {
    "--agent": "agent_opt",
    "--policy": "policy",
    "--state": "state",
    "--cache-dir": "cache_dir",
    "--names": "names",
    "--ask-group": "ask_group",
    "--ticket-ttl": "ticket_ttl",
    "--approvers": "approvers",
    "--log": "log",
}
_FLAGS = {"--authoritative": "authoritative"}
_CHOICES: dict[str, tuple[str, ...]] = {"agent_opt": AGENTS, "names": ("normalized", "raw")}


class _Args:
    """What `_parser` would make of a well-formed command line."""

    def __init__(self) -> None:
        self.agent: str | None = None
        self.event: str | None = None
        self.agent_opt: str | None = None
        self.policy: str | None = None
        self.state: str | None = None
        self.cache_dir: str | None = None
        self.names = "normalized"
        self.authoritative = False
        self.ask_group: list[str] = []
        self.ticket_ttl = 900.0
        self.approvers: str | None = None
        self.log: str | None = None


def _quick(argv: list[str]) -> _Args | None:
    """`argv` read without argparse when it holds only full option names with valid values
    and at most two positionals, the first of them an agent; None for anything else
    (abbreviations, bad values, help), which argparse then reads or refuses, so the two
    readings never differ on what they both accept."""
    args = _Args()
    positional: list[str] = []
    i = 0
    while i < len(argv):
        item = argv[i]
        i += 1
        if not item.startswith("-"):
            positional.append(item)
            continue
        name, eq, value = item.partition("=")
        if name in _FLAGS and not eq:
            setattr(args, _FLAGS[name], True)
            continue
        dest = _VALUED.get(name)
        if dest is None:
            return None
        if not eq:
            if i >= len(argv) or argv[i].startswith("-"):
                return None
            value = argv[i]
            i += 1
        if dest == "ask_group":
            args.ask_group.append(value)
        elif dest == "ticket_ttl":
            try:
                args.ticket_ttl = float(value)
            except ValueError:
                return None
        elif value not in _CHOICES.get(dest, (value,)):
            return None
        else:
            setattr(args, dest, value)
    if len(positional) > 2 or (positional and positional[0] not in AGENTS):
        return None
    args.agent = positional[0] if positional else None
    args.event = positional[1] if len(positional) > 1 else None
    return args


def run(argv: list[str], stdin: bytes, env: dict[str, str] | os._Environ[str]) -> HookAnswer:
    """One hook call. Never raises; a usage error is exit 2 with the host's block answer
    (a mistyped settings entry must not let calls through)."""
    agent_guess = next((a for a in argv if a in AGENTS), None) or "claude-code"
    try:
        args = _quick(argv) or _parser().parse_args(argv)
    except _Usage as err:
        return blocked(agent_guess, None, f"charter: hook usage: {err}")
    agent = args.agent_opt or args.agent
    if agent is None:
        return blocked(
            agent_guess, None, f"charter: hook usage: name the agent ({', '.join(AGENTS)})"
        )
    opts = HookOptions(
        agent,
        event=args.event,
        names=args.names,
        authoritative=args.authoritative,
        ask_groups=frozenset(args.ask_group),
        ticket_ttl=args.ticket_ttl,
        env=dict(env),
    )
    notes: list[str] = []

    def open_guard() -> tuple[Guard, PendingApprovals | None, Held | None]:
        return _open(args, env, notes)

    answer = run_hook(opts, stdin, open_guard)
    if notes:
        answer = HookAnswer(answer.stdout, answer.code, "\n".join(notes) + "\n" + answer.stderr)
    return answer


def _open(
    args: argparse.Namespace | _Args, env: dict[str, str] | os._Environ[str], notes: list[str]
) -> tuple[Guard, PendingApprovals | None, Held | None]:
    from charter.cli.hook_cache import cache_dir, load_cached
    from charter.cli.hook_state import secret_for, state_path
    from charter.hosts.approvals import PendingApprovals, SQLitePending
    from charter.hosts.hook import PolicyUnavailable
    from charter.runtime.guard import Guard

    policy_arg = args.policy or env.get("CHARTER_POLICY")
    if not policy_arg:
        raise PolicyUnavailable("no --policy given and CHARTER_POLICY is not set")
    cache = args.cache_dir or cache_dir(env)
    policy = load_cached(policy_arg, cache, notes)
    path = state_path(args.state, env)
    if path is None:
        return Guard(policy, approvers=args.approvers, log=args.log), None, None
    from charter.hosts.held import SQLiteHeld
    from charter.runtime.state.sqlite import SQLiteStore

    secret = secret_for(path)
    guard = Guard(
        policy,
        state=SQLiteStore(path, lazy=True),
        secret=secret,
        approvers=args.approvers,
        log=args.log,
    )
    return guard, PendingApprovals(guard, SQLitePending(path)), SQLiteHeld(path)


def main(argv: list[str]) -> NoReturn:
    """Run `charter hook ARGV` against this process's stdin, stdout and exit code."""
    if any(a == "--server" or a.startswith("--server=") for a in argv):
        from charter.cli.hook_client import main as client_main

        client_main(argv)
    if argv[:1] == ["install"]:
        from charter.cli.hook_install import install_main

        install_main(argv[1:])
    if any(a in ("-h", "--help") for a in argv):
        _parser().print_help()
        sys.exit(0)
    from charter.stdlib.spec import use_prefilters

    use_prefilters()  # this process scans one event: a lean RE2 Set compiles ~30x faster
    try:
        stdin = sys.stdin.buffer.read()
    except Exception as err:  # noqa: BLE001 - an unreadable stdin still blocks
        stdin = b""
        print(f"charter: cannot read stdin: {err}", file=sys.stderr)
    answer = run(argv, stdin, os.environ)
    try:
        sys.stdout.write(answer.stdout + "\n")
        sys.stdout.flush()
        if answer.stderr:
            sys.stderr.write(answer.stderr)
        sys.stderr.flush()
    except OSError:  # the host closed our pipes: the code below is all it can still read
        pass
    # Straight out, without tearing the interpreter down (a fifth of a warm call): the
    # answer is written and flushed, the state store committed each change in its own
    # transaction, and the decision log writes unbuffered and fsyncs every record.
    os._exit(answer.code)
