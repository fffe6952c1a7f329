"""Helpers shared by the commands: loading policies, reading requests, exit codes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import click
import msgspec

from charter.runtime.policy import SAVE_MAGIC, Policy

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def policy_units(path: Path) -> Iterator[list[Path]]:
    """The policies under a path: a file alone, or the files of each directory (tests
    included), as `charter.compiler.units` defines them for the language server too."""
    from charter.compiler.units import units

    if not path.exists():
        fail(f"{path}: no such file or directory")
    yield from units(path)


def load_policy(path_text: str) -> Policy:
    """A policy from source (file or directory) or a file saved by `charter compile`."""
    from charter.compiler.pipeline import compile_sources, read_sources
    from charter.compiler.sources import discover

    path = Path(path_text)
    if path.is_file() and path.read_bytes()[: len(SAVE_MAGIC)] == SAVE_MAGIC:
        return Policy.load_compiled(path)
    if not path.exists():
        fail(f"{path}: no such file or directory")
    files = discover(path)
    if not files:
        fail(f"{path}: no .agentpolicy files")
    comp = compile_sources(read_sources(files))
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
