"""`charter bundle` and `charter push` (issue 16, L-S2..L-S4, docs/live.md "Bundles").

`bundle` runs exactly the gate of `charter gate` and writes a signed bundle only when it
passes; `push` uploads a bundle to the Redis every following host watches and makes it the
active one."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from charter.cli.common import EXIT_FAILED, EXIT_USAGE
from charter.stdlib.files import replace_file


def _actor(given: str | None) -> str:
    return given or os.environ.get("CHARTER_ACTOR") or os.environ.get("USER") or "cli"


def _key(key_file: str | None, key_id: str | None, what: str) -> Any:
    from charter.runtime.bundle import load_key

    if key_file is None:
        return None
    if what == "bundle" and not key_id:
        click.echo("charter bundle: --key-file needs --key-id", err=True)
        sys.exit(EXIT_USAGE)
    try:
        return load_key(key_file)
    except ValueError as err:
        click.echo(f"charter {what}: {err}", err=True)
        sys.exit(EXIT_USAGE)


def _properties(value: str) -> int:
    if value == "all":
        return 200  # what `charter test` runs (L-G1)
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise click.BadParameter("a number of examples (0: none) or 'all'")
    return n


@click.command("bundle")
@click.argument("policy", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--key-file", type=click.Path(dir_okay=False), help="HMAC secret (hex) or Ed25519 PEM."
)
@click.option("--key-id", default=None, help="The key's id in the hosts' key ring.")
@click.option(
    "--properties", default="25", show_default=True, help="Examples per property, or 'all'."
)
@click.option("--actor", default=None, help="The builder (default $CHARTER_ACTOR or the OS user).")
@click.option("--unsigned", is_flag=True, help="Write an unsigned bundle (development only).")
def bundle_cmd(
    policy: str,
    output: str,
    key_file: str | None,
    key_id: str | None,
    properties: str,
    actor: str | None,
    unsigned: bool,
) -> None:
    """Gate POLICY (a directory) and write it as a signed bundle; exit 1 if the gate fails."""
    from charter.control.bundle import build_bundle

    if key_file is None and not unsigned:
        click.echo("charter bundle: give --key-file and --key-id (or --unsigned)", err=True)
        sys.exit(EXIT_USAGE)
    key = _key(key_file, key_id, "bundle")
    try:
        built = build_bundle(
            policy,
            key=key,
            key_id=key_id if key is not None else None,
            builder=_actor(actor),
            properties=_properties(properties),
        )
    except ValueError as err:  # a key that cannot sign (an Ed25519 public key)
        click.echo(f"charter bundle: {err}", err=True)
        sys.exit(EXIT_USAGE)
    result = built.gate
    if built.data is None:
        click.echo(f"gate failed at {result.stage_failed}; no bundle written", err=True)
        for line in result.diagnostics:
            click.echo(line, err=True)
        sys.exit(EXIT_FAILED)
    out = Path(output)
    try:
        # Written beside and moved into place: a host watching the file never reads half.
        replace_file(out, built.data, fsync=False)
    except OSError as err:
        click.echo(f"charter bundle: cannot write {out}: {err}", err=True)
        sys.exit(EXIT_USAGE)
    assert result.policy is not None
    click.echo(
        f"bundle {out}: {result.policy.name} {result.policy.digest} (source "
        f"{result.source_digest}), {result.tests[0]} tests, {result.properties[0]} "
        f"properties, {'key ' + str(key_id) if key is not None else 'UNSIGNED'}"
    )


@click.command("push")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--redis", "redis_url", required=True, metavar="URL", help="redis://host:port/db")
@click.option("--prefix", default="charter:", show_default=True)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    help="Verify the bundle with this key before pushing (HMAC hex or Ed25519 PEM).",
)
@click.option("--key-id", default=None, help="The key's id (default: the bundle's key_id).")
@click.option("--actor", default=None, help="Who (default $CHARTER_ACTOR or the OS user).")
@click.option(
    "--to",
    default=None,
    metavar="DIGEST|previous",
    help="Instead of a file: make a bundle kept in Redis active again (its bundle or policy "
    "digest, a unique prefix, or 'previous': the one before the active one).",
)
@click.option("--list", "listing", is_flag=True, help="List the kept bundles (JSON) and exit.")
def push_cmd(
    bundle: str | None,
    redis_url: str,
    prefix: str,
    key_file: str | None,
    key_id: str | None,
    actor: str | None,
    to: str | None,
    listing: bool,
) -> None:
    """Upload BUNDLE to Redis and make it the active version of every following host (or,
    with --to, re-activate a kept one)."""
    from charter.runtime.bundle import BundleError, verify_bundle
    from charter.runtime.live_redis_source import RedisSource, manifest_of

    if listing or to is not None:
        if bundle is not None:
            click.echo("charter push: give BUNDLE or --to/--list, not both", err=True)
            sys.exit(EXIT_USAGE)
        _kept(redis_url, prefix, to, _actor(actor), listing)
        return
    if bundle is None:
        click.echo("charter push: give a BUNDLE file (or --to DIGEST, --list)", err=True)
        sys.exit(EXIT_USAGE)
    data = Path(bundle).read_bytes()
    key = _key(key_file, key_id, "push")
    try:
        if key is not None:
            kid = key_id or manifest_of(data).get("key_id")
            if not isinstance(kid, str):
                raise BundleError("signature", "the bundle names no key id; give --key-id")
            verify_bundle(data, {kid: key})
        else:
            manifest_of(data)  # at least a bundle: the hosts verify it in full
    except BundleError as err:
        click.echo(f"charter push: {bundle}: {err}", err=True)
        sys.exit(EXIT_FAILED)
    try:
        source = RedisSource(redis_url, prefix=prefix)
        seq, digest = source.push(data, actor=_actor(actor))
    except ImportError as err:
        click.echo(f"charter push: {err} (pip install 'charter[redis]')", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as err:  # noqa: BLE001 - redis errors: a clear message, exit 2
        click.echo(f"charter push: {err}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"pushed {digest} as seq {seq} to {prefix}active")


@click.command("manifest")
@click.argument("policy", type=click.Path(exists=True, file_okay=False))
@click.option("--actor", default=None, help="The builder (default $CHARTER_ACTOR or the OS user).")
def manifest_cmd(policy: str, actor: str | None) -> None:
    """Write POLICY/.charter-manifest.json for the files there now: the last step of a deploy
    to a host watching POLICY with require_manifest (L-G6)."""
    from charter.control.manifest import write_manifest

    try:
        out = write_manifest(policy, builder=_actor(actor))
    except (OSError, ValueError) as err:
        click.echo(f"charter manifest: {err}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"wrote {out}")


def _kept(redis_url: str, prefix: str, to: str | None, actor: str, listing: bool) -> None:
    """`charter push --list` and `charter push --to`: the bundles kept in Redis."""
    import json

    from charter.runtime.live_redis_source import RedisSource

    try:
        source = RedisSource(redis_url, prefix=prefix)
        if listing:
            click.echo(json.dumps(source.kept(), indent=2))
            return
        seq, digest = source.activate(None if to == "previous" else to, actor=actor)
    except ValueError as err:  # nothing kept matches
        click.echo(f"charter push: {err}", err=True)
        sys.exit(EXIT_FAILED)
    except Exception as err:  # noqa: BLE001 - redis errors: a clear message, exit 2
        click.echo(f"charter push: {err}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"re-activated {digest} as seq {seq} at {prefix}active")
