"""`charter hook`'s quick command-line reading agrees with argparse on everything it
accepts, and hands everything else to argparse."""

from __future__ import annotations

import pytest

from charter.cli.hook import _Args, _parser, _quick

ACCEPTED = [
    ["claude-code", "--policy", "p"],
    ["copilot", "postToolUse", "--policy=p", "--state", "memory"],
    ["--agent", "cursor", "--policy", "p", "--authoritative"],
    ["gemini", "--names", "raw", "--ask-group", "user", "--ask-group=ops"],
    ["codex", "--ticket-ttl", "60", "--approvers", "a.json", "--log", "d.log"],
    ["claude-code", "--cache-dir", "c", "--policy", ""],
    [],
]
REFUSED = [
    ["claude-code", "--pol", "p"],  # an abbreviation: argparse's to read
    ["claude-code", "--names", "other"],
    ["claude-code", "--ticket-ttl", "soon"],
    ["claude-code", "--policy"],
    ["claude-code", "--policy", "--state"],
    ["nobody"],
    ["claude-code", "a", "b"],
    ["--agent", "nobody"],
    ["claude-code", "--authoritative=yes"],
    ["claude-code", "--", "x"],
]


def _fields(args: object) -> dict[str, object]:
    return {k: getattr(args, k) for k in vars(_Args())}


@pytest.mark.parametrize("argv", ACCEPTED)
def test_quick_reading_matches_argparse(argv: list[str]) -> None:
    quick = _quick(argv)
    assert quick is not None
    assert _fields(quick) == _fields(_parser().parse_args(argv))


@pytest.mark.parametrize("argv", REFUSED)
def test_anything_else_goes_to_argparse(argv: list[str]) -> None:
    assert _quick(argv) is None
