"""Helpers shared by the commands: loading policies, reading requests, exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import msgspec

from charter.runtime.policy import SAVE_MAGIC, Policy

if TYPE_CHECKING:
    from charter.compiler.sources import Unit
    from charter.language.source import Source

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def policy_units(paths: Sequence[Path]) -> list[Unit]:
    """The units `charter check` compiles under the paths (`charter.compiler.sources.units`:
    the same as `charter test` and the language server); exit 2 for a missing path."""
    from charter.compiler.sources import units

    for path in paths:
        if not path.exists():
            fail(f"{path}: no such file or directory")
    try:
        return units(paths)
    except OSError as err:
        fail(f"cannot read {err.filename}: {err.strerror}")


def policy_sources(path: Path) -> list[Source]:
    """The sources of the policy at `path` (`charter.compiler.sources.discover`, as for
    `charter.load`); exit 2 when there are none or one cannot be read."""
    from charter.compiler.sources import discover, nothing_found
    from charter.language.source import Source

    if not path.exists():
        fail(f"{path}: no such file or directory")
    try:
        files = discover(path)
    except OSError as err:
        fail(f"cannot read {err.filename}: {err.strerror}")
    if not files:
        fail(nothing_found(path))
    return [Source(str(f), read_text(f)) for f in files]


def read_text(path: Path) -> str:
    """A policy file's text, or exit 2 naming the file that cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        fail(f"cannot read {path}: {err.strerror or err}")
    except UnicodeDecodeError as err:
        fail(f"cannot read {path}: not UTF-8 ({err.reason} at byte {err.start})")


def load_policy(path_text: str) -> Policy:
    """A policy from source (file or directory) or a file saved by `charter compile`."""
    path = Path(path_text)
    if path.is_file() and path.read_bytes()[: len(SAVE_MAGIC)] == SAVE_MAGIC:
        return Policy.load_compiled(path)
    # Only now: a saved policy is decided without the compiler, the language or Lark (a
    # hook's `charter eval` is a fresh process per call, issue 11).
    from charter.compiler.pipeline import compile_sources

    comp = compile_sources(policy_sources(path))
    if comp.errors or comp.compiled is None:
        for d in comp.errors:
            click.echo(d.render(comp.sources.get(d.span.file)), err=True)
        sys.exit(EXIT_FAILED)
    return Policy(comp.compiled)


class RequestFileError(Exception):
    """A request file that cannot be read or decoded; the message names the file."""


def load_requests(source: str, split: bool = True) -> list[Any]:
    """One request, or a JSON array of requests, from a file or `-` (stdin); with
    `split=False` the file's value is one request whatever it is."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as err:
        raise RequestFileError(f"cannot read {source}: {err}") from None
    try:
        value = _DECODER.decode(data)
    except msgspec.DecodeError as err:
        raise RequestFileError(f"{source}: not valid JSON: {err}") from None
    except RecursionError:
        # msgspec decodes recursively: a pathologically deep document exhausts the stack
        raise RequestFileError(f"{source}: JSON nested too deeply to decode") from None
    return value if isinstance(value, list) and split else [value]


def read_requests(source: str) -> list[Any]:
    """`load_requests`, or exit 2 with the error."""
    try:
        return load_requests(source)
    except RequestFileError as err:
        fail(str(err))
